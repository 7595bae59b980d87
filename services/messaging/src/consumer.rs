//! Idempotent consumption: decode, apply in a transaction that also records the event id, commit, then ack.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::types::AMQPValue;
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::FieldTable,
};
use placement_platform::prometheus::{
    CONSUMER_LAG, EVENT_REDELIVERIES, EVENT_RETRIES, EVENTS_CONSUMED,
};
use placement_platform::trace_context::TRACEPARENT;
use placement_platform::{backoff::Backoff, error::is_transient_db_error};
use sqlx::{Connection, PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Broker, Event, EventType, IncomingEvent, Outbox, envelope::EnvelopeError, topology};

/// Why an event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Retrying will never help (unknown type, undecodable payload, impossible reference): dead-letter it.
    #[error("permanent: {0}")]
    Permanent(String),
    /// The database or another dependency is down; the same event is retried with backoff.
    #[error("transient: {0}")]
    Transient(String),
    /// The event refers to something this service does not know (yet): retried a few times, in case
    /// the event that introduces it is late, then dead-lettered.
    #[error("unknown reference: {0}")]
    Missing(String),
}

impl HandleError {
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent(reason.into())
    }

    pub fn missing(reason: impl Into<String>) -> Self {
        Self::Missing(reason.into())
    }

    /// An event of a type no handler of the service takes (put on its queue by hand, or replayed).
    pub fn not_subscribed(event_type: EventType) -> Self {
        Self::Permanent(format!("not subscribed to {event_type}"))
    }
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient_db_error(&e) {
            Self::Transient(e.to_string())
        } else {
            Self::Permanent(format!("database: {e}"))
        }
    }
}

/// A UUID field of an event's payload. A malformed one will not get better: the event is dead-lettered,
/// naming the field.
pub fn payload_id(field: &str, value: &str) -> Result<uuid::Uuid, HandleError> {
    uuid::Uuid::parse_str(value)
        .map_err(|_| HandleError::permanent(format!("{field} is not a UUID")))
}

/// Applies the events of the types it subscribes to, each inside the transaction the consumer opened.
pub trait EventHandler: Send + Sync + 'static {
    /// What applying an event did, handed to `committed` once it is durable (e.g. whom to wake).
    type Applied: Send + 'static;
    /// Where one event goes in the service: which feature, with the payload it needs.
    type Route<'a>: Send;

    /// Where `event` goes, by its type alone: an exhaustive `match` over [`Event`] with no default arm,
    /// `None` for each type the handler does not subscribe to. The queue is bound to exactly the types
    /// routed somewhere, so the routing and the subscription cannot disagree.
    fn route(event: &Event) -> Option<Self::Route<'_>>;

    /// Applies the event `route` took it to.
    fn handle<'a>(
        &'a self,
        tx: &'a mut Transaction<'_, Postgres>,
        route: Self::Route<'a>,
        event: &'a IncomingEvent,
    ) -> impl Future<Output = Result<Self::Applied, HandleError>> + Send;

    /// Called after the transaction of an applied event committed.
    fn committed(&self, _event: &IncomingEvent, _applied: Self::Applied) {}

    /// Whether the handler takes events of type `event_type` (asks [`EventHandler::route`]).
    fn subscribes(event_type: EventType) -> bool {
        Self::route(&Event::empty(event_type)).is_some()
    }
}

/// What to do once an applied event's transaction committed.
type AfterCommit = Box<dyn FnOnce(&IncomingEvent) + Send>;
type Applying<'a> = Pin<Box<dyn Future<Output = Result<AfterCommit, HandleError>> + Send + 'a>>;

/// A handler, whatever its types, as the consumer holds it.
trait Subscriber: Send + Sync {
    fn subscribes(&self, event_type: EventType) -> bool;
    /// Applies `event` when the handler routes it somewhere.
    fn apply<'a>(
        &'a self,
        tx: &'a mut Transaction<'_, Postgres>,
        event: &'a IncomingEvent,
    ) -> Option<Applying<'a>>;
}

impl<H: EventHandler> Subscriber for Arc<H> {
    fn subscribes(&self, event_type: EventType) -> bool {
        H::subscribes(event_type)
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut Transaction<'_, Postgres>,
        event: &'a IncomingEvent,
    ) -> Option<Applying<'a>> {
        let route = H::route(event.event())?;
        let handler = Arc::clone(self);
        Some(Box::pin(async move {
            let applied = self.handle(tx, route, event).await?;
            let after: AfterCommit = Box::new(move |event| handler.committed(event, applied));
            Ok(after)
        }))
    }
}

