//! The reports service: what the coordination mechanism looks at. It learns every referral's steps from
//! the referrals' events (never from the referrals service's tables), keeps them once per version, and
//! counts from there: referrals by status, steps in a period, the time to the first response, to every
//! acknowledgement, to the decision and to the placement, and the referrals stalled now. Nothing personal:
//! ids, counts and durations.

pub mod api;
pub mod figures;
pub mod policy;
mod steps;
mod store;

use placement_messaging::service::{Definition, Kit, Service, StartError};
use placement_platform::services;
use placement_proto::v1::report_service_server::ReportServiceServer;
use serde::Deserialize;
use tonic::service::Routes;

pub const SERVICE_NAME: &str = "placement.v1.ReportService";
pub const PRODUCER: &str = "placement-reports";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The reports service has no settings of its own yet.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {}

pub struct Reports;

impl Service for Reports {
    const DEFINITION: Definition = Definition {
        listed: services::REPORTS,
        grpc_name: SERVICE_NAME,
        producer: PRODUCER,
        migrators: &[&MIGRATOR],
    };
    type Config = Config;

    async fn declare(_config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        kit.consume(steps::BINDINGS, steps::ReferralSteps);
        let api = api::ReportApi::new(kit.pool.clone());
        Ok(placement_messaging::routes![kit; ReportServiceServer::new(api)])
    }
}
