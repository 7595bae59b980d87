//! Connections to the services, and requests on behalf of an agency.

use std::time::Duration;

use placement_platform::caller::{AGENCY_HEADER, ROLES_HEADER, Role};
use placement_platform::services::{self, Listed};

pub use crate::channels::{channel, use_tls};
use crate::devkeys;
use placement_proto::v1::{
    case_service_client::CaseServiceClient, directory_service_client::DirectoryServiceClient,
    notification_service_client::NotificationServiceClient,
    referral_service_client::ReferralServiceClient,
};
use tonic::{Request, metadata::MetadataValue, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use uuid::Uuid;

/// Where the services listen, one address for each in [`services::ALL`].
#[derive(Debug, Clone)]
pub struct Endpoints(Vec<(Listed, String)>);

impl Default for Endpoints {
    /// Every service at its default address.
    fn default() -> Self {
        Self(
            services::ALL
                .iter()
                .map(|s| (*s, s.default_url()))
                .collect(),
        )
    }
}

impl Endpoints {
    /// Every service at `PLACEMENT_<NAME>_URL`, else at its default address.
    pub fn from_env() -> Self {
        Self(
            services::ALL
                .iter()
                .map(|s| (*s, s.url_from_env()))
                .collect(),
        )
    }

    pub fn url(&self, service: Listed) -> &str {
        self.0
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, url)| url.as_str())
            .expect("every listed service has an address")
    }

    pub fn set(&mut self, service: Listed, url: impl Into<String>) {
        if let Some(entry) = self.0.iter_mut().find(|(s, _)| *s == service) {
            entry.1 = url.into();
        }
    }

    /// Each service's name and address, in the order of [`services::ALL`].
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(s, url)| (s.name, url.as_str()))
    }
}

#[derive(Clone)]
pub struct Clients {
    pub directory: DirectoryServiceClient<Channel>,
    pub cases: CaseServiceClient<Channel>,
    pub referrals: ReferralServiceClient<Channel>,
    pub notifications: NotificationServiceClient<Channel>,
}

impl Clients {
    pub fn connect(endpoints: &Endpoints) -> Result<Self, tonic::transport::Error> {
        Ok(Self {
            directory: DirectoryServiceClient::new(channel(endpoints.url(services::DIRECTORY))?),
            cases: CaseServiceClient::new(channel(endpoints.url(services::CASES))?),
            referrals: ReferralServiceClient::new(channel(endpoints.url(services::REFERRALS))?),
            notifications: NotificationServiceClient::new(channel(
                endpoints.url(services::NOTIFICATIONS),
            )?),
        })
    }
}

/// A request made on behalf of `agency`, with the roles [`devkeys::default_roles`] gives it.
pub fn as_agency<T>(agency: Uuid, message: T) -> Request<T> {
    as_agency_with(agency, devkeys::default_roles(agency), message)
}

static BEARER: std::sync::OnceLock<MetadataValue<tonic::metadata::Ascii>> =
    std::sync::OnceLock::new();

/// Makes every request of this process carry `token`, an access token of the identity provider
/// ([`crate::sign_in`]), whatever agency it names: the token says whom it acts for (once per process).
pub fn use_bearer(token: &str) -> Result<(), tonic::metadata::errors::InvalidMetadataValue> {
    let _ = BEARER.set(MetadataValue::try_from(format!("Bearer {token}"))?);
    Ok(())
}

/// A request made on behalf of `agency` with `roles`: the signed-in access token ([`use_bearer`]),
/// else a bearer token from the development signer ([`devkeys::use_signer`]), or, without one, the
/// development-mode `x-agency-id` and `x-roles` headers.
pub fn as_agency_with<T>(agency: Uuid, roles: &[Role], message: T) -> Request<T> {
    let mut request = Request::new(message);
    match (BEARER.get(), devkeys::current()) {
        (Some(bearer), _) => {
            request
                .metadata_mut()
                .insert("authorization", bearer.clone());
        }
        (None, Some(signer)) => {
            let token = devkeys::cached_token(signer, agency, roles);
            request.metadata_mut().insert(
                "authorization",
                MetadataValue::try_from(format!("Bearer {token}"))
                    .expect("a JWT is valid metadata"),
            );
        }
        (None, None) => {
            request.metadata_mut().insert(
                AGENCY_HEADER,
                MetadataValue::try_from(agency.to_string()).expect("a UUID is valid metadata"),
            );
            let roles = roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(",");
            request.metadata_mut().insert(
                ROLES_HEADER,
                MetadataValue::try_from(roles).expect("role names are valid metadata"),
            );
        }
    }
    request.set_timeout(Duration::from_secs(10));
    request
}

/// Waits until every service reports SERVING on `grpc.health.v1`, or `timeout` passes.
pub async fn wait_ready(endpoints: &Endpoints, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    for (name, url) in endpoints.all() {
        loop {
            let serving = match channel(url) {
                Ok(ch) => HealthClient::new(ch)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(|r| r.into_inner().status == ServingStatus::Serving as i32)
                    .unwrap_or(false),
                Err(_) => false,
            };
            if serving {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{name} at {url} is not serving after {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
