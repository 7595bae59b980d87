//! The configuration reference: every `PLACEMENT_*` variable some part of the exchange reads (a service,
//! the web app, the command line, a script in `deploy/` or the tests), and the warning a process gives at
//! start for each one in its environment that none of them reads. Settings are read through serde, which
//! skips what no field takes, so without the warning a misspelt variable (`PLACEMENT_DATABSE_URL`) is
//! silently ignored and its default used.
//!
//! A process warns only of names that no part of the exchange reads, not of those another process reads:
//! deployments, the scripts and the test harness give one environment to several processes (the harness
//! sets the notifications' delivery settings for every service), and a warning for each of those would teach
//! operators to overlook the one that matters.
//!
//! The variables Kubernetes gives a pod for each Service of its namespace are not warned of either: the
//! database's and the broker's Services are named `placement-…` (`PLACEMENT_DB_RW_SERVICE_HOST`).
//!
//! The names come from the settings' structs where there is one ([`fields_of`]), and from the lists here
//! where a variable is read by its name. The lists cannot drift: the unit tests of `check` compare every
//! name here with the names the code, the scripts and the tests use and with the table in
//! `docs/configuration.md`, and each process's `Config` (as its source says) with its entry in [`OWN`];
//! `tests/e2e/config_reference.rs` compares the latter as serde reads them.

use std::collections::BTreeSet;

use serde::de::{self, DeserializeOwned, Visitor};

use crate::services::{self, Listed};

/// What every setting's name starts with.
pub const PREFIX: &str = "PLACEMENT_";

/// Each process's own settings: the fields of its `Config` (`PLACEMENT_<FIELD>`), by the process's name.
/// Listed here because a process must know the others' settings too, and it cannot depend on their crates.
pub const OWN: &[(&str, &[&str])] = &[
    (
        "directory",
        &[
            "PLACEMENT_ALLOW_HTTP_WEBHOOKS",
            "PLACEMENT_WEBHOOK_ALLOWED_HOSTS",
        ],
    ),
    ("cases", &["PLACEMENT_DATA_KEY"]),
    (
        "referrals",
        &[
            "PLACEMENT_ACK_DEADLINE",
            "PLACEMENT_STEP_DEADLINE",
            "PLACEMENT_ESCALATION_INTERVAL",
            "PLACEMENT_TEST_CLOCK",
            "PLACEMENT_FALLBACK_HOLD",
        ],
    ),
    (
        "notifications",
        &[
            "PLACEMENT_SMTP_URL",
            "PLACEMENT_SMTP_FROM",
            "PLACEMENT_PUBLIC_URL",
            "PLACEMENT_DELIVERY_RETRY_INITIAL",
            "PLACEMENT_DELIVERY_RETRY_MAX",
            "PLACEMENT_DELIVERY_RETRY_WINDOW",
            "PLACEMENT_DELIVERY_POLL_INTERVAL",
            "PLACEMENT_DELIVERY_TIMEOUT",
            "PLACEMENT_DELIVERY_CONCURRENCY",
            "PLACEMENT_WEBHOOK_ALLOWED_HOSTS",
            "PLACEMENT_WATCH_STREAMS_PER_AGENCY",
            "PLACEMENT_WATCH_STREAMS_PER_PERSON",
        ],
    ),
    (
        "reports",
        &[
            "PLACEMENT_REPORTS_TOKEN_URL",
            "PLACEMENT_REPORTS_CLIENT_ID",
            "PLACEMENT_REPORTS_CLIENT_SECRET",
            "PLACEMENT_REPORTS_TOKEN_RESOURCE",
            "PLACEMENT_REPORTS_DIGEST_AT",
            "PLACEMENT_DISTRICT_REPORTS_PER_AGENCY",
            "PLACEMENT_DISTRICT_REPORTS_CONCURRENT",
        ],
    ),
    (
        "web",
        &[
            "PLACEMENT_WEB_HTTP_ADDR",
            "PLACEMENT_PUBLIC_URL",
            "PLACEMENT_OIDC_ISSUER",
            "PLACEMENT_OIDC_CLIENT_ID",
            "PLACEMENT_OIDC_CLIENT_SECRET",
            "PLACEMENT_OIDC_RESOURCE",
            "PLACEMENT_WEB_SESSION_IDLE",
            "PLACEMENT_WEB_SESSION_MAX",
        ],
    ),
    (
        "cli",
        &[
            "PLACEMENT_DEV_KEYS",
            "PLACEMENT_CLI_ISSUER",
            "PLACEMENT_CLI_CLIENT_ID",
            "PLACEMENT_CLI_CLIENT_SECRET",
            "PLACEMENT_CLI_RESOURCE",
            "PLACEMENT_CLI_TOKEN_CACHE",
        ],
    ),
];

/// Read by every process of the service template by name, outside any settings' struct.
pub const EVERY_PROCESS: &[&str] = &["PLACEMENT_METRICS_ADDR", "PLACEMENT_LOG_FORMAT"];