/// The handlers of one service's queue, each event type taken by at most one of them.
#[derive(Clone, Default)]
pub struct Subscriptions {
    handlers: Vec<Arc<dyn Subscriber>>,
}

impl Subscriptions {
    /// Adds `handler`.
    ///
    /// # Panics
    /// When another handler already takes one of its types: each event is recorded as applied once per
    /// service, so two handlers of one type would each see the other's work as done.
    pub fn add<H: EventHandler>(&mut self, handler: H) {
        if let Some(taken) = (EventType::ALL.iter()).find(|t| H::subscribes(**t) && self.takes(**t))
        {
            panic!(
                "{taken} is consumed by two handlers ({} and one declared before it): route it in one",
                std::any::type_name::<H>()
            );
        }
        self.handlers.push(Arc::new(Arc::new(handler)));
    }

    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }

    /// Whether some handler takes events of type `event_type`.
    pub fn takes(&self, event_type: EventType) -> bool {
        self.handlers.iter().any(|h| h.subscribes(event_type))
    }

    /// The routing keys the queue is bound to: the types some handler takes.
    pub fn bindings(&self) -> Vec<&'static str> {
        (EventType::ALL.iter())
            .filter(|t| self.takes(**t))
            .map(|t| t.as_str())
            .collect()
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut Transaction<'_, Postgres>,
        event: &'a IncomingEvent,
    ) -> Option<Applying<'a>> {
        let handler = self
            .handlers
            .iter()
            .find(|h| h.subscribes(event.event_type()))?;
        handler.apply(tx, event)
    }
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("bindings", &self.bindings())
            .finish()
    }
}

/// How often an event that refers to something unknown is tried again before it is dead-lettered
/// (about 3 seconds in all).
const MISSING_RETRIES: u32 = 6;

/// What a service consumes.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// The service's own queue, e.g. `placement.directory`.
    pub queue: String,
    /// Routing keys bound to the queue: the event types its handlers take.
    pub bindings: Vec<&'static str>,
    /// Deliveries the broker may send ahead of acks.
    pub prefetch: u16,
    /// Deliveries after which a message is dead-lettered (a message that crashes the consumer).
    pub delivery_limit: u32,
    /// Deliveries applied at once.
    pub concurrency: usize,
}

impl ConsumerSpec {
    /// A queue bound to `bindings`, with a prefetch of 32, a delivery limit of 5 and 8 deliveries applied at once.
    pub fn new(queue: impl Into<String>, bindings: &[&'static str]) -> Self {
        Self {
            queue: queue.into(),
            bindings: bindings.to_vec(),
            prefetch: 32,
            delivery_limit: 5,
            concurrency: 8,
        }
    }
}

pub struct Consumer {
    pool: PgPool,
    broker: Arc<Broker>,
    exchange: String,
    spec: ConsumerSpec,
    subscriptions: Arc<Subscriptions>,
    outbox: Option<Outbox>,
}

/// Acks (or rejects towards the dead-letter queue) a delivery, giving up after 10 seconds: an ack on a
/// connection that died may never be answered, and the session must start over instead of waiting.
async fn settle(delivery: Delivery, ack: bool) -> Result<(), SessionError> {
    let answered = tokio::time::timeout(Duration::from_secs(10), async {
        if ack {
            delivery.ack(BasicAckOptions::default()).await
        } else {
            delivery
                .nack(BasicNackOptions {
                    requeue: false,
                    multiple: false,
                })
                .await
        }
    })
    .await;
    match answered {
        Ok(result) => result.map(drop).map_err(SessionError::from),
        Err(_) => Err(SessionError::AckTimeout),
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("the channel is no longer connected")]
    Disconnected,
    #[error("no answer from the broker to an ack in time")]
    AckTimeout,
}

enum Outcome {
    /// Applied and committed; with whether the handler wrote events into the outbox.
    Applied(AfterCommit, bool),
    Duplicate,
    DeadLetter(String),
    Interrupted,
}

impl Consumer {
    /// Consumes `spec.queue` with `subscriptions`; `outbox` is told of each commit when the handlers
    /// publish.
    pub fn new(
        pool: PgPool,
        broker: Arc<Broker>,
        exchange: impl Into<String>,
        spec: ConsumerSpec,
        subscriptions: Subscriptions,
        outbox: Option<Outbox>,
    ) -> Self {
        Self {
            pool,
            broker,
            exchange: exchange.into(),
            spec,
            subscriptions: Arc::new(subscriptions),
            outbox,
        }
    }

