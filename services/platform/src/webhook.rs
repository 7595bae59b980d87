//! Webhook signing secrets, derived rather than stored or sent.
//!
//! The directory hands an agency its webhook's secret; the notifications service signs with it. Instead of
//! carrying secrets in events (which other systems may read) or asking the directory at every delivery, both
//! derive the secret from the endpoint's id and secret version with a key only they hold
//! (`PLACEMENT_WEBHOOK_SECRET_KEY`). Rotating means a new version, hence a new secret.
//!
//! A webhook is a request the exchange makes on an agency's behalf, so where it may go is decided here,
//! once, for both: the directory refuses a target inside a network when it is registered, and the
//! notifications service refuses one when the host resolves inside a network at delivery time (see
//! [`is_internal`] and [`AllowedTargets`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::{Host, Url};
use uuid::Uuid;

/// The Standard Webhooks secret of an endpoint: "whsec_" and 32 bytes in base64.
pub fn derive_secret(key: &str, endpoint: Uuid, version: u32) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(b"placement-exchange/webhook-secret/v1/");
    mac.update(endpoint.as_bytes());
    mac.update(&version.to_be_bytes());
    format!("whsec_{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The IPv4 networks no webhook may reach, with their prefix lengths: loopback, "this network",
/// private, shared (CGNAT), link-local (where cloud metadata services answer), protocol assignments,
/// documentation, benchmarking, the 6to4 relay, multicast, reserved and broadcast. The Kubernetes
/// NetworkPolicy of the notifications service excepts the same list (a unit test keeps them equal).
pub const INTERNAL_V4: &[(Ipv4Addr, u32)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 88, 99, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// Blocks inside global unicast (2000::/3) that are set aside: IETF protocol assignments (Teredo,
/// benchmarking, ORCHID) and the two documentation blocks. 6to4 (2002::/16) is judged by its IPv4 address.
const SET_ASIDE_V6: &[(Ipv6Addr, u32)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),
];

/// Names that only resolve inside a network, by their last labels.
const INTERNAL_SUFFIXES: &[&str] = &["localhost", "localdomain", "local", "internal", "home.arpa"];

/// Whether `ip` is inside a network a webhook must not reach. IPv6 forms that carry an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by it; otherwise only global unicast is outside.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match carried_v4(v6) {
            Some(v4) => is_internal_v4(v4),
            None => {
                let global_unicast = v6.segments()[0] & 0xe000 == 0x2000;
                !global_unicast
                    || SET_ASIDE_V6.iter().any(|(net, prefix)| {
                        (u128::from(v6) ^ u128::from(*net))
                            .checked_shr(128 - prefix)
                            .unwrap_or(0)
                            == 0
                    })
            }
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    INTERNAL_V4.iter().any(|(net, prefix)| {
        (u32::from(ip) ^ u32::from(*net))
            .checked_shr(32 - prefix)
            .unwrap_or(0)
            == 0
    })
}

/// The IPv4 address an IPv6 address stands for, when it is one of the forms that carry one. `::` and
/// `::1` read as 0.0.0.0 and 0.0.0.1, both inside "this network".
fn carried_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let last = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] => Some(last),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

/// Why a webhook's target is refused. The wording is the agency's to read: it names no resolved address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    #[error("the URL has no host")]
    NoHost,
    #[error("the address is inside a private, loopback, link-local or reserved network")]
    InternalAddress,
    #[error("the host name is local to a network (localhost, a single label, .local, .internal)")]
    InternalName,
    #[error("the host is allowed on other ports only")]
    OtherPort,
}

/// `PLACEMENT_WEBHOOK_ALLOWED_HOSTS` held something that is neither a host nor host:port.
#[derive(Debug, thiserror::Error)]
#[error("PLACEMENT_WEBHOOK_ALLOWED_HOSTS: {0:?} is not a host name or host:port")]
pub struct AllowListError(String);

/// The internal hosts an operator lets webhooks reach (`PLACEMENT_WEBHOOK_ALLOWED_HOSTS`: comma-separated
/// host names or addresses, each with an optional port); every other target must be outside any network.
#[derive(Debug, Clone, Default)]
pub struct AllowedTargets {
    /// The host as a URL serialises it (lower case; IPv4 in dotted form; IPv6 in brackets), and the port
    /// it is allowed on (any when None).
    hosts: Vec<(String, Option<u16>)>,
}

