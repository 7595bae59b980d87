//! The staff's web app: server-rendered pages through which caseworkers, providers, foster-care teams and
//! RDSAs answer referrals. People sign in through OpenID Connect (authorization code with PKCE); every page
//! calls the services over gRPC **as the signed-in person**, forwarding their access token, so the web app
//! has no power the services do not grant them. It reads no other service's tables: its own schema holds
//! only sessions (a sign-in under way is kept in the browser's cookie).
//!
//! Every action is a plain HTML form (no script needed); `static/app.js` adds the live inbox (server-sent
//! events fed by `WatchNotifications`).

mod charts;
mod error;
#[cfg(test)]
mod glossary;
mod i18n;
mod names;
mod oidc;
mod pages;
mod pending_sign_in;
mod remembered;
mod security;
mod session;
mod store;
mod views;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use placement_messaging::service::Traced;
use placement_messaging::service::{Definition, GrpcApi, Kit, Service, StartError};
use placement_platform::{caller::Verifier, config::Required, services};
use placement_proto::v1::{
    case_service_client::CaseServiceClient, directory_service_client::DirectoryServiceClient,
    notification_service_client::NotificationServiceClient,
    referral_service_client::ReferralServiceClient, report_service_client::ReportServiceClient,
};
use serde::Deserialize;
use sqlx::PgPool;
use tonic::service::Routes;

pub use error::WebError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What a deployment must set for the web app's process, beyond the settings of every process (see
/// [`Required`]; the deploy-file test checks `deploy/k8s` against it).
pub const REQUIRED: &[Required] = &[
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
    Required {
        names: &["PLACEMENT_REFERRALS_URL"],
        secret: false,
        without: "the referrals service is looked for on this machine",
    },
    Required {
        names: &["PLACEMENT_NOTIFICATIONS_URL"],
        secret: false,
        without: "the notifications service is looked for on this machine",
    },
    Required {
        names: &["PLACEMENT_REPORTS_URL"],
        secret: false,
        without: "the reports service is looked for on this machine",
    },
    Required {
        names: &["PLACEMENT_WEB_HTTP_ADDR"],
        secret: false,
        without: "the pages are served on 127.0.0.1 only",
    },
    Required {
        names: &["PLACEMENT_PUBLIC_URL"],
        secret: false,
        without: "sign-in sends people back to localhost",
    },
    Required {
        names: &["PLACEMENT_OIDC_ISSUER"],
        secret: false,
        without: "people are sent to sign in at a provider on this machine",
    },
    Required {
        names: &["PLACEMENT_OIDC_CLIENT_ID"],
        secret: false,
        without: "the web app signs in as the development client",
    },
    Required {
        names: &["PLACEMENT_OIDC_CLIENT_SECRET"],
        secret: true,
        without: "sign-in fails at the provider",
    },
];

/// The web app's own settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `PLACEMENT_WEB_HTTP_ADDR`: where the pages are served.
    #[serde(default = "default_http_addr")]
    pub web_http_addr: SocketAddr,
    /// `PLACEMENT_PUBLIC_URL`: the address people reach the app at (the links in e-mails start with it,
    /// and the identity provider sends people back to `<it>/auth/callback`, and after signing out to
    /// `<it>/signed-out`). `https://` makes the session and sign-in cookies `Secure` and `__Host-`, and
    /// adds Strict-Transport-Security.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// `PLACEMENT_OIDC_ISSUER`: the identity provider (its `/.well-known/openid-configuration` is read).
    #[serde(default = "default_issuer")]
    pub oidc_issuer: String,
    /// `PLACEMENT_OIDC_CLIENT_ID` / `PLACEMENT_OIDC_CLIENT_SECRET`: the web app's registration there.
    #[serde(default = "default_client_id")]
    pub oidc_client_id: String,
    #[serde(default)]
    pub oidc_client_secret: String,
    /// `PLACEMENT_OIDC_RESOURCE`: the resource indicator the access tokens are asked for (RFC 8707).
    #[serde(default = "default_resource")]
    pub oidc_resource: String,
    /// `PLACEMENT_WEB_SESSION_IDLE`: a session unused this long ends.
    #[serde(default = "default_idle", with = "humantime_serde")]
    pub web_session_idle: Duration,
    /// `PLACEMENT_WEB_SESSION_MAX`: a session ends this long after sign-in, used or not.
    #[serde(default = "default_max", with = "humantime_serde")]
    pub web_session_max: Duration,
}

