//! Configuration from `PLACEMENT_*` environment variables, with local defaults.

use serde::{Deserialize, de::DeserializeOwned};

pub use config::ConfigError;

/// Reads `T` from the environment variables prefixed `PLACEMENT_` (e.g. `PLACEMENT_DATABASE_URL`
/// fills `database_url`). Fields not set keep their serde defaults. Durations take a unit ("72h", "500ms").
pub fn from_env<T: DeserializeOwned>() -> Result<T, config::ConfigError> {
    config::Config::builder()
        .add_source(
            config::Environment::with_prefix("PLACEMENT")
                .prefix_separator("_")
                .try_parsing(true),
        )
        .build()?
        .try_deserialize()
}

/// Settings every service shares.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonConfig {
    /// `PLACEMENT_DATABASE_URL`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// `PLACEMENT_DATABASE_MAX_CONNECTIONS`.
    #[serde(default = "default_db_max_connections")]
    pub database_max_connections: u32,
    /// `PLACEMENT_DATABASE_ACQUIRE_TIMEOUT`: how long a call waits for a database connection before it
    /// fails with UNAVAILABLE (e.g. while PostgreSQL restarts).
    #[serde(default = "default_acquire_timeout", with = "humantime_serde")]
    pub database_acquire_timeout: std::time::Duration,
    /// `PLACEMENT_AMQP_URL`.
    #[serde(default = "default_amqp_url")]
    pub amqp_url: String,
    /// `PLACEMENT_EXCHANGE`: the topic exchange every event goes through.
    #[serde(default = "default_exchange")]
    pub exchange: String,
    /// `PLACEMENT_WEBHOOK_SECRET_KEY`: the key the directory and the notifications service derive every
    /// webhook's signing secret from (see `webhook::derive_secret`). Same value in both; the default is for
    /// development only and is logged as such.
    #[serde(default = "default_webhook_key")]
    pub webhook_secret_key: String,
    /// `PLACEMENT_AUTH_MODE`: `jwt` (bearer tokens, the default) or `development` (also accepts the
    /// `x-agency-id` header; logged as a warning at start).
    #[serde(default = "default_auth_mode")]
    pub auth_mode: String,
    /// `PLACEMENT_AUTH_JWKS_FILE`: the public keys tokens are verified with (a JWKS of Ed25519 or P-256 keys).
    #[serde(default)]
    pub auth_jwks_file: Option<String>,
    /// `PLACEMENT_AUTH_JWKS_URI`: the identity provider's `jwks_uri` (its OpenID configuration names it):
    /// fetched at start and again when a token names a key not seen yet. May be set with the file: the
    /// keys of both are trusted.
    #[serde(default)]
    pub auth_jwks_uri: Option<String>,
    /// `PLACEMENT_AUTH_ISSUER`: the `iss` every token must carry; several, comma-separated, when tokens
    /// come from more than one issuer (the identity provider and the exchange's own signer).
    #[serde(default = "default_issuer")]
    pub auth_issuer: String,
    /// `PLACEMENT_AUTH_AUDIENCE`: the `aud` every token must carry.
    #[serde(default = "default_audience")]
    pub auth_audience: String,
    /// `PLACEMENT_GRPC_REFLECTION`: serve gRPC reflection; default on in development mode only.
    #[serde(default)]
    pub grpc_reflection: Option<bool>,
    /// `PLACEMENT_TLS_CERT`: this service's certificate chain (PEM), presented to callers and, as a client,
    /// to the services it calls. Required, with the key and the CA, outside development mode.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// `PLACEMENT_TLS_KEY`: its private key (PEM).
    #[serde(default)]
    pub tls_key: Option<String>,
    /// `PLACEMENT_TLS_CA`: the CA (PEM) every caller's client certificate and every called service's
    /// certificate must chain to.
    #[serde(default)]
    pub tls_ca: Option<String>,
    /// `PLACEMENT_METRICS_INTERVAL`: how often the gauges (outbox, queue, pool, …) are sampled.
    #[serde(default = "default_metrics_interval", with = "humantime_serde")]
    pub metrics_interval: std::time::Duration,
}

impl CommonConfig {
    pub fn development(&self) -> bool {
        self.auth_mode == "development"
    }

    pub fn auth(&self) -> Result<crate::caller::AuthSettings, crate::caller::AuthError> {
        if !matches!(self.auth_mode.as_str(), "jwt" | "development") {
            return Err(crate::caller::AuthError::Mode(self.auth_mode.clone()));
        }
        Ok(crate::caller::AuthSettings {
            development: self.development(),
            jwks_file: self.auth_jwks_file.clone(),
            jwks_uri: self.auth_jwks_uri.clone(),
            issuer: self.auth_issuer.clone(),
            audience: self.auth_audience.clone(),
        })
    }

    pub fn reflection(&self) -> bool {
        self.grpc_reflection.unwrap_or(self.development())
    }
}

impl Default for CommonConfig {
    fn default() -> Self {
        Self {
            database_url: default_database_url(),
            database_max_connections: default_db_max_connections(),
            database_acquire_timeout: default_acquire_timeout(),
            amqp_url: default_amqp_url(),
            exchange: default_exchange(),
            webhook_secret_key: default_webhook_key(),
            auth_mode: default_auth_mode(),
            auth_jwks_file: None,
            auth_jwks_uri: None,
            auth_issuer: default_issuer(),
            auth_audience: default_audience(),
            grpc_reflection: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            metrics_interval: default_metrics_interval(),
        }
    }
}

fn default_database_url() -> String {
    "postgres://placement:placement@127.0.0.1:5432/placement".into()
}

fn default_db_max_connections() -> u32 {
    10
}

fn default_acquire_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(2)
}

fn default_metrics_interval() -> std::time::Duration {
    std::time::Duration::from_secs(5)
}

fn default_amqp_url() -> String {
    "amqp://guest:guest@127.0.0.1:5672/%2f".into()
}

fn default_exchange() -> String {
    "placement.events".into()
}

pub const DEVELOPMENT_WEBHOOK_KEY: &str = "development-only-webhook-secret-key";

fn default_webhook_key() -> String {
    DEVELOPMENT_WEBHOOK_KEY.into()
}

fn default_auth_mode() -> String {
    "jwt".into()
}

fn default_issuer() -> String {
    "placement-exchange".into()
}

fn default_audience() -> String {
    "placement-exchange".into()
}