impl AllowedTargets {
    pub fn parse(setting: &str) -> Result<Self, AllowListError> {
        let mut hosts = Vec::new();
        for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid = || AllowListError(entry.to_string());
            // Parsed as a URL's authority, so every textual form of an address reads as the URL's does.
            let url = Url::parse(&format!("https://{entry}/")).map_err(|_| invalid())?;
            let host = url.host().ok_or_else(invalid)?;
            if url.path() != "/" || !url.username().is_empty() || url.query().is_some() {
                return Err(invalid());
            }
            // `Url` drops https's own port; an entry that names it still means that port only.
            let names_port = entry
                .rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            let port = names_port.then(|| url.port_or_known_default()).flatten();
            hosts.push((host_key(&host), port));
        }
        Ok(Self { hosts })
    }

    /// Whether a webhook may be registered at `url`: its host is allowed here on its port, or is outside
    /// every network as far as its text tells. A host name's addresses are judged when it is resolved.
    pub fn check(&self, url: &Url) -> Result<(), TargetRefused> {
        self.judge(url, true)
    }

    /// The part of [`check`](Self::check) made just before connecting: the port, and an address written
    /// in the URL (which is never resolved). A host name is judged by the addresses it resolves to then.
    pub fn check_literal(&self, url: &Url) -> Result<(), TargetRefused> {
        self.judge(url, false)
    }

    fn judge(&self, url: &Url, by_name: bool) -> Result<(), TargetRefused> {
        let host = url.host().ok_or(TargetRefused::NoHost)?;
        let key = host_key(&host);
        let ports: Vec<Option<u16>> = self
            .hosts
            .iter()
            .filter(|(h, _)| *h == key)
            .map(|(_, p)| *p)
            .collect();
        if ports
            .iter()
            .any(|p| p.is_none() || *p == url.port_or_known_default())
        {
            return Ok(());
        }
        // The resolver allows a listed name whatever the port, so the port is held to here.
        if !ports.is_empty() {
            return Err(TargetRefused::OtherPort);
        }
        let internal = match host {
            Host::Ipv4(v4) => is_internal(IpAddr::V4(v4)),
            Host::Ipv6(v6) => is_internal(IpAddr::V6(v6)),
            Host::Domain(name) => {
                if by_name && is_internal_name(name) {
                    return Err(TargetRefused::InternalName);
                }
                false
            }
        };
        if internal {
            return Err(TargetRefused::InternalAddress);
        }
        Ok(())
    }

    /// Whether the host name `name` is allowed to resolve inside a network (on the ports [`check`] allows).
    ///
    /// [`check`]: Self::check
    pub fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|(h, _)| *h == name)
    }
}

fn host_key(host: &Host<&str>) -> String {
    match host {
        Host::Domain(name) => name.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(v4) => v4.to_string(),
        Host::Ipv6(v6) => format!("[{v6}]"),
    }
}