    /// Declares the queue (so events published before consumption starts are kept) and returns.
    pub async fn declare(&self) -> Result<(), lapin::Error> {
        let channel = self.broker.channel().await?;
        self.declare_on(&channel).await?;
        let _ = channel.close(200, "declared".into()).await;
        Ok(())
    }

    async fn declare_on(&self, channel: &lapin::Channel) -> Result<(), lapin::Error> {
        topology::declare_consumer_queue(
            channel,
            &self.exchange,
            &self.spec.queue,
            &self.spec.bindings,
            self.spec.delivery_limit,
        )
        .await
    }

    /// Consumes until `shutdown`; reconnects after broker outages.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            match self.session(&shutdown, &mut backoff).await {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(queue = %self.spec.queue, error = %e, ?delay, "consumer interrupted; reconnecting");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        tracing::info!(queue = %self.spec.queue, "consumer stopped");
    }

    async fn session(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), SessionError> {
        let channel = self.broker.channel().await?;
        self.declare_on(&channel).await?;
        channel
            .basic_qos(self.spec.prefetch, BasicQosOptions::default())
            .await?;
        let mut deliveries = channel
            .basic_consume(
                self.spec.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tracing::info!(queue = %self.spec.queue, "consuming");
        // Up to `concurrency` deliveries are applied at once; each is acked on its own once its
        // transaction committed. Handlers tolerate any order (they check versions and lock the rows they change).
        let mut in_flight = futures::stream::FuturesUnordered::new();
        // lapin does not always end a consumer's stream, or fail its pending acks, when the connection
        // drops: look at the channel every second and start over when it is gone.
        let mut watchdog = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = watchdog.tick() => {
                    if !channel.status().connected() {
                        return Err(SessionError::Disconnected);
                    }
                }
                next = deliveries.next(), if in_flight.len() < self.spec.concurrency => {
                    let delivery = match next {
                        Some(Ok(d)) => d,
                        Some(Err(e)) => return Err(e.into()),
                        None => return Err(SessionError::Cancelled),
                    };
                    backoff.reset();
                    in_flight.push(self.process(delivery, shutdown));
                }
                Some(done) = in_flight.next(), if !in_flight.is_empty() => done?,
                _ = shutdown.cancelled() => {
                    // Finish what is being applied (handlers stop retrying on shutdown), then hand the
                    // rest back: unacked deliveries return to the queue when the channel closes.
                    let drain = async { while in_flight.next().await.is_some() {} };
                    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
                        tracing::warn!(queue = %self.spec.queue, "deliveries still in flight at shutdown are handed back unacked");
                    }
                    let _ = channel.close(200, "shutdown".into()).await;
                    return Ok(());
                }
            }
        }
    }

    async fn process(
        &self,
        delivery: Delivery,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let event = match IncomingEvent::decode(&delivery.data) {
            Ok(e) => e,
            Err(EnvelopeError::Payload {
                event_id,
                event_type,
                source,
            }) => {
                tracing::error!(
                    queue = %self.spec.queue,
                    %event_id,
                    %event_type,
                    reason = %format!("undecodable payload: {source}"),
                    "dead-lettering an event that cannot be applied"
                );
                consumed(event_type.as_str(), "dead_lettered");
                return settle(delivery, false).await;
            }
            Err(e) => {
                let message_id = delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                tracing::error!(queue = %self.spec.queue, %message_id, reason = %e, "dead-lettering an undecodable message");
                consumed("undecodable", "dead_lettered");
                return settle(delivery, false).await;
            }
        };
        tracing::trace!(event_id = %event.event_id(), event_type = %event.event_type(), "received");
        let span = self.consume_span(&delivery, &event);
        self.apply_and_settle(delivery, event, shutdown)
            .instrument(span)
            .await
    }

    async fn apply_and_settle(
        &self,
        delivery: Delivery,
        event: IncomingEvent,
        shutdown: &CancellationToken,
    ) -> Result<(), SessionError> {
        let event_type = event.event_type().as_str();
        if delivery.redelivered {
            metrics::counter!(EVENT_REDELIVERIES, "event_type" => event_type).increment(1);
        }
        match self.apply_with_retries(&event, shutdown).await {
            Outcome::Applied(after_commit, wrote_events) => {
                tracing::trace!(event_id = %event.event_id(), "applied");
                consumed(event_type, "applied");
                let lag = (chrono::Utc::now() - event.occurred_at()).num_microseconds();
                #[allow(clippy::cast_precision_loss)] // microseconds of lag: far below 2^53
                metrics::histogram!(CONSUMER_LAG).record(lag.unwrap_or(0).max(0) as f64 / 1e6);
                after_commit(&event);
                if let Some(outbox) = self.outbox.as_ref().filter(|_| wrote_events) {
                    outbox.committed();
                }
                settle(delivery, true).await
            }
            Outcome::Duplicate => {
                tracing::debug!(event_id = %event.event_id(), "already applied; acking the redelivery");
                consumed(event_type, "duplicate");
                settle(delivery, true).await
            }
            Outcome::DeadLetter(reason) => {
                tracing::error!(
                    queue = %self.spec.queue,
                    event_id = %event.event_id(),
                    event_type = %event.event_type(),
                    %reason,
                    "dead-lettering an event that cannot be applied"
                );
                consumed(event_type, "dead_lettered");
                settle(delivery, false).await
            }
            // Shutting down mid-retry: leave it unacked; the broker redelivers it.
            Outcome::Interrupted => Ok(()),
        }
    }

    /// The span of this service's application of an event: the child of its publication.
    fn consume_span(&self, delivery: &Delivery, event: &IncomingEvent) -> tracing::Span {
        let traceparent =
            delivery
                .properties
                .headers()
                .as_ref()
                .and_then(|h| match h.inner().get(TRACEPARENT) {
                    Some(AMQPValue::LongString(s)) => Some(s.to_string()),
                    _ => None,
                });
        let Some(traceparent) = traceparent else {
            return tracing::Span::none();
        };
        let event_type = event.event_type();
        let span = tracing::info_span!(
            "consume",
            otel.name = format!("process {event_type}"),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.destination.name = %self.spec.queue,
            messaging.message.id = %event.event_id(),
            trace_id = tracing::field::Empty,
        );
        placement_platform::trace_context::adopt(&span, Some(&traceparent));
        span
    }

    async fn apply_with_retries(
        &self,
        event: &IncomingEvent,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
        let mut missing_tries = 0;
        loop {
            match self.apply(event).await {
                Ok(Some(applied)) => return Outcome::Applied(applied.0, applied.1),
                Ok(None) => return Outcome::Duplicate,
                Err(HandleError::Permanent(reason)) => return Outcome::DeadLetter(reason),
                Err(HandleError::Missing(reason)) if missing_tries >= MISSING_RETRIES => {
                    return Outcome::DeadLetter(format!(
                        "{reason} (after {MISSING_RETRIES} retries)"
                    ));
                }
                Err(HandleError::Missing(reason)) => {
                    missing_tries += 1;
                    metrics::counter!(EVENT_RETRIES, "reason" => "missing").increment(1);
                    let delay = backoff.next_delay();
                    tracing::info!(event_id = %event.event_id(), %reason, ?delay, "event refers to something unknown; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => return Outcome::Interrupted,
                    }
                }
                Err(HandleError::Transient(reason)) => {
                    metrics::counter!(EVENT_RETRIES, "reason" => "transient").increment(1);
                    let delay = backoff.next_delay();
                    tracing::warn!(event_id = %event.event_id(), %reason, ?delay, "cannot apply event yet; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => return Outcome::Interrupted,
                    }
                }
            }
        }
    }

    /// Ok(None) when the event was applied before. The apply runs in a task of its own, to its end: a
    /// session that stops (the broker went away) drops its deliveries' futures, and a transaction dropped
    /// while its `BEGIN` was on the wire would go back to the pool still open, so that the next borrower
    /// committed this event's record with its own work and the event was never applied (see
    /// `placement_platform::db::begin`). A finished apply whose ack was lost is a duplicate next time.
    /// Also says whether the handler wrote events into the outbox.
    async fn apply(
        &self,
        event: &IncomingEvent,
    ) -> Result<Option<(AfterCommit, bool)>, HandleError> {
        if !self.subscriptions.takes(event.event_type()) {
            return Err(HandleError::not_subscribed(event.event_type()));
        }
        let (pool, subscriptions, event) =
            (self.pool.clone(), self.subscriptions.clone(), event.clone());
        placement_platform::db::run_to_completion(async move {
            let (applied, wrote) =
                crate::outbox::noting_events(apply_once(&pool, &subscriptions, &event)).await;
            Ok(applied?.map(|after_commit| (after_commit, wrote)))
        })
        .await
    }
}

