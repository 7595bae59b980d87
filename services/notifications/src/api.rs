//! The gRPC face of the notifications service: an agency's inbox.

use std::{collections::HashMap, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use placement_platform::{
    CallerExt,
    caller::Caller,
    error::{ServiceError, ServiceResult, parse_id, respond},
    page::{decode_id_token, page_size, take_page},
    time::{opt_timestamp, timestamp},
};
use placement_proto::v1::{
    Delivery, DeliveryStatus, ListDeliveriesRequest, ListDeliveriesResponse,
    ListNotificationsRequest, ListNotificationsResponse, MarkReadRequest, MarkReadResponse,
    Notification, RetryDeliveryRequest, WatchNotificationsRequest,
    notification_service_server::NotificationService,
};
use sqlx::{FromRow, PgPool, Row};
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    inbox::{Arrival, Arrivals, COLUMNS, NotificationRow},
    policy,
};
use uuid::Uuid;

const MAX_MARK: usize = 500;

const DELIVERY_COLUMNS: &str = "id, notification_id, endpoint_id, channel, address, status, attempts, \
     last_error, last_attempt_at, next_attempt_at, sent_at, created_at";

#[derive(Debug, FromRow)]
struct DeliveryRow {
    id: Uuid,
    notification_id: Uuid,
    endpoint_id: Uuid,
    channel: String,
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
    fn into_proto(self) -> Delivery {
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
            channel: self.channel,
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

fn status_name(status: DeliveryStatus) -> Option<&'static str> {
    match status {
        DeliveryStatus::Pending => Some("PENDING"),
        DeliveryStatus::Sent => Some("SENT"),
        DeliveryStatus::Failed => Some("FAILED"),
        DeliveryStatus::Unspecified => None,
    }
}

#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
    arrivals: Arrivals,
    /// Wakes the delivery dispatcher when an operator retries a delivery.
    deliveries: Arc<Notify>,
    retry_window: Duration,
    shutdown: CancellationToken,
}

type RpcResult<T> = Result<Response<T>, Status>;

