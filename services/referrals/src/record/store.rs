//! The statements every feature shares to read a referral's record: its parties, its history, and the
//! whole referral assembled for the wire.

use chrono::{DateTime, Utc};
use placement_proto::v1::{Referral, ReferralAction, ReferralStatus};
use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::record::model::{HistoryRow, PartyRow, ReferralRow};

pub async fn parties_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<PartyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT referral_id, agency_id, receiving_provider, foster_care_team, acknowledged_at
         FROM referral_parties WHERE referral_id = ANY($1)
         ORDER BY referral_id, receiving_provider DESC, agency_id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// The database's time of the current transaction: what a step dated by the database's clock is written
/// at (`COALESCE(told, now())`), so a deadline counted from it starts when the step did.
pub async fn transaction_time(conn: &mut PgConnection) -> Result<DateTime<Utc>, sqlx::Error> {
    sqlx::query_scalar("SELECT now()").fetch_one(conn).await
}

pub async fn record_history(
    conn: &mut PgConnection,
    row: &ReferralRow,
    action: ReferralAction,
    from: ReferralStatus,
    actor: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO referral_history (referral_id, version, action, from_status, to_status, actor_agency_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.id)
    .bind(row.version)
    .bind(action)
    .bind((from != ReferralStatus::Unspecified).then_some(from))
    .bind(row.status)
    .bind(actor)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A party or a history entry of a referral: `assemble` reads both in one query.
#[derive(Debug, FromRow)]
struct PartOfReferral {
    referral_id: Uuid,
    is_party: bool,
    agency_id: Option<Uuid>,
    receiving_provider: bool,
    foster_care_team: bool,
    at: Option<DateTime<Utc>>,
    version: i64,
    action: Option<ReferralAction>,
    from_status: Option<ReferralStatus>,
    to_status: Option<ReferralStatus>,
}

/// Assembles full referrals from rows, loading their parties and history in one query.
pub async fn assemble(
    conn: &mut PgConnection,
    rows: Vec<ReferralRow>,
) -> Result<Vec<Referral>, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let parts: Vec<PartOfReferral> = sqlx::query_as(
        "SELECT referral_id, true AS is_party, agency_id, receiving_provider, foster_care_team,
                acknowledged_at AS at, 0::bigint AS version, NULL::text AS action, NULL::text AS from_status,
                NULL::text AS to_status
         FROM referral_parties WHERE referral_id = ANY($1)
         UNION ALL
         SELECT referral_id, false, actor_agency_id, false, false, at, version, action, from_status, to_status
         FROM referral_history WHERE referral_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    let mut parties = Vec::new();
    let mut history = Vec::new();
    for part in parts {
        if part.is_party {
            if let Some(agency_id) = part.agency_id {
                parties.push(PartyRow {
                    referral_id: part.referral_id,
                    agency_id,
                    receiving_provider: part.receiving_provider,
                    foster_care_team: part.foster_care_team,
                    acknowledged_at: part.at,
                });
            }
        } else if let (Some(at), Some(action), Some(to_status)) =
            (part.at, part.action, part.to_status)
        {
            history.push(HistoryRow {
                referral_id: part.referral_id,
                version: part.version,
                action,
                from_status: part.from_status,
                to_status,
                actor_agency_id: part.agency_id,
                at,
            });
        }
    }
    // The order `parties_of` gives: the receiving provider first, then by agency; history by version.
    parties.sort_by_key(|p| (!p.receiving_provider, p.agency_id));
    history.sort_by_key(|h| h.version);
    Ok(rows
        .into_iter()
        .map(|row| {
            let p = parties
                .iter()
                .filter(|p| p.referral_id == row.id)
                .cloned()
                .collect();
            let h = history
                .iter()
                .filter(|h| h.referral_id == row.id)
                .cloned()
                .collect();
            row.into_proto(p, h)
        })
        .collect())
}
