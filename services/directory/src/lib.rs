//! The directory service: who is who (districts, municipalities, agencies) and where places are
//! (social services with capacity, held and occupied places).
//!
//! Places are held, released and occupied only from referral events (see [`places`]), so the directory
//! never reads another service's tables and a referral's effect on places happens exactly once.

pub mod api;
pub mod endpoints;
pub mod places;
pub mod policy;
pub mod reference;
mod store;

use std::{net::SocketAddr, sync::Arc};

use placement_messaging::{
    ConsumerSpec, EventBuilder, outbox::RelaySettings, runtime::Infra, runtime::StartError,
};
use placement_platform::config::{CommonConfig, from_env};
use placement_proto::v1::directory_service_server::DirectoryServiceServer;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub const SERVICE_NAME: &str = "placement.v1.DirectoryService";
pub const PRODUCER: &str = "placement-directory";
pub(crate) const EVENTS: EventBuilder = EventBuilder::new(PRODUCER);

/// The national Agency for Social Assistance, created by the first migration; it registers the first agencies.
pub const NATIONAL_AUTHORITY_ID: Uuid = placement_platform::caller::NATIONAL_AUTHORITY;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_DIRECTORY_LISTEN_ADDR`.
    #[serde(default = "default_listen", rename = "directory_listen_addr")]
    pub listen_addr: SocketAddr,
    /// `PLACEMENT_DIRECTORY_QUEUE`: the directory's own queue.
    #[serde(default = "default_queue", rename = "directory_queue")]
    pub queue: String,
    /// `PLACEMENT_ALLOW_HTTP_WEBHOOKS`: accept `http://` webhook URLs (development and tests); otherwise
    /// only `https://`.
    #[serde(default)]
    pub allow_http_webhooks: bool,
    #[serde(skip)]
    pub common: CommonConfig,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:50051".parse().expect("valid address")
}

fn default_queue() -> String {
    "placement.directory".into()
}

impl Config {
    pub fn from_env() -> Result<Self, placement_platform::config::ConfigError> {
        let mut config: Self = from_env()?;
        config.common = from_env()?;
        Ok(config)
    }
}

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let infra = Infra::start(
        &config.common,
        "directory",
        &[&MIGRATOR],
        PRODUCER,
        shutdown.clone(),
    )
    .await?;
    reference::load(&infra.pool).await?;
    infra
        .start_consumer(
            ConsumerSpec::new(&config.queue, endpoints::BINDINGS),
            Arc::new(endpoints::DirectoryEvents),
        )
        .await?;
    infra.start_relay(RelaySettings::default());

    if config.common.webhook_secret_key == placement_platform::config::DEVELOPMENT_WEBHOOK_KEY {
        tracing::warn!(
            "PLACEMENT_WEBHOOK_SECRET_KEY is not set: webhook secrets come from the development key"
        );
    }
    let endpoints = endpoints::Endpoints::new(
        infra.pool.clone(),
        infra.outbox.clone(),
        config.common.webhook_secret_key.clone(),
        config.allow_http_webhooks,
    );
    let api = api::Directory::new(infra.pool.clone(), infra.outbox.clone(), endpoints);
    let routes = placement_messaging::routes![infra;
        DirectoryServiceServer::new(api),
    ];
    infra.serve(listener, SERVICE_NAME, routes).await
}
