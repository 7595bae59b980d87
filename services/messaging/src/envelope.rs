//! Building and reading event envelopes.

use chrono::Utc;
use placement_proto::v1::EventEnvelope;
use prost::Message;
use uuid::Uuid;

use crate::HandleError;

/// Every event type the exchange publishes: its routing key, the payload message it carries and the kind of
/// record it is about, written once. Consumers route with an exhaustive `match` (no default arm), so a new
/// event type does not compile until every consumer has decided what to do with it; an event whose type
/// this release does not know is refused when it is decoded (and dead-lettered, loudly).
macro_rules! event_types {
    ($($variant:ident => $key:literal, $payload:ident about $aggregate:literal;)*) => {
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
                EventType::ALL.iter().copied().find(|t| t.as_str() == key)
            }

            /// The kind of record an event of this type is about (its envelope's `aggregate_type`).
            pub const fn aggregate_type(self) -> &'static str {
                match self {
                    $(EventType::$variant => $aggregate,)*
                }
            }
        }

        /// An event with its payload, whose type is the payload's: an event cannot be built, nor read, with
        /// the payload of another type.
        // The digest carries a whole report; an event is made once and read once, so its size costs little,
        // and a boxed variant would put a `Box` in every publisher's and router's pattern.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($variant(placement_proto::v1::$payload),)*
        }

        impl Event {
            pub fn event_type(&self) -> EventType {
                match self {
                    $(Event::$variant(_) => EventType::$variant,)*
                }
            }

            /// The payload as it travels in the envelope.
            pub fn encode_payload(&self) -> Vec<u8> {
                match self {
                    $(Event::$variant(payload) => payload.encode_to_vec(),)*
                }
            }

            /// Reads the payload an event of type `event_type` carries.
            pub fn decode(event_type: EventType, payload: &[u8]) -> Result<Self, prost::DecodeError> {
                match event_type {
                    $(EventType::$variant => {
                        placement_proto::v1::$payload::decode(payload).map(Event::$variant)
                    })*
                }
            }

            /// An event of type `event_type` with an empty payload: what a consumer's routing, which goes by
            /// the type alone, is asked about to learn which types it subscribes to.
            pub fn empty(event_type: EventType) -> Self {
                match event_type {
                    $(EventType::$variant => Event::$variant(Default::default()),)*
                }
            }
        }
    };
}

event_types! {
    AgencyRegistered => "agency.registered", AgencyRegistered about "agency";
    ServiceRegistered => "service.registered", ServiceCapacityChanged about "service";
    ServiceCapacityChanged => "service.capacity_changed", ServiceCapacityChanged about "service";
    CaseOpened => "case.opened", CaseChanged about "case";
    CasePlaced => "case.placed", CaseChanged about "case";
    CaseClosed => "case.closed", CaseChanged about "case";
    ReferralSubmitted => "referral.submitted", ReferralEvent about "referral";
    ReferralAcknowledged => "referral.acknowledged", ReferralEvent about "referral";
    ReferralAccepted => "referral.accepted", ReferralEvent about "referral";
    ReferralDeclined => "referral.declined", ReferralEvent about "referral";
    ReferralWithdrawn => "referral.withdrawn", ReferralEvent about "referral";
    ReferralPlaced => "referral.placed", ReferralEvent about "referral";
    ReferralEscalated => "referral.escalated", ReferralEvent about "referral";
    ReferralReminded => "referral.reminded", ReferralEvent about "referral";
    ReferralCourtDecisionDue => "referral.court_decision_due", ReferralEvent about "referral";
    ReferralCourtDecisionRecorded => "referral.court_decision_recorded", ReferralEvent about "referral";
    ReferralArrived => "referral.arrived", ReferralEvent about "referral";
    ReferralPostponed => "referral.postponed", ReferralEvent about "referral";
    AgencyEndpointsChanged => "agency.endpoints_changed", AgencyEndpointsChanged about "agency";
    NotificationEndpointDisabled => "notification.endpoint_disabled", EndpointDisabled about "endpoint";
    DistrictDigestReady => "report.digest_ready", DistrictDigestReady about "digest";
    SearchExhausted => "search.exhausted", SearchExhausted about "search";
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
        EventType::ReferralArrived,
        EventType::ReferralPostponed,
        EventType::NotificationEndpointDisabled,
        EventType::DistrictDigestReady,
        EventType::SearchExhausted,
    ];
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Makes envelopes for one producing process.
#[derive(Debug, Clone, Copy)]
pub struct EventBuilder {
    producer: &'static str,
    /// The types it declared it publishes; building another is a bug its tests should catch.
    publishes: &'static [EventType],
}

