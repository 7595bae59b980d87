//! Configuration from `PLACEMENT_*` environment variables, with local defaults.

use serde::{Deserialize, de::DeserializeOwned};

pub use config::ConfigError;

/// Reads `T` from the environment variables prefixed `PLACEMENT_` (e.g. `PLACEMENT_DATABASE_URL`
/// fills `database_url`). Fields not set keep their serde defaults. Durations take a unit ("72h", "500ms").
pub fn from_env<T: DeserializeOwned>() -> Result<T, config::ConfigError> {
    Variables::Environment.read()
}

/// Where a service's settings are read: the process's environment, or variables of its own. The tests
/// run several stacks of services in one process, each service with settings of its own, and a process
/// has one environment.
#[derive(Debug, Clone, Default)]
pub enum Variables {
    #[default]
    Environment,
    Given(std::sync::Arc<std::collections::BTreeMap<String, String>>),
}

impl Variables {
    /// These variables alone (of a name given twice, the last value).
    pub fn given(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Variables::Given(std::sync::Arc::new(pairs.into_iter().collect()))
    }

    /// The value of the variable `name`, if it is set.
    pub fn get(&self, name: &str) -> Option<String> {
        match self {
            Variables::Environment => std::env::var(name).ok(),
            Variables::Given(vars) => vars.get(name).cloned(),
        }
    }

    /// Reads `T` as [`from_env`] does, from these variables.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, config::ConfigError> {
        let mut source = config::Environment::with_prefix("PLACEMENT")
            .prefix_separator("_")
            .try_parsing(true);
        if let Variables::Given(vars) = self {
            source = source.source(Some(
                vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ));
        }
        config::Config::builder()
            .add_source(source)
            .build()?
            .try_deserialize()
    }
}

/// Settings every service shares.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonConfig {
    /// `PLACEMENT_DATABASE_URL`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// `PLACEMENT_DATABASE_OWNER_URL`: the role that owns the service's schema. When set, the schema is
    /// created and migrated as this role, which then grants `PLACEMENT_DATABASE_URL`'s role (the runtime
    /// role) only what serving needs; the process serves as the runtime role alone. Unset (development),
    /// the one role does both.
    #[serde(default)]
    pub database_owner_url: Option<String>,
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
    /// `PLACEMENT_AUDITED_READS_PER_AGENCY`: reads of cases and referrals of one agency recorded in the
    /// audit trail at once (each waits for the trail's head); more wait briefly, then are
    /// RESOURCE_EXHAUSTED.
    #[serde(default = "crate::audit::default_reads_per_agency")]
    pub audited_reads_per_agency: std::num::NonZeroUsize,
}

impl CommonConfig {
    /// The owner's URL, when one is given (a blank value, as an optional Secret may leave, is none).
    pub fn database_owner_url(&self) -> Option<&str> {
        self.database_owner_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
    }

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
            database_owner_url: None,
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
            audited_reads_per_agency: crate::audit::default_reads_per_agency(),
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

/// A setting a deployment must give a process, because its local default is wrong anywhere but on a
/// developer's machine. Each process lists what it needs (the [`COMMON_REQUIRED`] and its own, beside its
/// `Config`), warns at start of every one unset outside development mode, and the deploy-file test
/// (`tests/e2e/deploy_files.rs`) checks that each Deployment in `deploy/k8s` sets them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Required {
    /// The variable, or its alternatives (any one suffices); `<NAME>` stands for the process's name
    /// (`PLACEMENT_<NAME>_LISTEN_ADDR`).
    pub names: &'static [&'static str],
    /// Whether its value must come from a Secret: a key, a password or a URL that may carry one.
    pub secret: bool,
    /// What goes wrong without it, for the warning.
    pub without: &'static str,
}

impl Required {
    /// Its variables' names for the process `listed`.
    pub fn names_for(&self, listed: crate::services::Listed) -> Vec<String> {
        let name = listed.name.to_uppercase();
        self.names
            .iter()
            .map(|n| n.replace("<NAME>", &name))
            .collect()
    }

