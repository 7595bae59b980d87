//! An inbox's notification as stored and as the wire shows it, and what a commit added to agencies'
//! inboxes, as this instance's WatchNotifications streams are told it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use placement_platform::{
    error::ServiceError,
    time::{opt_timestamp, timestamp},
};
use placement_proto::v1::{Language, NoticeFacts, Notification, NotificationKind};
use prost::Message;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::names::model::NameBook;

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
pub(crate) const COLUMNS: &str = "id, sequence, recipient_agency_id, kind, referral_id, event_id, title, body, created_at, read_at, reference, facts";

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
    reference: String,
    /// A `NoticeFacts`, encoded; None for notices stored as words (before facts were kept, or about no
    /// referral).
    facts: Option<Vec<u8>>,
}

impl NotificationRow {
    /// The facts the notice tells, if it keeps them (stored facts that do not decode are treated as none:
    /// the stored words are shown).
    pub(crate) fn facts(&self) -> Option<NoticeFacts> {
        (self.facts.as_deref()).and_then(|bytes| NoticeFacts::decode(bytes).ok())
    }

    /// The notice as the wire shows it: its facts, and words in Bulgarian made from them with `names`
    /// (a client words the facts in its reader's language); a notice without facts keeps its words.
    pub(crate) fn into_proto(self, names: &NameBook) -> Notification {
        let facts = self.facts();
        let (title, body) = match &facts {
            Some(f) => placement_wording::notice(Language::Bg, self.kind as i32, f, names),
            None => (self.title, self.body),
        };
        Notification {
            id: self.id.to_string(),
            recipient_agency_id: self.recipient_agency_id.to_string(),
            kind: self.kind as i32,
            referral_id: self.referral_id.map(|r| r.to_string()).unwrap_or_default(),
            event_id: self.event_id.to_string(),
            title,
            body,
            created_at: Some(timestamp(self.created_at)),
            read_at: opt_timestamp(self.read_at),
            sequence: placement_platform::numbers::serial(self.sequence),
            deliveries: Vec::new(),
            reference: self.reference,
            facts,
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

    fn row(facts: Option<Vec<u8>>) -> NotificationRow {
        NotificationRow {
            id: Uuid::now_v7(),
            sequence: 1,
            recipient_agency_id: Uuid::now_v7(),
            kind: NotificationKind::ReferralAccepted,
            referral_id: Some(Uuid::now_v7()),
            event_id: Uuid::now_v7(),
            title: "Referral 1294cb accepted".into(),
            body: "Service 01a23b88-2f93-74af-b698-8925d7747791 accepted referral.".into(),
            created_at: Utc::now(),
            read_at: None,
            reference: String::new(),
            facts,
        }
    }

    /// A notice stored as words (before facts were kept) is shown as written; one with facts is worded
    /// from them, and a client gets the facts to word them in its reader's language.
    #[test]
    fn a_notice_is_worded_from_its_facts_or_keeps_its_stored_words() {
        let old = row(None).into_proto(&NameBook::default());
        assert_eq!(old.title, "Referral 1294cb accepted");
        assert!(old.facts.is_none());
        let facts = NoticeFacts {
            referral_id: "01a23b88-cc04-7781-ba33-d459de1294cb".into(),
            reference: "Н-СФО-2026-00001".into(),
            places: 2,
            ..Default::default()
        };
        let new = row(Some(facts.encode_to_vec())).into_proto(&NameBook::default());
        assert_eq!(new.title, "Направление № Н-СФО-2026-00001 е прието");
        assert!(new.body.starts_with("Услугата прие"), "{}", new.body);
        assert_eq!(new.facts, Some(facts));
        // Stored facts that do not decode leave the stored words.
        let broken = row(Some(vec![0xff, 0xff])).into_proto(&NameBook::default());
        assert_eq!(broken.title, "Referral 1294cb accepted");
    }

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