impl Notifications {
    pub fn new(
        pool: PgPool,
        arrivals: Arrivals,
        deliveries: Arc<Notify>,
        retry_window: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            pool,
            arrivals,
            deliveries,
            retry_window,
            shutdown,
        }
    }

    async fn list_deliveries(
        &self,
        caller: Caller,
        req: ListDeliveriesRequest,
    ) -> ServiceResult<ListDeliveriesResponse> {
        let limit = page_size("page_size", req.page_size)?;
        let status = DeliveryStatus::try_from(req.status)
            .map_err(|_| ServiceError::invalid("status", "unknown status"))?;
        let notification = if req.notification_id.is_empty() {
            None
        } else {
            Some(parse_id("notification_id", &req.notification_id)?)
        };
        let after = decode_id_token("page_token", &req.page_token)?;
        let operator = policy::is_operator(&caller);
        if !operator {
            policy::require_inbox(&caller)?;
        }
        let caller = caller.agency_id;
        match notification {
            Some(id) if !operator => {
                let mine: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND recipient_agency_id = $2)",
                )
                .bind(id)
                .bind(caller)
                .fetch_one(&self.pool)
                .await?;
                if !mine {
                    return Err(ServiceError::not_found("notification"));
                }
            }
            None if !operator => {
                return Err(ServiceError::denied(
                    "only operators list every delivery; name a notification_id",
                ));
            }
            _ => {}
        }
        let mut rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE ($1::uuid IS NULL OR notification_id = $1) AND ($2::text IS NULL OR status = $2)
               AND ($3::uuid IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(notification)
        .bind(status_name(status))
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let next_page_token = take_page(&mut rows, limit, |r| r.id.to_string());
        Ok(ListDeliveriesResponse {
            deliveries: rows.into_iter().map(DeliveryRow::into_proto).collect(),
            next_page_token,
        })
    }

    async fn retry_delivery(
        &self,
        caller: Caller,
        req: RetryDeliveryRequest,
    ) -> ServiceResult<Delivery> {
        policy::require_operator(&caller)?;
        let id = parse_id("delivery_id", &req.delivery_id)?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let current: Option<(String, Option<bool>)> = sqlx::query_as(
            "SELECT d.status, e.enabled FROM deliveries d LEFT JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.id = $1 FOR UPDATE OF d",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        match current {
            None => return Err(ServiceError::not_found("delivery")),
            Some((status, _)) if status != "FAILED" => {
                return Err(ServiceError::precondition(format!(
                    "only a FAILED delivery is retried; this one is {status}"
                )));
            }
            Some((_, None)) => {
                return Err(ServiceError::precondition("the endpoint was removed"));
            }
            Some((_, Some(false))) => {
                return Err(ServiceError::precondition(
                    "the endpoint is disabled; enable it in the directory first",
                ));
            }
            Some((_, Some(true))) => {}
        }
        let window = chrono::Duration::from_std(self.retry_window).unwrap_or(chrono::Duration::MAX);
        let row: DeliveryRow = sqlx::query_as(&format!(
            "UPDATE deliveries SET status = 'PENDING', next_attempt_at = now(), give_up_at = now() + $2
             WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(id)
        .bind(window)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.deliveries.notify_one();
        tracing::info!(delivery_id = %id, "delivery retried by an operator");
        Ok(row.into_proto())
    }

    async fn list(
        &self,
        agency: Uuid,
        req: ListNotificationsRequest,
    ) -> ServiceResult<ListNotificationsResponse> {
        let limit = page_size("page_size", req.page_size)?;
        let before: Option<i64> = if req.page_token.is_empty() {
            None
        } else {
            Some(req.page_token.parse().map_err(|_| {
                ServiceError::invalid("page_token", "not a page token from this service")
            })?)
        };
        let mut rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications
             WHERE recipient_agency_id = $1 AND ($2 = false OR read_at IS NULL)
               AND ($3::bigint IS NULL OR sequence < $3)
             ORDER BY sequence DESC LIMIT $4"
        ))
        .bind(agency)
        .bind(req.unread_only)
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let next_page_token = take_page(&mut rows, limit, |r| r.sequence.to_string());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let deliveries: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE notification_id = ANY ($1) ORDER BY id"
        ))
        .bind(&ids)
        .fetch_all(&self.pool)
        .await?;
        let mut by_notification: HashMap<Uuid, Vec<Delivery>> = HashMap::new();
        for d in deliveries {
            by_notification
                .entry(d.notification_id)
                .or_default()
                .push(d.into_proto());
        }
        Ok(ListNotificationsResponse {
            notifications: rows
                .into_iter()
                .map(|r| {
                    let deliveries = by_notification.remove(&r.id).unwrap_or_default();
                    Notification {
                        deliveries,
                        ..r.into_proto()
                    }
                })
                .collect(),
            next_page_token,
        })
    }

    async fn mark_read(
        &self,
        agency: Uuid,
        req: MarkReadRequest,
    ) -> ServiceResult<MarkReadResponse> {
        if req.notification_ids.is_empty() {
            return Err(ServiceError::invalid("notification_ids", "at least one id"));
        }
        if req.notification_ids.len() > MAX_MARK {
            return Err(ServiceError::invalid(
                "notification_ids",
                format!("at most {MAX_MARK}"),
            ));
        }
        let ids = req
            .notification_ids
            .iter()
            .enumerate()
            .map(|(i, id)| parse_id(&format!("notification_ids[{i}]"), id))
            .collect::<ServiceResult<Vec<Uuid>>>()?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let mine: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE id = ANY($1) AND recipient_agency_id = $2",
        )
        .bind(&ids)
        .bind(agency)
        .fetch_one(&mut *tx)
        .await?;
        let distinct = placement_platform::numbers::len_i64(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
        );
        if mine != distinct {
            // Another agency's notifications and unknown ids look alike.
            return Err(ServiceError::not_found("notification"));
        }
        let marked = sqlx::query(
            "UPDATE notifications SET read_at = now()
             WHERE id = ANY($1) AND recipient_agency_id = $2 AND read_at IS NULL",
        )
        .bind(&ids)
        .bind(agency)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(MarkReadResponse {
            marked: u32::try_from(marked).unwrap_or(u32::MAX),
        })
    }

    /// Streams the agency's notifications after `after`, oldest first, waking on every commit of this
    /// instance and at least once a second (for notifications another instance wrote).
    async fn watch(
        pool: PgPool,
        agency: Uuid,
        after: u64,
        mut arrivals: broadcast::Receiver<Arc<[Arrival]>>,
        out: mpsc::Sender<Result<Notification, Status>>,
        shutdown: CancellationToken,
    ) {
        // Streams go by the agency's inbox position, which commits in order (see the migration that added it).
        let start: Result<Option<i64>, sqlx::Error> = if after > 0 {
            match placement_platform::numbers::stored_serial(after) {
                // Beyond any sequence: not a notification of this agency either.
                None => Ok(None),
                Some(after) => {
                    sqlx::query_scalar(
                        "SELECT position FROM notifications WHERE recipient_agency_id = $1 AND sequence = $2",
                    )
                    .bind(agency)
                    .bind(after)
                    .fetch_optional(&pool)
                    .await
                }
            }
        } else {
            sqlx::query_scalar(
                "SELECT COALESCE(max(position), 0) FROM notifications WHERE recipient_agency_id = $1",
            )
            .bind(agency)
            .fetch_one(&pool)
            .await
            .map(Some)
        };
        let mut cursor = match start {
            Ok(Some(position)) => position,
            Ok(None) => {
                let _ = out
                    .send(Err(Status::from(ServiceError::invalid(
                        "after_sequence",
                        "not a notification of this agency",
                    ))))
                    .await;
                return;
            }
            Err(e) => {
                let _ = out.send(Err(Status::from(ServiceError::from(e)))).await;
                return;
            }
        };
        let mut look = true;
        loop {
            if look {
                let rows: Result<Vec<(i64, NotificationRow)>, _> = sqlx::query(&format!(
                    "SELECT {COLUMNS}, position FROM notifications
                     WHERE recipient_agency_id = $1 AND position > $2
                     ORDER BY position LIMIT 100"
                ))
                .bind(agency)
                .bind(cursor)
                .fetch_all(&pool)
                .await
                .and_then(|rows| {
                    rows.into_iter()
                        .map(|r| Ok((r.try_get("position")?, NotificationRow::from_row(&r)?)))
                        .collect()
                });
                match rows {
                    Ok(rows) => {
                        let full = rows.len() == 100;
                        for (position, row) in rows {
                            let notification = row.into_proto();
                            tracing::trace!(event_id = %notification.event_id, %agency, "streaming as looked up");
                            if out.send(Ok(notification)).await.is_err() {
                                return;
                            }
                            cursor = position;
                        }
                        if full {
                            continue;
                        }
                    }
                    // A database outage does not end the stream; the next pass tries again.
                    Err(e) => tracing::warn!(error = %e, "watch query failed"),
                }
            }
            // Commits for other agencies do not wake this stream. A notification handed over that is next in
            // the inbox goes out as it is; anything else (a gap, another instance's commits, missed
            // wake-ups) is looked up.
            let arrived = async {
                loop {
                    match arrivals.recv().await {
                        Ok(batch) => {
                            let (mut mine, mut look) = (false, false);
                            for arrival in batch.iter() {
                                if arrival.agency != agency {
                                    continue;
                                }
                                mine = true;
                                match &arrival.notification {
                                    Some((position, _)) if *position <= cursor => {}
                                    Some((position, notification))
                                        if *position == cursor + 1 && !look =>
                                    {
                                        tracing::trace!(event_id = %notification.event_id, %agency, "streaming as handed over");
                                        // Only once sent: a send cut short by another branch below
                                        // leaves the notification to the next look.
                                        if out.send(Ok(notification.clone())).await.is_err() {
                                            return None;
                                        }
                                        cursor = *position;
                                    }
                                    _ => look = true,
                                }
                            }
                            if !mine {
                                continue;
                            }
                            return Some(look);
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => return Some(true),
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            };
            tokio::select! {
                next = arrived => match next {
                    Some(again) => look = again,
                    None => return,
                },
                // Wake-ups come from this instance's commits; another instance's are found by looking.
                _ = tokio::time::sleep(Duration::from_secs(1)) => look = true,
                _ = out.closed() => return,
                _ = shutdown.cancelled() => {
                    let _ = out.send(Err(Status::unavailable("server shutting down"))).await;
                    return;
                }
            }
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<Notification, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for Notifications {
    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> RpcResult<ListNotificationsResponse> {
        let caller = request.caller()?;
        policy::require_inbox(&caller)?;
        respond(self.list(caller.agency_id, request.into_inner()).await)
    }

    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> RpcResult<ListDeliveriesResponse> {
        let caller = request.caller()?;
        respond(Notifications::list_deliveries(self, caller, request.into_inner()).await)
    }

    async fn retry_delivery(&self, request: Request<RetryDeliveryRequest>) -> RpcResult<Delivery> {
        let caller = request.caller()?;
        respond(Notifications::retry_delivery(self, caller, request.into_inner()).await)
    }

    async fn mark_read(&self, request: Request<MarkReadRequest>) -> RpcResult<MarkReadResponse> {
        let caller = request.caller()?;
        policy::require_inbox_change(&caller)?;
        respond(Notifications::mark_read(self, caller.agency_id, request.into_inner()).await)
    }

    type WatchNotificationsStream = WatchStream;

    async fn watch_notifications(
        &self,
        request: Request<WatchNotificationsRequest>,
    ) -> RpcResult<Self::WatchNotificationsStream> {
        let caller = request.caller()?;
        policy::require_inbox(&caller)?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(Self::watch(
            self.pool.clone(),
            caller.agency_id,
            request.get_ref().after_sequence,
            self.arrivals.subscribe(),
            tx,
            self.shutdown.clone(),
        ));
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as WatchStream
        ))
    }
}
