//! The claims of a token, and their verification: signature by a key of the configured JWKS (a file, or
//! the identity provider's `jwks_uri`, fetched again when a token names a key not seen yet, so the provider
//! may rotate its keys without a restart), issuer, audience, expiry; verified tokens are cached until they
//! expire.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};
use uuid::Uuid;

use super::{AGENCY_HEADER, ALL_ROLES, Caller, ROLES_HEADER, Role, Roles};

/// The claims of a Placement Exchange token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub exp: i64,
    /// Issued at; optional, as in RFC 7519, but never in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before; optional, honoured when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// UUID of the agency the bearer acts for.
    pub agency_id: String,
    /// Role names; unknown ones are ignored.
    pub roles: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("PLACEMENT_AUTH_MODE must be `jwt` or `development`, not {0:?}")]
    Mode(String),
    #[error(
        "PLACEMENT_AUTH_JWKS_FILE or PLACEMENT_AUTH_JWKS_URI is required outside development mode"
    )]
    NoKeys,
    #[error("fetching the JWKS from {0}: {1}")]
    Fetch(String, String),
    #[error("reading the JWKS file {0}: {1}")]
    Read(String, std::io::Error),
    #[error("the JWKS file {0}: {1}")]
    Keys(String, String),
}

/// Authentication settings (part of every service's configuration).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub development: bool,
    pub jwks_file: Option<String>,
    /// The identity provider's `jwks_uri`.
    pub jwks_uri: Option<String>,
    pub issuer: String,
    pub audience: String,
}

/// Verifies tokens. Built once at start; shared by every request.
pub struct Verifier {
    development: bool,
    keys: RwLock<Keys>,
    /// The keys of the file, kept beside those fetched.
    file_keys: Keys,
    /// Where further keys are fetched from (the identity provider).
    jwks_uri: Option<JwksUri>,
    /// The issuers whose tokens are taken (`PLACEMENT_AUTH_ISSUER`, comma-separated).
    issuers: Vec<String>,
    audience: String,
    /// Tokens already verified, with their expiry: a client sends the same token for its whole life, and a
    /// service forwards it to the next; checking the signature once is enough. Only the exact same bytes hit.
    verified: std::sync::Mutex<HashMap<Arc<str>, (Caller, i64)>>,
}

/// Verified tokens kept at most; the cache is emptied when full (they are re-verified on next use).
const VERIFIED_CACHE: usize = 10_000;
const LEEWAY_SECS: i64 = 30;
/// The JWKS is fetched again at most this often, however many tokens name unknown keys: a stream of
/// made-up key ids must not become a stream of calls to the identity provider.
const MIN_REFETCH: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

type Keys = HashMap<String, (DecodingKey, Algorithm)>;

struct JwksUri {
    url: String,
    client: reqwest::Client,
    last_fetch: Mutex<Option<Instant>>,
}

/// The verification keys of a JWKS document; `origin` names it in errors.
fn parse_jwks(text: &str, origin: &str) -> Result<Keys, AuthError> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|e| AuthError::Keys(origin.into(), e.to_string()))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let kid = jwk
            .common
            .key_id
            .clone()
            .ok_or_else(|| AuthError::Keys(origin.into(), "a key without kid".into()))?;
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            // An identity provider may publish other keys (RSA, encryption keys) beside these: they are
            // not trusted, and tokens signed with them are refused as signed by an unknown key.
            _ => {
                tracing::warn!(
                    kid,
                    origin,
                    "key ignored: only Ed25519 (EdDSA) and P-256 (ES256) keys are trusted"
                );
                continue;
            }
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| AuthError::Keys(origin.into(), format!("key {kid}: {e}")))?;
        keys.insert(kid, (key, algorithm));
    }
    Ok(keys)
}

