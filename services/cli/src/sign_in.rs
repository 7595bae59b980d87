//! The command line signs in at the identity provider as every other client of the exchange does: a
//! machine by the client-credentials grant (its secret from the environment), a person by the device
//! authorization grant (RFC 8628: they confirm a short code in a browser, on any machine). A person's
//! tokens are kept in a file of their own ([`crate::token_cache`]) and refreshed when they run out. The
//! services verify these tokens as any other: the provider's keys, its issuer, the exchange's audience.

use std::{path::PathBuf, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;

pub use crate::token_cache::Tokens;
use crate::token_cache::{CacheError, TokenCache};

pub const DEFAULT_CLIENT_ID: &str = "placement-cli";
pub const DEFAULT_RESOURCE: &str = "urn:placement-exchange";
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// A person's sign-in asks for `offline_access` too: the refresh token that spares signing in every run.
const PERSON_SCOPE: &str = "openid offline_access placement";
const MACHINE_SCOPE: &str = "placement";
/// RFC 8628 §3.2 and §3.5: poll every five seconds unless told otherwise; `slow_down` adds five.
const DEFAULT_POLL: Duration = Duration::from_secs(5);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// A kept token this close to its end is refreshed first, so it does not run out during the command.
const REFRESH_MARGIN_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider {0}: {1}")]
    Discovery(String, String),
    #[error("the identity provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider refused {what}: {code} ({description})")]
    Refused {
        what: String,
        code: String,
        description: String,
    },
    #[error("the identity provider's answer to {0} is not understood: {1}")]
    Answer(String, String),
    #[error(
        "the identity provider {0} offers no device sign-in (no device_authorization_endpoint)"
    )]
    NoDeviceFlow(String),
    #[error("the code was not confirmed in time: run `placement-cli sign-in` again")]
    Expired,
    #[error(
        "not signed in at {issuer} as {client_id}: run `placement-cli sign-in` (a machine sets PLACEMENT_CLI_CLIENT_SECRET)"
    )]
    NotSignedIn { issuer: String, client_id: String },
    #[error("the sign-in at {issuer} has ended ({reason}): run `placement-cli sign-in` again")]
    Ended { issuer: String, reason: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// Where and as whom the command line signs in.
#[derive(Debug, Clone)]
pub struct SignInSettings {
    /// The provider's issuer URL; its discovery document is read from under it.
    pub issuer: String,
    pub client_id: String,
    /// A machine's secret (`PLACEMENT_CLI_CLIENT_SECRET`); people's sign-in has none.
    pub client_secret: Option<String>,
    /// The resource indicator (RFC 8707) the tokens are asked for: the exchange's services.
    pub resource: String,
    /// Where a person's tokens are kept.
    pub cache: PathBuf,
}

impl Tokens {
    fn from_answer(answer: TokenAnswer, previous_refresh: Option<&str>) -> Self {
        let lifetime = i64::try_from(answer.expires_in.unwrap_or(300)).unwrap_or(i64::MAX);
        Tokens {
            access_token: answer.access_token,
            expires_at: chrono::Utc::now().timestamp().saturating_add(lifetime),
            // A provider that does not rotate refresh tokens sends none with a refresh: the old one holds.
            refresh_token: answer
                .refresh_token
                .or_else(|| previous_refresh.map(str::to_string)),
        }
    }

    /// Whether the access token is still good for at least the refresh margin.
    pub fn is_fresh(&self, now: i64) -> bool {
        self.expires_at > now.saturating_add(REFRESH_MARGIN_SECS)
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    #[serde(default)]
    error_description: String,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    token_endpoint: String,
    device_authorization_endpoint: Option<String>,
}

/// What the person is to be shown (RFC 8628 §3.2), and the device code the token is asked for with.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: Option<u64>,
}

/// How long to wait before asking again, after the token endpoint answered `error` while the person
/// has not confirmed yet; `None` when the answer ends the sign-in.
pub fn next_poll(interval: Duration, error: &str) -> Option<Duration> {
    match error {
        "authorization_pending" => Some(interval),
        "slow_down" => Some(interval + SLOW_DOWN_STEP),
        _ => None,
    }
}

/// The identity provider as its discovery document describes it.
pub struct IdentityProvider {
    settings: SignInSettings,
    http: reqwest::Client,
    token_endpoint: String,
    device_endpoint: Option<String>,
}

impl IdentityProvider {
    /// Reads the provider's discovery document, which must name the issuer configured.
    pub async fn discover(settings: &SignInSettings) -> Result<Self, SignInError> {
        let http = reqwest::Client::builder()
            // The provider's answers must not lead the command line to other addresses.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SignInError::Unreachable(e.to_string()))?;
        let issuer = settings.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let (status, text) = answered(http.get(&url), &url).await?;
        if !status.is_success() {
            return Err(SignInError::Discovery(
                issuer.into(),
                format!("{url} answered {status}"),
            ));
        }
        let found: Discovery = serde_json::from_str(&text)
            .map_err(|e| SignInError::Discovery(issuer.into(), format!("{url}: {e}")))?;
        // OpenID Connect Discovery §4.3: another issuer's document would have the command line carry
        // tokens of a provider the services do not trust.
        if found.issuer.trim_end_matches('/') != issuer {
            return Err(SignInError::Discovery(
                issuer.into(),
                format!(
                    "its discovery document names another issuer, {}",
                    found.issuer
                ),
            ));
        }
        Ok(Self {
            settings: settings.clone(),
            http,
            token_endpoint: found.token_endpoint,
            device_endpoint: found.device_authorization_endpoint,
        })
    }

    /// A machine's token, by its client id and secret.
    pub async fn client_credentials(&self) -> Result<Tokens, SignInError> {
        let answer = self
            .post(
                &self.token_endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", MACHINE_SCOPE),
                    ("resource", &self.settings.resource),
                ],
                "the client credentials",
            )
            .await?;
        Ok(Tokens::from_answer(parse(&answer, "the token")?, None))
    }

    /// Starts a person's sign-in: the code they are to confirm, and where.
    pub async fn start_device_sign_in(&self) -> Result<DeviceAuthorization, SignInError> {
        let endpoint = self
            .device_endpoint
            .as_deref()
            .ok_or_else(|| SignInError::NoDeviceFlow(self.settings.issuer.clone()))?;
        let answer = self
            .post(
                endpoint,
                &[
                    ("scope", PERSON_SCOPE),
                    ("resource", &self.settings.resource),
                ],
                "the device sign-in",
            )
            .await?;
        parse(&answer, "the device sign-in")
    }

    /// Asks for the token until the person has confirmed the code (or refused, or let it expire),
    /// as often as the provider allows.
    pub async fn await_device_confirmation(
        &self,
        device: &DeviceAuthorization,
    ) -> Result<Tokens, SignInError> {
        let mut interval = device
            .interval
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_POLL);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(device.expires_in);
        loop {
            tokio::time::sleep(interval).await;
            let asked = self
                .post(
                    &self.token_endpoint,
                    &[
                        ("grant_type", DEVICE_CODE_GRANT),
                        ("device_code", &device.device_code),
                    ],
                    "the sign-in",
                )
                .await;
            match asked {
                Ok(answer) => return Ok(Tokens::from_answer(parse(&answer, "the token")?, None)),
                Err(SignInError::Refused { code, .. }) if code == "expired_token" => {
                    return Err(SignInError::Expired);
                }
                Err(SignInError::Refused {
                    code,
                    description,
                    what,
                }) => match next_poll(interval, &code) {
                    Some(next) => interval = next,
                    None => {
                        return Err(SignInError::Refused {
                            what,
                            code,
                            description,
                        });
                    }
                },
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() + interval > deadline {
                return Err(SignInError::Expired);
            }
        }
    }

    /// New tokens for a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, SignInError> {
        let answer = self
            .post(
                &self.token_endpoint,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
                "the refresh token",
            )
            .await?;
        Ok(Tokens::from_answer(
            parse(&answer, "the token")?,
            Some(refresh_token),
        ))
    }

    /// Posts `params` as a form, with the client's credentials (HTTP basic with a secret, else the client
    /// id in the form, as a public client); the body of a successful answer, the OAuth error otherwise.
    async fn post(
        &self,
        url: &str,
        params: &[(&str, &str)],
        what: &str,
    ) -> Result<String, SignInError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params.iter().copied());
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json");
        match &self.settings.client_secret {
            Some(secret) => request = request.basic_auth(&self.settings.client_id, Some(secret)),
            None => {
                form.append_pair("client_id", &self.settings.client_id);
            }
        }
        let (status, text) = answered(request.body(form.finish()), url).await?;
        if status.is_success() {
            return Ok(text);
        }
        match serde_json::from_str::<OAuthError>(&text) {
            Ok(e) => Err(SignInError::Refused {
                what: what.to_string(),
                code: e.error,
                description: e.error_description,
            }),
            Err(_) => Err(SignInError::Answer(
                what.to_string(),
                format!("{status}: {}", text.chars().take(200).collect::<String>()),
            )),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, SignInError> {
    serde_json::from_str(text).map_err(|e| SignInError::Answer(what.to_string(), e.to_string()))
}

/// Sends `request` and reads its answer's status and text; a provider that cannot be reached or read is
/// `Unreachable`, naming `url`.
async fn answered(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<(reqwest::StatusCode, String), SignInError> {
    let answer = request
        .send()
        .await
        .map_err(|e| SignInError::Unreachable(format!("{url}: {}", error_chain(&e))))?;
    let status = answer.status();
    let text = answer
        .text()
        .await
        .map_err(|e| SignInError::Unreachable(format!("{url}: {e}")))?;
    Ok((status, text))
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

/// The access token for this run: a machine's, asked for now with its secret; else the person's kept
/// token, refreshed first when it is about to run out.
pub async fn access_token(settings: &SignInSettings) -> Result<String, SignInError> {
    if settings.client_secret.is_some() {
        // A machine has its secret at hand each run: nothing of it is written to disk.
        let provider = IdentityProvider::discover(settings).await?;
        return Ok(provider.client_credentials().await?.access_token);
    }
    let cache = TokenCache::new(settings.cache.clone());
    let not_signed_in = || SignInError::NotSignedIn {
        issuer: settings.issuer.clone(),
        client_id: settings.client_id.clone(),
    };
    let kept = cache
        .load(&settings.issuer, &settings.client_id)?
        .ok_or_else(not_signed_in)?;
    if kept.is_fresh(chrono::Utc::now().timestamp()) {
        return Ok(kept.access_token);
    }
    let refresh_token = kept.refresh_token.as_deref().ok_or_else(not_signed_in)?;
    let provider = IdentityProvider::discover(settings).await?;
    match provider.refresh(refresh_token).await {
        Ok(tokens) => {
            cache.store(&settings.issuer, &settings.client_id, &tokens)?;
            Ok(tokens.access_token)
        }
        Err(SignInError::Refused {
            code, description, ..
        }) => {
            // The provider ended the session (revoked, expired, signed out elsewhere): the kept tokens
            // are of no more use.
            cache.forget(&settings.issuer, &settings.client_id)?;
            Err(SignInError::Ended {
                issuer: settings.issuer.clone(),
                reason: format!("{code}: {description}"),
            })
        }
        Err(e) => Err(e),
    }
}

/// Signs a person in by the device flow: `show` is given what to tell them; the tokens are kept.
pub async fn sign_in_person(
    settings: &SignInSettings,
    show: impl FnOnce(&DeviceAuthorization),
) -> Result<Tokens, SignInError> {
    let provider = IdentityProvider::discover(settings).await?;
    let device = provider.start_device_sign_in().await?;
    show(&device);
    let tokens = provider.await_device_confirmation(&device).await?;
    TokenCache::new(settings.cache.clone()).store(
        &settings.issuer,
        &settings.client_id,
        &tokens,
    )?;
    Ok(tokens)
}

/// The agency and roles an access token claims, read without verifying it: for showing the person
/// whom they signed in as (the services verify it).
pub fn claimed(access_token: &str) -> Option<(String, Vec<String>)> {
    let payload = access_token.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let agency = claims["agency_id"].as_str()?.to_string();
    let roles = claims["roles"]
        .as_array()?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    Some((agency, roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_waits_while_pending_slows_down_when_told_and_stops_otherwise() {
        let five = Duration::from_secs(5);
        assert_eq!(next_poll(five, "authorization_pending"), Some(five));
        assert_eq!(next_poll(five, "slow_down"), Some(Duration::from_secs(10)));
        assert_eq!(
            next_poll(Duration::from_secs(10), "slow_down"),
            Some(Duration::from_secs(15))
        );
        for ending in [
            "access_denied",
            "expired_token",
            "invalid_grant",
            "invalid_client",
        ] {
            assert_eq!(next_poll(five, ending), None, "{ending}");
        }
    }

    #[test]
    fn a_token_is_refreshed_a_minute_before_it_runs_out() {
        let tokens = Tokens {
            access_token: "t".into(),
            expires_at: 1_000,
            refresh_token: None,
        };
        assert!(tokens.is_fresh(900));
        assert!(!tokens.is_fresh(940));
        assert!(!tokens.is_fresh(2_000));
    }

    #[test]
    fn a_refresh_without_a_new_refresh_token_keeps_the_old_one() {
        let answer = |refresh: Option<&str>| TokenAnswer {
            access_token: "a".into(),
            expires_in: Some(600),
            refresh_token: refresh.map(str::to_string),
        };
        let kept = Tokens::from_answer(answer(None), Some("old"));
        assert_eq!(kept.refresh_token.as_deref(), Some("old"));
        let rotated = Tokens::from_answer(answer(Some("new")), Some("old"));
        assert_eq!(rotated.refresh_token.as_deref(), Some("new"));
        let now = chrono::Utc::now().timestamp();
        assert!((now + 590..=now + 610).contains(&rotated.expires_at));
    }

    #[test]
    fn the_claims_shown_are_the_tokens_agency_and_roles() {
        let payload = URL_SAFE_NO_PAD.encode(
            serde_json::json!({"agency_id": "00000000-0000-4000-8000-000000000001", "roles": ["operator"]})
                .to_string(),
        );
        let (agency, roles) = claimed(&format!("h.{payload}.s")).expect("claims");
        assert_eq!(agency, "00000000-0000-4000-8000-000000000001");
        assert_eq!(roles, ["operator"]);
        assert!(claimed("not a token").is_none());
    }
}
