//! An inbox's notification as stored and as the wire shows it, and what a commit added to agencies'
//! inboxes, as this instance's WatchNotifications streams are told it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use placement_platform::{
    error::ServiceError,
    time::{opt_timestamp, timestamp},
};
use placement_proto::v1::{Notification, NotificationKind};
use tokio::sync::broadcast;
use uuid::Uuid;

/// Why a request about an agency's inbox is refused, or its stream ends.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// No such notification, or another agency's: the two look alike.
    #[error("notification not found")]
    NotificationNotFound,
    /// A stream asked to start after a notification the agency was not sent.
    #[error("after_sequence: not a notification of this agency")]
    NotOwnSequence,
    #[error("the token expired; open the stream again with a fresh one")]
    TokenExpired,
    #[error("server shutting down")]
    ShuttingDown,
}

impl From<InboxError> for ServiceError {
    fn from(e: InboxError) -> Self {
        match e {
            InboxError::NotificationNotFound => ServiceError::not_found("notification"),
            InboxError::NotOwnSequence => {
                ServiceError::invalid("after_sequence", "not a notification of this agency")
            }
            InboxError::TokenExpired => ServiceError::Unauthenticated(e.to_string()),
            InboxError::ShuttingDown => ServiceError::Unavailable(e.to_string()),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let cases = [
            (
                InboxError::NotificationNotFound,
                "NOT_FOUND",
                "notification not found",
            ),
            (
                InboxError::NotOwnSequence,
                "INVALID_ARGUMENT",
                "after_sequence: not a notification of this agency",
            ),
            (
                InboxError::TokenExpired,
                "UNAUTHENTICATED",
                "the token expired; open the stream again with a fresh one",
            ),
            (
                InboxError::ShuttingDown,
                "UNAVAILABLE",
                "server shutting down",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
        assert!(matches!(
            ServiceError::from(InboxError::NotOwnSequence),
            ServiceError::InvalidArgument { field, .. } if field == "after_sequence"
        ));
    }
}
