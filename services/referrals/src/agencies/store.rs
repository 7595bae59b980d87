//! The agencies' SQL: what this service remembers of the directory's agencies.

use placement_proto::v1::AgencyKind;
use sqlx::{PgConnection, PgPool};
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

/// The earliest registered agency of `kind` in `region`, among those learnt from events.
pub async fn first_agency_of_kind(
    pool: &PgPool,
    region: &str,
    kind: AgencyKind,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM agencies WHERE region_code = $1 AND kind = $2 ORDER BY id LIMIT 1",
    )
    .bind(region)
    .bind(kind)
    .fetch_optional(pool)
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
