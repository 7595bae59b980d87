//! Signing in through the identity provider: OpenID Connect's authorization code flow with PKCE, the ID
//! token verified (signature, issuer, audience, nonce), and access tokens refreshed before they expire.
//!
//! The provider's configuration is discovered on first use and again after a failure, so the web app may
//! start before the provider and follows a rotation of its keys. Signing out ends the provider's session
//! too (RP-initiated logout at its `end_session_endpoint`): on a shared office PC the next person must not
//! be signed in as the last one by a click.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
    core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreClient},
};
use tokio::sync::RwLock;

use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider's address {0:?}: {1}")]
    Config(String, String),
    #[error("the identity provider cannot be reached or answered wrongly: {0}")]
    Provider(String),
    #[error("the identity provider's answer was refused: {0}")]
    Refused(String),
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Where a sign-in starts: the provider's URL to send the person to, and what must be kept to finish it.
pub struct SignInStart {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// The tokens a sign-in or a refresh gave.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: Option<String>,
    /// The sign-in's ID token (none from a refresh: the sign-in's is kept, as providers accept an expired
    /// one as the hint): what lets the provider end this person's session at sign-out without asking.
    pub id_token: Option<String>,
}

/// What discovery gave: the client, and where the provider ends sessions (if it does).
struct Discovered {
    client: Client,
    end_session: Option<EndSessionUrl>,
}

pub struct OpenId {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    redirect: RedirectUrl,
    resource: String,
    http: Http,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

impl OpenId {
    pub fn new(config: &Config) -> Result<Self, OidcError> {
        let issuer = IssuerUrl::new(config.oidc_issuer.clone())
            .map_err(|e| OidcError::Config(config.oidc_issuer.clone(), e.to_string()))?;
        let callback = format!("{}/auth/callback", config.public_url.trim_end_matches('/'));
        let redirect = RedirectUrl::new(callback.clone())
            .map_err(|e| OidcError::Config(callback, e.to_string()))?;
        let http = reqwest::Client::builder()
            // Following redirects would let the provider's answers lead the app elsewhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| OidcError::Config(config.oidc_issuer.clone(), e.to_string()))?;
        Ok(Self {
            issuer,
            client_id: ClientId::new(config.oidc_client_id.clone()),
            client_secret: (!config.oidc_client_secret.is_empty())
                .then(|| ClientSecret::new(config.oidc_client_secret.clone())),
            redirect,
            resource: config.oidc_resource.clone(),
            http: Http(http),
            discovered: RwLock::new(None),
        })
    }

    async fn discovered(&self) -> Result<Arc<Discovered>, OidcError> {
        if let Some(discovered) = self.discovered.read().await.as_ref() {
            return Ok(discovered.clone());
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| OidcError::Provider(error_chain(&e)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        if end_session.is_none() {
            tracing::warn!(issuer = %self.issuer.as_str(), "the identity provider has no end_session_endpoint: signing out leaves its session open");
        }
        let client = CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
        .set_redirect_uri(self.redirect.clone());
        let discovered = Arc::new(Discovered {
            client,
            end_session,
        });
        *self.discovered.write().await = Some(discovered.clone());
        tracing::info!(issuer = %self.issuer.as_str(), "identity provider discovered");
        Ok(discovered)
    }

    /// Forgets the discovered configuration, so the next sign-in reads it (and the keys) again.
    async fn forget(&self) {
        *self.discovered.write().await = None;
    }

    /// Where to send a person signing out so that the provider ends its session too, coming back to
    /// `post_logout` (registered with the provider as a post-logout redirect URI); `None` when the
    /// provider cannot be reached or ends no sessions.
    pub async fn end_session_url(
        &self,
        id_token: Option<&str>,
        post_logout: &str,
    ) -> Option<String> {
        let discovered = match self.discovered().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "the identity provider's session is left open");
                return None;
            }
        };
        let mut url = discovered.end_session.as_ref()?.url().clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(hint) = id_token {
                query.append_pair("id_token_hint", hint);
            }
            query
                .append_pair("client_id", self.client_id.as_str())
                .append_pair("post_logout_redirect_uri", post_logout);
        }
        Some(url.to_string())
    }

    pub async fn start(&self) -> Result<SignInStart, OidcError> {
        let discovered = self.discovered().await?;
        let client = &discovered.client;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("placement".into()))
            .add_scope(Scope::new("offline_access".into()))
            // Refresh tokens are granted only with consent asked for.
            .add_prompt(CoreAuthPrompt::Consent)
            .add_extra_param("resource", self.resource.clone())
            .set_pkce_challenge(challenge)
            .url();
        Ok(SignInStart {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Exchanges the code the provider sent back, and checks the ID token that comes with it.
    pub async fn finish(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<Tokens, OidcError> {
        let discovered = self.discovered().await?;
        let client = &discovered.client;
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Refused(error_chain(&e)))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| OidcError::Refused("no ID token".into()))?;
        if let Err(e) = id_token.claims(&client.id_token_verifier(), &Nonce::new(nonce)) {
            // Perhaps signed with a key published since discovery: read the configuration again next time.
            self.forget().await;
            return Err(OidcError::Refused(format!("ID token: {e}")));
        }
        let mut tokens = tokens(&response, None);
        tokens.id_token = Some(id_token.to_string());
        Ok(tokens)
    }

    /// New tokens for a refresh token (which the provider may rotate).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, OidcError> {
        let discovered = self.discovered().await?;
        let client = &discovered.client;
        let token = RefreshToken::new(refresh_token.to_string());
        let response = client
            .exchange_refresh_token(&token)
            .map_err(|e| OidcError::Provider(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Refused(error_chain(&e)))?;
        Ok(tokens(&response, Some(refresh_token)))
    }
}

fn tokens(response: &impl OAuth2TokenResponse, previous_refresh: Option<&str>) -> Tokens {
    let lifetime = response
        .expires_in()
        .unwrap_or(Duration::from_secs(300))
        .min(Duration::from_secs(24 * 3600));
    Tokens {
        access_token: response.access_token().secret().clone(),
        access_expires_at: Utc::now()
            + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::minutes(5)),
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh.map(String::from)),
        id_token: None,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The HTTP client the OpenID exchanges go through (the workspace's reqwest).
struct Http(reqwest::Client);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request =
                reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
            let response = self
                .0
                .execute(request)
                .await
                .map_err(|e| HttpError(error_chain(&e)))?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            builder
                .body(body.to_vec())
                .map_err(|e| HttpError(e.to_string()))
        })
    }
}