impl Verifier {
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        // Both sources may be given: the staff's identity provider, and the exchange's own signer of
        // service accounts (the demo's command-line client).
        let keys = match (&settings.jwks_file, &settings.jwks_uri) {
            (Some(path), _) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| AuthError::Read(path.clone(), e))?;
                parse_jwks(&text, path)?
            }
            (None, None) if !settings.development => return Err(AuthError::NoKeys),
            (None, _) => HashMap::new(),
        };
        let jwks_uri = match &settings.jwks_uri {
            Some(url) => Some(JwksUri {
                url: url.clone(),
                client: reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(|e| AuthError::Fetch(url.clone(), e.to_string()))?,
                last_fetch: Mutex::new(None),
            }),
            None => None,
        };
        Ok(Self {
            development: settings.development,
            keys: RwLock::new(keys.clone()),
            file_keys: keys,
            jwks_uri,
            issuers: settings
                .issuer
                .split(',')
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .map(String::from)
                .collect(),
            audience: settings.audience.clone(),
            verified: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Fetches the keys from the `jwks_uri` (nothing to do without one); returns how many there are.
    pub async fn fetch_keys(&self) -> Result<usize, AuthError> {
        let Some(source) = &self.jwks_uri else {
            return Ok(self.keys.read().expect("not poisoned").len());
        };
        *source.last_fetch.lock().expect("not poisoned") = Some(Instant::now());
        let failed = |e: reqwest::Error| AuthError::Fetch(source.url.clone(), e.to_string());
        let text = source
            .client
            .get(&source.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(failed)?
            .text()
            .await
            .map_err(failed)?;
        let mut keys = parse_jwks(&text, &source.url)?;
        let n = keys.len();
        keys.extend(self.file_keys.iter().map(|(k, v)| (k.clone(), v.clone())));
        *self.keys.write().expect("not poisoned") = keys;
        tracing::info!(keys = n, url = %source.url, "verification keys fetched");
        Ok(n)
    }

    /// A token names a key not seen yet: the provider may have rotated its keys. Fetches them again, at
    /// most once per [`MIN_REFETCH`], holding this worker thread meanwhile (interceptors cannot wait;
    /// rare, and bounded by the fetch's timeout).
    fn refetch_for_unknown_key(&self) {
        let Some(source) = &self.jwks_uri else {
            return;
        };
        if source
            .last_fetch
            .lock()
            .expect("not poisoned")
            .is_some_and(|at| at.elapsed() < MIN_REFETCH)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        if let Err(e) = tokio::task::block_in_place(|| runtime.block_on(self.fetch_keys())) {
            tracing::warn!(error = %e, "could not fetch the verification keys");
        }
    }

    fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().expect("not poisoned").get(kid).cloned()
    }

    pub fn development(&self) -> bool {
        self.development
    }

    /// The caller a token proves, or why not.
    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        let now = chrono::Utc::now().timestamp();
        if let Some((caller, exp)) = self.verified.lock().expect("not poisoned").get(token)
            && now <= exp.saturating_add(LEEWAY_SECS)
        {
            return Ok(caller.clone());
        }
        let (caller, exp) = self.verify_signed(token, now)?;
        let mut verified = self.verified.lock().expect("not poisoned");
        if verified.len() >= VERIFIED_CACHE {
            verified.clear();
        }
        verified.insert(Arc::from(token), (caller.clone(), exp));
        Ok(caller)
    }

    fn verify_signed(&self, token: &str, now: i64) -> Result<(Caller, i64), Status> {
        let unauthenticated = |why: &str| Status::unauthenticated(format!("invalid token: {why}"));
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthenticated("malformed"))?;
        let kid = header.kid.ok_or_else(|| unauthenticated("no key id"))?;
        let (key, algorithm) = match self.key(&kid) {
            Some(found) => found,
            None => {
                self.refetch_for_unknown_key();
                self.key(&kid)
                    .ok_or_else(|| unauthenticated("unknown signing key"))?
            }
        };
        if header.alg != algorithm {
            return Err(unauthenticated("algorithm does not match the key"));
        }
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&self.issuers);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind::*;
            match e.kind() {
                ExpiredSignature => unauthenticated("expired"),
                ImmatureSignature => unauthenticated("not valid yet (nbf)"),
                MissingRequiredClaim(claim) => {
                    Status::unauthenticated(format!("invalid token: no `{claim}` claim"))
                }
                InvalidClaimFormat(claim) => {
                    Status::unauthenticated(format!("invalid token: malformed `{claim}` claim"))
                }
                InvalidAudience => unauthenticated("wrong audience"),
                InvalidIssuer => unauthenticated("wrong issuer"),
                InvalidSignature => unauthenticated("bad signature"),
                // Claims that do not make a Placement Exchange token, e.g. "missing field `agency_id`".
                Json(e) => Status::unauthenticated(format!("invalid token: claims: {e}")),
                _ => unauthenticated("rejected"),
            }
        })?;
        // jsonwebtoken does not look at `iat`; a token issued in the future is not one we issued.
        if data
            .claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECS))
        {
            return Err(unauthenticated("issued in the future (iat)"));
        }
        let agency_id = Uuid::parse_str(&data.claims.agency_id)
            .map_err(|_| unauthenticated("agency_id is not a UUID"))?;
        let roles: Vec<Role> = data
            .claims
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .collect();
        Ok((
            Caller {
                agency_id,
                subject: data.claims.sub,
                roles: Roles::of(&roles),
                token: Some(Arc::from(token)),
                expires_at: Some(data.claims.exp),
            },
            data.claims.exp,
        ))
    }

    pub(super) fn identify(&self, request: &Request<()>) -> Result<Caller, Status> {
        let metadata = request.metadata();
        if let Some(value) = metadata.get("authorization") {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
            return self.verify(token.trim());
        }
        if self.development
            && let Some(value) = metadata.get(AGENCY_HEADER)
        {
            let agency_id = value
                .to_str()
                .ok()
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
                .ok_or_else(|| Status::unauthenticated(format!("{AGENCY_HEADER} is not a UUID")))?;
            let roles = match metadata.get(ROLES_HEADER).and_then(|v| v.to_str().ok()) {
                Some(list) => {
                    Roles::of(&list.split(',').filter_map(Role::parse).collect::<Vec<_>>())
                }
                None => Roles::of(&ALL_ROLES),
            };
            return Ok(Caller::new(
                agency_id,
                format!("development:{agency_id}"),
                roles,
            ));
        }
        Err(Status::unauthenticated("missing bearer token"))
    }
}
