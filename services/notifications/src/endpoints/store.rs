//! The SQL of the copy of the directory's endpoints: sets applied by version, endpoints found for an event,
//! and an endpoint disabled after its deliveries kept failing.

use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{DeliveryTarget, KnownEndpoint};

/// Records that the agency's endpoint set is at `version`; false if the one held is as new or newer.
pub async fn note_endpoint_set(
    conn: &mut PgConnection,
    agency: Uuid,
    version: i64,
) -> Result<bool, sqlx::Error> {
    let newer: Option<i64> = sqlx::query_scalar(
        "INSERT INTO endpoint_sets (agency_id, version) VALUES ($1, $2)
         ON CONFLICT (agency_id) DO UPDATE SET version = EXCLUDED.version
         WHERE endpoint_sets.version < EXCLUDED.version
         RETURNING version",
    )
    .bind(agency)
    .bind(version)
    .fetch_optional(conn)
    .await?;
    Ok(newer.is_some())
}

pub async fn upsert_endpoint(
    conn: &mut PgConnection,
    e: &KnownEndpoint<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO endpoints (id, agency_id, channel, address, event_types, language, enabled, secret_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET channel = EXCLUDED.channel, address = EXCLUDED.address,
             event_types = EXCLUDED.event_types, language = EXCLUDED.language,
             enabled = EXCLUDED.enabled, secret_version = EXCLUDED.secret_version, updated_at = now()",
    )
    .bind(e.id)
    .bind(e.agency)
    .bind(e.channel)
    .bind(e.address)
    .bind(e.event_types)
    .bind(e.language)
    .bind(e.enabled)
    .bind(e.secret_version)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the agency's endpoints other than `kept`; returns the ids removed.
pub async fn remove_endpoints_except(
    conn: &mut PgConnection,
    agency: Uuid,
    kept: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "DELETE FROM endpoints WHERE agency_id = $1 AND NOT (id = ANY ($2)) RETURNING id",
    )
    .bind(agency)
    .bind(kept)
    .fetch_all(conn)
    .await
}

/// The enabled endpoints of `agencies` that want events of `event_type`.
pub async fn endpoints_wanting(
    conn: &mut PgConnection,
    agencies: &[Uuid],
    event_type: &str,
) -> Result<Vec<DeliveryTarget>, sqlx::Error> {
    sqlx::query_as(
        "SELECT agency_id, id, channel, address, language FROM endpoints
         WHERE agency_id = ANY($1) AND enabled AND (cardinality(event_types) = 0 OR $2 = ANY (event_types))
         ORDER BY agency_id, id",
    )
    .bind(agencies)
    .bind(event_type)
    .fetch_all(conn)
    .await
}

/// Disables an enabled endpoint; returns its agency and address, or None if it was disabled already.
pub async fn disable_endpoint(
    conn: &mut PgConnection,
    endpoint: Uuid,
) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE endpoints SET enabled = false, updated_at = now() WHERE id = $1 AND enabled
         RETURNING agency_id, address",
    )
    .bind(endpoint)
    .fetch_optional(conn)
    .await
}
