//! The cases service: a child's case (or a sibling group's), owned by one DSA, pseudonymised.
//! Personal data never leaves it: events carry ids and counts only.
//!
//! Whether the caller is a DSA is asked of the directory (a gRPC lookup with a deadline) when a case is
//! opened: it is rare, must be current, and a stale local copy would let a just-registered DSA wait.
//! Placements are learnt from referral events (see [`placements`]).
//!
//! Its modules are its features, each with its model, its own SQL (`store`) and its use cases (`mod.rs`):
//! [`cases`] (open, read, list, close) and [`placements`]. `api` (gRPC) and `events` call the use cases;
//! [`policy`] decides who may do what.

pub mod api;
pub mod cases;
pub mod events;
pub mod placements;
pub mod policy;

use placement_messaging::service::{Definition, GrpcApi, Kit, Service, StartError};
use placement_messaging::{EventBuilder, EventType};
use placement_platform::config::Required;
use placement_platform::services;
use placement_proto::v1::audit_service_server::AuditServiceServer;
use placement_proto::v1::{
    case_service_server::{self, CaseServiceServer},
    directory_service_client::DirectoryServiceClient,
};
use serde::Deserialize;
use tonic::service::Routes;

pub(crate) const EVENTS: EventBuilder = Cases::DEFINITION.events();

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a deployment must set for the cases service's process, beyond the settings of every process (see
/// [`Required`]; the deploy-file test checks `deploy/k8s` against it).
pub const REQUIRED: &[Required] = &[
    placement_platform::config::BROKER,
    Required {
        names: &["PLACEMENT_DATA_KEY"],
        secret: true,
        without: "children's names and personal numbers are refused",
    },
    Required {
        names: &["PLACEMENT_DIRECTORY_URL"],
        secret: false,
        without: "the directory is looked for on this machine",
    },
];

/// The cases service's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_DATA_KEY`: 32 bytes in base64, the AES-256-GCM key children's names and personal numbers
    /// are sealed with. Without it they are refused.
    #[serde(default)]
    pub data_key: Option<String>,
}

/// The service: cases, their children sealed, and their placements learnt from referral events.
pub struct Cases;

impl Service for Cases {
    const DEFINITION: Definition = Definition {
        listed: services::CASES,
        grpc: GrpcApi::Serves(case_service_server::SERVICE_NAME),
        publishes: &[
            EventType::CaseOpened,
            EventType::CasePlaced,
            EventType::CaseClosed,
        ],
        migrators: &[&MIGRATOR, &placement_platform::audit::MIGRATOR],
        required: REQUIRED,
    };
    type Config = Config;

    async fn declare(config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        let directory = kit.client(services::DIRECTORY, DirectoryServiceClient::new)?;
        kit.consume(events::CaseEvents);
        let sealer = match &config.data_key {
            Some(key) => Some(
                cases::personal::Sealer::from_base64(key)
                    .map_err(|e| StartError::Config(format!("PLACEMENT_DATA_KEY: {e}")))?,
            ),
            None => {
                tracing::warn!(
                    "PLACEMENT_DATA_KEY is not set: children's names and personal numbers will be refused"
                );
                None
            }
        };
        let api = api::Cases::new(kit.pool().clone(), kit.outbox(), directory, sealer);
        Ok(placement_messaging::routes![kit;
            CaseServiceServer::new(api),
            AuditServiceServer::new(kit.audit_trail()),
        ])
    }
}
