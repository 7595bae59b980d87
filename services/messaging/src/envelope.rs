//! Building and reading event envelopes.

use chrono::Utc;
use placement_proto::v1::EventEnvelope;
use prost::Message;
use uuid::Uuid;

/// Every event type the exchange publishes, and its routing key. Consumers `match` on it without a
/// catch-all, so a new event type does not compile until every consumer has decided what to do with it; an
/// event whose type this release does not know is refused when it is decoded (and dead-lettered, loudly).
macro_rules! event_types {
    ($($variant:ident => $key:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $($variant,)*
        }

        impl EventType {
            pub const ALL: &[EventType] = &[$(EventType::$variant,)*];

            /// The routing key, e.g. `referral.submitted`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $key,)*
                }
            }

            /// The type whose routing key is `key`; `None` for a type this release does not know.
            pub fn parse(key: &str) -> Option<Self> {
                match key {
                    $($key => Some(EventType::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

event_types! {
    AgencyRegistered => "agency.registered",
    ServiceRegistered => "service.registered",
    ServiceCapacityChanged => "service.capacity_changed",
    CaseOpened => "case.opened",
    CasePlaced => "case.placed",
    CaseClosed => "case.closed",
    ReferralSubmitted => "referral.submitted",
    ReferralAcknowledged => "referral.acknowledged",
    ReferralAccepted => "referral.accepted",
    ReferralDeclined => "referral.declined",
    ReferralWithdrawn => "referral.withdrawn",
    ReferralPlaced => "referral.placed",
    ReferralEscalated => "referral.escalated",
    ReferralReminded => "referral.reminded",
    ReferralCourtDecisionDue => "referral.court_decision_due",
    ReferralCourtDecisionRecorded => "referral.court_decision_recorded",
    AgencyEndpointsChanged => "agency.endpoints_changed",
    NotificationEndpointDisabled => "notification.endpoint_disabled",
    DistrictDigestReady => "report.digest_ready",
}

impl EventType {
    /// The events agencies are told of, which a notification endpoint may choose among.
    pub const NOTIFIED: &[EventType] = &[
        EventType::ReferralSubmitted,
        EventType::ReferralAcknowledged,
        EventType::ReferralAccepted,
        EventType::ReferralDeclined,
        EventType::ReferralWithdrawn,
        EventType::ReferralPlaced,
        EventType::ReferralEscalated,
        EventType::ReferralReminded,
        EventType::ReferralCourtDecisionDue,
        EventType::ReferralCourtDecisionRecorded,
        EventType::NotificationEndpointDisabled,
        EventType::DistrictDigestReady,
    ];
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
        event_type: EventType,
        aggregate_type: &'static str,
        aggregate_id: Uuid,
        aggregate_version: u64,
        correlation_id: Uuid,
        payload: &impl Message,
    ) -> EventEnvelope {
        EventEnvelope {
            event_id: Uuid::now_v7().to_string(),
            event_type: event_type.as_str().to_string(),
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
    pub event_type: EventType,
    pub envelope: EventEnvelope,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("undecodable envelope: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("envelope field {0} is missing or malformed")]
    Field(&'static str),
    #[error("event type {0:?} is not one this release knows")]
    UnknownType(String),
}

impl IncomingEvent {
    pub fn decode(body: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope = EventEnvelope::decode(body)?;
        let event_id =
            Uuid::parse_str(&envelope.event_id).map_err(|_| EnvelopeError::Field("event_id"))?;
        let event_type = EventType::parse(&envelope.event_type)
            .ok_or_else(|| EnvelopeError::UnknownType(envelope.event_type.clone()))?;
        Ok(Self {
            event_id,
            event_type,
            envelope,
        })
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

    pub fn event_type(&self) -> EventType {
        self.event_type
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
            EventType::AgencyRegistered,
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
        assert_eq!(incoming.event_type(), EventType::AgencyRegistered);
        assert_eq!(incoming.envelope.event_type, "agency.registered");
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
        // Not ours, or ours from a newer release: refused, naming the type.
        for bad in [
            "",
            "referral.submitted'; DROP TABLE x; --",
            "Referral.Submitted",
            "referral.transferred",
        ] {
            let envelope = EventEnvelope {
                event_id: Uuid::now_v7().to_string(),
                event_type: bad.into(),
                ..Default::default()
            };
            match IncomingEvent::decode(&envelope.encode_to_vec()) {
                Err(EnvelopeError::UnknownType(t)) => assert_eq!(t, bad),
                other => panic!("{bad:?} was not refused as unknown: {other:?}"),
            }
        }
    }

    #[test]
    fn every_event_type_round_trips_through_its_routing_key() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            // Routing keys are written into SQL text by the consumer: lower-case, digits, dots, underscores.
            assert!(
                t.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{t}"
            );
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
