//! Building and reading event envelopes.

use chrono::Utc;
use placement_proto::v1::EventEnvelope;
use prost::Message;
use uuid::Uuid;

/// Event types and their routing keys.
pub mod types {
    pub const AGENCY_REGISTERED: &str = "agency.registered";
    pub const SERVICE_REGISTERED: &str = "service.registered";
    pub const SERVICE_CAPACITY_CHANGED: &str = "service.capacity_changed";
    pub const CASE_OPENED: &str = "case.opened";
    pub const CASE_PLACED: &str = "case.placed";
    pub const CASE_CLOSED: &str = "case.closed";
    pub const REFERRAL_SUBMITTED: &str = "referral.submitted";
    pub const REFERRAL_ACKNOWLEDGED: &str = "referral.acknowledged";
    pub const REFERRAL_ACCEPTED: &str = "referral.accepted";
    pub const REFERRAL_DECLINED: &str = "referral.declined";
    pub const REFERRAL_WITHDRAWN: &str = "referral.withdrawn";
    pub const REFERRAL_PLACED: &str = "referral.placed";
    pub const REFERRAL_ESCALATED: &str = "referral.escalated";
    pub const REFERRAL_REMINDED: &str = "referral.reminded";
    pub const REFERRAL_COURT_DECISION_DUE: &str = "referral.court_decision_due";
    pub const REFERRAL_COURT_DECISION_RECORDED: &str = "referral.court_decision_recorded";
    pub const AGENCY_ENDPOINTS_CHANGED: &str = "agency.endpoints_changed";
    pub const NOTIFICATION_ENDPOINT_DISABLED: &str = "notification.endpoint_disabled";

    /// The events agencies are told of, which a notification endpoint may choose among.
    pub const NOTIFIED: &[&str] = &[
        REFERRAL_SUBMITTED,
        REFERRAL_ACKNOWLEDGED,
        REFERRAL_ACCEPTED,
        REFERRAL_DECLINED,
        REFERRAL_WITHDRAWN,
        REFERRAL_PLACED,
        REFERRAL_ESCALATED,
        REFERRAL_REMINDED,
        REFERRAL_COURT_DECISION_DUE,
        REFERRAL_COURT_DECISION_RECORDED,
        NOTIFICATION_ENDPOINT_DISABLED,
    ];
}

/// Makes envelopes for one producing service.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    producer: &'static str,
}

impl EventBuilder {
    pub const fn new(producer: &'static str) -> Self {
        Self { producer }
    }

    pub fn build(
        &self,
        event_type: &'static str,
        aggregate_type: &'static str,
        aggregate_id: Uuid,
        aggregate_version: u64,
        correlation_id: Uuid,
        payload: &impl Message,
    ) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::now_v7().to_string(),
            event_type: event_type.to_string(),
            aggregate_type: aggregate_type.to_string(),
            aggregate_id: aggregate_id.to_string(),
            aggregate_version,
            occurred_at: Some(placement_platform::time::timestamp(Utc::now())),
            correlation_id: correlation_id.to_string(),
            producer: self.producer.to_string(),
            payload: payload.encode_to_vec(),
        }
    }
}

/// A received event whose envelope decoded and whose ids are well-formed.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub event_id: Uuid,
    pub envelope: EventEnvelope,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("undecodable envelope: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("envelope field {0} is missing or malformed")]
    Field(&'static str),
}

/// Event types are dotted lower-case names (`referral.submitted`); anything else is not one of ours. Consumers
/// rely on this: an event's type is written into SQL text (see the consumer's `apply`).
pub fn is_event_type(t: &str) -> bool {
    (1..=100).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
}

impl IncomingEvent {
    pub fn decode(body: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope = EventEnvelope::decode(body)?;
        let event_id =
            Uuid::parse_str(&envelope.event_id).map_err(|_| EnvelopeError::Field("event_id"))?;
        if !is_event_type(&envelope.event_type) {
            return Err(EnvelopeError::Field("event_type"));
        }
        Ok(Self { event_id, envelope })
    }

    /// Decodes the payload as `M`.
    pub fn payload<M: Message + Default>(&self) -> Result<M, prost::DecodeError> {
        M::decode(self.envelope.payload.as_slice())
    }

    /// When the event happened (when it was built, if the producer left it out).
    pub fn occurred_at(&self) -> chrono::DateTime<Utc> {
        self.envelope
            .occurred_at
            .as_ref()
            .and_then(placement_platform::time::from_timestamp)
            .unwrap_or_else(Utc::now)
    }

    pub fn event_type(&self) -> &str {
        &self.envelope.event_type
    }

    pub fn correlation_id(&self) -> Uuid {
        Uuid::parse_str(&self.envelope.correlation_id).unwrap_or(self.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::AgencyRegistered;

    #[test]
    fn envelope_round_trips() {
        let id = Uuid::new_v4();
        let env = EventBuilder::new("test").build(
            types::AGENCY_REGISTERED,
            "agency",
            id,
            1,
            id,
            &AgencyRegistered {
                agency_id: id.to_string(),
                ..Default::default()
            },
        );
        let incoming = IncomingEvent::decode(&env.encode_to_vec()).unwrap();
        assert_eq!(incoming.event_type(), "agency.registered");
        let payload: AgencyRegistered = incoming.payload().unwrap();
        assert_eq!(payload.agency_id, id.to_string());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(IncomingEvent::decode(b"\xff\xff not protobuf").is_err());
        let empty = EventEnvelope::default().encode_to_vec();
        assert!(matches!(
            IncomingEvent::decode(&empty),
            Err(EnvelopeError::Field("event_id"))
        ));
        for bad in [
            "",
            "referral.submitted'; DROP TABLE x; --",
            "Referral.Submitted",
            "a b",
        ] {
            let envelope = EventEnvelope {
                event_id: Uuid::now_v7().to_string(),
                event_type: bad.into(),
                ..Default::default()
            };
            assert!(
                matches!(
                    IncomingEvent::decode(&envelope.encode_to_vec()),
                    Err(EnvelopeError::Field("event_type"))
                ),
                "{bad:?}"
            );
        }
        use types::*;
        for t in NOTIFIED.iter().chain(&[
            AGENCY_REGISTERED,
            SERVICE_REGISTERED,
            SERVICE_CAPACITY_CHANGED,
            CASE_OPENED,
            CASE_PLACED,
            CASE_CLOSED,
            AGENCY_ENDPOINTS_CHANGED,
        ]) {
            assert!(is_event_type(t), "{t}");
        }
    }

    mod fuzz {
        use super::super::*;
        use placement_proto::v1::{
            AgencyEndpointsChanged, CaseChanged, ReferralEvent, ServiceCapacityChanged,
        };
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// A malformed message from the broker is refused, never a panic.
            #[test]
            fn random_bytes_from_the_broker(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(event) = IncomingEvent::decode(&bytes) {
                    let _ = event.payload::<ReferralEvent>();
                    let _ = event.payload::<ServiceCapacityChanged>();
                    let _ = event.payload::<CaseChanged>();
                    let _ = event.payload::<AgencyEndpointsChanged>();
                    let _ = event.occurred_at();
                }
            }

            /// A well-formed envelope around a random payload.
            #[test]
            fn random_payloads(payload in proptest::collection::vec(any::<u8>(), 0..1024), t in ".{0,40}") {
                let envelope = EventEnvelope {
                    event_id: Uuid::new_v4().to_string(), event_type: t, payload, ..Default::default()
                };
                if let Ok(event) = IncomingEvent::decode(&envelope.encode_to_vec()) {
                    let _ = event.payload::<ReferralEvent>();
                }
            }
        }
    }
}
