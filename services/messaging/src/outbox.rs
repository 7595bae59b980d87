//! The transactional outbox: write the event with the change, publish it after the commit.

use std::{
    cell::Cell,
    future::Future,
    sync::{Arc, LazyLock},
    time::Duration,
};

use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable},
};
use placement_platform::trace_context::TRACEPARENT;
use placement_platform::{audit, backoff::Backoff};
use placement_proto::v1::EventEnvelope;
use prost::Message;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction, postgres::PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Broker, topology};

tokio::task_local! {
    /// Whether the consumer's transaction running in this task wrote events (see [`noting_events`]).
    static EVENTS_WRITTEN: Cell<bool>;
}

/// Runs `work` (a consumer applying one event), telling whether it wrote events into the outbox: most
/// handlers write none, and a consumer that woke the relay after each of their commits cost it a needless
/// statement per event. Exact for this task, so no wake-up a commit needs is skipped.
pub(crate) async fn noting_events<F: Future>(work: F) -> (F::Output, bool) {
    EVENTS_WRITTEN
        .scope(Cell::new(false), async {
            let output = work.await;
            (output, EVENTS_WRITTEN.with(Cell::get))
        })
        .await
}

/// Notes, for [`noting_events`], that this task wrote events (outside a consumer: nothing to note, the
/// writer commits through [`Outbox::commit`], which always wakes the relay).
fn note_events_written() {
    let _ = EVENTS_WRITTEN.try_with(|written| written.set(true));
}

/// Writes events into a service's outbox and wakes its relay.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `event` to the outbox inside the caller's transaction.
    pub async fn enqueue(
        conn: &mut PgConnection,
        event: &EventEnvelope,
    ) -> Result<(), sqlx::Error> {
        let event_id = Uuid::parse_str(&event.event_id).expect("envelopes are built with UUID ids");
        sqlx::query(
            "INSERT INTO outbox (event_id, event_type, envelope, trace_context) VALUES ($1, $2, $3, $4)",
        )
        .bind(event_id)
        .bind(&event.event_type)
        .bind(event.encode_to_vec())
        .bind(placement_platform::trace_context::current())
        .execute(conn)
        .await?;
        note_events_written();
        Ok(())
    }

    /// Adds `events` to the outbox inside the caller's transaction, in one statement (an import of
    /// thousands of services writes them in batches).
    pub async fn enqueue_all(
        conn: &mut PgConnection,
        events: &[EventEnvelope],
    ) -> Result<(), sqlx::Error> {
        static STATEMENT: LazyLock<String> = LazyLock::new(|| insert_events(1));
        bind_events(sqlx::query(STATEMENT.as_str()), events)
            .execute(conn)
            .await?;
        note_events_written();
        Ok(())
    }

    /// Adds `events` to the outbox and appends `entry` to the audit trail, inside the caller's transaction
    /// and in one statement: the last two writes of an audited change cost one round trip, not two.
    pub async fn enqueue_audited(
        conn: &mut PgConnection,
        events: &[EventEnvelope],
        entry: &audit::Entry<'_>,
    ) -> Result<(), sqlx::Error> {
        // The entry's parameters come first, `$1` to `$8`; the events' follow.
        static STATEMENT: LazyLock<String> = LazyLock::new(|| {
            audit::append_statement(&format!("announced AS ({}), ", insert_events(9)))
        });
        let query = audit::bind_entry(sqlx::query(STATEMENT.as_str()), entry);
        bind_events(query, events).execute(conn).await?;
        if !events.is_empty() {
            note_events_written();
        }
        Ok(())
    }

    /// Commits a transaction that enqueued events, then wakes the relay: the one way to commit events, so
    /// that waking it cannot be forgotten (a forgotten wake-up left events waiting for the relay's poll).
    pub async fn commit(&self, tx: Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        self.committed();
        Ok(())
    }

    /// Tells the relay that a transaction with events has committed. A wake-up with no waiter is kept,
    /// so none is lost between the relay's check and its wait.
    pub(crate) fn committed(&self) {
        self.wake.notify_one();
    }
}

/// Settings of the relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Most rows read and published in one go.
    pub batch_size: i64,
    /// How long to wait for wake-ups before looking anyway (a wake-up from another instance was lost),
    /// and how often an instance that is not relaying tries to take over.
    pub idle_poll: Duration,
    /// How long published rows are kept before being purged.
    pub retention: Duration,
    /// How long to wait for the broker's confirms.
    pub confirm_timeout: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 200,
            idle_poll: Duration::from_millis(200),
            retention: Duration::from_secs(7 * 24 * 3600),
            confirm_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the broker refused (nacked) event {0}")]
    Nacked(Uuid),
    #[error("no confirm from the broker in time")]
    ConfirmTimeout,
}

