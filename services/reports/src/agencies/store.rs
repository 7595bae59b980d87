//! The agencies' SQL: each agency's kind and district.

use placement_proto::v1::AgencyKind;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

pub async fn note_agency(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    kind: AgencyKind,
    region_code: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO agencies (id, kind, region_code) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, region_code = EXCLUDED.region_code",
    )
    .bind(id)
    .bind(kind)
    .bind(region_code)
    .execute(&mut **tx)
    .await
    .map(drop)
}

/// The kind and district of an agency, if its registration has been learnt.
pub async fn agency(
    conn: &mut PgConnection,
    id: Uuid,
) -> sqlx::Result<Option<(AgencyKind, String)>> {
    sqlx::query_as("SELECT kind, region_code FROM agencies WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The RDSAs of a district learnt from the directory's events.
pub async fn rdsas_of(conn: &mut PgConnection, region: &str) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar("SELECT id FROM agencies WHERE kind = $1 AND region_code = $2 ORDER BY id")
        .bind(AgencyKind::Rdsa)
        .bind(region)
        .fetch_all(conn)
        .await
}
