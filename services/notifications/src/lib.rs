//! The notifications service: every agency concerned by a referral event is told, once, in its in-app
//! inbox and by the e-mail addresses and webhooks it registered in the directory; `WatchNotifications`
//! streams the inbox as it fills, and every delivery's status is kept (see [`deliveries`]).
//!
//! Modules by feature, each with its model (types, wording, conversions), its store (its own SQL) and its
//! use cases: [`referrals`] and [`digest`] tell agencies in their [`inbox`], [`deliveries`] carry what
//! they are told by e-mail and webhook to the [`endpoints`] copied from the directory. [`api`] (gRPC) and
//! [`events`] (the consumer) call the use cases; [`channel`], [`policy`] and [`signature`] are shared.

pub mod api;
pub mod channel;
pub mod deliveries;
pub mod digest;
pub mod endpoints;
pub mod events;
pub mod inbox;
pub mod names;
pub mod policy;
pub mod referrals;
pub mod searches;
pub mod signature;

use std::{num::NonZeroUsize, sync::Arc, time::Duration};

use placement_messaging::EventType;
use placement_messaging::service::{Definition, GrpcApi, Kit, Service, StartError};
use placement_platform::config::Required;
use placement_platform::services;
use placement_proto::v1::notification_service_server::{self, NotificationServiceServer};
use serde::Deserialize;
use tonic::service::Routes;

use crate::deliveries::{
    FanOut,
    dispatch::{DispatchSettings, Dispatcher},
    model::RetryPolicy,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a deployment must set for the notifications service's process, beyond the settings of every process (see
/// [`Required`]; the deploy-file test checks `deploy/k8s` against it).
pub const REQUIRED: &[Required] = &[
    placement_platform::config::BROKER,
    Required {
        names: &["PLACEMENT_WEBHOOK_SECRET_KEY"],
        secret: true,
        without: "webhooks are signed with secrets from the development key",
    },
    Required {
        names: &["PLACEMENT_SMTP_URL"],
        secret: true,
        without: "no e-mail is sent: e-mail deliveries wait as PENDING",
    },
    Required {
        names: &["PLACEMENT_SMTP_FROM"],
        secret: false,
        without: "e-mails come from an .invalid address",
    },
    Required {
        names: &["PLACEMENT_PUBLIC_URL"],
        secret: false,
        without: "links in e-mails point at localhost",
    },
];

/// The notifications service's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_SMTP_URL`: e.g. `smtp://127.0.0.1:25`, `smtp://mail.example:587?tls=required` (STARTTLS),
    /// `smtps://mail.example:465`, with `user:password@` if the server wants it. Unset: no e-mail is sent
    /// (e-mail deliveries wait as PENDING).
    #[serde(default)]
    pub smtp_url: Option<String>,
    /// `PLACEMENT_SMTP_FROM`.
    #[serde(default = "default_from")]
    pub smtp_from: String,
    /// `PLACEMENT_PUBLIC_URL`: the web address links in e-mails start with.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// `PLACEMENT_DELIVERY_RETRY_INITIAL`: delay after a delivery's first failure; doubles on each.
    #[serde(default = "default_retry_initial", with = "humantime_serde")]
    pub delivery_retry_initial: Duration,
    /// `PLACEMENT_DELIVERY_RETRY_MAX`: longest delay between attempts.
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    pub delivery_retry_max: Duration,
    /// `PLACEMENT_DELIVERY_RETRY_WINDOW`: how long a delivery is retried before it fails and its endpoint is
    /// disabled.
    #[serde(default = "default_retry_window", with = "humantime_serde")]
    pub delivery_retry_window: Duration,
    /// `PLACEMENT_DELIVERY_POLL_INTERVAL`: how often due retries are looked for (new deliveries go at once).
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub delivery_poll_interval: Duration,
    /// `PLACEMENT_DELIVERY_TIMEOUT`: how long one webhook call or SMTP exchange may take.
    #[serde(default = "default_delivery_timeout", with = "humantime_serde")]
    pub delivery_timeout: Duration,
    /// `PLACEMENT_DELIVERY_CONCURRENCY`: deliveries in flight per instance.
    #[serde(default = "default_concurrency")]
    pub delivery_concurrency: usize,
    /// `PLACEMENT_WEBHOOK_ALLOWED_HOSTS`: internal hosts (comma-separated, each `host` or `host:port`)
    /// webhooks may be delivered to; every other host must resolve outside any network.
    #[serde(default)]
    pub webhook_allowed_hosts: String,
    /// `PLACEMENT_WATCH_STREAMS_PER_AGENCY`: WatchNotifications streams one agency keeps open at once, per
    /// instance; more are RESOURCE_EXHAUSTED.
    #[serde(default = "default_streams_per_agency")]
    pub watch_streams_per_agency: NonZeroUsize,
    /// `PLACEMENT_WATCH_STREAMS_PER_PERSON`: the same for one person (a token's subject) of an agency.
    #[serde(default = "default_streams_per_person")]
    pub watch_streams_per_person: NonZeroUsize,
}