/// Single labels are completed by the resolver's search list, inside the network; the suffixes are
/// never public.
fn is_internal_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.contains('.')
        || INTERNAL_SUFFIXES.iter().any(|suffix| {
            name == *suffix
                || name
                    .strip_suffix(suffix)
                    .is_some_and(|rest| rest.ends_with('.'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_by_endpoint_version_and_key() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = derive_secret("k", a, 1);
        assert!(s.starts_with("whsec_"));
        assert_eq!(s, derive_secret("k", a, 1));
        assert_ne!(s, derive_secret("k", b, 1));
        assert_ne!(s, derive_secret("k", a, 2));
        assert_ne!(s, derive_secret("other", a, 1));
        assert_eq!(STANDARD.decode(&s[6..]).unwrap().len(), 32);
    }

    fn refused(targets: &AllowedTargets, url: &str) -> Option<TargetRefused> {
        targets.check(&Url::parse(url).expect(url)).err()
    }

    /// Every textual form of an internal address the issue lists, and the networks beside them.
    const INSIDE: &[&str] = &[
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f000001/",
        "https://017700000001/",
        "https://0x7f.0.0.1/",
        "https://127.0.0.1./",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[0:0:0:0:0:0:0:1]/",
        "https://[::]/",
        "https://[::127.0.0.1]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[2002:7f00:1::]/",
        "https://localhost/",
        "https://LOCALHOST./",
        "https://hooks.localhost/",
        "https://0.0.0.0/",
        "https://0/",
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://172.31.255.255/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://100.127.255.254/",
        "https://192.0.0.8/",
        "https://192.0.2.1/",
        "https://198.51.100.7/",
        "https://203.0.113.9/",
        "https://198.18.0.1/",
        "https://198.19.255.1/",
        "https://224.0.0.1/",
        "https://239.255.255.250/",
        "https://240.0.0.1/",
        "https://255.255.255.255/",
        "https://[fe80::1]/",
        "https://[fc00::1]/",
        "https://[fd12:3456::1]/",
        "https://[fec0::1]/",
        "https://[ff02::1]/",
        "https://[2001:db8::1]/",
        "https://[2001::1]/",
        "https://[3fff::1]/",
        "https://[64:ff9b:1::1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://metadata/",
        "https://metadata.google.internal/",
        "https://kubernetes.default.svc.cluster.local/",
        "https://router.home.arpa/",
    ];

    #[test]
    fn every_form_of_an_internal_target_is_refused() {
        let none = AllowedTargets::default();
        for url in INSIDE {
            assert!(refused(&none, url).is_some(), "{url} accepted");
        }
        assert_eq!(
            refused(&none, "https://2130706433/"),
            Some(TargetRefused::InternalAddress)
        );
        assert_eq!(
            refused(&none, "https://localhost/"),
            Some(TargetRefused::InternalName)
        );
    }

    #[test]
    fn public_targets_are_accepted() {
        let none = AllowedTargets::default();
        for url in [
            "https://cms.vratsa.bg/hooks/placement",
            "https://hooks.example.org:8443/x",
            "https://93.184.215.14/",
            "https://172.32.0.1/",
            "https://100.128.0.1/",
            "https://[2a00:1450:4017:80b::200e]/",
            "https://[::ffff:93.184.215.14]/",
            "https://[64:ff9b::93.184.215.14]/",
            "https://[2002:5db8:d70e::]/",
            "https://localhost.example.bg/",
        ] {
            assert_eq!(refused(&none, url), None, "{url}");
        }
    }

    #[test]
    fn ranges_end_where_they_should() {
        for (ip, inside) in [
            ("9.255.255.255", false),
            ("10.0.0.0", true),
            ("11.0.0.0", false),
            ("100.63.255.255", false),
            ("100.64.0.0", true),
            ("172.15.255.255", false),
            ("172.16.0.0", true),
            ("198.17.255.255", false),
            ("198.20.0.0", false),
            ("223.255.255.255", false),
            ("1fff:ffff::1", true),
            ("2000::1", false),
            ("2001:200::1", false),
            ("2001:1ff::1", true),
            ("4000::1", true),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(is_internal(ip), inside, "{ip}");
        }
    }

    #[test]
    fn an_operator_may_allow_named_internal_hosts() {
        let allowed =
            AllowedTargets::parse(" hooks.svc.cluster.local , 127.1:8443,[::1], INTRANET ")
                .unwrap();
        assert_eq!(refused(&allowed, "https://hooks.svc.cluster.local/x"), None);
        assert_eq!(refused(&allowed, "https://intranet/"), None);
        // The entry's address in any form, on its port only.
        assert_eq!(refused(&allowed, "https://127.0.0.1:8443/"), None);
        assert_eq!(refused(&allowed, "https://2130706433:8443/"), None);
        assert_eq!(
            refused(&allowed, "https://127.0.0.1/"),
            Some(TargetRefused::OtherPort)
        );
        assert_eq!(refused(&allowed, "http://[::1]:9/"), None);
        assert_eq!(
            refused(&allowed, "https://127.0.0.2:8443/"),
            Some(TargetRefused::InternalAddress)
        );
        assert!(allowed.allows_name("Hooks.svc.cluster.local."));
        // Before connecting, a name is left to its resolved addresses; ports and literals are not.
        let at = |u: &str| allowed.check_literal(&Url::parse(u).unwrap()).err();
        assert_eq!(at("https://localhost/"), None);
        assert_eq!(
            at("https://[::ffff:127.0.0.2]/"),
            Some(TargetRefused::InternalAddress)
        );
        assert_eq!(at("https://127.1/"), Some(TargetRefused::OtherPort));
        assert!(!allowed.allows_name("localhost"));
        // An entry naming https's own port keeps to it.
        let on_443 = AllowedTargets::parse("intranet:443").unwrap();
        assert_eq!(refused(&on_443, "https://intranet/"), None);
        assert_eq!(
            refused(&on_443, "https://intranet:444/"),
            Some(TargetRefused::OtherPort)
        );
        for bad in ["a/b", "user@host", "host?x", "::1", "https://x"] {
            assert!(AllowedTargets::parse(bad).is_err(), "{bad}");
        }
        assert!(AllowedTargets::parse("").unwrap().hosts.is_empty());
    }

    /// The notifications service's NetworkPolicy lets it reach every IPv4 address but these.
    #[test]
    fn the_network_policy_excepts_the_same_networks() {
        let policy = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/k8s/base/notifications-network.yaml"
        ))
        .expect("the NetworkPolicy");
        let excepted: Vec<String> = policy
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- "))
            .filter(|l| {
                l.contains('/')
                    && l.split('/')
                        .next()
                        .is_some_and(|a| a.parse::<Ipv4Addr>().is_ok())
            })
            .map(str::to_string)
            .collect();
        let ours: Vec<String> = INTERNAL_V4
            .iter()
            .map(|(net, prefix)| format!("{net}/{prefix}"))
            .collect();
        assert_eq!(excepted, ours);
    }
}
