//! The notifications service's SQL: inboxes, deliveries, and what the stream of an inbox reads.

use chrono::{DateTime, Utc};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{Delivery, DeliveryStatus};
use sqlx::{FromRow, PgConnection, PgPool, Row};
use uuid::Uuid;

use placement_proto::v1::{Language, Notification, NotificationKind};

use crate::channel::Channel;

/// The columns of a `NotificationRow`.
pub(crate) const COLUMNS: &str = "id, sequence, recipient_agency_id, kind, referral_id, event_id, title, body, created_at, read_at";

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NotificationRow {
    pub(crate) id: Uuid,
    pub(crate) sequence: i64,
    pub(crate) recipient_agency_id: Uuid,
    kind: NotificationKind,
    referral_id: Option<Uuid>,
    event_id: Uuid,
    title: String,
    body: String,
    created_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
}

impl NotificationRow {
    pub(crate) fn into_proto(self) -> Notification {
        Notification {
            id: self.id.to_string(),
            recipient_agency_id: self.recipient_agency_id.to_string(),
            kind: self.kind as i32,
            referral_id: self.referral_id.map(|r| r.to_string()).unwrap_or_default(),
            event_id: self.event_id.to_string(),
            title: self.title,
            body: self.body,
            created_at: Some(timestamp(self.created_at)),
            read_at: opt_timestamp(self.read_at),
            sequence: placement_platform::numbers::serial(self.sequence),
            deliveries: Vec::new(),
        }
    }
}

/// An endpoint a notification goes to: where, how, and in which language its e-mails are written.
#[derive(Debug, FromRow)]
pub struct DeliveryTarget {
    pub agency_id: Uuid,
    pub id: Uuid,
    pub channel: Channel,
    pub address: String,
    pub language: Language,
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, notification_id, endpoint_id, channel, address, status, attempts, \
     last_error, last_attempt_at, next_attempt_at, sent_at, created_at";

#[derive(Debug, FromRow)]
pub(crate) struct DeliveryRow {
    pub id: Uuid,
    pub notification_id: Uuid,
    endpoint_id: Uuid,
    channel: Channel,
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
            channel: self.channel.name().to_string(),
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
    pub channel: Option<Channel>,
    pub address: Option<String>,
    pub language: Option<Language>,
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

/// A delivery claimed for one attempt.
#[derive(Debug, FromRow)]
pub(crate) struct Claimed {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub channel: Channel,
    pub address: String,
    pub subject: String,
    pub body: String,
    pub attempts: i32,
    pub give_up_at: DateTime<Utc>,
    pub secret_version: i32,
    pub trace_context: Option<String>,
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

/// A delivery of one notification to one endpoint, with its text.
pub struct NewDelivery<'a> {
    pub notification: Uuid,
    pub endpoint: &'a DeliveryTarget,
    pub subject: &'a str,
    pub body: &'a str,
    /// How long it is tried.
    pub window: chrono::Duration,
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

/// A notification about no referral (e.g. an endpoint disabled) to one agency.
pub async fn insert_notice(
    conn: &mut PgConnection,
    id: Uuid,
    agency: Uuid,
    kind: NotificationKind,
    event_id: Uuid,
    title: &str,
    body: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notifications (id, recipient_agency_id, kind, referral_id, event_id, title, body)
         VALUES ($1, $2, $3, NULL, $4, $5, $6)",
    )
    .bind(id)
    .bind(agency)
    .bind(kind)
    .bind(event_id)
    .bind(title)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(())
}

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

/// An endpoint as the directory announced it.
pub struct KnownEndpoint<'a> {
    pub id: Uuid,
    pub agency: Uuid,
    pub channel: Channel,
    pub address: &'a str,
    pub event_types: &'a [String],
    pub language: Language,
    pub enabled: bool,
    pub secret_version: i32,
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

/// Deliveries not sent yet, by channel (for the metrics).
pub async fn count_pending_deliveries(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT channel, count(*) FROM deliveries WHERE status = 'PENDING' GROUP BY channel",
    )
    .fetch_all(pool)
    .await
}