fn default_streams_per_agency() -> NonZeroUsize {
    NonZeroUsize::new(20).expect("not zero")
}

fn default_streams_per_person() -> NonZeroUsize {
    NonZeroUsize::new(5).expect("not zero")
}

fn default_from() -> String {
    "Placement Exchange <no-reply@placement-exchange.invalid>".into()
}

fn default_public_url() -> String {
    "http://localhost:8080".into()
}

fn default_retry_initial() -> Duration {
    Duration::from_secs(30)
}

fn default_retry_max() -> Duration {
    Duration::from_secs(3600)
}

fn default_retry_window() -> Duration {
    Duration::from_secs(26 * 3600)
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}

fn default_delivery_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_concurrency() -> usize {
    16
}

impl Config {
    fn dispatch_settings(&self, webhook_key: String) -> DispatchSettings {
        DispatchSettings {
            smtp_url: self.smtp_url.clone(),
            smtp_from: self.smtp_from.clone(),
            webhook_timeout: self.delivery_timeout,
            poll_interval: self.delivery_poll_interval,
            concurrency: self.delivery_concurrency,
            webhook_key,
            webhook_allowed_hosts: self.webhook_allowed_hosts.clone(),
        }
    }

    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            initial: self.delivery_retry_initial,
            max: self.delivery_retry_max,
            window: self.delivery_retry_window,
        }
    }

    /// The retry schedule with the defaults.
    pub fn default_retry() -> RetryPolicy {
        RetryPolicy {
            initial: default_retry_initial(),
            max: default_retry_max(),
            window: default_retry_window(),
        }
    }
}

/// The service: inboxes, e-mail and webhook deliveries, from referral and directory events.
pub struct Notifications;

impl Service for Notifications {
    const DEFINITION: Definition = Definition {
        listed: services::NOTIFICATIONS,
        grpc: GrpcApi::Serves(notification_service_server::SERVICE_NAME),
        // For the directory, when deliveries to an endpoint kept failing.
        publishes: &[EventType::NotificationEndpointDisabled],
        migrators: &[&MIGRATOR],
        required: REQUIRED,
    };
    type Config = Config;

    async fn declare(config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        let webhook_key = kit.webhook_key();
        let (arrivals, _) = tokio::sync::broadcast::channel(1024);
        let wake = Arc::new(tokio::sync::Notify::new());
        let fan_out = FanOut {
            public_url: config.public_url.clone(),
            retry: config.retry(),
        };
        let dispatcher = Dispatcher::new(
            kit.pool().clone(),
            kit.outbox(),
            fan_out.clone(),
            config.dispatch_settings(webhook_key),
            wake.clone(),
            arrivals.clone(),
        )
        .map_err(|e| StartError::Config(e.to_string()))?;
        let streams = inbox::watch::WatchLimits::new(
            config.watch_streams_per_agency,
            config.watch_streams_per_person,
        );
        kit.consume(events::Intake {
            arrivals: arrivals.clone(),
            watching: streams.watching(),
            deliveries: wake.clone(),
            fan_out,
        });
        kit.spawn(Arc::new(dispatcher).run(kit.shutdown()));
        kit.sample(deliveries::sample_pending);
        let api = api::Notifications::new(
            kit.pool().clone(),
            arrivals,
            wake,
            config.retry().window,
            streams,
            kit.shutdown(),
        );
        Ok(placement_messaging::routes![kit;
            NotificationServiceServer::new(api),
        ])
    }
}
