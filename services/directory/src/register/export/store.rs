//! The SQL of the export: services changed since a time, a page at a time, and their providers.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::model::{ExportedAgency, ExportedService};
use crate::{agencies::model::AGENCY_COLUMNS, social_services::model::SERVICE_COLUMNS};

/// Up to `limit` services changed after `modified_after`, in the order of their last change, after the
/// (change, id) `after`; and how many services changed after `modified_after` in all.
pub async fn services_changed(
    pool: &PgPool,
    modified_after: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<(Vec<ExportedService>, i64), sqlx::Error> {
    let rows = sqlx::query_as(&format!(
        "SELECT {SERVICE_COLUMNS}, external_id, address FROM services
          WHERE ($1::timestamptz IS NULL OR updated_at > $1)
            AND ($2::timestamptz IS NULL OR (updated_at, id) > ($2, $3))
          ORDER BY updated_at, id LIMIT $4"
    ))
    .bind(modified_after)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM services WHERE ($1::timestamptz IS NULL OR updated_at > $1)",
    )
    .bind(modified_after)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// The agencies with these ids, with their register ids.
pub async fn agencies_with_ids(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<Vec<ExportedAgency>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENCY_COLUMNS}, external_id FROM agencies WHERE id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}
