//! The agencies' SQL: what this service remembers of the directory's agencies.

use placement_proto::v1::AgencyKind;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// The district of an agency this service learnt of from the directory's events.
pub async fn region_of_agency(pool: &PgPool, agency: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT region_code FROM agencies WHERE id = $1")
        .bind(agency)
        .fetch_optional(pool)
        .await
}

/// The district of `agency` if it is an RDSA.
pub async fn region_of_rdsa(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT region_code FROM agencies WHERE id = $1 AND kind = $2")
        .bind(agency)
        .bind(AgencyKind::Rdsa)
        .fetch_optional(conn)
        .await
}

/// What a submission asks of the agencies learnt from events, in one statement: the district of
/// `sender` (when given) and the receiving district's earliest registered foster-care team and RDSA.
#[derive(Debug, FromRow)]
pub struct KnownAgencies {
    pub sender_region: Option<String>,
    pub foster_team: Option<Uuid>,
    pub rdsa: Option<Uuid>,
}

pub async fn known_for_submission(
    pool: &PgPool,
    sender: Option<Uuid>,
    region: &str,
) -> Result<KnownAgencies, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT region_code FROM agencies WHERE id = $1) AS sender_region,
                (SELECT id FROM agencies WHERE region_code = $2 AND kind = $3 ORDER BY id LIMIT 1)
                    AS foster_team,
                (SELECT id FROM agencies WHERE region_code = $2 AND kind = $4 ORDER BY id LIMIT 1) AS rdsa",
    )
    .bind(sender)
    .bind(region)
    .bind(AgencyKind::FosterCareTeam)
    .bind(AgencyKind::Rdsa)
    .fetch_one(pool)
    .await
}

/// Remembers an agency registered in the directory (its kind and district).
pub async fn remember_agency(
    conn: &mut PgConnection,
    id: Uuid,
    kind: AgencyKind,
    region_code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agencies (id, kind, region_code) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(kind)
    .bind(region_code)
    .execute(conn)
    .await?;
    Ok(())
}
