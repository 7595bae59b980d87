//! Events between services, with nothing lost and nothing applied twice.
//!
//! - [`envelope`]: every event travels as a protobuf `EventEnvelope` whose routing key is its type; its
//!   payload is read once, as its type's message, into an [`Event`].
//! - [`outbox`]: a state change and its event commit in one transaction; a relay publishes with publisher
//!   confirms and marks rows published only after the broker confirmed them.
//! - [`consumer`]: each service consumes its own quorum queue, bound to the types its handlers route; the
//!   event id is recorded in the same transaction as the event's effect, and the delivery is acked only
//!   after that commit.
//! - [`broker`]: one AMQP connection per service, rebuilt with backoff whenever it is lost.
//! - [`topology`]: the exchange, the queues, dead-lettering.

pub mod broker;
pub mod consumer;
pub mod envelope;
pub mod gauges;
pub mod operator;
pub mod outbox;
#[cfg(test)]
mod routing_check;
pub mod service;
pub mod topology;

pub use broker::Broker;
pub use consumer::{Consumer, ConsumerSpec, EventHandler, HandleError, Subscriptions, payload_id};
pub use envelope::{Event, EventBuilder, EventType, IncomingEvent};
pub use outbox::{Outbox, OutboxRelay};

/// The outbox and inbox tables; every service applies these beside its own migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
