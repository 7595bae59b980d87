//! The referrals service: the placement request from a DSA to a service, usually in another district,
//! through acknowledgement, acceptance or decline, to placement; with deadlines and escalation.
//!
//! Its modules are cut by feature, each with its model (types, validation, conversions), its store (its
//! own SQL) and its use cases (transaction, audit, outbox) in `mod.rs`; a model imports no store, a store
//! no use case, and only `api` (gRPC), `events` (the consumer) and the scheduler in `deadlines` drive them.
//! Lowest first: `record` (a referral as stored, which every feature reads), `agencies` and `places` (what
//! the directory's events told), `search` (a request sent to several services at once, as stored),
//! `policy` (who may do what), `reading`, `steps`, `deadlines` and `submission`.

pub mod agencies;
pub mod api;
pub mod clock;
pub mod deadlines;
pub mod events;
pub mod places;
pub mod policy;
pub mod reading;
pub mod record;
/// The referral's rules live in the pure model; this path stays for the code that imports them from here.
pub use placement_model::referral;
pub mod search;
pub mod steps;
pub mod submission;

use std::time::Duration;

use placement_messaging::service::{Definition, GrpcApi, Kit, Service, StartError};
use placement_messaging::{EventBuilder, EventType};
use placement_platform::config::Required;
use placement_platform::services;
use placement_proto::v1::audit_service_server::AuditServiceServer;
use placement_proto::v1::{
    case_service_client::CaseServiceClient,
    directory_service_client::DirectoryServiceClient,
    referral_service_server::{self, ReferralServiceServer},
};
use serde::Deserialize;
use tonic::service::Routes;

pub(crate) const EVENTS: EventBuilder = Referrals::DEFINITION.events();

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A referral's event, timed as its step: the same instant (to the microsecond the database keeps) as the
/// step in the referral's history, so a read model built from the history and one built from the events
/// agree.
pub(crate) fn at_step(
    mut event: placement_proto::v1::EventEnvelope,
    at: chrono::DateTime<chrono::Utc>,
) -> placement_proto::v1::EventEnvelope {
    use chrono::SubsecRound;
    event.occurred_at = Some(placement_platform::time::timestamp(at.trunc_subsecs(6)));
    event
}

/// What a deployment must set for the referrals service's process, beyond the settings of every process (see
/// [`Required`]; the deploy-file test checks `deploy/k8s` against it).
pub const REQUIRED: &[Required] = &[
    placement_platform::config::BROKER,
    Required {
        names: &["PLACEMENT_DIRECTORY_URL"],
        secret: false,
        without: "the directory is looked for on this machine",
    },
    Required {
        names: &["PLACEMENT_CASES_URL"],
        secret: false,
        without: "the cases service is looked for on this machine",
    },
];

/// The referrals service's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_ACK_DEADLINE`: a fixed time the receiving side has to acknowledge (e.g. "2s" in tests);
    /// unset, the working calendar's by urgency (see `referral::TimedStep::time`).
    #[serde(default, with = "humantime_serde")]
    pub ack_deadline: Option<Duration>,
    /// `PLACEMENT_STEP_DEADLINE`: a fixed time for every later step (decision, confirmation, arrival), for
    /// tests and demos; unset, the working calendar's by urgency.
    #[serde(default, with = "humantime_serde")]
    pub step_deadline: Option<Duration>,
    /// `PLACEMENT_ESCALATION_INTERVAL`: how often due deadlines are looked for (e.g. "30s").
    #[serde(default = "default_escalation_interval", with = "humantime_serde")]
    pub escalation_interval: Duration,
    /// `PLACEMENT_TEST_CLOCK`: take each request's time from its `x-placement-test-time` metadata (tests
    /// that build a history with known timings). Refused at start unless `PLACEMENT_AUTH_MODE=development`
    /// too (see `clock`).
    #[serde(default)]
    pub test_clock: bool,
    /// `PLACEMENT_FALLBACK_HOLD`: how long an accepted offer kept as a fallback when the sender confirms
    /// another referral of the search goes on holding its places (e.g. "3days") before it is withdrawn.
    #[serde(default = "default_fallback_hold", with = "humantime_serde")]
    pub fallback_hold: Duration,
}