impl EventBuilder {
    /// A builder of any type of event (for tests and tools; a service gets its own from its
    /// [`crate::service::Definition::events`]).
    pub const fn new(producer: &'static str) -> Self {
        Self::publishing(producer, EventType::ALL)
    }

    pub(crate) const fn publishing(
        producer: &'static str,
        publishes: &'static [EventType],
    ) -> Self {
        Self {
            producer,
            publishes,
        }
    }

    /// The envelope of `event`, about the record `aggregate_id` at `aggregate_version`.
    pub fn build(
        &self,
        event: Event,
        aggregate_id: Uuid,
        aggregate_version: u64,
        correlation_id: Uuid,
    ) -> EventEnvelope {
        let event_type = event.event_type();
        debug_assert!(
            self.publishes.contains(&event_type),
            "{} publishes {event_type} without declaring it in its Definition",
            self.producer
        );
        EventEnvelope {
            event_id: Uuid::now_v7().to_string(),
            event_type: event_type.as_str().to_string(),
            aggregate_type: event_type.aggregate_type().to_string(),
            aggregate_id: aggregate_id.to_string(),
            aggregate_version,
            occurred_at: Some(placement_platform::time::timestamp(Utc::now())),
            correlation_id: correlation_id.to_string(),
            producer: self.producer.to_string(),
            payload: event.encode_payload(),
        }
    }
}

