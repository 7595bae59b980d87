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
    Delivery, DeliveryStatus, Language, ListDeliveriesRequest, ListDeliveriesResponse,
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
        watch::{self, WatchLimits, Watched},
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
        let language = reader_language(req.language)?;
        inbox::list(&self.pool, agency, req.unread_only, before, limit, language).await
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

/// The language a request asks its notices in: UNSPECIFIED is Bulgarian, as before there was a choice.
fn reader_language(value: i32) -> ServiceResult<Language> {
    match Language::try_from(value) {
        Ok(Language::Unspecified) => Ok(Language::Bg),
        Ok(language) => Ok(language),
        Err(_) => Err(ServiceError::invalid(
            "language",
            "not a language of this release (LANGUAGE_BG or LANGUAGE_EN)",
        )),
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
        let watched = Watched {
            after: request.get_ref().after_sequence,
            language: reader_language(request.get_ref().language)?,
        };
        let rx = watch::open(
            &self.streams,
            &caller,
            self.pool.clone(),
            watched,
            self.arrivals.subscribe(),
            self.shutdown.clone(),
        )?;
        Ok(Response::new(
            Box::pin(ReceiverStream::new(rx)) as WatchStream
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// UNSPECIFIED is Bulgarian, as before a reader could choose; a value this release does not know names
    /// the field.
    #[test]
    fn a_reader_asks_in_a_known_language_or_is_refused() {
        assert_eq!(reader_language(0).unwrap(), Language::Bg);
        assert_eq!(reader_language(Language::Bg as i32).unwrap(), Language::Bg);
        assert_eq!(reader_language(Language::En as i32).unwrap(), Language::En);
        let refused = reader_language(7).unwrap_err();
        assert!(
            matches!(&refused, ServiceError::InvalidArgument { field, .. } if field == "language"),
            "{refused:?}"
        );
    }
}
