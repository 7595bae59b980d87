//! A delivery: what it says, when a failed one is tried again, and how it reads as stored, when claimed
//! and on the wire.

use std::time::Duration;

use chrono::{DateTime, Utc};
use placement_platform::{
    error::ServiceError,
    time::{opt_timestamp, timestamp},
};
use placement_proto::v1::{
    Delivery, DeliveryStatus, DistrictDigestReady, EndpointDisabledFacts, Language, NoticeFacts,
    NotificationKind, ReferralEvent, SearchExhausted,
};
use sqlx::FromRow;
use uuid::Uuid;

use crate::{
    channel::Channel,
    endpoints::model::DeliveryTarget,
    names::model::NameBook,
    signature::{SIGNATURE_BG, SIGNATURE_EN},
};

pub const EMAIL: &str = Channel::Email.name();
pub const WEBHOOK: &str = Channel::Webhook.name();

/// Why listing deliveries, or retrying one, is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// An agency asked for every delivery, not those of one of its notifications.
    #[error("only the national authority's operators list every delivery; name a notification_id")]
    NotificationUnnamed,
    /// No such notification, or another agency's: the two look alike.
    #[error("notification not found")]
    NotificationNotFound,
    #[error("delivery not found")]
    DeliveryNotFound,
    /// `status` is the delivery's stored status.
    #[error("only a FAILED delivery is retried; this one is {status}")]
    NotFailed { status: String },
    #[error("the endpoint was removed")]
    EndpointRemoved,
    #[error("the endpoint is disabled; enable it in the directory first")]
    EndpointDisabled,
}

impl From<DeliveryError> for ServiceError {
    fn from(e: DeliveryError) -> Self {
        use DeliveryError as E;
        match e {
            E::NotificationUnnamed => ServiceError::denied(e.to_string()),
            E::NotificationNotFound => ServiceError::not_found("notification"),
            E::DeliveryNotFound => ServiceError::not_found("delivery"),
            E::NotFailed { .. } | E::EndpointRemoved | E::EndpointDisabled => {
                ServiceError::precondition(e.to_string())
            }
        }
    }
}

/// When failed attempts are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Longest delay between attempts.
    pub max: Duration,
    /// How long after its creation a delivery is still tried.
    pub window: Duration,
}

impl RetryPolicy {
    /// The delay after the `attempt`-th failed attempt (1-based): doubling from `initial` up to `max`, then
    /// "equal jitter" (half fixed, half random, `jitter` in 0..1) so receivers that come back are not hit
    /// by every sender at once.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
        let capped = doubled.min(self.max);
        capped / 2 + capped.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
    }
}

/// What a new notification's deliveries say.
pub enum Content<'a> {
    Referral {
        kind: NotificationKind,
        event: &'a ReferralEvent,
        /// What the e-mail words, with the names it needs.
        facts: &'a NoticeFacts,
        names: &'a NameBook,
    },
    EndpointDisabled(&'a EndpointDisabledFacts),
    Digest {
        digest: &'a DistrictDigestReady,
        /// The agencies and services the digest names.
        names: &'a NameBook,
    },
    SearchExhausted(&'a SearchExhausted),
}

impl Content<'_> {
    /// The search a referral's notice is about, when the referral is one request of a search (an id
    /// that does not read as one names none: the event is the referrals service's, checked there).
    pub fn search_id(&self) -> Option<Uuid> {
        match self {
            Content::Referral { event, .. } => Uuid::parse_str(&event.search_id).ok(),
            Content::SearchExhausted(e) => Uuid::parse_str(&e.search_id).ok(),
            Content::EndpointDisabled(_) | Content::Digest { .. } => None,
        }
    }

    /// The reference of the referral a notice is about, as its event told it; `None` for a notice about no
    /// referral, or for an event from before references.
    pub fn reference(&self) -> Option<&str> {
        match self {
            Content::Referral { event, .. } => {
                Some(event.reference.as_str()).filter(|r| !r.is_empty())
            }
            _ => None,
        }
    }
}

/// One agency's notification of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    pub notification: Uuid,
    pub agency: Uuid,
}

/// The notifications deliveries are for: those of one event, one per recipient agency.
pub struct NewNotifications<'a> {
    pub recipients: &'a [Recipient],
    pub event_type: &'a str,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub referral_id: Option<Uuid>,
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, notification_id, endpoint_id, channel, address, status, attempts, \
     last_error, last_attempt_at, next_attempt_at, sent_at, created_at";

#[derive(Debug, FromRow)]
pub struct DeliveryRow {
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

pub(crate) fn status_name(status: DeliveryStatus) -> Option<&'static str> {
    match status {
        DeliveryStatus::Pending => Some("PENDING"),
        DeliveryStatus::Sent => Some("SENT"),
        DeliveryStatus::Failed => Some("FAILED"),
        DeliveryStatus::Unspecified => None,
    }
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

/// A delivery of one notification to one endpoint, with its text.
pub struct NewDelivery<'a> {
    pub notification: Uuid,
    pub endpoint: &'a DeliveryTarget,
    pub subject: &'a str,
    pub body: &'a str,
    /// How long it is tried.
    pub window: chrono::Duration,
}

/// Subject and text of the e-mail telling an agency one of its endpoints was disabled: the notice as the
/// inbox words it, and the signature.
pub fn endpoint_disabled_email(f: &EndpointDisabledFacts, language: Language) -> (String, String) {
    let (subject, text) = placement_wording::endpoint_disabled(language, f);
    let signature = if language == Language::En {
        SIGNATURE_EN
    } else {
        SIGNATURE_BG
    };
    (subject, format!("{text}\n\n{signature}\n"))
}

