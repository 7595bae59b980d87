//! Exchanges and queues. Declarations are idempotent; every service declares what it uses each time it
//! (re)connects, so a broker that lost its definitions is rebuilt.
//!
//! - `<exchange>` (topic, durable): every event, routed by its type.
//! - `<exchange>.unroutable` (fanout) and queue `<exchange>.unroutable`: the exchange's alternate exchange,
//!   so an event no queue is bound for is kept for operators (a bounded window: 100,000 messages, 7 days)
//!   instead of dropped.
//! - `<exchange>.dead-letter` (direct): where consumer queues dead-letter to, routed by queue name.
//! - per consumer: `<queue>` (quorum, delivery limit, at-least-once dead-lettering) and
//!   `<queue>.dead-letter` (quorum).

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

/// Most messages kept in the unroutable queue (the oldest are dropped first).
const UNROUTABLE_MAX_LENGTH: i32 = 100_000;
/// How long an unroutable message is kept: 7 days.
const UNROUTABLE_TTL_MS: i32 = 7 * 24 * 3600 * 1000;

pub fn unroutable_name(exchange: &str) -> String {
    format!("{exchange}.unroutable")
}

pub fn dead_letter_exchange(exchange: &str) -> String {
    format!("{exchange}.dead-letter")
}

pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dead-letter")
}

fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn durable_queue() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(ShortString::from("x-queue-type"), text("quorum"));
    args
}

/// Declares the events exchange and its alternate exchange.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> Result<(), lapin::Error> {
    let unroutable = unroutable_name(exchange);
    channel
        .exchange_declare(
            unroutable.as_str().into(),
            ExchangeKind::Fanout,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    // Events nobody subscribes to (case.*, and types of a newer release, which no queue of this one is
    // bound to) also land here: keep a bounded, recent window.
    let mut args = quorum_args();
    args.insert(
        ShortString::from("x-max-length"),
        AMQPValue::LongInt(UNROUTABLE_MAX_LENGTH),
    );
    args.insert(
        ShortString::from("x-message-ttl"),
        AMQPValue::LongInt(UNROUTABLE_TTL_MS),
    );
    channel
        .queue_declare(unroutable.as_str().into(), durable_queue(), args)
        .await?;
    channel
        .queue_bind(
            unroutable.as_str().into(),
            unroutable.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut args = FieldTable::default();
    args.insert(ShortString::from("alternate-exchange"), text(&unroutable));
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            durable_exchange(),
            args,
        )
        .await?;
    Ok(())
}

/// Declares a consumer's queue, bound to `bindings` on the events exchange, with its dead-letter queue.
pub async fn declare_consumer_queue(
    channel: &Channel,
    exchange: &str,
    queue: &str,
    bindings: &[&str],
    delivery_limit: u32,
) -> Result<(), lapin::Error> {
    declare_exchange(channel, exchange).await?;
    let dlx = dead_letter_exchange(exchange);
    let dlq = dead_letter_queue(queue);
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Direct,
            durable_exchange(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(dlq.as_str().into(), durable_queue(), quorum_args())
        .await?;
    channel
        .queue_bind(
            dlq.as_str().into(),
            dlx.as_str().into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut args = quorum_args();
    args.insert(
        ShortString::from("x-delivery-limit"),
        AMQPValue::LongInt(i32::try_from(delivery_limit).unwrap_or(i32::MAX)),
    );
    args.insert(ShortString::from("x-dead-letter-exchange"), text(&dlx));
    args.insert(ShortString::from("x-dead-letter-routing-key"), text(queue));
    // Dead-lettering itself must not lose a message: the dead-letter queue confirms each one.
    args.insert(
        ShortString::from("x-dead-letter-strategy"),
        text("at-least-once"),
    );
    args.insert(ShortString::from("x-overflow"), text("reject-publish"));
    channel
        .queue_declare(queue.into(), durable_queue(), args)
        .await?;
    for key in bindings {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                (*key).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
