//! The operator's view of one service: status in detail, dead letters, replay. Served by every service, to the
//! national authority's operators only (`Caller::require_operator`).

use std::sync::Arc;

use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{
        BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use placement_platform::{CallerExt, db, error::ServiceError};
use placement_proto::v1::{
    DeadLetter, GetStatusRequest, ListDeadLettersRequest, ListDeadLettersResponse,
    ReplayDeadLettersRequest, ReplayDeadLettersResponse, ServiceStatusReport,
    operator_service_server::OperatorService,
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{Broker, topology};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Clone)]
pub struct Operator {
    pub pool: PgPool,
    pub broker: Arc<Broker>,
    pub service: &'static str,
    pub queue: String,
}

fn unavailable(e: impl std::fmt::Display) -> Status {
    tracing::warn!(error = %e, "operator call failed");
    Status::unavailable("broker unavailable")
}

impl Operator {
    fn dead_letter_queue(&self) -> String {
        topology::dead_letter_queue(&self.queue)
    }

    async fn depth(channel: &Channel, queue: &str) -> Result<u64, lapin::Error> {
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(q.message_count() as u64)
    }

    /// How many messages wait in the queue and in its dead-letter queue, for the metrics.
    pub async fn depths(&self) -> Result<(u64, u64), lapin::Error> {
        let channel = self.broker.channel().await?;
        let depths = async {
            let ready = Self::depth(&channel, &self.queue).await?;
            let dead = Self::depth(&channel, &self.dead_letter_queue()).await?;
            Ok((ready, dead))
        }
        .await;
        let _ = channel.close(200, "done".into()).await;
        depths
    }

    /// How many dead letters wait, for the health loop's warning.
    pub async fn dead_letter_count(&self) -> Result<u64, lapin::Error> {
        let channel = self.broker.channel().await?;
        let n = Self::depth(&channel, &self.dead_letter_queue()).await;
        let _ = channel.close(200, "done".into()).await;
        n
    }
}

/// What the broker's `x-death` header and the message properties say of a dead letter.
fn describe(properties: &BasicProperties, size: usize) -> DeadLetter {
    let mut out = DeadLetter {
        event_id: properties
            .message_id()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        event_type: properties
            .kind()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        size_bytes: placement_platform::numbers::len_u32(size),
        ..Default::default()
    };
    let Some(headers) = properties.headers() else {
        return out;
    };
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        return out;
    };
    // The broker keeps one entry per (queue, reason); the last is the first death.
    for entry in deaths.as_slice() {
        if let AMQPValue::FieldTable(t) = entry {
            let t = t.inner();
            if let Some(AMQPValue::LongString(reason)) = t.get("reason") {
                out.reason = reason.to_string();
            }
            let count = match t.get("count") {
                Some(AMQPValue::LongLongInt(n)) => *n,
                Some(AMQPValue::LongInt(n)) => i64::from(*n),
                _ => 0,
            };
            out.deaths = out.deaths.saturating_add(u64::try_from(count).unwrap_or(0));
            if let Some(AMQPValue::Timestamp(at)) = t.get("time") {
                out.first_dead_lettered_at = Some(prost_types::Timestamp {
                    seconds: i64::try_from(*at).unwrap_or(i64::MAX),
                    nanos: 0,
                });
            }
            if let Some(AMQPValue::FieldArray(keys)) = t.get("routing-keys")
                && let Some(AMQPValue::LongString(key)) = keys.as_slice().first()
            {
                out.routing_key = key.to_string();
            }
        }
    }
    out
}