fn default_http_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_public_url() -> String {
    "http://localhost:8080".into()
}
fn default_issuer() -> String {
    "http://127.0.0.1:8090".into()
}
fn default_client_id() -> String {
    "placement-web".into()
}
fn default_resource() -> String {
    "urn:placement-exchange".into()
}
fn default_idle() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_max() -> Duration {
    Duration::from_secs(12 * 3600)
}

/// The clients of the four services, each call made with the signed-in person's token.
#[derive(Clone)]
pub(crate) struct Clients {
    pub directory: DirectoryServiceClient<Traced>,
    pub cases: CaseServiceClient<Traced>,
    pub referrals: ReferralServiceClient<Traced>,
    pub notifications: NotificationServiceClient<Traced>,
    pub reports: ReportServiceClient<Traced>,
}

/// What every request handler shares.
pub(crate) struct App {
    pub config: Config,
    pub pool: PgPool,
    pub verifier: Arc<Verifier>,
    pub clients: Clients,
    pub oidc: oidc::OpenId,
    /// Agencies' and services' names already read, by id.
    pub names: remembered::Remembered<String, names::Names>,
    /// Agencies' kinds and districts already read, by id (who sees the figures page, for which district).
    pub standings: remembered::Remembered<uuid::Uuid, pages::Standing>,
    /// Cancelled on shutdown: ends the live inbox streams, so the server can drain.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl App {
    /// The session cookie is `Secure` (the app is reached over HTTPS).
    pub fn secure_cookie(&self) -> bool {
        self.config.public_url.starts_with("https://")
    }
}

pub(crate) type AppState = Arc<App>;

/// The web app, declared on the service template.
pub struct Web;

impl Service for Web {
    const DEFINITION: Definition = Definition {
        listed: services::WEB,
        // Its pages are served over HTTP: this port serves health, reflection and the operator's API.
        grpc: GrpcApi::NotServed,
        publishes: &[],
        migrators: &[&MIGRATOR],
        required: REQUIRED,
    };
    type Config = Config;

    async fn declare(config: Config, kit: &mut Kit) -> Result<Routes, StartError> {
        let clients = Clients {
            directory: kit.client(services::DIRECTORY, DirectoryServiceClient::new)?,
            cases: kit.client(services::CASES, CaseServiceClient::new)?,
            referrals: kit.client(services::REFERRALS, ReferralServiceClient::new)?,
            notifications: kit.client(services::NOTIFICATIONS, NotificationServiceClient::new)?,
            reports: kit.client(services::REPORTS, ReportServiceClient::new)?,
        };
        let addr = config.web_http_addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let shutdown = kit.shutdown();
        let app = Arc::new(App {
            names: Default::default(),
            standings: Default::default(),
            shutdown: shutdown.clone(),
            oidc: oidc::OpenId::new(&config).map_err(|e| StartError::Config(e.to_string()))?,
            config,
            pool: kit.pool().clone(),
            verifier: kit.auth().0,
            clients,
        });
        if !app.secure_cookie() {
            tracing::warn!(public_url = %app.config.public_url, "served over plain HTTP: the session cookie is not Secure; only for development");
        }
        tracing::info!(%addr, "serving pages");
        kit.spawn(session::sweep(app.clone(), shutdown.clone()));
        kit.spawn(async move {
            let served = axum::serve(listener, pages::router(app))
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });
        Ok(Routes::default())
    }
}
