//! The cases service: a child's case (or a sibling group's), owned by one DSA, pseudonymised.
//! Personal data never leaves it: events carry ids and counts only.
//!
//! Whether the caller is a DSA is asked of the directory (a gRPC lookup with a deadline) when a case is
//! opened: it is rare, must be current, and a stale local copy would let a just-registered DSA wait.
//! Placements are learnt from referral events (see [`placements`]).

pub mod api;
pub mod personal;
pub mod placements;
pub mod policy;
mod store;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use placement_messaging::{
    ConsumerSpec, EventBuilder, outbox::RelaySettings, runtime::Infra, runtime::StartError,
};
use placement_platform::config::{CommonConfig, ConfigError, from_env};
use placement_proto::v1::audit_service_server::AuditServiceServer;
use placement_proto::v1::{
    case_service_server::CaseServiceServer, directory_service_client::DirectoryServiceClient,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "placement.v1.CaseService";
pub const PRODUCER: &str = "placement-cases";
pub(crate) const EVENTS: EventBuilder = EventBuilder::new(PRODUCER);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_CASES_LISTEN_ADDR`.
    #[serde(default = "default_listen", rename = "cases_listen_addr")]
    pub listen_addr: SocketAddr,
    /// `PLACEMENT_CASES_QUEUE`.
    #[serde(default = "default_queue", rename = "cases_queue")]
    pub queue: String,
    /// `PLACEMENT_DIRECTORY_URL`.
    #[serde(default = "default_directory_url")]
    pub directory_url: String,
    /// `PLACEMENT_DATA_KEY`: 32 bytes in base64, the AES-256-GCM key children's names and personal numbers
    /// are sealed with. Without it they are refused.
    #[serde(default)]
    pub data_key: Option<String>,
    #[serde(skip)]
    pub common: CommonConfig,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:50052".parse().expect("valid address")
}

fn default_queue() -> String {
    "placement.cases".into()
}

pub(crate) fn default_directory_url() -> String {
    "http://127.0.0.1:50051".into()
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
        "cases",
        &[&MIGRATOR, &placement_platform::audit::MIGRATOR],
        PRODUCER,
        shutdown.clone(),
    )
    .await?;
    let directory = DirectoryServiceClient::new(
        placement_platform::grpc::lazy_channel(
            &config.directory_url,
            Duration::from_secs(3),
            infra.client_tls.as_ref(),
        )
        .map_err(StartError::Serve)?,
    );
    infra
        .start_consumer(
            ConsumerSpec::new(&config.queue, placements::BINDINGS),
            Arc::new(placements::CasePlacements),
        )
        .await?;
    infra.start_relay(RelaySettings::default());

    let sealer = match &config.data_key {
        Some(key) => Some(
            personal::Sealer::from_base64(key).map_err(|e| StartError::Config(e.to_string()))?,
        ),
        None => {
            tracing::warn!(
                "PLACEMENT_DATA_KEY is not set: children's names and personal numbers will be refused"
            );
            None
        }
    };
    let api = api::Cases::new(infra.pool.clone(), infra.outbox.clone(), directory, sealer);
    let routes = placement_messaging::routes![infra;
        CaseServiceServer::new(api),
        AuditServiceServer::new(placement_platform::audit::AuditTrail {
            pool: infra.pool.clone(),
        }),
    ];
    infra.serve(listener, SERVICE_NAME, routes).await
}
