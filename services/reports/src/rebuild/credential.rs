//! The reports service's own credential, for the calls it makes on nobody's behalf (the rebuild): an access
//! token from the identity provider by the OAuth 2.0 client-credentials grant, kept until a minute before it
//! expires. The provider decides what the token says (the national authority, the `integration` role); the
//! services verify it as any other. In development mode without a provider, the development headers stand in.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use placement_platform::caller::{Caller, NATIONAL_AUTHORITY, Role, Roles};
use tonic::{Request, metadata::MetadataValue};

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the identity provider did not answer: {0}")]
    Provider(String),
    #[error("the identity provider refused the client credentials: {0}")]
    Refused(String),
}

/// Where the token comes from.
pub enum Credential {
    ClientCredentials(ClientCredentials),
    /// `PLACEMENT_AUTH_MODE=development` without a provider: the `x-agency-id` headers.
    Development,
    /// No way to call as the national authority: the rebuild cannot run.
    None,
}

pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub resource: String,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ClientCredentials {
    pub fn new(
        token_url: String,
        client_id: String,
        client_secret: String,
        resource: String,
    ) -> Self {
        Self {
            token_url,
            client_id,
            client_secret,
            resource,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
            cached: Mutex::new(None),
        }
    }

    async fn token(&self) -> Result<String, CredentialError> {
        if let Some((token, until)) = self.cached.lock().expect("not poisoned").as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("resource", &self.resource)
            .finish();
        let answer = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| CredentialError::Provider(e.to_string()))?;
        let status = answer.status();
        let text = answer
            .text()
            .await
            .map_err(|e| CredentialError::Provider(e.to_string()))?;
        if !status.is_success() {
            return Err(CredentialError::Refused(format!(
                "{status}: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        let token: TokenAnswer = serde_json::from_str(&text)
            .map_err(|e| CredentialError::Refused(format!("not a token answer: {e}")))?;
        let lifetime =
            Duration::from_secs(token.expires_in.unwrap_or(300).saturating_sub(60).max(1));
        *self.cached.lock().expect("not poisoned") =
            Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl Credential {
    /// `message` as a request of the national authority's integration.
    pub async fn request<T>(&self, message: T) -> Result<Option<Request<T>>, CredentialError> {
        match self {
            Credential::ClientCredentials(c) => {
                let token = c.token().await?;
                let mut request = Request::new(message);
                let value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    CredentialError::Refused("a token that is not valid metadata".into())
                })?;
                request.metadata_mut().insert("authorization", value);
                Ok(Some(request))
            }
            Credential::Development => Ok(Some(
                Caller::new(
                    NATIONAL_AUTHORITY,
                    "placement-reports",
                    Roles::of(&[Role::Integration]),
                )
                .forward(message),
            )),
            Credential::None => Ok(None),
        }
    }
}
