//! The reports service: what the coordination mechanism looks at. It learns every referral's steps from
//! the referrals' events (never from the referrals service's tables), keeps them once per version, and
//! counts from there: referrals by status, steps in a period, the time to the first response, to every
//! acknowledgement, to the decision and to the placement, and the referrals stalled now. Nothing personal:
//! ids, counts and durations.
//!
//! Its modules are its features, each with its model, its own SQL (`store`) and its use cases (`mod.rs`):
//! what it learns ([`steps`], [`agencies`], [`places`]), the [`figures`] counted from that, their
//! [`export`] as files, the [`digest`] sent to each RDSA, and the [`rebuild`] of the read model from the
//! source. `api` (gRPC) and `events` call the use cases; [`policy`] decides who may see what.

pub mod agencies;
pub mod api;
pub mod digest;
mod events;
pub mod export;
pub mod figures;
pub mod places;
pub mod policy;
pub mod rebuild;
pub mod steps;

use std::{num::NonZeroUsize, sync::Arc};

use placement_messaging::EventType;
use placement_messaging::service::{Definition, GrpcApi, Kit, Service, StartError};
use placement_platform::config::Required;
use placement_platform::services;
use placement_proto::v1::{
    directory_service_client::DirectoryServiceClient,
    referral_service_client::ReferralServiceClient,
    report_service_server::{self, ReportServiceServer},
};
use rebuild::credential::{ClientCredentials, Credential};
use serde::Deserialize;
use tonic::service::Routes;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a deployment must set for the reports service's process, beyond the settings of every process (see
/// [`Required`]; the deploy-file test checks `deploy/k8s` against it).
pub const REQUIRED: &[Required] = &[
    placement_platform::config::BROKER,
    Required {
        names: &["PLACEMENT_DIRECTORY_URL"],
        secret: false,
        without: "the directory is looked for on this machine",
    },
    Required {
        names: &["PLACEMENT_REFERRALS_URL"],
        secret: false,
        without: "the referrals service is looked for on this machine",
    },
    Required {
        names: &["PLACEMENT_REPORTS_TOKEN_URL"],
        secret: false,
        without: "the figures cannot be rebuilt from the referrals service",
    },
    Required {
        names: &["PLACEMENT_REPORTS_CLIENT_ID"],
        secret: false,
        without: "the figures cannot be rebuilt from the referrals service",
    },
    Required {
        names: &["PLACEMENT_REPORTS_CLIENT_SECRET"],
        secret: true,
        without: "the figures cannot be rebuilt from the referrals service",
    },
];

/// The reports service's own settings: its credential at the identity provider, for reading every
/// referral when it builds its figures from the referrals service.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_REPORTS_TOKEN_URL`: the identity provider's token endpoint (client-credentials grant).
    #[serde(default)]
    pub reports_token_url: Option<String>,
    /// `PLACEMENT_REPORTS_CLIENT_ID` / `PLACEMENT_REPORTS_CLIENT_SECRET`: its registration there, as the
    /// national authority with the `integration` role.
    #[serde(default)]
    pub reports_client_id: Option<String>,
    #[serde(default)]
    pub reports_client_secret: Option<String>,
    /// `PLACEMENT_REPORTS_TOKEN_RESOURCE`: the resource indicator the token is asked for.
    #[serde(default = "default_resource")]
    pub reports_token_resource: String,
    /// `PLACEMENT_REPORTS_DIGEST_AT`: when each RDSA is sent its district's digest, a weekday and a Sofia
    /// time (`MON 07:00`, the default), or `off`.
    #[serde(default = "default_digest_at")]
    pub reports_digest_at: String,
    /// `PLACEMENT_DISTRICT_REPORTS_PER_AGENCY`: district reports (and their exports) one agency has in
    /// progress at once, per instance; more wait a few seconds, then are RESOURCE_EXHAUSTED.
    #[serde(default = "default_reports_per_agency")]
    pub district_reports_per_agency: NonZeroUsize,
    /// `PLACEMENT_DISTRICT_REPORTS_CONCURRENT`: the same for every agency together (each report holds
    /// four of the instance's database connections).
    #[serde(default = "default_reports_concurrent")]
    pub district_reports_concurrent: NonZeroUsize,
}

fn default_reports_per_agency() -> NonZeroUsize {
    NonZeroUsize::MIN
}

fn default_reports_concurrent() -> NonZeroUsize {
    NonZeroUsize::new(2).expect("not zero")
}

fn default_digest_at() -> String {
    "MON 07:00".into()
}

fn default_resource() -> String {
    "urn:placement-exchange".into()
}

impl Config {
    fn credential(&self, development: bool) -> Credential {
        match (&self.reports_token_url, &self.reports_client_id) {
            (Some(url), Some(id)) => Credential::ClientCredentials(ClientCredentials::new(
                url.clone(),
                id.clone(),
                self.reports_client_secret.clone().unwrap_or_default(),
                self.reports_token_resource.clone(),
            )),
            _ if development => Credential::Development,
            _ => Credential::None,
        }
    }
}

pub struct Reports;

impl Service for Reports {
    const DEFINITION: Definition = Definition {
        listed: services::REPORTS,
        grpc: GrpcApi::Serves(report_service_server::SERVICE_NAME),
        publishes: &[EventType::DistrictDigestReady],
        migrators: &[&MIGRATOR],
        required: REQUIRED,
    };
    type Config = Config;

    async fn declare(config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        kit.consume(events::ReportEvents);
        let source = Arc::new(rebuild::Source {
            referrals: kit.client(services::REFERRALS, ReferralServiceClient::new)?,
            directory: kit.client(services::DIRECTORY, DirectoryServiceClient::new)?,
            credential: config.credential(kit.common().auth_mode == "development"),
        });
        kit.spawn(rebuild::at_start(
            source.clone(),
            kit.pool().clone(),
            kit.shutdown(),
        ));
        let schedule: digest::Schedule = config
            .reports_digest_at
            .parse()
            .map_err(|e: digest::ScheduleError| StartError::Config(e.to_string()))?;
        let outbox = kit.outbox();
        kit.spawn(digest::on_schedule(
            kit.pool().clone(),
            outbox.clone(),
            schedule,
            kit.shutdown(),
        ));
        let limits = api::DistrictReportLimits::new(
            config.district_reports_per_agency,
            config.district_reports_concurrent,
        );
        let api = api::ReportApi::new(kit.pool().clone(), source, outbox, limits);
        Ok(placement_messaging::routes![kit; ReportServiceServer::new(api)])
    }
}
