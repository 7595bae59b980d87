//! A notification endpoint as the directory keeps it, its wire form and its snapshot in the announced set;
//! the checks of an endpoint's address, event types and language, and why a request is refused.

use chrono::{DateTime, Utc};
use placement_messaging::EventType;
use placement_platform::{error::ServiceError, time::timestamp, webhook::AllowedTargets};
use placement_proto::v1::{EndpointSnapshot, Language, NotificationChannel, NotificationEndpoint};
use sqlx::FromRow;
use uuid::Uuid;

pub const MAX_ENDPOINTS: i64 = 20;
const MAX_EVENT_TYPES: usize = 20;
const MAX_EMAIL: usize = 254;
const MAX_URL: usize = 2000;

/// Why a request about notification endpoints is refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The agency is not registered, or is another's: the two look alike.
    #[error("agency not found")]
    AgencyNotFound,
    #[error("notification endpoint not found")]
    EndpointNotFound,
    #[error("channel: required")]
    ChannelRequired,
    #[error("language: unknown language")]
    UnknownLanguage,
    #[error("an agency has at most {MAX_ENDPOINTS} notification endpoints")]
    TooManyEndpoints,
    #[error("the agency already has this endpoint")]
    AlreadyRegistered,
    #[error("rotate_secret: only webhooks have a secret")]
    NoSecretToRotate,
    /// `field` lists more event types than an endpoint takes.
    #[error("{field}: at most {MAX_EVENT_TYPES}")]
    TooManyEventTypes { field: String },
    /// `field` (an element of the list, `event_types[2]`) names an event no agency is told of.
    #[error("{field}: not an event agencies are told of")]
    NotNotified { field: String },
    #[error("address: {0}")]
    Address(#[from] AddressError),
}

/// What is wrong with an endpoint's address; the text is the reason the caller reads.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("an e-mail address of 3 to 254 characters")]
    EmailLength,
    #[error("not an e-mail address")]
    NotEmail,
    #[error("a URL of up to 2000 characters")]
    UrlLength,
    #[error("not a URL")]
    NotUrl,
    #[error("must be an https URL")]
    NotHttps,
    #[error("the URL has no host")]
    NoHost,
    #[error("credentials do not belong in the URL")]
    Credentials,
    #[error("the URL has a fragment")]
    Fragment,
    #[error("webhook target not allowed: {0}")]
    TargetNotAllowed(String),
}

impl From<EndpointError> for ServiceError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::AgencyNotFound => ServiceError::not_found("agency"),
            EndpointError::EndpointNotFound => ServiceError::not_found("notification endpoint"),
            EndpointError::ChannelRequired => ServiceError::invalid("channel", "required"),
            EndpointError::UnknownLanguage => ServiceError::invalid("language", "unknown language"),
            EndpointError::TooManyEndpoints => ServiceError::precondition(e.to_string()),
            EndpointError::AlreadyRegistered => ServiceError::AlreadyExists(e.to_string()),
            EndpointError::NoSecretToRotate => {
                ServiceError::invalid("rotate_secret", "only webhooks have a secret")
            }
            EndpointError::TooManyEventTypes { field } => {
                ServiceError::invalid(field, format!("at most {MAX_EVENT_TYPES}"))
            }
            EndpointError::NotNotified { field } => ServiceError::invalid(
                field,
                format!(
                    "not an event agencies are told of; one of {}",
                    EventType::NOTIFIED
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            EndpointError::Address(why) => ServiceError::invalid("address", why.to_string()),
        }
    }
}

/// Which webhook URLs may be registered.
#[derive(Debug, Clone, Default)]
pub struct WebhookRules {
    /// `http://` as well as `https://` (development and tests).
    pub allow_http: bool,
    /// The internal hosts the operator allows; every other host must be outside any network.
    pub targets: AllowedTargets,
}

/// The columns a [`RegisteredEndpoint`] is read from.
pub const ENDPOINT_COLUMNS: &str = "id, agency_id, channel, address, event_types, language, enabled, disabled_reason, \
     secret_version, created_at, updated_at";

