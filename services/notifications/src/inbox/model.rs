//! An inbox's notification as stored and as the wire shows it, and what a commit added to agencies'
//! inboxes, as this instance's WatchNotifications streams are told it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use placement_platform::{
    error::ServiceError,
    time::{opt_timestamp, timestamp},
};
use placement_proto::v1::{Language, Notification, NotificationKind};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::told::Told;
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
    /// What the notice tells, encoded, the message its kind says (see [`Told`]); None for notices stored
    /// as words (before they kept their facts).
    facts: Option<Vec<u8>>,
}

impl NotificationRow {
    /// The facts the notice tells, if it keeps them (stored facts that do not decode are treated as none:
    /// the stored words are shown).
    pub(crate) fn told(&self) -> Option<Told> {
        (self.facts.as_deref()).and_then(|bytes| Told::decode(self.kind, bytes))
    }

    /// The notice as the wire shows it, worded in `language` from its facts with `names`, and with the
    /// facts of a referral's step (for a client to word them itself); a notice without facts keeps its
    /// words.
    pub(crate) fn to_proto(&self, names: &NameBook, language: Language) -> Notification {
        let told = self.told();
        let (title, body) = match &told {
            Some(t) => t.words(self.kind, language, names),
            None => (self.title.clone(), self.body.clone()),
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
            reference: self.reference.clone(),
            facts: told.as_ref().and_then(Told::step).cloned(),
        }
    }
}

/// A notification this instance has just committed, with the names its words need: each stream words it
/// in its own reader's language.
#[derive(Debug)]
pub struct Committed {
    pub(crate) row: NotificationRow,
    pub(crate) names: Arc<NameBook>,
}

impl Committed {
    pub(crate) fn worded(&self, language: Language) -> Notification {
        self.row.to_proto(&self.names, language)
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
    pub notification: Option<(i64, Arc<Committed>)>,
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
    use placement_proto::v1::NoticeFacts;
    use prost::Message;

    fn row(facts: Option<Vec<u8>>) -> NotificationRow {
        row_of(NotificationKind::ReferralAccepted, facts)
    }

    fn row_of(kind: NotificationKind, facts: Option<Vec<u8>>) -> NotificationRow {
        NotificationRow {
            id: Uuid::now_v7(),
            sequence: 1,
            recipient_agency_id: Uuid::now_v7(),
            kind,
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
        let old = row(None).to_proto(&NameBook::default(), Language::Bg);
        assert_eq!(old.title, "Referral 1294cb accepted");
        assert!(old.facts.is_none());
        let facts = NoticeFacts {
            referral_id: "01a23b88-cc04-7781-ba33-d459de1294cb".into(),
            reference: "Н-СФО-2026-00001".into(),
            places: 2,
            ..Default::default()
        };
        let new = row(Some(facts.encode_to_vec())).to_proto(&NameBook::default(), Language::Bg);
        assert_eq!(new.title, "Направление № Н-СФО-2026-00001 е прието");
        assert!(new.body.starts_with("Услугата прие"), "{}", new.body);
        assert_eq!(new.facts.as_ref(), Some(&facts));
        // Stored facts that do not decode leave the stored words.
        let broken = row(Some(vec![0xff, 0xff])).to_proto(&NameBook::default(), Language::Bg);
        assert_eq!(broken.title, "Referral 1294cb accepted");
        let english = row(Some(facts.encode_to_vec())).to_proto(&NameBook::default(), Language::En);
        assert_eq!(english.title, "Referral Н-СФО-2026-00001 accepted");
    }

    /// A notice about no referral's step is worded from its own facts in the language asked for, and the
    /// wire carries no `NoticeFacts` for it; one stored as words before keeps them.
    #[test]
    fn notices_about_no_step_are_worded_in_the_language_asked_for() {
        use placement_proto::v1::{DistrictDigestReady, EndpointDisabledFacts, SearchExhausted};
        let search = "0193a5c2-0000-7000-8000-00000000abcd";
        let told = [
            Told::Digest(Box::new(DistrictDigestReady {
                region_code: "VRC".into(),
                ..Default::default()
            })),
            Told::SearchExhausted(SearchExhausted {
                search_id: search.into(),
                round: 1,
                referral_references: vec!["Н-ВРЦ-2026-00042".into()],
                ..Default::default()
            }),
            Told::EndpointDisabled(EndpointDisabledFacts {
                address: "it@vratsa.example".into(),
                reason: "HTTP 503".into(),
                ..Default::default()
            }),
        ];
        let kinds = [
            NotificationKind::DistrictDigest,
            NotificationKind::SearchExhausted,
            NotificationKind::EndpointDisabled,
        ];
        let (mut bg, mut en) = (Vec::new(), Vec::new());
        for (kind, told) in kinds.into_iter().zip(&told) {
            let stored = row_of(kind, Some(told.encode()));
            assert_eq!(stored.told().as_ref(), Some(told));
            bg.push(stored.to_proto(&NameBook::default(), Language::Bg));
            en.push(stored.to_proto(&NameBook::default(), Language::En));
            assert!(bg.last().unwrap().facts.is_none());
        }
        assert!(
            bg[0].title.starts_with("Обобщение за област Враца"),
            "{bg:?}"
        );
        assert!(
            en[0].title.starts_with("Digest for Vratsa Province"),
            "{en:?}"
        );
        assert_eq!(
            bg[1].title,
            "Търсенето по направление № Н-ВРЦ-2026-00042 остана без място"
        );
        assert_eq!(
            en[1].title,
            "The search for referral Н-ВРЦ-2026-00042 found no place"
        );
        assert!(!bg[1].body.contains(search) && !en[1].body.contains(search));
        assert!(bg[2].body.contains("it@vratsa.example"), "{bg:?}");
        assert!(en[2].title.contains("was disabled"), "{en:?}");
        let old = row_of(NotificationKind::SearchExhausted, None);
        assert_eq!(
            old.to_proto(&NameBook::default(), Language::En).title,
            "Referral 1294cb accepted"
        );
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
