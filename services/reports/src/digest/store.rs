//! The digests' SQL: which RDSAs have had a slot's digest, and each digest sent.

use chrono::{DateTime, Utc};
use placement_proto::v1::AgencyKind;
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

/// The RDSAs that have not had the digest of `slot`.
pub async fn rdsas_without_digest(
    conn: &mut PgConnection,
    slot: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT a.id, a.region_code FROM agencies a
         WHERE a.kind = $1 AND NOT EXISTS (
             SELECT 1 FROM digests d WHERE d.rdsa_agency_id = a.id AND d.scheduled_for = $2)
         ORDER BY a.region_code, a.id",
    )
    .bind(AgencyKind::Rdsa)
    .bind(slot)
    .fetch_all(conn)
    .await
}

/// Records a digest; false when the RDSA had this slot's already (a scheduled digest is sent once).
pub async fn note_digest(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    agency: Uuid,
    region: &str,
    slot: Option<DateTime<Utc>>,
    period: (DateTime<Utc>, DateTime<Utc>),
) -> sqlx::Result<bool> {
    sqlx::query(
        "INSERT INTO digests (id, rdsa_agency_id, region_code, scheduled_for, period_start, period_end)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rdsa_agency_id, scheduled_for) DO NOTHING",
    )
    .bind(id)
    .bind(agency)
    .bind(region)
    .bind(slot)
    .bind(period.0)
    .bind(period.1)
    .execute(&mut **tx)
    .await
    .map(|r| r.rows_affected() == 1)
}
