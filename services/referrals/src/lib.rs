//! The referrals service: the placement request from a DSA to a service, usually in another district,
//! through acknowledgement, acceptance or decline, to placement; with deadlines and escalation.

pub mod api;
pub mod capacity;
pub mod deadlines;
pub mod fhir;
pub mod policy;
pub mod referral;
mod store;
pub mod workflow;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use placement_messaging::{
    ConsumerSpec, EventBuilder, outbox::RelaySettings, runtime::Infra, runtime::StartError,
};
use placement_platform::config::{CommonConfig, ConfigError, from_env};
use placement_proto::v1::audit_service_server::AuditServiceServer;
use placement_proto::v1::{
    case_service_client::CaseServiceClient, directory_service_client::DirectoryServiceClient,
    referral_service_server::ReferralServiceServer,
};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const SERVICE_NAME: &str = "placement.v1.ReferralService";
pub const PRODUCER: &str = "placement-referrals";
pub(crate) const EVENTS: EventBuilder = EventBuilder::new(PRODUCER);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_REFERRALS_LISTEN_ADDR`.
    #[serde(default = "default_listen", rename = "referrals_listen_addr")]
    pub listen_addr: SocketAddr,
    /// `PLACEMENT_REFERRALS_QUEUE`.
    #[serde(default = "default_queue", rename = "referrals_queue")]
    pub queue: String,
    /// `PLACEMENT_DIRECTORY_URL`.
    #[serde(default = "default_directory_url")]
    pub directory_url: String,
    /// `PLACEMENT_CASES_URL`.
    #[serde(default = "default_cases_url")]
    pub cases_url: String,
    /// `PLACEMENT_ACK_DEADLINE`: time the receiving side has to acknowledge (e.g. "72h").
    #[serde(default = "default_ack_deadline", with = "humantime_serde")]
    pub ack_deadline: Duration,
    /// `PLACEMENT_ESCALATION_INTERVAL`: how often due deadlines are looked for (e.g. "30s").
    #[serde(default = "default_escalation_interval", with = "humantime_serde")]
    pub escalation_interval: Duration,
    #[serde(skip)]
    pub common: CommonConfig,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:50053".parse().expect("valid address")
}

fn default_queue() -> String {
    "placement.referrals".into()
}

fn default_directory_url() -> String {
    "http://127.0.0.1:50051".into()
}

fn default_cases_url() -> String {
    "http://127.0.0.1:50052".into()
}

fn default_ack_deadline() -> Duration {
    Duration::from_secs(72 * 3600)
}

fn default_escalation_interval() -> Duration {
    Duration::from_secs(30)
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
        "referrals",
        &[&MIGRATOR, &placement_platform::audit::MIGRATOR],
        PRODUCER,
        shutdown.clone(),
    )
    .await?;
    let deadline = Duration::from_secs(3);
    let directory = DirectoryServiceClient::new(
        placement_platform::grpc::lazy_channel(
            &config.directory_url,
            deadline,
            infra.client_tls.as_ref(),
        )
        .map_err(StartError::Serve)?,
    );
    let cases = CaseServiceClient::new(
        placement_platform::grpc::lazy_channel(
            &config.cases_url,
            deadline,
            infra.client_tls.as_ref(),
        )
        .map_err(StartError::Serve)?,
    );
    infra
        .start_consumer(
            ConsumerSpec::new(&config.queue, capacity::BINDINGS),
            Arc::new(capacity::ServicePlaces),
        )
        .await?;
    infra.start_relay(RelaySettings::default());
    infra.spawn(deadlines::run(
        infra.pool.clone(),
        infra.outbox.clone(),
        config.escalation_interval,
        shutdown.clone(),
    ));

    let api = api::Referrals::new(
        infra.pool.clone(),
        infra.outbox.clone(),
        directory,
        cases,
        config.ack_deadline,
    );
    let routes = placement_messaging::routes![infra;
        ReferralServiceServer::new(api),
        AuditServiceServer::new(placement_platform::audit::AuditTrail {
            pool: infra.pool.clone(),
        }),
    ];
    infra.serve(listener, SERVICE_NAME, routes).await
}
