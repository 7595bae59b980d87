//! The claims of a token, and their verification: signature by a key of the configured JWKS, issuer,
//! audience, expiry; verified tokens are cached until they expire.

use std::{collections::HashMap, sync::Arc};

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
    #[error("PLACEMENT_AUTH_JWKS_FILE is required outside development mode")]
    NoKeys,
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
    pub issuer: String,
    pub audience: String,
}

/// Verifies tokens. Built once at start; shared by every request.
pub struct Verifier {
    development: bool,
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    issuer: String,
    audience: String,
    /// Tokens already verified, with their expiry: a client sends the same token for its whole life, and a
    /// service forwards it to the next; checking the signature once is enough. Only the exact same bytes hit.
    verified: std::sync::Mutex<HashMap<Arc<str>, (Caller, i64)>>,
}

/// Verified tokens kept at most; the cache is emptied when full (they are re-verified on next use).
const VERIFIED_CACHE: usize = 10_000;
const LEEWAY_SECS: i64 = 30;

impl Verifier {
    pub fn new(settings: &AuthSettings) -> Result<Self, AuthError> {
        let mut keys = HashMap::new();
        match &settings.jwks_file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| AuthError::Read(path.clone(), e))?;
                let set: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| AuthError::Keys(path.clone(), e.to_string()))?;
                for jwk in &set.keys {
                    let kid =
                        jwk.common.key_id.clone().ok_or_else(|| {
                            AuthError::Keys(path.clone(), "a key without kid".into())
                        })?;
                    let algorithm = match &jwk.algorithm {
                        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                            Algorithm::ES256
                        }
                        _ => {
                            return Err(AuthError::Keys(
                                path.clone(),
                                format!("key {kid}: only Ed25519 (EdDSA) and P-256 (ES256) keys"),
                            ));
                        }
                    };
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| AuthError::Keys(path.clone(), format!("key {kid}: {e}")))?;
                    keys.insert(kid, (key, algorithm));
                }
            }
            None if !settings.development => return Err(AuthError::NoKeys),
            None => {}
        }
        Ok(Self {
            development: settings.development,
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            verified: std::sync::Mutex::new(HashMap::new()),
        })
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
        let (key, algorithm) = self
            .keys
            .get(&kid)
            .ok_or_else(|| unauthenticated("unknown signing key"))?;
        if header.alg != *algorithm {
            return Err(unauthenticated("algorithm does not match the key"));
        }
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
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
