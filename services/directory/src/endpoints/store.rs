//! The SQL of notification endpoints, and of the agency's row that serialises and numbers changes to them.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::{ENDPOINT_COLUMNS, EndpointChange, NewEndpoint, RegisteredEndpoint};

/// Locks an agency's row: changes to one agency's endpoints are serialised by it, so their count and
/// version are right.
pub async fn lock_agency(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM agencies WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks the agency's row (see [`lock_agency`]) and counts its endpoints.
pub async fn lock_agency_and_count_endpoints(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notification_endpoints
         WHERE agency_id = (SELECT id FROM agencies WHERE id = $1 FOR UPDATE)",
    )
    .bind(agency)
    .fetch_one(conn)
    .await
}

pub async fn find_endpoint(
    pool: &PgPool,
    id: Uuid,
) -> Result<Option<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The agency's endpoints, oldest first.
pub async fn endpoints_of(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<Vec<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM notification_endpoints WHERE agency_id = $1 ORDER BY created_at, id"
    ))
    .bind(agency)
    .fetch_all(conn)
    .await
}

/// Adds an endpoint; None if the agency already has one of this channel and address.
pub async fn insert_endpoint(
    conn: &mut PgConnection,
    e: &NewEndpoint<'_>,
) -> Result<Option<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO notification_endpoints (id, agency_id, channel, address, event_types, language)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (agency_id, channel, address) DO NOTHING RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(e.id)
    .bind(e.agency)
    .bind(e.channel)
    .bind(e.address)
    .bind(e.event_types)
    .bind(e.language)
    .fetch_optional(conn)
    .await
}

pub async fn update_endpoint(
    conn: &mut PgConnection,
    c: &EndpointChange,
) -> Result<Option<RegisteredEndpoint>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE notification_endpoints SET
             event_types = COALESCE($2, event_types),
             language = COALESCE($3, language),
             enabled = COALESCE($4, enabled),
             disabled_reason = CASE WHEN COALESCE($4, enabled) THEN '' ELSE
                 CASE WHEN $4 = false THEN 'disabled by the agency' ELSE disabled_reason END END,
             secret_version = secret_version + CASE WHEN $5 THEN 1 ELSE 0 END,
             updated_at = now()
         WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    ))
    .bind(c.id)
    .bind(&c.event_types)
    .bind(c.language)
    .bind(c.enabled)
    .bind(c.rotate_secret)
    .fetch_optional(conn)
    .await
}

/// Removes an endpoint; returns whether there was one.
pub async fn delete_endpoint(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query("DELETE FROM notification_endpoints WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(removed > 0)
}

/// The next version of the agency's set of endpoints.
pub async fn next_endpoints_version(
    conn: &mut PgConnection,
    agency: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE agencies SET endpoints_version = endpoints_version + 1 WHERE id = $1 RETURNING endpoints_version",
    )
    .bind(agency)
    .fetch_one(conn)
    .await
}

/// Disables an enabled endpoint; returns its agency, or None if it was disabled or removed already.
pub async fn disable_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE notification_endpoints SET enabled = false, disabled_reason = $2, updated_at = now()
         WHERE id = $1 AND enabled RETURNING agency_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(conn)
    .await
}