/// Publishes outbox rows in id order with publisher confirms, and marks them published after every confirm
/// arrived. One instance of a service relays at a time: the one holding the outbox's advisory lock on its
/// own connection (taken over within `idle_poll` when that instance or its connection dies). A leader
/// needs no transaction and no row locks, which made half of the database statements of an event, and
/// no transaction stays open while the broker confirms. The leader is woken by its own instance's commits
/// in memory and by the other instances' with a NOTIFY on the channel `<schema>.outbox`.
pub struct OutboxRelay {
    pool: PgPool,
    broker: Arc<Broker>,
    exchange: String,
    outbox: Outbox,
    settings: RelaySettings,
}

impl OutboxRelay {
    pub fn new(
        pool: PgPool,
        broker: Arc<Broker>,
        exchange: impl Into<String>,
        outbox: Outbox,
        settings: RelaySettings,
    ) -> Self {
        Self {
            pool,
            broker,
            exchange: exchange.into(),
            outbox,
            settings,
        }
    }

    /// Runs until `shutdown`; survives broker and database outages.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::default();
        while !shutdown.is_cancelled() {
            let result = tokio::select! {
                r = self.session(&shutdown, &mut backoff) => r,
                _ = shutdown.cancelled() => Ok(()),
            };
            if let Err(e) = result {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "outbox relay interrupted; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    async fn session(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Backoff,
    ) -> Result<(), RelayError> {
        let channel = self.broker.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        topology::declare_exchange(&channel, &self.exchange).await?;
        // The lock belongs to this connection's session: it is let go when the connection closes or dies.
        let mut conn = self.pool.acquire().await?.detach();
        let channel_name: String = sqlx::query_scalar("SELECT current_schema() || '.outbox'")
            .fetch_one(&mut conn)
            .await?;
        loop {
            let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
                .bind(&channel_name)
                .fetch_one(&mut conn)
                .await?;
            backoff.reset();
            if leader {
                break;
            }
            // Not the relay: this instance's commits wake the one that is. NOTIFY takes a cluster-wide
            // lock at commit, so it is sent only from here, never from the transactions writing events.
            tokio::select! {
                _ = self.outbox.wake.notified() => {
                    sqlx::query("SELECT pg_notify($1, '')")
                        .bind(&channel_name)
                        .execute(&mut conn)
                        .await?;
                }
                _ = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(&channel_name).await?;
        tracing::debug!("relaying this service's outbox");
        let mut last_purge = tokio::time::Instant::now();
        // Rows confirmed by the broker and not yet marked published: they are marked by the statement
        // that reads the next batch (at the latest on the next idle look), which saves the database a
        // round trip per batch. Should this instance die first, they are published again, and consumers
        // take each event once.
        let mut confirmed = Vec::new();
        loop {
            let published = self
                .publish_batch(&mut conn, &channel, &mut confirmed)
                .await?;
            // A full batch means more may be waiting; a shorter one took everything committed so far, and
            // a commit since then left a wake-up behind.
            if placement_platform::numbers::len_i64(published) >= self.settings.batch_size {
                continue;
            }
            if last_purge.elapsed() > Duration::from_secs(300) {
                self.purge().await?;
                last_purge = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = self.outbox.wake.notified() => {}
                // Another instance committed events. A notification lost while the listener reconnects
                // is made up for by the next look.
                woken = listener.recv() => {
                    woken?;
                }
                _ = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = shutdown.cancelled() => {
                    mark_published(&mut conn, &confirmed).await?;
                    return Ok(());
                }
            }
        }
    }

    async fn publish_batch(
        &self,
        conn: &mut PgConnection,
        channel: &Channel,
        confirmed: &mut Vec<i64>,
    ) -> Result<usize, RelayError> {
        // The statement's snapshot is taken before its UPDATE: the rows it marks are left out by id.
        let rows = sqlx::query(
            "WITH marked AS (UPDATE outbox SET published_at = now() WHERE id = ANY($2))
             SELECT id, event_id, event_type, envelope, trace_context FROM outbox
             WHERE published_at IS NULL AND id <> ALL($2) ORDER BY id LIMIT $1",
        )
        .bind(self.settings.batch_size)
        .bind(&*confirmed)
        .fetch_all(&mut *conn)
        .await?;
        confirmed.clear();
        if rows.is_empty() {
            return Ok(0);
        }
        tracing::trace!(count = rows.len(), "publishing outbox events");
        let mut ids = Vec::with_capacity(rows.len());
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.get("id");
            let event_id: Uuid = row.get("event_id");
            let event_type: String = row.get("event_type");
            let body: Vec<u8> = row.get("envelope");
            let span = publish_span(
                &self.exchange,
                &event_type,
                event_id,
                row.get("trace_context"),
            );
            let properties = properties(event_id, &event_type, &span);
            let confirm = channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    event_type.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties,
                )
                .await?;
            tracing::trace!(%event_id, "published, awaiting the confirm");
            ids.push(id);
            // The publish span lasts until the broker confirmed.
            confirms.push(async move { (event_id, confirm.await, span) });
        }
        let results = tokio::time::timeout(
            self.settings.confirm_timeout,
            futures::future::join_all(confirms),
        )
        .await
        .map_err(|_| RelayError::ConfirmTimeout)?;
        for (event_id, result, _span) in results {
            match result? {
                Confirmation::Ack(_) => {}
                // NotRequested cannot happen on a confirm channel; treat it as a refusal to be safe.
                Confirmation::Nack(_) | Confirmation::NotRequested => {
                    return Err(RelayError::Nacked(event_id));
                }
            }
        }
        tracing::debug!(count = ids.len(), "published outbox events");
        let count = ids.len();
        metrics::counter!(placement_platform::prometheus::OUTBOX_PUBLISHED).increment(count as u64);
        *confirmed = ids;
        Ok(count)
    }

    async fn purge(&self) -> Result<(), sqlx::Error> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(self.settings.retention)
                .unwrap_or(chrono::Duration::days(7));
        let done = sqlx::query("DELETE FROM outbox WHERE published_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() > 0 {
            tracing::info!(rows = done.rows_affected(), "purged published outbox rows");
        }
        Ok(())
    }
}