    /// Whether `lookup` (e.g. the process's environment) gives it a value that is not blank.
    pub fn is_set(
        &self,
        listed: crate::services::Listed,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> bool {
        self.names_for(listed)
            .iter()
            .any(|n| lookup(n).is_some_and(|v| !v.trim().is_empty()))
    }
}

/// The broker, for every process that consumes or publishes events (the web app does neither, and is not
/// given the broker's credentials).
pub const BROKER: Required = Required {
    names: &["PLACEMENT_AMQP_URL"],
    secret: true,
    without: "the local broker is used, as guest",
};

/// What every process needs from a deployment.
pub const COMMON_REQUIRED: &[Required] = &[
    Required {
        names: &["PLACEMENT_DATABASE_URL"],
        secret: true,
        without: "the local development database is used",
    },
    Required {
        names: &["PLACEMENT_<NAME>_LISTEN_ADDR"],
        secret: false,
        without: "the API is served on 127.0.0.1 only",
    },
    Required {
        names: &["PLACEMENT_<NAME>_METRICS_ADDR", "PLACEMENT_METRICS_ADDR"],
        secret: false,
        without: "metrics and the probes' /readyz are served on 127.0.0.1 only",
    },
    Required {
        names: &["PLACEMENT_AUTH_JWKS_URI", "PLACEMENT_AUTH_JWKS_FILE"],
        secret: false,
        without: "no token can be verified",
    },
    Required {
        names: &["PLACEMENT_AUTH_ISSUER"],
        secret: false,
        without: "only tokens of the development issuer are taken",
    },
    Required {
        names: &["PLACEMENT_TLS_CERT"],
        secret: false,
        without: "no mutual TLS",
    },
    Required {
        names: &["PLACEMENT_TLS_KEY"],
        secret: false,
        without: "no mutual TLS",
    },
    Required {
        names: &["PLACEMENT_TLS_CA"],
        secret: false,
        without: "no mutual TLS",
    },
    Required {
        names: &["PLACEMENT_DATABASE_OWNER_URL"],
        secret: true,
        without: "the role the process serves as owns its schema: it may alter, empty or drop any table, the audit trail's too",
    },
];

/// Every setting of `own` and [`COMMON_REQUIRED`] that `lookup` leaves unset, for the process `listed`.
pub fn unset(
    listed: crate::services::Listed,
    own: &[Required],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Required> {
    COMMON_REQUIRED
        .iter()
        .chain(own)
        .filter(|r| !r.is_set(listed, &lookup))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services;

    #[test]
    fn a_required_setting_is_set_by_any_of_its_names_for_the_process() {
        let metrics = COMMON_REQUIRED[2];
        assert_eq!(
            metrics.names_for(services::REPORTS),
            ["PLACEMENT_REPORTS_METRICS_ADDR", "PLACEMENT_METRICS_ADDR"]
        );
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                set.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(metrics.is_set(
            services::REPORTS,
            env(&[("PLACEMENT_METRICS_ADDR", "0.0.0.0:9100")])
        ));
        assert!(!metrics.is_set(services::REPORTS, env(&[("PLACEMENT_METRICS_ADDR", " ")])));
        assert!(!metrics.is_set(
            services::CASES,
            env(&[("PLACEMENT_REPORTS_METRICS_ADDR", "0.0.0.0:9100")])
        ));
        let own = [Required {
            names: &["PLACEMENT_SMTP_URL"],
            secret: true,
            without: "e-mails wait",
        }];
        let missing = unset(
            services::NOTIFICATIONS,
            &own,
            env(&[("PLACEMENT_DATABASE_URL", "x")]),
        );
        assert!(missing.contains(&own[0]));
        assert!(missing.contains(&COMMON_REQUIRED[1]));
        assert!(!missing.contains(&COMMON_REQUIRED[0]));
        assert!(!missing.contains(&BROKER), "not asked for");
    }

    #[test]
    fn given_variables_are_read_alone_as_the_environment_would_be() {
        let given = Variables::given([
            (
                "PLACEMENT_DATABASE_MAX_CONNECTIONS".to_string(),
                "3".to_string(),
            ),
            (
                "PLACEMENT_METRICS_INTERVAL".to_string(),
                "250ms".to_string(),
            ),
            ("PLACEMENT_EXCHANGE".to_string(), "first".to_string()),
            ("PLACEMENT_EXCHANGE".to_string(), "last".to_string()),
        ]);
        let common: CommonConfig = given.read().expect("settings");
        assert_eq!(common.database_max_connections, 3);
        assert_eq!(
            common.metrics_interval,
            std::time::Duration::from_millis(250)
        );
        assert_eq!(
            common.exchange, "last",
            "a name given twice takes its last value"
        );
        assert_eq!(
            common.auth_mode, "jwt",
            "what is not given keeps its default"
        );
        assert_eq!(given.get("PLACEMENT_EXCHANGE").as_deref(), Some("last"));
        assert_eq!(
            given.get("PATH"),
            None,
            "the process's environment is not read"
        );
        let bad = Variables::given([(
            "PLACEMENT_DATABASE_MAX_CONNECTIONS".to_string(),
            "many".to_string(),
        )]);
        assert!(bad.read::<CommonConfig>().is_err());
    }
}
