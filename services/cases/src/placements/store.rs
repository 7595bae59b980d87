//! The placements' SQL: what the case knows of each of its referrals.

use sqlx::PgConnection;
use uuid::Uuid;

use super::model::CaseReferral;

/// Whether a referral of the case is in progress.
pub async fn has_active_referral(
    conn: &mut PgConnection,
    case_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM case_referrals WHERE case_id = $1 AND active)")
        .bind(case_id)
        .fetch_one(conn)
        .await
}

/// Whether `agency` receives (or received and placed) a referral of the case.
pub async fn receives_case(
    conn: &mut PgConnection,
    case_id: Uuid,
    agency: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM case_referrals WHERE case_id = $1 AND open_or_placed
                         AND (receiving_agency_id = $2 OR foster_team_agency_id = $2))",
    )
    .bind(case_id)
    .bind(agency)
    .fetch_one(conn)
    .await
}

/// Locks the case, then records what is known of a referral of it, in one round trip; newer knowledge
/// wins, an older event arriving late changes nothing. None when there is no such case (nothing is
/// written then); else whether it changed anything. The referral's row is written for the locked case's
/// row, so it is locked after that row, as before.
pub async fn lock_case_and_note_referral(
    conn: &mut PgConnection,
    r: &CaseReferral,
) -> Result<Option<bool>, sqlx::Error> {
    let (found, applied): (bool, bool) = sqlx::query_as(
        "WITH locked AS (SELECT id FROM cases WHERE id = $2 FOR UPDATE),
         noted AS (
             INSERT INTO case_referrals (referral_id, case_id, active, version, receiving_agency_id,
                                         foster_team_agency_id, open_or_placed)
             SELECT $1, id, $3, $4, $5, $6, $7 FROM locked
             ON CONFLICT (referral_id) DO UPDATE SET active = EXCLUDED.active, version = EXCLUDED.version,
                 receiving_agency_id = EXCLUDED.receiving_agency_id,
                 foster_team_agency_id = EXCLUDED.foster_team_agency_id,
                 open_or_placed = EXCLUDED.open_or_placed
             WHERE case_referrals.version < EXCLUDED.version
             RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM locked), EXISTS (SELECT 1 FROM noted)",
    )
    .bind(r.referral_id)
    .bind(r.case_id)
    .bind(r.active)
    .bind(r.version)
    .bind(r.receiving_agency_id)
    .bind(r.foster_team_agency_id)
    .bind(r.open_or_placed)
    .fetch_one(conn)
    .await?;
    Ok(found.then_some(applied))
}