/// The webhook body: notify, then the receiver fetches the details through the API with its own credentials.
pub fn webhook_body(
    event_type: &str,
    occurred_at: DateTime<Utc>,
    event_id: Uuid,
    record: WebhookRecord<'_>,
    notification_id: Uuid,
    agency_id: Uuid,
) -> String {
    serde_json::json!({
        "type": event_type,
        "timestamp": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {
            "event_id": event_id,
            "referral_id": record.referral_id,
            "search_id": record.search_id,
            "reference": record.reference,
            "notification_id": notification_id,
            "agency_id": agency_id,
        }
    })
    .to_string()
}

/// The records a webhook names, for the receiver to fetch: the referral, and the search it is one request
/// of (each `null` where there is none); and the referral's reference, for the receiver's people.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookRecord<'a> {
    pub referral_id: Option<Uuid>,
    pub search_id: Option<Uuid>,
    pub reference: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code and text.
    #[test]
    fn refusals_keep_their_codes_and_text() {
        use DeliveryError as E;
        let cases = [
            (
                E::NotificationUnnamed,
                "PERMISSION_DENIED",
                "only the national authority's operators list every delivery; name a notification_id",
            ),
            (
                E::NotificationNotFound,
                "NOT_FOUND",
                "notification not found",
            ),
            (E::DeliveryNotFound, "NOT_FOUND", "delivery not found"),
            (
                E::NotFailed {
                    status: "PENDING".into(),
                },
                "FAILED_PRECONDITION",
                "only a FAILED delivery is retried; this one is PENDING",
            ),
            (
                E::EndpointRemoved,
                "FAILED_PRECONDITION",
                "the endpoint was removed",
            ),
            (
                E::EndpointDisabled,
                "FAILED_PRECONDITION",
                "the endpoint is disabled; enable it in the directory first",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
    }

    /// A label never takes a stored string as it is: a channel is one of those this release sends on, and
    /// a stored name that is none of them is refused when read (see `crate::channel`).
    #[test]
    fn channel_labels_are_the_known_channels() {
        assert_eq!(Channel::Email.name(), EMAIL);
        assert_eq!(Channel::Webhook.name(), WEBHOOK);
        use placement_proto::stored::StoredName;
        assert_eq!(Channel::from_stored("sms"), None);
        assert_eq!(Channel::from_stored("Email"), None);
    }

    #[test]
    fn delays_double_up_to_the_cap_with_bounded_jitter() {
        let p = RetryPolicy {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            window: Duration::from_secs(26 * 3600),
        };
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(30));
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(15));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs(60));
        assert_eq!(p.delay(8, 1.0), Duration::from_secs(3600));
        assert_eq!(p.delay(500, 0.5), Duration::from_secs(2700));
        for attempt in 1..40 {
            let d = p.delay(attempt, rand::random());
            assert!(d >= p.delay(attempt, 0.0) && d <= p.delay(attempt, 1.0));
        }
    }

    #[test]
    fn the_default_schedule_keeps_trying_for_more_than_a_day() {
        let p = crate::Config::default_retry();
        assert!(p.window >= Duration::from_secs(24 * 3600));
        // Even with the shortest delays, attempts keep coming through the window: about 30 with the defaults.
        let (mut elapsed, mut attempts) = (Duration::ZERO, 0u32);
        while elapsed < p.window {
            attempts += 1;
            elapsed += p.delay(attempts, 0.0);
        }
        assert!((20..100).contains(&attempts), "{attempts}");
    }

    #[test]
    fn the_disabled_endpoint_email_says_what_the_inbox_says_in_its_language() {
        let f = EndpointDisabledFacts {
            endpoint_id: Uuid::new_v4().to_string(),
            address: "https://it.vratsa.example/hooks".into(),
            reason: "HTTP 503".into(),
        };
        for language in [Language::Bg, Language::En] {
            let (subject, text) = endpoint_disabled_email(&f, language);
            let (title, body) = placement_wording::endpoint_disabled(language, &f);
            assert_eq!(subject, title);
            assert!(text.starts_with(&body), "{text}");
            assert!(text.contains("https://it.vratsa.example/hooks"), "{text}");
            assert!(!text.contains(&f.endpoint_id), "{text}");
        }
        let (subject, text) = endpoint_disabled_email(&f, Language::Bg);
        assert!(
            subject.starts_with("Канал за известяване е изключен"),
            "{subject}"
        );
        assert!(text.ends_with(&format!("{SIGNATURE_BG}\n")), "{text}");
        let (subject, _) = endpoint_disabled_email(&f, Language::En);
        assert!(subject.contains("was disabled"), "{subject}");
    }

    #[test]
    fn the_webhook_body_is_small_and_names_the_event() {
        let (event_id, referral, notification, agency) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let search = Uuid::new_v4();
        let record = WebhookRecord {
            referral_id: Some(referral),
            search_id: Some(search),
            reference: Some("Н-ВРЦ-2026-00042"),
        };
        let body = webhook_body(
            "referral.submitted",
            Utc::now(),
            event_id,
            record,
            notification,
            agency,
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["type"], "referral.submitted");
        assert_eq!(json["data"]["event_id"], event_id.to_string());
        assert_eq!(json["data"]["referral_id"], referral.to_string());
        assert_eq!(json["data"]["search_id"], search.to_string());
        assert_eq!(json["data"]["reference"], "Н-ВРЦ-2026-00042");
        let alone = webhook_body(
            "referral.submitted",
            Utc::now(),
            event_id,
            WebhookRecord {
                referral_id: Some(referral),
                search_id: None,
                reference: None,
            },
            notification,
            agency,
        );
        let json: serde_json::Value = serde_json::from_str(&alone).unwrap();
        assert!(json["data"]["search_id"].is_null());
        assert!(json["data"]["reference"].is_null());
        assert!(body.len() < 400);
    }
}
