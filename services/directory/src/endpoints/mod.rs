//! Notification endpoints: where an agency is told of events besides its in-app inbox.
//!
//! After every change the agency's whole set is announced ("agency.endpoints_changed"), numbered, so the
//! notifications service replaces its copy and never applies an older set over a newer one. Webhook secrets
//! are derived (see `placement_platform::webhook`) and only ever shown to the agency in a response.

pub mod model;
pub mod store;

use placement_messaging::{Event, HandleError, IncomingEvent, Outbox};
use placement_platform::{
    error::{ServiceResult, parse_id},
    webhook::derive_secret,
};
use placement_proto::v1::{
    AddNotificationEndpointRequest, AgencyEndpointsChanged, EndpointDisabled,
    ListNotificationEndpointsRequest, ListNotificationEndpointsResponse, NotificationChannel,
    NotificationEndpoint, RemoveNotificationEndpointRequest, UpdateNotificationEndpointRequest,
};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{EVENTS, NATIONAL_AUTHORITY_ID, agencies::store::agency_exists};
pub use model::WebhookRules;
use model::{
    EndpointError, MAX_ENDPOINTS, RegisteredEndpoint, check_address, check_event_types,
    language_or_default,
};

/// Endpoint management, with the settings it needs.
#[derive(Clone)]
pub struct Endpoints {
    pool: PgPool,
    outbox: Outbox,
    webhook_key: String,
    webhooks: std::sync::Arc<WebhookRules>,
}

impl Endpoints {
    pub fn new(pool: PgPool, outbox: Outbox, webhook_key: String, webhooks: WebhookRules) -> Self {
        Self {
            pool,
            outbox,
            webhook_key,
            webhooks: std::sync::Arc::new(webhooks),
        }
    }

    fn secret(&self, row: &RegisteredEndpoint) -> Option<String> {
        (row.channel() == NotificationChannel::Webhook).then(|| {
            derive_secret(
                &self.webhook_key,
                row.id,
                placement_platform::numbers::count(row.secret_version),
            )
        })
    }

    /// Another agency's endpoints and unknown agencies look alike.
    async fn authorize(&self, caller: Uuid, agency: Uuid) -> ServiceResult<()> {
        let exists = agency_exists(&self.pool, agency).await?;
        if !exists || (caller != agency && caller != NATIONAL_AUTHORITY_ID) {
            return Err(EndpointError::AgencyNotFound.into());
        }
        Ok(())
    }

    async fn endpoint_for(&self, caller: Uuid, id: Uuid) -> ServiceResult<RegisteredEndpoint> {
        match store::find_endpoint(&self.pool, id).await? {
            Some(row) if caller == row.agency_id || caller == NATIONAL_AUTHORITY_ID => Ok(row),
            _ => Err(EndpointError::EndpointNotFound.into()),
        }
    }

    pub async fn add(
        &self,
        caller: Uuid,
        req: AddNotificationEndpointRequest,
        correlation: Uuid,
    ) -> ServiceResult<NotificationEndpoint> {
        let agency = parse_id("agency_id", &req.agency_id)?;
        let channel = NotificationChannel::try_from(req.channel)
            .ok()
            .filter(|c| *c != NotificationChannel::Unspecified)
            .ok_or(EndpointError::ChannelRequired)?;
        let address = check_address(channel, req.address.trim(), &self.webhooks)?;
        let event_types = check_event_types("event_types", &req.event_types)?;
        let language = language_or_default(req.language)?;
        self.authorize(caller, agency).await?;

        let mut tx = placement_platform::db::begin(&self.pool).await?;
        // Serialises changes to one agency's endpoints, so the count and the version are right.
        let count = store::lock_agency_and_count_endpoints(&mut tx, agency).await?;
        if count >= MAX_ENDPOINTS {
            return Err(EndpointError::TooManyEndpoints.into());
        }
        let row = store::insert_endpoint(
            &mut tx,
            &model::NewEndpoint {
                id: Uuid::now_v7(),
                agency,
                channel,
                address: &address,
                event_types: &event_types,
                language,
            },
        )
        .await?;
        let row = row.ok_or(EndpointError::AlreadyRegistered)?;
        announce(&mut tx, agency, correlation).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(endpoint_id = %row.id, %agency, channel = channel.as_str_name(), "notification endpoint added");
        let secret = self.secret(&row);
        Ok(row.into_proto(secret))
    }

