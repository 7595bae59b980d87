//! The SQL of deliveries: created with their notification, claimed one attempt at a time, recorded,
//! retried, failed, and listed.

use chrono::{DateTime, Utc};
use placement_proto::v1::DeliveryStatus;
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use super::model::{Claimed, DELIVERY_COLUMNS, DeliveryRow, NewDelivery, status_name};

/// Deliveries, newest first, of one notification or of all, in one status or any, before `after`.
pub async fn list_deliveries(
    pool: &PgPool,
    notification: Option<Uuid>,
    status: DeliveryStatus,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries
         WHERE ($1::uuid IS NULL OR notification_id = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(notification)
    .bind(status_name(status))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A delivery's status and whether its endpoint is enabled (None: removed), the delivery locked.
pub async fn lock_delivery(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<(String, Option<bool>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT d.status, e.enabled FROM deliveries d LEFT JOIN endpoints e ON e.id = d.endpoint_id
         WHERE d.id = $1 FOR UPDATE OF d",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Makes a delivery due again at once, tried for `window` more.
pub async fn retry_delivery(
    conn: &mut PgConnection,
    id: Uuid,
    window: chrono::Duration,
) -> Result<DeliveryRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE deliveries SET status = 'PENDING', next_attempt_at = now(), give_up_at = now() + $2
         WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(id)
    .bind(window)
    .fetch_one(conn)
    .await
}

/// The deliveries of the given notifications.
pub async fn deliveries_of(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = ANY ($1) ORDER BY id"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Creates a delivery, due now; a notification has one delivery per endpoint.
pub async fn insert_delivery(
    conn: &mut PgConnection,
    d: &NewDelivery<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO deliveries (id, notification_id, endpoint_id, channel, address, subject, body,
                                 status, next_attempt_at, give_up_at, trace_context)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING', now(), now() + $8, $9)
         ON CONFLICT (notification_id, endpoint_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(d.notification)
    .bind(d.endpoint.id)
    .bind(d.endpoint.channel)
    .bind(&d.endpoint.address)
    .bind(d.subject)
    .bind(d.body)
    .bind(d.window)
    .bind(placement_platform::trace_context::current())
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims up to `limit` due deliveries (e-mails only when `email` is on) for one attempt each, leaving
/// them to this sender for `lease`. A claimed row that cannot be read (a channel this release does not
/// know) is logged and left to its lease, so it neither stops the others nor goes out the wrong way.
pub async fn claim_deliveries(
    pool: &PgPool,
    limit: i64,
    email: bool,
    lease: chrono::Duration,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH due AS (
             SELECT d.id, e.secret_version FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.status = 'PENDING' AND d.next_attempt_at <= now() AND e.enabled
               AND (d.channel <> 'email' OR $2)
             ORDER BY d.next_attempt_at LIMIT $1
             FOR UPDATE OF d SKIP LOCKED)
         UPDATE deliveries d SET attempts = d.attempts + 1, last_attempt_at = now(),
                                 next_attempt_at = now() + $3
         FROM due WHERE d.id = due.id
         RETURNING d.id, d.endpoint_id, d.channel, d.address, d.subject, d.body, d.attempts,
                   d.give_up_at, due.secret_version, d.trace_context",
    )
    .bind(limit)
    .bind(email)
    .bind(lease)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            Claimed::from_row(row)
                .inspect_err(|e| {
                    let id = row.try_get::<Uuid, _>("id").ok();
                    tracing::error!(delivery_id = ?id, error = %e, "a claimed delivery cannot be read; not sent");
                })
                .ok()
        })
        .collect())
}

pub async fn record_attempt(
    conn: &mut PgConnection,
    d: &Claimed,
    started: DateTime<Utc>,
    succeeded: bool,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, succeeded, detail)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(d.id)
    .bind(d.attempts)
    .bind(started)
    .bind(succeeded)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

// The three outcomes of an attempt change the delivery only if it is still at that attempt: a sender
// whose lease ran out does not overwrite the attempt after it.

pub async fn mark_sent(conn: &mut PgConnection, d: &Claimed) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET status = 'SENT', sent_at = now(), next_attempt_at = NULL
         WHERE id = $1 AND attempts = $2 AND status = 'PENDING'",
    )
    .bind(d.id)
    .bind(d.attempts)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_failed(
    conn: &mut PgConnection,
    d: &Claimed,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET status = 'FAILED', next_attempt_at = NULL, last_error = $3
         WHERE id = $1 AND attempts = $2 AND status = 'PENDING'",
    )
    .bind(d.id)
    .bind(d.attempts)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn retry_later(
    conn: &mut PgConnection,
    d: &Claimed,
    next: DateTime<Utc>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $3, last_error = $4
         WHERE id = $1 AND attempts = $2 AND status = 'PENDING'",
    )
    .bind(d.id)
    .bind(d.attempts)
    .bind(next)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Fails the pending deliveries to endpoints that are gone or disabled.
pub async fn fail_pending(
    conn: &mut PgConnection,
    endpoints: &[Uuid],
    why: &str,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE deliveries SET status = 'FAILED', next_attempt_at = NULL, last_error = $2
         WHERE endpoint_id = ANY ($1) AND status = 'PENDING'",
    )
    .bind(endpoints)
    .bind(why)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Deliveries not sent yet, by channel (for the metrics).
pub async fn count_pending_deliveries(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channel, count(*) FROM deliveries WHERE status = 'PENDING' GROUP BY channel",
    )
    .fetch_all(pool)
    .await
}
