//! The services of the exchange, listed once: the command line, the test harness and the deploy scripts
//! take their names and ports from here, and every service reads its own settings by its name. Adding a
//! service is one entry.

use std::net::SocketAddr;

/// One service of the exchange, as the others and its operators address it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Its short name: the binary is `placement-<name>`, its database schema and queue are named after it,
    /// and its settings are `PLACEMENT_<NAME>_LISTEN_ADDR`, `PLACEMENT_<NAME>_QUEUE`, `PLACEMENT_<NAME>_URL`.
    pub name: &'static str,
    /// Its process, `placement-<name>`: the binary, the `producer` its events carry, the name its logs,
    /// traces and broker connection go by.
    pub process: &'static str,
    /// The port it listens on by default (on 127.0.0.1).
    pub port: u16,
}

/// A service's entry, its process named after it here and nowhere else.
macro_rules! listed {
    ($name:literal, $port:literal) => {
        Listed {
            name: $name,
            process: concat!("placement-", $name),
            port: $port,
        }
    };
}

pub const DIRECTORY: Listed = listed!("directory", 50051);
pub const CASES: Listed = listed!("cases", 50052);
pub const REFERRALS: Listed = listed!("referrals", 50053);
pub const NOTIFICATIONS: Listed = listed!("notifications", 50054);
pub const REPORTS: Listed = listed!("reports", 50056);

/// The staff's web app: a client of the services (its pages are served on `PLACEMENT_WEB_HTTP_ADDR`; this
/// port serves its health and operator API). Not in [`ALL`]: no service calls it.
pub const WEB: Listed = listed!("web", 50055);

/// Every service, in the order they are started (a service's dependencies before it).
pub const ALL: &[Listed] = &[DIRECTORY, CASES, REFERRALS, NOTIFICATIONS, REPORTS];

impl Listed {
    /// The service named `name`, if there is one.
    pub fn named(name: &str) -> Option<Listed> {
        ALL.iter().copied().find(|s| s.name == name)
    }

    /// The names of every service, for messages: "directory, cases, referrals or notifications".
    pub fn names() -> String {
        let names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// The name of one of its settings: `setting("url")` is `PLACEMENT_REFERRALS_URL`.
    pub fn setting(&self, suffix: &str) -> String {
        format!(
            "PLACEMENT_{}_{}",
            self.name.to_uppercase(),
            suffix.to_uppercase()
        )
    }

    pub fn default_listen_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Where its metrics are served by default: 127.0.0.1 on its port + 1000 (51051 for the directory).
    pub fn default_metrics_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port + 1000))
    }

    pub fn default_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn default_queue(&self) -> String {
        format!("placement.{}", self.name)
    }

    /// Where it is reached: `PLACEMENT_<NAME>_URL`, else its default address.
    pub fn url_from_env(&self) -> String {
        std::env::var(self.setting("url")).unwrap_or_else(|_| self.default_url())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ports_and_settings_are_distinct() {
        let every = [ALL, &[WEB]].concat();
        for (i, a) in every.iter().enumerate() {
            for b in &every[i + 1..] {
                assert_ne!(a.name, b.name);
                assert_ne!(a.port, b.port);
            }
        }
        assert_eq!(
            REFERRALS.setting("listen_addr"),
            "PLACEMENT_REFERRALS_LISTEN_ADDR"
        );
        assert_eq!(Listed::named("cases"), Some(CASES));
        assert_eq!(CASES.process, "placement-cases");
        assert_eq!(Listed::named("case"), None);
        assert_eq!(
            Listed::names(),
            "directory, cases, referrals, notifications or reports"
        );
    }
}