/// A received event whose envelope and payload decoded and whose ids are well-formed.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    event_id: Uuid,
    event: Event,
    envelope: EventEnvelope,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("undecodable envelope: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("envelope field {0} is missing or malformed")]
    Field(&'static str),
    #[error("event type {0:?} is not one this release knows")]
    UnknownType(String),
    /// The envelope is sound but its payload is not its type's message: the event is known by its id.
    #[error("undecodable payload: {source}")]
    Payload {
        event_id: Uuid,
        event_type: EventType,
        source: prost::DecodeError,
    },
}

impl IncomingEvent {
    /// Reads an envelope and the payload its type names, once, for every consumer.
    pub fn decode(body: &[u8]) -> Result<Self, EnvelopeError> {
        let mut envelope = EventEnvelope::decode(body)?;
        let event_id =
            Uuid::parse_str(&envelope.event_id).map_err(|_| EnvelopeError::Field("event_id"))?;
        let event_type = EventType::parse(&envelope.event_type)
            .ok_or_else(|| EnvelopeError::UnknownType(envelope.event_type.clone()))?;
        let payload = std::mem::take(&mut envelope.payload);
        let event =
            Event::decode(event_type, &payload).map_err(|source| EnvelopeError::Payload {
                event_id,
                event_type,
                source,
            })?;
        Ok(Self {
            event_id,
            event,
            envelope,
        })
    }

    pub fn event_id(&self) -> Uuid {
        self.event_id
    }

    /// The event and its payload, to route with an exhaustive `match`.
    pub fn event(&self) -> &Event {
        &self.event
    }

    pub fn event_type(&self) -> EventType {
        self.event.event_type()
    }

    /// When the event happened (when it was built, if the producer left it out).
    pub fn occurred_at(&self) -> chrono::DateTime<Utc> {
        self.envelope
            .occurred_at
            .as_ref()
            .and_then(placement_platform::time::from_timestamp)
            .unwrap_or_else(Utc::now)
    }

    /// The version of the record the event is about, as it came.
    pub fn aggregate_version(&self) -> u64 {
        self.envelope.aggregate_version
    }

    /// The version of the record the event is about, as the `BIGINT` a consumer stores it in; one beyond
    /// will never fit, so the event is refused for good.
    pub fn version(&self) -> Result<i64, HandleError> {
        i64::try_from(self.envelope.aggregate_version)
            .map_err(|_| HandleError::permanent("aggregate_version beyond BIGINT"))
    }

    pub fn correlation_id(&self) -> Uuid {
        Uuid::parse_str(&self.envelope.correlation_id).unwrap_or(self.event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use placement_proto::v1::{AgencyRegistered, ReferralEvent};

    #[test]
    fn envelope_round_trips() {
        let id = Uuid::new_v4();
        let env = EventBuilder::new("test").build(
            Event::AgencyRegistered(AgencyRegistered {
                agency_id: id.to_string(),
                ..Default::default()
            }),
            id,
            1,
            id,
        );
        assert_eq!(env.event_type, "agency.registered");
        assert_eq!(env.aggregate_type, "agency");
        let incoming = IncomingEvent::decode(&env.encode_to_vec()).unwrap();
        assert_eq!(incoming.event_type(), EventType::AgencyRegistered);
        assert_eq!(incoming.event_id().to_string(), env.event_id);
        assert_eq!(incoming.version().unwrap(), 1);
        match incoming.event() {
            Event::AgencyRegistered(payload) => assert_eq!(payload.agency_id, id.to_string()),
            wrong => panic!("read as another type: {wrong:?}"),
        }
    }

    /// The same bytes are read as the payload their envelope's type names, whatever the producer meant.
    #[test]
    fn the_payload_is_read_as_its_types_message() {
        let id = Uuid::new_v4();
        let referral = ReferralEvent {
            referral_id: id.to_string(),
            places: 2,
            ..Default::default()
        };
        let mut env =
            EventBuilder::new("test").build(Event::ReferralAccepted(referral.clone()), id, 3, id);
        assert_eq!(env.aggregate_type, "referral");
        let incoming = IncomingEvent::decode(&env.encode_to_vec()).unwrap();
        assert_eq!(incoming.event(), &Event::ReferralAccepted(referral));
        // A payload that is not its type's message is refused by its id, not handed on.
        env.event_type = EventType::CaseOpened.as_str().into();
        env.payload = b"\xff\xff not a message".to_vec();
        match IncomingEvent::decode(&env.encode_to_vec()) {
            Err(EnvelopeError::Payload {
                event_id,
                event_type,
                ..
            }) => {
                assert_eq!(event_id, id_of(&env));
                assert_eq!(event_type, EventType::CaseOpened);
            }
            other => panic!("an undecodable payload was not refused: {other:?}"),
        }
    }

    fn id_of(env: &EventEnvelope) -> Uuid {
        Uuid::parse_str(&env.event_id).unwrap()
    }

    #[test]
    fn a_version_beyond_bigint_is_refused_for_good() {
        let id = Uuid::new_v4();
        let mut env = EventBuilder::new("test").build(
            Event::ServiceRegistered(Default::default()),
            id,
            1,
            id,
        );
        env.aggregate_version = u64::MAX;
        let incoming = IncomingEvent::decode(&env.encode_to_vec()).unwrap();
        assert_eq!(incoming.aggregate_version(), u64::MAX);
        assert!(matches!(
            incoming.version(),
            Err(HandleError::Permanent(m)) if m.contains("aggregate_version")
        ));
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
            assert_eq!(Event::empty(*t).event_type(), *t);
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
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// A malformed message from the broker is refused, never a panic.
            #[test]
            fn random_bytes_from_the_broker(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                if let Ok(event) = IncomingEvent::decode(&bytes) {
                    let _ = event.occurred_at();
                    let _ = event.version();
                    prop_assert_eq!(event.event().event_type(), event.event_type());
                }
            }

            /// A well-formed envelope around a random payload, of every type.
            #[test]
            fn random_payloads(payload in proptest::collection::vec(any::<u8>(), 0..1024), t in ".{0,40}", known in 0..EventType::ALL.len()) {
                for event_type in [t, EventType::ALL[known].as_str().to_string()] {
                    let envelope = EventEnvelope {
                        event_id: Uuid::new_v4().to_string(), event_type, payload: payload.clone(), ..Default::default()
                    };
                    if let Ok(event) = IncomingEvent::decode(&envelope.encode_to_vec()) {
                        prop_assert_eq!(event.event().event_type(), event.event_type());
                    }
                }
            }
        }
    }
}