#[tonic::async_trait]
impl OperatorService for Operator {
    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatusReport>, Status> {
        request.caller()?.require_operator()?;
        let database_ok = db::ping(&self.pool).await;
        let (outbox_pending, oldest): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| Status::from(ServiceError::from(e)))?;
        let mut report = ServiceStatusReport {
            service: self.service.to_string(),
            database_ok,
            broker_ok: self.broker.is_connected(),
            outbox_pending: placement_platform::numbers::serial(outbox_pending),
            outbox_oldest_pending_seconds: oldest.unwrap_or(0.0),
            queue: self.queue.clone(),
            dead_letter_queue: self.dead_letter_queue(),
            ..Default::default()
        };
        let channel = self.broker.channel().await.map_err(unavailable)?;
        report.queue_ready = Self::depth(&channel, &self.queue)
            .await
            .map_err(unavailable)?;
        report.dead_letters = Self::depth(&channel, &self.dead_letter_queue())
            .await
            .map_err(unavailable)?;
        let _ = channel.close(200, "done".into()).await;
        Ok(Response::new(report))
    }

    async fn list_dead_letters(
        &self,
        request: Request<ListDeadLettersRequest>,
    ) -> Result<Response<ListDeadLettersResponse>, Status> {
        request.caller()?.require_operator()?;
        let limit = match request.get_ref().limit {
            0 => DEFAULT_LIMIT,
            n if n > MAX_LIMIT => {
                return Err(ServiceError::invalid("limit", format!("at most {MAX_LIMIT}")).into());
            }
            n => n,
        };
        let dlq = self.dead_letter_queue();
        let channel = self.broker.channel().await.map_err(unavailable)?;
        let total = Self::depth(&channel, &dlq).await.map_err(unavailable)?;
        let mut dead_letters = Vec::new();
        // Peek: take without acking; closing the channel hands every one back to the queue.
        while placement_platform::numbers::len_u32(dead_letters.len()) < limit {
            match channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            {
                Some(message) => dead_letters.push(describe(
                    &message.delivery.properties,
                    message.delivery.data.len(),
                )),
                None => break,
            }
        }
        let _ = channel.close(200, "peeked".into()).await;
        Ok(Response::new(ListDeadLettersResponse {
            dead_letters,
            total,
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        request.caller()?.require_operator()?;
        let req = request.into_inner();
        if !req.all && req.event_ids.is_empty() {
            return Err(ServiceError::invalid("event_ids", "name the events, or set all").into());
        }
        if req.event_ids.len() > MAX_LIMIT as usize {
            return Err(ServiceError::invalid("event_ids", format!("at most {MAX_LIMIT}")).into());
        }
        if req.all && !req.event_ids.is_empty() {
            return Err(ServiceError::invalid("all", "either event_ids or all").into());
        }
        let dlq = self.dead_letter_queue();
        let channel = self.broker.channel().await.map_err(unavailable)?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        let total = Self::depth(&channel, &dlq).await.map_err(unavailable)?;
        let mut replayed = 0;
        // Each message is looked at once: the ones not chosen stay unacked and return when the channel closes.
        for _ in 0..total {
            let Some(message) = channel
                .basic_get(dlq.as_str().into(), BasicGetOptions { no_ack: false })
                .await
                .map_err(unavailable)?
            else {
                break;
            };
            let delivery = message.delivery;
            let event_id = delivery
                .properties
                .message_id()
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            if !req.all && !req.event_ids.contains(&event_id) {
                continue;
            }
            // A fresh copy on the service's own queue (the default exchange routes by queue name),
            // without the old death records.
            let properties = delivery
                .properties
                .clone()
                .with_headers(FieldTable::default());
            let confirmation = channel
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties,
                )
                .await
                .map_err(unavailable)?
                .await
                .map_err(unavailable)?;
            if !matches!(confirmation, Confirmation::Ack(_)) {
                return Err(Status::unavailable(
                    "the broker refused the replayed message",
                ));
            }
            delivery
                .ack(BasicAckOptions::default())
                .await
                .map_err(unavailable)?;
            tracing::info!(queue = %self.queue, %event_id, "dead letter replayed");
            replayed += 1;
        }
        let _ = channel.close(200, "replayed".into()).await;
        Ok(Response::new(ReplayDeadLettersResponse { replayed }))
    }
}
