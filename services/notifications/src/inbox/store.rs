//! The inbox's SQL: an agency's notifications, read, marked read, and read again by its streams; and a
//! notice about no referral.

use placement_proto::v1::NotificationKind;
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use super::{
    model::{COLUMNS, NotificationRow},
    told::Stored,
};

/// Whether notification `id` was sent to `agency`.
pub async fn is_recipient(pool: &PgPool, id: Uuid, agency: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND recipient_agency_id = $2)",
    )
    .bind(id)
    .bind(agency)
    .fetch_one(pool)
    .await
}

/// The agency's notifications, newest first, before sequence `before`.
pub async fn list_notifications(
    pool: &PgPool,
    agency: Uuid,
    unread_only: bool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<NotificationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM notifications
         WHERE recipient_agency_id = $1 AND ($2 = false OR read_at IS NULL)
           AND ($3::bigint IS NULL OR sequence < $3)
         ORDER BY sequence DESC LIMIT $4"
    ))
    .bind(agency)
    .bind(unread_only)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// How many of `ids` were sent to `agency`.
pub async fn count_received(
    conn: &mut PgConnection,
    ids: &[Uuid],
    agency: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM notifications WHERE id = ANY($1) AND recipient_agency_id = $2",
    )
    .bind(ids)
    .bind(agency)
    .fetch_one(conn)
    .await
}

/// Marks the agency's notifications among `ids` read; returns how many were unread.
pub async fn mark_read(
    conn: &mut PgConnection,
    ids: &[Uuid],
    agency: Uuid,
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = now()
         WHERE id = ANY($1) AND recipient_agency_id = $2 AND read_at IS NULL",
    )
    .bind(ids)
    .bind(agency)
    .execute(conn)
    .await?
    .rows_affected())
}

/// Where a stream of the agency's inbox starts: after the notification with sequence `after` (None if
/// it is not one of the agency's), or, with 0, after the newest.
pub async fn watch_start(
    pool: &PgPool,
    agency: Uuid,
    after: u64,
) -> Result<Option<i64>, sqlx::Error> {
    if after == 0 {
        return sqlx::query_scalar(
            "SELECT COALESCE(max(position), 0) FROM notifications WHERE recipient_agency_id = $1",
        )
        .bind(agency)
        .fetch_one(pool)
        .await
        .map(Some);
    }
    // Beyond any sequence: not a notification of this agency either.
    let Some(after) = placement_platform::numbers::stored_serial(after) else {
        return Ok(None);
    };
    sqlx::query_scalar(
        "SELECT position FROM notifications WHERE recipient_agency_id = $1 AND sequence = $2",
    )
    .bind(agency)
    .bind(after)
    .fetch_optional(pool)
    .await
}

/// The agency's notifications after inbox position `cursor`, oldest first, with their positions.
pub async fn notifications_after(
    pool: &PgPool,
    agency: Uuid,
    cursor: i64,
    limit: i64,
) -> Result<Vec<(i64, NotificationRow)>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS}, position FROM notifications
         WHERE recipient_agency_id = $1 AND position > $2
         ORDER BY position LIMIT $3"
    ))
    .bind(agency)
    .bind(cursor)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get("position")?, NotificationRow::from_row(&r)?)))
        .collect()
}

/// A notification about no referral (e.g. an endpoint disabled) to one agency, with its facts.
pub async fn insert_notice(
    conn: &mut PgConnection,
    id: Uuid,
    agency: Uuid,
    kind: NotificationKind,
    event_id: Uuid,
    notice: &Stored,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body, facts)
         VALUES ($1, $2, $3, NULL, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(agency)
    .bind(kind)
    .bind(event_id)
    .bind(&notice.title)
    .bind(&notice.body)
    .bind(&notice.facts)
    .execute(conn)
    .await?;
    Ok(())
}