impl Config {
    /// The steps' times these settings ask for; a fixed time too long for a date is a bad setting.
    pub fn step_times(&self) -> Result<referral::StepTimes, StartError> {
        let fixed = |name: &str, d: Option<Duration>| {
            d.map(chrono::Duration::from_std)
                .transpose()
                .map_err(|_| StartError::Config(format!("{name}: too long")))
        };
        Ok(referral::StepTimes {
            acknowledgement: fixed("PLACEMENT_ACK_DEADLINE", self.ack_deadline)?,
            later: fixed("PLACEMENT_STEP_DEADLINE", self.step_deadline)?,
        })
    }
}

fn default_escalation_interval() -> Duration {
    Duration::from_secs(30)
}

/// Three days: long enough for the children to arrive at the place chosen (or not), short enough that a
/// service does not keep places free for a placement that is not coming.
fn default_fallback_hold() -> Duration {
    Duration::from_secs(3 * 24 * 60 * 60)
}

/// The service: referrals and their deadlines; it learns free places from directory events and asks the
/// cases service and the directory when a referral is submitted.
pub struct Referrals;

impl Service for Referrals {
    const DEFINITION: Definition = Definition {
        listed: services::REFERRALS,
        grpc: GrpcApi::Serves(referral_service_server::SERVICE_NAME),
        publishes: &[
            EventType::ReferralSubmitted,
            EventType::ReferralAcknowledged,
            EventType::ReferralAccepted,
            EventType::ReferralDeclined,
            EventType::ReferralWithdrawn,
            EventType::ReferralPlaced,
            EventType::ReferralEscalated,
            EventType::ReferralReminded,
            EventType::ReferralCourtDecisionDue,
            EventType::ReferralCourtDecisionRecorded,
            EventType::SearchExhausted,
            EventType::ReferralArrived,
            EventType::ReferralPostponed,
        ],
        migrators: &[&MIGRATOR, &placement_platform::audit::MIGRATOR],
        required: REQUIRED,
    };
    type Config = Config;

    async fn declare(config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        let directory = kit.client(services::DIRECTORY, DirectoryServiceClient::new)?;
        let cases = kit.client(services::CASES, CaseServiceClient::new)?;
        let times = config.step_times()?;
        let fallback_hold = chrono::Duration::from_std(config.fallback_hold)
            .map_err(|_| StartError::Config("PLACEMENT_FALLBACK_HOLD: too long".into()))?;
        let clock = clock::StepClock::chosen(config.test_clock, kit.common().development())
            .map_err(|e| StartError::Config(e.to_string()))?;
        if config.test_clock {
            tracing::warn!(
                "PLACEMENT_TEST_CLOCK is on: callers may date their steps; never on in production"
            );
        }
        kit.consume(events::ReferralEvents);
        kit.sample(|pool| async move {
            if let Ok(n) = deadlines::count_overdue(&pool).await {
                metrics::gauge!(placement_platform::prometheus::REFERRALS_OVERDUE).set(
                    placement_messaging::gauges::as_f64(u64::try_from(n).unwrap_or(0)),
                );
            }
        });
        kit.spawn(deadlines::run(
            kit.pool().clone(),
            kit.outbox(),
            clock.clone(),
            times,
            config.escalation_interval,
            kit.shutdown(),
        ));
        let api = api::Referrals::new(
            kit.pool().clone(),
            kit.outbox(),
            directory,
            cases,
            times,
            clock,
            fallback_hold,
        );
        Ok(placement_messaging::routes![kit;
            ReferralServiceServer::new(api),
            AuditServiceServer::new(kit.audit_trail()),
        ])
    }
}
