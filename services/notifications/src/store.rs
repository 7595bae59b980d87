//! The notifications service's SQL: inboxes, deliveries, and what the stream of an inbox reads.

use chrono::{DateTime, Utc};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{Delivery, DeliveryStatus};
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use placement_proto::v1::NotificationKind;

use crate::inbox::{COLUMNS, NotificationRow};

pub(crate) const DELIVERY_COLUMNS: &str = "id, notification_id, endpoint_id, channel, address, status, attempts, \
     last_error, last_attempt_at, next_attempt_at, sent_at, created_at";

#[derive(Debug, FromRow)]
pub(crate) struct DeliveryRow {
    pub id: Uuid,
    pub notification_id: Uuid,
    endpoint_id: Uuid,
    channel: String,
    address: String,
    status: String,
    attempts: i32,
    last_error: String,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_at: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl DeliveryRow {
    pub fn into_proto(self) -> Delivery {
        let status = match self.status.as_str() {
            "PENDING" => DeliveryStatus::Pending,
            "SENT" => DeliveryStatus::Sent,
            "FAILED" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Unspecified,
        };
        Delivery {
            id: self.id.to_string(),
            notification_id: self.notification_id.to_string(),
            endpoint_id: self.endpoint_id.to_string(),
            channel: self.channel,
            address: self.address,
            status: status as i32,
            attempts: placement_platform::numbers::count(self.attempts),
            last_error: self.last_error,
            last_attempt_at: opt_timestamp(self.last_attempt_at),
            next_attempt_at: opt_timestamp(self.next_attempt_at),
            sent_at: opt_timestamp(self.sent_at),
            created_at: Some(timestamp(self.created_at)),
        }
    }
}

fn status_name(status: DeliveryStatus) -> Option<&'static str> {
    match status {
        DeliveryStatus::Pending => Some("PENDING"),
        DeliveryStatus::Sent => Some("SENT"),
        DeliveryStatus::Failed => Some("FAILED"),
        DeliveryStatus::Unspecified => None,
    }
}

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

/// The deliveries of the given notifications.
pub async fn deliveries_of(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = ANY ($1) ORDER BY id"
    ))
    .bind(ids)
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

/// A notification just created, with one of its recipient's endpoints (none: no row of `endpoints`).
#[derive(sqlx::FromRow)]
pub(crate) struct CreatedRow {
    #[sqlx(flatten)]
    pub notification: NotificationRow,
    pub position: i64,
    pub endpoint_id: Option<Uuid>,
    pub channel: Option<String>,
    pub address: Option<String>,
    pub language: Option<String>,
}

/// One event's notifications: one for each recipient.
pub struct EventNotifications<'a> {
    pub ids: &'a [Uuid],
    pub agencies: &'a [Uuid],
    pub kind: NotificationKind,
    pub referral_id: Uuid,
    pub event_id: Uuid,
    pub title: &'a str,
    pub body: &'a str,
    pub event_type: &'a str,
}

/// Creates the notifications of one event, with the endpoints of each recipient that want the event, in
/// one statement (one round trip less on the way to the recipient); an agency already told of this event
/// gets nothing new. Rows go in agency order because each takes its agency's inbox head (see the
/// migration adding positions).
pub async fn create_notifications(
    conn: &mut PgConnection,
    n: &EventNotifications<'_>,
) -> Result<Vec<CreatedRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH created AS (
             INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body)
             SELECT id, agency, $3, $4, $5, $6, $7 FROM unnest($1::uuid[], $2::uuid[]) AS r(id, agency)
             ORDER BY agency
             ON CONFLICT (event_id, recipient_agency_id) DO NOTHING
             RETURNING {COLUMNS}, position)
         SELECT c.*, e.id AS endpoint_id, e.channel, e.address, e.language
         FROM created c
         LEFT JOIN endpoints e ON e.agency_id = c.recipient_agency_id AND e.enabled
              AND (cardinality(e.event_types) = 0 OR $8 = ANY (e.event_types))
         ORDER BY c.recipient_agency_id, e.id"
    ))
    .bind(n.ids)
    .bind(n.agencies)
    .bind(n.kind)
    .bind(n.referral_id)
    .bind(n.event_id)
    .bind(n.title)
    .bind(n.body)
    .bind(n.event_type)
    .fetch_all(conn)
    .await
}