/// Read by the scripts in `deploy/` and by the tests, never by a process; known so that a process started
/// from them is not warned of them.
pub const SCRIPTS_AND_TESTS: &[&str] = &[
    "PLACEMENT_RUN_DIR",
    "PLACEMENT_START_WEB",
    "PLACEMENT_START_TIMEOUT",
    "PLACEMENT_BIN_DIR",
    "PLACEMENT_TEST_DATABASE_URL",
    "PLACEMENT_TEST_AMQP_URL",
    "PLACEMENT_TEST_PYTHON",
    "PLACEMENT_TEST_RUST_LOG",
    "PLACEMENT_TEST_OIDC_DIR",
    "PLACEMENT_TEST_CHROMEDRIVER",
    "PLACEMENT_TEST_CHROMIUM",
    "PLACEMENT_TEST_PROMETHEUS_DIR",
    "PLACEMENT_TEST_KUBECTL",
    "PLACEMENT_TEST_CRDS_DIR",
];

/// The settings of `process` in [`OWN`] (none for a name not there).
pub fn own(process: &str) -> &'static [&'static str] {
    OWN.iter()
        .find(|(name, _)| *name == process)
        .map_or(&[], |(_, names)| names)
}

/// The variables `crate::config::from_env::<T>()` reads: `PLACEMENT_` and each of `T`'s fields' names in
/// capitals. Empty for a `T` that is not a struct with named fields.
pub fn fields_of<T: DeserializeOwned>() -> Vec<String> {
    let mut fields = None;
    // The derived `Deserialize` hands over its fields' names before reading anything; the error that
    // follows is the one `FieldNames` returns to stop it there.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
        .unwrap_or_default()
        .iter()
        .map(|field| format!("{PREFIX}{}", field.to_uppercase()))
        .collect()
}

/// A deserializer that only takes note of the fields a struct asks for.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct with named fields"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

/// Every process of the service template: the services and the web app.
pub fn template_processes() -> impl Iterator<Item = Listed> {
    services::ALL.iter().copied().chain([services::WEB])
}

/// The settings read by a process's name (`Listed::setting`): where each process of the template
/// listens, its queue and where its metrics are; where each service others call is reached.
pub fn by_process_name() -> Vec<String> {
    let own = template_processes()
        .flat_map(|p| ["listen_addr", "queue", "metrics_addr"].map(|suffix| p.setting(suffix)));
    let called = services::ALL.iter().map(|s| s.setting("url"));
    own.chain(called).collect()
}

/// Every `PLACEMENT_*` variable some part of the exchange reads.
pub fn known() -> BTreeSet<String> {
    let listed = (OWN.iter().flat_map(|(_, names)| *names))
        .chain(EVERY_PROCESS)
        .chain(SCRIPTS_AND_TESTS)
        .map(|name| (*name).to_string());
    fields_of::<crate::config::CommonConfig>()
        .into_iter()
        .chain(fields_of::<crate::audit::checkpoint::CheckpointSettings>())
        .chain(by_process_name())
        .chain(listed)
        .collect()
}

/// A `PLACEMENT_*` variable no part of the exchange reads, and the known name it most likely misspells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSetting {
    pub name: String,
    pub close_to: Option<String>,
}

impl std::fmt::Display for UnknownSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown setting {} ignored", self.name)?;
        match &self.close_to {
            Some(close) => write!(f, "; did you mean {close}?"),
            None => write!(f, ": no part of the exchange reads it"),
        }
    }
}

/// The variables of `names` that start with [`PREFIX`] and are not in `known`, in order, each with the
/// known name closest to it when one is close enough to be a slip of the keyboard.
pub fn unknown_settings(
    names: impl IntoIterator<Item = String>,
    known: &BTreeSet<String>,
) -> Vec<UnknownSetting> {
    names
        .into_iter()
        .filter(|name| name.starts_with(PREFIX) && !known.contains(name))
        .filter(|name| !is_service_link(name))
        .map(|name| UnknownSetting {
            close_to: closest(&name, known),
            name,
        })
        .collect()
}

/// Whether `name` is one Kubernetes gives every pod for each Service of its namespace
/// (`<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT_<PORT>`, `<SERVICE>_PORT_5672_TCP_ADDR`, …): the
/// database's and the broker's Services are named `placement-…`, so their variables start with the prefix
/// without being settings.
fn is_service_link(name: &str) -> bool {
    let words: Vec<&str> = name.split('_').collect();
    let n = words.len();
    let protocol = |w: &str| matches!(w, "TCP" | "UDP" | "SCTP");
    let numbered_port = |i: usize| {
        words[i] == "PORT"
            && words
                .get(i + 1)
                .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()))
            && words.get(i + 2).is_some_and(|w| protocol(w))
            && (n == i + 3 || (n == i + 4 && matches!(words[n - 1], "PROTO" | "PORT" | "ADDR")))
    };
    n >= 3
        && (words[n - 2..] == ["SERVICE", "HOST"]
            || words[n - 1] == "PORT"
            || (1..n - 1).any(|i| words[i..i + 2] == ["SERVICE", "PORT"] || numbered_port(i)))
}