    pub async fn list(
        &self,
        caller: Uuid,
        req: ListNotificationEndpointsRequest,
    ) -> ServiceResult<ListNotificationEndpointsResponse> {
        let agency = parse_id("agency_id", &req.agency_id)?;
        self.authorize(caller, agency).await?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::endpoints_of(&mut conn, agency).await?;
        Ok(ListNotificationEndpointsResponse {
            endpoints: rows.into_iter().map(|r| r.into_proto(None)).collect(),
        })
    }

    pub async fn update(
        &self,
        caller: Uuid,
        req: UpdateNotificationEndpointRequest,
        correlation: Uuid,
    ) -> ServiceResult<NotificationEndpoint> {
        let id = parse_id("endpoint_id", &req.endpoint_id)?;
        let event_types = req
            .events
            .as_ref()
            .map(|f| check_event_types("events.event_types", &f.event_types))
            .transpose()?;
        let language = (req.language != 0)
            .then(|| language_or_default(req.language))
            .transpose()?;
        let current = self.endpoint_for(caller, id).await?;
        if req.rotate_secret && current.channel() != NotificationChannel::Webhook {
            return Err(EndpointError::NoSecretToRotate.into());
        }
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        store::lock_agency(&mut tx, current.agency_id).await?;
        let row = store::update_endpoint(
            &mut tx,
            &model::EndpointChange {
                id,
                event_types,
                language,
                enabled: req.enabled,
                rotate_secret: req.rotate_secret,
            },
        )
        .await?;
        let row = row.ok_or(EndpointError::EndpointNotFound)?;
        announce(&mut tx, row.agency_id, correlation).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(endpoint_id = %id, enabled = row.enabled, rotated = req.rotate_secret, "notification endpoint updated");
        let secret = if req.rotate_secret {
            self.secret(&row)
        } else {
            None
        };
        Ok(row.into_proto(secret))
    }

    pub async fn remove(
        &self,
        caller: Uuid,
        req: RemoveNotificationEndpointRequest,
        correlation: Uuid,
    ) -> ServiceResult<()> {
        let id = parse_id("endpoint_id", &req.endpoint_id)?;
        let current = self.endpoint_for(caller, id).await?;
        let mut tx = placement_platform::db::begin(&self.pool).await?;
        store::lock_agency(&mut tx, current.agency_id).await?;
        if !store::delete_endpoint(&mut tx, id).await? {
            return Err(EndpointError::EndpointNotFound.into());
        }
        announce(&mut tx, current.agency_id, correlation).await?;
        self.outbox.commit(tx).await?;
        tracing::info!(endpoint_id = %id, "notification endpoint removed");
        Ok(())
    }
}

/// Announces the agency's whole set of endpoints under a new version. The caller holds the agency's row lock.
async fn announce(conn: &mut PgConnection, agency: Uuid, correlation: Uuid) -> ServiceResult<()> {
    let version = store::next_endpoints_version(conn, agency).await?;
    let rows = store::endpoints_of(conn, agency).await?;
    let event = EVENTS.build(
        Event::AgencyEndpointsChanged(AgencyEndpointsChanged {
            agency_id: agency.to_string(),
            endpoints_version: placement_platform::numbers::serial(version),
            endpoints: rows.iter().map(RegisteredEndpoint::snapshot).collect(),
        }),
        agency,
        placement_platform::numbers::serial(version),
        correlation,
    );
    Outbox::enqueue(conn, &event).await?;
    Ok(())
}

/// Records an endpoint the notifications service gave up on. Idempotent: an endpoint already disabled, or
/// removed since, is left as it is.
pub async fn on_disabled(
    tx: &mut Transaction<'_, Postgres>,
    disabled: &EndpointDisabled,
    event: &IncomingEvent,
) -> Result<(), HandleError> {
    let id = placement_messaging::payload_id("endpoint_id", &disabled.endpoint_id)?;
    let reason: String = format!("deliveries kept failing: {}", disabled.reason)
        .chars()
        .take(500)
        .collect();
    if let Some(agency) = store::disable_endpoint(tx, id, &reason).await? {
        store::lock_agency(tx, agency).await?;
        announce(tx, agency, event.correlation_id())
            .await
            .map_err(|e| HandleError::Transient(e.to_string()))?;
        tracing::warn!(endpoint_id = %id, %agency, "notification endpoint disabled after failed deliveries");
    }
    Ok(())
}
