//! The gRPC face of the notifications service: an agency's inbox ([`crate::inbox`]) and the deliveries
//! of its notifications ([`crate::deliveries`]). Each call is checked against [`crate::policy`], its
//! request parsed, and the feature called.

use std::{pin::Pin, sync::Arc, time::Duration};

use placement_platform::{
    CallerExt,
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
use tokio::sync::Notify;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    deliveries::{self, DeliveryQuery, model::DeliveryRow},
    inbox::{
        self, Arrivals,
        watch::{self, WatchLimits},
    },
    policy,
};

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
        let scope = policy::delivery_scope(&caller)?;
        let query = DeliveryQuery {
            notification,
            status,
            after,
            limit: limit + 1,
        };
        let mut rows = deliveries::list(&self.pool, scope, caller.agency_id, &query).await?;
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
        let row = deliveries::retry(&self.pool, id, self.retry_window, &self.deliveries).await?;
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
        inbox::list(&self.pool, agency, req.unread_only, before, limit).await
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
        let marked = inbox::mark_read(&self.pool, agency, &ids).await?;
        Ok(MarkReadResponse {
            marked: u32::try_from(marked).unwrap_or(u32::MAX),
        })
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
        let rx = watch::open(
            &self.streams,
            &caller,
            self.pool.clone(),
            request.get_ref().after_sequence,
            self.arrivals.subscribe(),
            self.shutdown.clone(),
        )?;
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as WatchStream
        ))
    }
}
