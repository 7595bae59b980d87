//! The SQL of announcements: claiming the pending ones, and reading every agency and service in pages.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    agencies::model::{AGENCY_COLUMNS, AgencyRow},
    social_services::model::{SERVICE_COLUMNS, ServiceRow},
};

/// Marks every pending announcement made and returns their topics; the rows stay locked until the
/// transaction ends, so an instance claiming at the same time waits, then finds none pending (or, if this
/// transaction rolled back, claims them itself).
pub async fn claim_pending(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE announcements SET announced_at = now() WHERE announced_at IS NULL RETURNING topic",
    )
    .fetch_all(conn)
    .await
}

/// Records how many events the announcement of `topics` wrote.
pub async fn record_events(
    conn: &mut PgConnection,
    topics: &[String],
    events: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE announcements SET events = $2 WHERE topic = ANY($1)")
        .bind(topics)
        .bind(events)
        .execute(conn)
        .await?;
    Ok(())
}

/// At most `limit` agencies by id, after `after`.
pub async fn agencies_after(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AgencyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENCY_COLUMNS} FROM agencies WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// At most `limit` services by id, after `after`.
pub async fn services_after(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ServiceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS} FROM services WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(conn)
    .await
}