/// The statement inserting a batch of events, its four parameters numbered from `$first`: the ids, types
/// and envelopes as arrays, and the trace context they were written in (bound by [`bind_events`]).
fn insert_events(first: usize) -> String {
    let (ids, types, bodies, trace) = (first, first + 1, first + 2, first + 3);
    format!(
        "INSERT INTO outbox (event_id, event_type, envelope, trace_context)
         SELECT id, type, body, ${trace}
         FROM UNNEST(${ids}::uuid[], ${types}::text[], ${bodies}::bytea[]) AS e(id, type, body)"
    )
}

/// Binds `events` to an [`insert_events`] statement's parameters, in order after those already bound.
fn bind_events<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    events: &[EventEnvelope],
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    let ids: Vec<Uuid> = (events.iter())
        .map(|e| Uuid::parse_str(&e.event_id).expect("envelopes are built with UUID ids"))
        .collect();
    let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
    let bodies: Vec<Vec<u8>> = events.iter().map(Message::encode_to_vec).collect();
    query
        .bind(ids)
        .bind(types)
        .bind(bodies)
        .bind(placement_platform::trace_context::current())
}

/// A persistent message's properties, with the publish span's trace context when traces are on.
fn properties(event_id: Uuid, event_type: &str, span: &tracing::Span) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/x-protobuf".into())
        .with_message_id(event_id.to_string().into())
        .with_type(event_type.into());
    let Some(traceparent) = placement_platform::trace_context::traceparent_of(span) else {
        return properties;
    };
    let mut headers = FieldTable::default();
    headers.insert(
        TRACEPARENT.into(),
        AMQPValue::LongString(traceparent.into()),
    );
    properties.with_headers(headers)
}

/// Marks rows the broker confirmed as published.
async fn mark_published(conn: &mut PgConnection, confirmed: &[i64]) -> Result<(), sqlx::Error> {
    if confirmed.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(confirmed)
        .execute(conn)
        .await?;
    Ok(())
}

/// The span of one event's publication: the child of the span that wrote the event.
fn publish_span(
    exchange: &str,
    event_type: &str,
    event_id: Uuid,
    traceparent: Option<String>,
) -> tracing::Span {
    if traceparent.is_none() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!(
        "publish",
        otel.name = format!("publish {event_type}"),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "publish",
        messaging.destination.name = exchange,
        messaging.rabbitmq.destination.routing_key = event_type,
        messaging.message.id = %event_id,
        trace_id = tracing::field::Empty,
    );
    placement_platform::trace_context::adopt(&span, traceparent.as_deref());
    span
}
