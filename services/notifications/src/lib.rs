//! The notifications service: every agency concerned by a referral event is told, once, in its in-app
//! inbox; `WatchNotifications` streams them as they arrive.

pub mod api;
pub mod inbox;
pub mod recipients;

use std::{net::SocketAddr, sync::Arc};

use placement_messaging::{
    ConsumerSpec, outbox::RelaySettings, runtime::Infra, runtime::StartError,
};
use placement_platform::config::{CommonConfig, ConfigError, from_env};
use placement_proto::v1::notification_service_server::NotificationServiceServer;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "placement.v1.NotificationService";
pub const PRODUCER: &str = "placement-notifications";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_NOTIFICATIONS_LISTEN_ADDR`.
    #[serde(default = "default_listen", rename = "notifications_listen_addr")]
    pub listen_addr: SocketAddr,
    /// `PLACEMENT_NOTIFICATIONS_QUEUE`.
    #[serde(default = "default_queue", rename = "notifications_queue")]
    pub queue: String,
    #[serde(skip)]
    pub common: CommonConfig,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:50054".parse().expect("valid address")
}

fn default_queue() -> String {
    "placement.notifications".into()
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut config: Self = from_env()?;
        config.common = from_env()?;
        Ok(config)
    }
}

pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let infra = Infra::start(
        &config.common,
        "notifications",
        &MIGRATOR,
        PRODUCER,
        shutdown.clone(),
    )
    .await?;
    let (arrivals, _) = tokio::sync::broadcast::channel(16);
    infra
        .start_consumer(
            ConsumerSpec::new(&config.queue, inbox::BINDINGS),
            Arc::new(inbox::Inbox {
                arrivals: arrivals.clone(),
            }),
        )
        .await?;
    // Notifications publishes nothing yet; its relay keeps the outbox drained once it does.
    infra.start_relay(RelaySettings::default());

    let api = api::Notifications::new(infra.pool.clone(), arrivals, shutdown.clone());
    let routes = tonic::service::Routes::new(NotificationServiceServer::with_interceptor(
        api,
        placement_platform::caller::identify,
    ));
    infra.serve(listener, SERVICE_NAME, routes).await
}