/// `event_type` is one of `EventType`'s fixed routing keys, or "undecodable" for a message whose type this
/// release does not know (what a publisher wrote there never becomes a label).
fn consumed(event_type: &'static str, outcome: &'static str) {
    metrics::counter!(EVENTS_CONSUMED, "event_type" => event_type, "outcome" => outcome)
        .increment(1);
}

async fn apply_once(
    pool: &PgPool,
    subscriptions: &Subscriptions,
    event: &IncomingEvent,
) -> Result<Option<AfterCommit>, HandleError> {
    let mut conn = pool.acquire().await?;
    // BEGIN and the record of the event's id travel in one round trip (a simple query cannot carry
    // parameters; the id is a parsed UUID and the type one of `EventType`'s fixed routing keys). A
    // redelivered event fails on the primary key, which ends that transaction.
    let begin = format!(
        "BEGIN; INSERT INTO processed_events (event_id, event_type) VALUES ('{}', '{}')",
        event.event_id(),
        event.event_type()
    );
    #[allow(clippy::disallowed_methods)] // cancel-safe: this task is never dropped half-way
    let error = match (*conn).begin_with(begin).await {
        Ok(mut tx) => {
            let Some(applying) = subscriptions.apply(&mut tx, event) else {
                return Err(HandleError::not_subscribed(event.event_type()));
            };
            let after_commit = applying.await?;
            tx.commit().await?;
            return Ok(Some(after_commit));
        }
        Err(e) => e,
    };
    // sqlx does not know a transaction was opened: end it before the connection goes back to the pool.
    if sqlx::Executor::execute(&mut *conn, "ROLLBACK")
        .await
        .is_err()
    {
        conn.close_on_drop();
    }
    match error.as_database_error() {
        Some(db) if db.is_unique_violation() => Ok(None),
        _ => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes the cases' opening and closing.
    struct CaseBook;
    /// Takes acceptances.
    struct Acceptances;

    impl EventHandler for CaseBook {
        type Applied = ();
        type Route<'a> = ();

        fn route(event: &Event) -> Option<()> {
            matches!(event, Event::CaseOpened(_) | Event::CaseClosed(_)).then_some(())
        }

        async fn handle(
            &self,
            _tx: &mut Transaction<'_, Postgres>,
            _route: (),
            _event: &IncomingEvent,
        ) -> Result<(), HandleError> {
            Ok(())
        }
    }

    impl EventHandler for Acceptances {
        type Applied = ();
        type Route<'a> = ();

        fn route(event: &Event) -> Option<()> {
            matches!(event, Event::ReferralAccepted(_)).then_some(())
        }

        async fn handle(
            &self,
            _tx: &mut Transaction<'_, Postgres>,
            _route: (),
            _event: &IncomingEvent,
        ) -> Result<(), HandleError> {
            Ok(())
        }
    }

    /// Several handlers share the queue: it is bound to what each routes, and nothing else.
    #[test]
    fn the_bindings_are_what_the_handlers_route() {
        let mut subscriptions = Subscriptions::default();
        assert!(subscriptions.is_empty() && subscriptions.bindings().is_empty());
        subscriptions.add(CaseBook);
        subscriptions.add(Acceptances);
        assert_eq!(
            subscriptions.bindings(),
            ["case.opened", "case.closed", "referral.accepted"]
        );
        assert!(subscriptions.takes(EventType::ReferralAccepted));
        assert!(!subscriptions.takes(EventType::CasePlaced));
        assert!(!subscriptions.takes(EventType::ReferralSubmitted));
    }

    /// A second handler of a type already taken is refused when it is declared, not left to shadow the
    /// first (each event is recorded as applied once per service).
    #[test]
    #[should_panic(expected = "case.opened is consumed by two handlers")]
    fn a_type_taken_twice_is_refused_at_declaration() {
        let mut subscriptions = Subscriptions::default();
        subscriptions.add(CaseBook);
        subscriptions.add(CaseBook);
    }
}
