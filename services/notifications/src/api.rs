//! The gRPC face of the notifications service: an agency's inbox.

use std::{collections::HashMap, num::NonZeroUsize, pin::Pin, sync::Arc, time::Duration};

use placement_platform::{
    CallerExt,
    admission::{Admitted, Limit},
    caller::Caller,
    error::{ServiceError, ServiceResult, parse_id, respond},
    page::{decode_id_token, page_size, take_page},
};
use placement_proto::v1::{
    Delivery, DeliveryStatus, ListDeliveriesRequest, ListDeliveriesResponse,
    ListNotificationsRequest, ListNotificationsResponse, MarkReadRequest, MarkReadResponse,
    Notification, RetryDeliveryRequest, WatchNotificationsRequest,
    notification_service_server::NotificationService,
};
use sqlx::PgPool;
use tokio::sync::{Notify, broadcast, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::{
    arrivals::{Arrival, Arrivals},
    policy::{self, DeliveryScope},
    store::{self, DeliveryRow},
};
use uuid::Uuid;

const MAX_MARK: usize = 500;

#[derive(Clone)]
pub struct Notifications {
    pool: PgPool,
    arrivals: Arrivals,
    /// Wakes the delivery dispatcher when an operator retries a delivery.
    deliveries: Arc<Notify>,
    retry_window: Duration,
    streams: Arc<WatchLimits>,
    shutdown: CancellationToken,
}

type RpcResult<T> = Result<Response<T>, Status>;

/// How many WatchNotifications streams one agency, and one person of it, keep open at once: each looks
/// at the database every second, so open streams are a cost that no caller may grow without end.
pub struct WatchLimits {
    per_agency: Limit<Uuid>,
    per_person: Limit<(Uuid, String)>,
}

impl WatchLimits {
    pub fn new(per_agency: NonZeroUsize, per_person: NonZeroUsize) -> Self {
        Self {
            per_agency: Limit::new(per_agency, "watch streams per agency"),
            per_person: Limit::new(per_person, "watch streams per person"),
        }
    }

    fn admit(&self, caller: &Caller) -> ServiceResult<Lease> {
        let person = self
            .per_person
            .admit((caller.agency_id, caller.subject.clone()))?;
        let agency = self.per_agency.admit(caller.agency_id)?;
        // Dev-mode callers have no token, so nothing to end at.
        let ends_at = caller.expires_at().map(|exp| {
            let left = (exp - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            tokio::time::Instant::now() + left
        });
        Ok(Lease {
            _places: (person, agency),
            ends_at,
        })
    }
}

/// What a stream holds while open: its places under the limits, and when its token expires.
struct Lease {
    _places: (Admitted<(Uuid, String)>, Admitted<Uuid>),
    ends_at: Option<tokio::time::Instant>,
}

impl Lease {
    async fn expired(&self) {
        match self.ends_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}

impl Notifications {
    pub fn new(
        pool: PgPool,
        arrivals: Arrivals,
        deliveries: Arc<Notify>,
        retry_window: Duration,
        streams: WatchLimits,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            pool,
            arrivals,
            deliveries,
            retry_window,
            streams: Arc::new(streams),
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
        if policy::delivery_scope(&caller)? == DeliveryScope::OwnNotifications {
            let id = notification.ok_or_else(|| {
                ServiceError::denied(
                    "only the national authority's operators list every delivery; name a notification_id",
                )
            })?;
            if !store::is_recipient(&self.pool, id, caller.agency_id).await? {
                return Err(ServiceError::not_found("notification"));
            }
        }
        let mut rows =
            store::list_deliveries(&self.pool, notification, status, after, limit + 1).await?;
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
        policy::require_retry(&caller)?;
        let id = parse_id("delivery_id", &req.delivery_id)?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        let current = store::lock_delivery(&mut tx, id).await?;
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
        let row = store::retry_delivery(&mut tx, id, window).await?;
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
        let mut rows =
            store::list_notifications(&self.pool, agency, req.unread_only, before, limit + 1)
                .await?;
        let next_page_token = take_page(&mut rows, limit, |r| r.sequence.to_string());
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let deliveries = store::deliveries_of(&self.pool, &ids).await?;
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
        let mine = store::count_received(&mut tx, &ids, agency).await?;
        let distinct = placement_platform::numbers::len_i64(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
        );
        if mine != distinct {
            // Another agency's notifications and unknown ids look alike.
            return Err(ServiceError::not_found("notification"));
        }
        let marked = store::mark_read(&mut tx, &ids, agency).await?;
        tx.commit().await?;
        Ok(MarkReadResponse {
            marked: u32::try_from(marked).unwrap_or(u32::MAX),
        })
    }

    /// Streams the agency's notifications after `after`, oldest first, waking on every commit of this
    /// instance and at least once a second (for notifications another instance wrote), until the
    /// caller's token expires.
    async fn watch(
        pool: PgPool,
        agency: Uuid,
        after: u64,
        arrivals: broadcast::Receiver<Arc<[Arrival]>>,
        out: mpsc::Sender<Result<Notification, Status>>,
        lease: Lease,
        shutdown: CancellationToken,
    ) {
        tokio::select! {
            () = Self::follow(pool, agency, after, arrivals, &out, shutdown) => {}
            // A stream does not outlive the credentials it was opened with, even when its reader stopped
            // reading: a send waiting for room is dropped with the rest, and the lease's places are freed.
            () = lease.expired() => {
                let _ = out.try_send(Err(Status::unauthenticated(
                    "the token expired; open the stream again with a fresh one",
                )));
            }
        }
    }

    async fn follow(
        pool: PgPool,
        agency: Uuid,
        after: u64,
        mut arrivals: broadcast::Receiver<Arc<[Arrival]>>,
        out: &mpsc::Sender<Result<Notification, Status>>,
        shutdown: CancellationToken,
    ) {
        // Streams go by the agency's inbox position, which commits in order (see the migration that added it).
        let start = store::watch_start(&pool, agency, after).await;
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
                match send_after(&pool, agency, &mut cursor, out).await {
                    Sent::Closed => return,
                    Sent::More => continue,
                    Sent::UpToDate => {}
                }
            }
            tokio::select! {
                next = handed_over(&mut arrivals, agency, &mut cursor, out) => match next {
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

/// What one look at the inbox did.
enum Sent {
    /// The stream's receiver is gone.
    Closed,
    /// A full page went out: look again at once.
    More,
    UpToDate,
}

/// Sends the agency's notifications after `cursor`, one page, moving the cursor.
async fn send_after(
    pool: &PgPool,
    agency: Uuid,
    cursor: &mut i64,
    out: &mpsc::Sender<Result<Notification, Status>>,
) -> Sent {
    const PAGE: usize = 100;
    match store::notifications_after(
        pool,
        agency,
        *cursor,
        placement_platform::numbers::len_i64(PAGE),
    )
    .await
    {
        Ok(rows) => {
            let full = rows.len() == PAGE;
            for (position, row) in rows {
                let notification = row.into_proto();
                tracing::trace!(event_id = %notification.event_id, %agency, "streaming as looked up");
                if out.send(Ok(notification)).await.is_err() {
                    return Sent::Closed;
                }
                *cursor = position;
            }
            if full { Sent::More } else { Sent::UpToDate }
        }
        // A database outage does not end the stream; the next pass tries again.
        Err(e) => {
            tracing::warn!(error = %e, "watch query failed");
            Sent::UpToDate
        }
    }
}

/// Waits for commits that concern the agency. Commits for other agencies do not wake the stream. A
/// notification handed over that is next in the inbox goes out as it is; anything else (a gap, another
/// instance's commits, missed wake-ups) asks for a look: returns whether to look, or None when the
/// stream or the broadcast ended.
async fn handed_over(
    arrivals: &mut broadcast::Receiver<Arc<[Arrival]>>,
    agency: Uuid,
    cursor: &mut i64,
    out: &mpsc::Sender<Result<Notification, Status>>,
) -> Option<bool> {
    loop {
        let batch = match arrivals.recv().await {
            Ok(batch) => batch,
            Err(broadcast::error::RecvError::Lagged(_)) => return Some(true),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        let (mut mine, mut look) = (false, false);
        for arrival in batch.iter().filter(|a| a.agency == agency) {
            mine = true;
            match &arrival.notification {
                Some((position, _)) if *position <= *cursor => {}
                Some((position, notification)) if *position == *cursor + 1 && !look => {
                    tracing::trace!(event_id = %notification.event_id, %agency, "streaming as handed over");
                    // Only once sent: a send cut short by another branch of the caller's select leaves
                    // the notification to the next look.
                    if out.send(Ok(notification.clone())).await.is_err() {
                        return None;
                    }
                    *cursor = *position;
                }
                _ => look = true,
            }
        }
        if mine {
            return Some(look);
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
        let lease = self.streams.admit(&caller)?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(Self::watch(
            self.pool.clone(),
            caller.agency_id,
            request.get_ref().after_sequence,
            self.arrivals.subscribe(),
            tx,
            lease,
            self.shutdown.clone(),
        ));
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as WatchStream
        ))
    }
}
