//! An inbox's notification as stored and as the wire shows it, and what a commit added to agencies'
//! inboxes, as this instance's WatchNotifications streams are told it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use placement_platform::time::{opt_timestamp, timestamp};
use placement_proto::v1::{Notification, NotificationKind};
use tokio::sync::broadcast;
use uuid::Uuid;

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

/// Tells this instance's WatchNotifications streams what a commit added to their agencies' inboxes: only
/// those streams wake, and they send what they are handed without a query when it is next in line.
pub type Arrivals = broadcast::Sender<Arc<[Arrival]>>;

/// A notification this instance has just committed.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub agency: Uuid,
    /// The notification and its position in the agency's inbox; `None`: the stream has to look.
    pub notification: Option<(i64, Notification)>,
}

/// What applying one event added.
#[derive(Debug, Default)]
pub struct Added {
    pub(crate) notifications: Vec<Arrival>,
    pub(crate) deliveries: usize,
}