/// A notification endpoint an agency registered, as the directory keeps it.
#[derive(Debug, Clone, FromRow)]
pub struct RegisteredEndpoint {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub channel: NotificationChannel,
    pub address: String,
    pub event_types: Vec<String>,
    pub language: Language,
    pub enabled: bool,
    pub disabled_reason: String,
    pub secret_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RegisteredEndpoint {
    pub fn channel(&self) -> NotificationChannel {
        self.channel
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn into_proto(self, secret: Option<String>) -> NotificationEndpoint {
        NotificationEndpoint {
            id: self.id.to_string(),
            agency_id: self.agency_id.to_string(),
            channel: self.channel() as i32,
            address: self.address.clone(),
            language: self.language() as i32,
            event_types: self.event_types,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            secret: secret.unwrap_or_default(),
            secret_version: placement_platform::numbers::count(self.secret_version),
            created_at: Some(timestamp(self.created_at)),
            updated_at: Some(timestamp(self.updated_at)),
        }
    }

    pub fn snapshot(&self) -> EndpointSnapshot {
        EndpointSnapshot {
            endpoint_id: self.id.to_string(),
            channel: self.channel() as i32,
            address: self.address.clone(),
            event_types: self.event_types.clone(),
            language: self.language() as i32,
            enabled: self.enabled,
            secret_version: placement_platform::numbers::count(self.secret_version),
        }
    }
}

pub struct NewEndpoint<'a> {
    pub id: Uuid,
    pub agency: Uuid,
    pub channel: NotificationChannel,
    pub address: &'a str,
    pub event_types: &'a [String],
    pub language: Language,
}

/// A change to an endpoint; None leaves a setting as it is.
pub struct EndpointChange {
    pub id: Uuid,
    pub event_types: Option<Vec<String>>,
    pub language: Option<Language>,
    pub enabled: Option<bool>,
    pub rotate_secret: bool,
}

pub fn language_or_default(value: i32) -> Result<Language, EndpointError> {
    match Language::try_from(value) {
        Ok(Language::Unspecified) => Ok(Language::Bg),
        Ok(l) => Ok(l),
        Err(_) => Err(EndpointError::UnknownLanguage),
    }
}

pub fn check_event_types(field: &str, types_: &[String]) -> Result<Vec<String>, EndpointError> {
    if types_.len() > MAX_EVENT_TYPES {
        return Err(EndpointError::TooManyEventTypes {
            field: field.to_string(),
        });
    }
    let mut out: Vec<String> = Vec::with_capacity(types_.len());
    for (i, t) in types_.iter().enumerate() {
        if !EventType::parse(t).is_some_and(|t| EventType::NOTIFIED.contains(&t)) {
            return Err(EndpointError::NotNotified {
                field: format!("{field}[{i}]"),
            });
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

pub fn check_address(
    channel: NotificationChannel,
    address: &str,
    webhooks: &WebhookRules,
) -> Result<String, EndpointError> {
    match channel {
        NotificationChannel::Email => {
            if address.is_empty() || address.len() > MAX_EMAIL {
                return Err(AddressError::EmailLength.into());
            }
            let valid = address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            }) && !address
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
            if !valid {
                return Err(AddressError::NotEmail.into());
            }
            Ok(address.to_string())
        }
        NotificationChannel::Webhook => {
            if address.is_empty() || address.len() > MAX_URL {
                return Err(AddressError::UrlLength.into());
            }
            let url = url::Url::parse(address).map_err(|_| AddressError::NotUrl)?;
            match url.scheme() {
                "https" => {}
                "http" if webhooks.allow_http => {}
                _ => return Err(AddressError::NotHttps.into()),
            }
            if url.host_str().is_none_or(str::is_empty) {
                return Err(AddressError::NoHost.into());
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(AddressError::Credentials.into());
            }
            if url.fragment().is_some() {
                return Err(AddressError::Fragment.into());
            }
            // A webhook is a request made on the agency's behalf: none may be aimed inside a network.
            webhooks
                .targets
                .check(&url)
                .map_err(|refused| AddressError::TargetNotAllowed(refused.to_string()))?;
            Ok(url.to_string())
        }
        NotificationChannel::Unspecified => Err(EndpointError::ChannelRequired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each refusal is answered as before its enum: the same code, field and text.
    #[test]
    fn refusals_keep_their_codes_fields_and_text() {
        let cases = [
            (
                EndpointError::AgencyNotFound,
                "NOT_FOUND",
                "agency not found",
            ),
            (
                EndpointError::TooManyEndpoints,
                "FAILED_PRECONDITION",
                "an agency has at most 20 notification endpoints",
            ),
            (
                EndpointError::AlreadyRegistered,
                "ALREADY_EXISTS",
                "the agency already has this endpoint",
            ),
            (
                EndpointError::NoSecretToRotate,
                "INVALID_ARGUMENT",
                "rotate_secret: only webhooks have a secret",
            ),
            (
                AddressError::NotHttps.into(),
                "INVALID_ARGUMENT",
                "address: must be an https URL",
            ),
            (
                EndpointError::TooManyEventTypes {
                    field: "events.event_types".into(),
                },
                "INVALID_ARGUMENT",
                "events.event_types: at most 20",
            ),
        ];
        for (refusal, code, message) in cases {
            let e = ServiceError::from(refusal);
            assert_eq!(e.code_name(), code, "{message}");
            assert_eq!(tonic::Status::from(e).message(), message);
        }
        match check_event_types("event_types", &["x".into()]).map_err(ServiceError::from) {
            Err(ServiceError::InvalidArgument { field, reason }) => {
                assert_eq!(field, "event_types[0]");
                assert!(
                    reason.starts_with("not an event agencies are told of; one of referral."),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    fn rules(allow_http: bool, allowed: &str) -> WebhookRules {
        WebhookRules {
            allow_http,
            targets: AllowedTargets::parse(allowed).unwrap(),
        }
    }

    #[test]
    fn addresses_are_checked_per_channel() {
        use NotificationChannel::*;
        let strict = rules(false, "");
        assert!(check_address(Email, "dsp.pirdop@asp.government.bg", &strict).is_ok());
        for bad in [
            "",
            "no-at-sign",
            "@x.bg",
            "a@nodot",
            "a b@x.bg",
            "a@x.bg,b@y.bg",
            "a@.bg",
        ] {
            assert!(check_address(Email, bad, &strict).is_err(), "{bad}");
        }
        assert!(check_address(Webhook, "https://cms.vratsa.bg/hooks/placement", &strict).is_ok());
        let local = rules(true, "127.0.0.1");
        assert!(
            check_address(
                Webhook,
                "http://127.0.0.1:8080/hook",
                &rules(false, "127.0.0.1")
            )
            .is_err()
        );
        assert!(check_address(Webhook, "http://127.0.0.1:8080/hook", &local).is_ok());
        for bad in [
            "ftp://x.bg/",
            "https://user:pw@x.bg/",
            "not a url",
            "https://x.bg/#f",
        ] {
            assert!(check_address(Webhook, bad, &local).is_err(), "{bad}");
        }
    }

    /// The forms of issue #25: each refused as the address, changing nothing, unless the operator allows it.
    #[test]
    fn webhooks_aimed_inside_are_refused() {
        use NotificationChannel::Webhook;
        let strict = rules(true, "");
        for inside in [
            "https://127.0.0.1/",
            "https://127.1/",
            "https://2130706433/",
            "https://0x7f000001/",
            "https://017700000001/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://localhost/",
            "https://0.0.0.0/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.0.1/",
            "https://169.254.169.254/latest/meta-data/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            "https://192.0.2.1/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
            "https://metadata.google.internal/",
            "https://intranet/",
            "http://127.0.0.1:8080/hook",
        ] {
            match check_address(Webhook, inside, &strict).map_err(ServiceError::from) {
                Err(ServiceError::InvalidArgument { field, reason }) => {
                    assert_eq!(field, "address", "{inside}");
                    assert!(reason.contains("not allowed"), "{inside}: {reason}");
                }
                other => panic!("{inside}: {other:?}"),
            }
        }
        let allowed = rules(true, "localhost,127.0.0.1:8080");
        assert!(check_address(Webhook, "https://localhost/", &allowed).is_ok());
        assert!(check_address(Webhook, "http://127.1:8080/hook", &allowed).is_ok());
        assert!(check_address(Webhook, "http://127.0.0.1:8081/hook", &allowed).is_err());
    }

    #[test]
    fn event_types_must_be_ones_agencies_are_told_of() {
        assert_eq!(
            check_event_types(
                "e",
                &["referral.submitted".into(), "referral.submitted".into()]
            )
            .unwrap(),
            vec!["referral.submitted".to_string()]
        );
        assert!(check_event_types("e", &["service.registered".into()]).is_err());
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            #[test]
            fn random_addresses(address in "\\PC{0,300}", channel in 0i32..4, http in any::<bool>()) {
                let channel = NotificationChannel::try_from(channel).unwrap_or(NotificationChannel::Unspecified);
                let webhooks = WebhookRules { allow_http: http, targets: AllowedTargets::default() };
                if let Ok(a) = check_address(channel, &address, &webhooks) {
                    prop_assert!(a.len() <= 2100);
                    if channel == NotificationChannel::Webhook && !http {
                        prop_assert!(a.starts_with("https://"));
                    }
                }
            }

            #[test]
            fn random_event_types(types_ in proptest::collection::vec("[a-z._]{0,40}", 0..30)) {
                if let Ok(t) = check_event_types("e", &types_) {
                    prop_assert!(t.len() <= 20);
                    prop_assert!(t.iter().all(|x| EventType::parse(x).is_some_and(|t| EventType::NOTIFIED.contains(&t))));
                }
            }
        }
    }
}
