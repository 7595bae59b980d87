//! The directory service: who is who (districts, municipalities, agencies) and where places are
//! (social services with capacity, held and occupied places).
//!
//! Places are held, released and occupied only from referral events (see [`social_services::places`]), so
//! the directory never reads another service's tables and a referral's effect on places happens exactly
//! once.
//!
//! Cut by feature, each a folder with its `model.rs` (types, checks, conversions; no SQL), its `store.rs`
//! (its own SQL) and its use cases in `mod.rs` (the transaction, audit and outbox):
//! [`reference`](mod@reference), [`agencies`], [`social_services`] (with [`social_services::places`]),
//! [`endpoints`], [`register`] (its files, import and HSDS export) and [`announcements`] (every agency and
//! service announced again once after an upgrade). Dependencies go one way: models
//! import no store or use case, stores import models, use cases import both; [`api`] (gRPC) and
//! [`events`] (routing) call the use cases.

pub mod agencies;
pub mod announcements;
pub mod api;
pub mod endpoints;
pub mod events;
pub mod policy;
pub mod reference;
pub mod register;
pub mod social_services;

use placement_messaging::service::{Definition, GrpcApi, Kit, Service, StartError};
use placement_messaging::{EventBuilder, EventType};
use placement_platform::config::Required;
use placement_platform::services;
use placement_platform::webhook::AllowedTargets;
use placement_proto::v1::directory_service_server::{self, DirectoryServiceServer};
use serde::Deserialize;
use tonic::service::Routes;
use uuid::Uuid;

pub(crate) const EVENTS: EventBuilder = Directory::DEFINITION.events();

/// The national Agency for Social Assistance, created by the first migration; it registers the first agencies.
pub const NATIONAL_AUTHORITY_ID: Uuid = placement_platform::caller::NATIONAL_AUTHORITY;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a deployment must set for the directory's process, beyond the settings of every process (see
/// [`Required`]; the deploy-file test checks `deploy/k8s` against it).
pub const REQUIRED: &[Required] = &[
    placement_platform::config::BROKER,
    Required {
        names: &["PLACEMENT_WEBHOOK_SECRET_KEY"],
        secret: true,
        without: "webhook secrets come from the development key",
    },
];

/// The directory's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_ALLOW_HTTP_WEBHOOKS`: accept `http://` webhook URLs (development and tests); otherwise
    /// only `https://`.
    #[serde(default)]
    pub allow_http_webhooks: bool,
    /// `PLACEMENT_WEBHOOK_ALLOWED_HOSTS`: internal hosts (comma-separated, each `host` or `host:port`)
    /// webhooks may be registered at; every other webhook host must be outside any network.
    #[serde(default)]
    pub webhook_allowed_hosts: String,
}

/// The service: districts, municipalities, agencies, their services and places, their contact endpoints.
pub struct Directory;

impl Service for Directory {
    const DEFINITION: Definition = Definition {
        listed: services::DIRECTORY,
        grpc: GrpcApi::Serves(directory_service_server::SERVICE_NAME),
        publishes: &[
            EventType::AgencyRegistered,
            EventType::ServiceRegistered,
            EventType::ServiceCapacityChanged,
            EventType::AgencyEndpointsChanged,
        ],
        migrators: &[&MIGRATOR, &placement_platform::audit::MIGRATOR],
        required: REQUIRED,
    };
    type Config = Config;

    async fn declare(config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        reference::load(kit.pool()).await?;
        // Before serving, so that an upgrade's announcement is in the outbox once the relay starts.
        announcements::announce_pending(kit.pool(), &kit.outbox()).await?;
        kit.consume(events::DirectoryEvents);
        let webhook_key = kit.webhook_key();
        let webhooks = endpoints::WebhookRules {
            allow_http: config.allow_http_webhooks,
            targets: AllowedTargets::parse(&config.webhook_allowed_hosts)
                .map_err(|e| StartError::Config(e.to_string()))?,
        };
        let endpoints =
            endpoints::Endpoints::new(kit.pool().clone(), kit.outbox(), webhook_key, webhooks);
        let api = api::Directory::new(kit.pool().clone(), kit.outbox(), endpoints);
        Ok(placement_messaging::routes![kit;
            DirectoryServiceServer::new(api),
            // The imports of the register are recorded in the directory's own audit trail.
            placement_proto::v1::audit_service_server::AuditServiceServer::new(kit.audit_trail()),
        ])
    }
}