/// Warns, once each, of the `PLACEMENT_*` variables in this process's environment no part of the exchange
/// reads; `own` are the process's own settings (its `Config`'s), known to it whatever [`OWN`] says.
pub fn warn_of_unknown_in_environment(own: impl IntoIterator<Item = String>) {
    let mut known = known();
    known.extend(own);
    let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    for unknown in unknown_settings(names, &known) {
        tracing::warn!(setting = %unknown.name, "{unknown}");
    }
}

/// The known name within a few edits of `name` (a quarter of the part after the prefix, at most three),
/// the closest; none when nothing is that close.
fn closest(name: &str, known: &BTreeSet<String>) -> Option<String> {
    let allowed = (name.len().saturating_sub(PREFIX.len()) / 4).clamp(1, 3);
    known
        .iter()
        .map(|candidate| (edits(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.clone())
}

/// The edits (a character inserted, removed, replaced, or two neighbours swapped) that turn `a` into `b`:
/// the optimal string alignment distance.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let replace = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = replace.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod check;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| (*n).to_string()).collect()
    }

    #[test]
    fn a_misspelt_setting_is_named_with_the_setting_it_is_close_to() {
        let found = unknown_settings(
            names(&[
                "PLACEMENT_DATABSE_URL",
                "PLACEMENT_DATABASE_URL",
                "PLACEMENT_EXCHNAGE",
                "PLACEMENT_COLOUR_SCHEME",
                "HOME",
            ]),
            &known(),
        );
        assert_eq!(
            found,
            [
                UnknownSetting {
                    name: "PLACEMENT_DATABSE_URL".into(),
                    close_to: Some("PLACEMENT_DATABASE_URL".into()),
                },
                UnknownSetting {
                    name: "PLACEMENT_EXCHNAGE".into(),
                    close_to: Some("PLACEMENT_EXCHANGE".into()),
                },
                UnknownSetting {
                    name: "PLACEMENT_COLOUR_SCHEME".into(),
                    close_to: None,
                },
            ]
        );
        assert_eq!(
            found[0].to_string(),
            "unknown setting PLACEMENT_DATABSE_URL ignored; did you mean PLACEMENT_DATABASE_URL?"
        );
        assert_eq!(
            found[2].to_string(),
            "unknown setting PLACEMENT_COLOUR_SCHEME ignored: no part of the exchange reads it"
        );
    }

    #[test]
    fn a_setting_of_another_process_or_of_the_tests_is_not_warned_of() {
        let others = names(&[
            "PLACEMENT_SMTP_URL",
            "PLACEMENT_DEV_KEYS",
            "PLACEMENT_TEST_DATABASE_URL",
            "PLACEMENT_REPORTS_LISTEN_ADDR",
            "PLACEMENT_WEB_METRICS_ADDR",
            "PLACEMENT_AUDIT_CHECKPOINT_KEY",
        ]);
        assert_eq!(unknown_settings(others, &known()), []);
        // Kubernetes' variables for the Services of the pod's namespace (the database's, the broker's).
        let service_links = names(&[
            "PLACEMENT_DB_RW_SERVICE_HOST",
            "PLACEMENT_DB_RW_SERVICE_PORT",
            "PLACEMENT_RABBITMQ_SERVICE_PORT_AMQP",
            "PLACEMENT_RABBITMQ_PORT",
            "PLACEMENT_RABBITMQ_PORT_5672_TCP",
            "PLACEMENT_RABBITMQ_PORT_5672_TCP_ADDR",
        ]);
        assert_eq!(unknown_settings(service_links, &known()), []);
        assert!(known().iter().all(|name| !is_service_link(name)));
        assert!(!is_service_link("PLACEMENT_RABBITMQ_PORT_5672_TCP_HOST"));
        // The web app has no URL setting: no process calls it.
        assert_eq!(
            unknown_settings(names(&["PLACEMENT_WEB_URL"]), &known()).len(),
            1
        );
    }

    #[test]
    fn the_settings_structs_give_their_fields_names() {
        let common = fields_of::<crate::config::CommonConfig>();
        assert!(common.contains(&"PLACEMENT_DATABASE_URL".to_string()));
        assert!(common.contains(&"PLACEMENT_AUDITED_READS_PER_AGENCY".to_string()));
        assert_eq!(fields_of::<String>(), Vec::<String>::new());
        assert_eq!(own("cases"), ["PLACEMENT_DATA_KEY"]);
        assert_eq!(own("nobody"), [] as [&str; 0]);
    }

    #[test]
    fn edits_count_insertions_removals_replacements_and_swaps() {
        assert_eq!(edits("DATABASE", "DATABSE"), 1);
        assert_eq!(edits("EXCHANGE", "EXCHNAGE"), 1);
        assert_eq!(edits("URL", "URI"), 1);
        assert_eq!(edits("", "ABC"), 3);
        assert_eq!(edits("KITTEN", "SITTING"), 3);
    }
}
