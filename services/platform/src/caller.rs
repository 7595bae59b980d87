//! Who is calling, and what they may do: the one place that turns request metadata into a verified caller.
//!
//! Every call carries `authorization: Bearer <JWT>`, signed (EdDSA or ES256) by a key in the configured JWKS,
//! with issuer, audience and expiry checked, naming the agency it acts for (`agency_id`) and its roles
//! (`roles`). A call without a valid token is `UNAUTHENTICATED` before any service code runs. The
//! `x-agency-id` header is honoured only in the explicit development mode (`PLACEMENT_AUTH_MODE=development`),
//! which logs a warning at start.

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status, metadata::MetadataValue};
use uuid::Uuid;

/// The metadata key naming the agency a call acts for, in development mode only.
pub const AGENCY_HEADER: &str = "x-agency-id";
/// In development mode: the caller's roles, comma-separated (all roles when absent).
pub const ROLES_HEADER: &str = "x-roles";

/// The national Agency for Social Assistance: it operates the system (created by the directory's first
/// migration; registers the first agencies).
pub const NATIONAL_AUTHORITY: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_000000000001);

/// What a caller may do, as granted by its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Works cases and referrals of its agency: opens cases, submits, acknowledges, reads.
    Caseworker,
    /// Decides for its agency: accepts, declines, withdraws, confirms placements, records court decisions,
    /// closes cases (and everything a caseworker does).
    Supervisor,
    /// Changes the directory: agencies, services, capacity, notification endpoints.
    DirectoryAdmin,
    /// Runs the system: status, dead letters, deliveries, the audit trail.
    Operator,
    /// Another system of the agency: reads its referrals and notifications, changes nothing.
    Integration,
}

pub const ALL_ROLES: [Role; 5] = [
    Role::Caseworker,
    Role::Supervisor,
    Role::DirectoryAdmin,
    Role::Operator,
    Role::Integration,
];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Caseworker => "caseworker",
            Role::Supervisor => "supervisor",
            Role::DirectoryAdmin => "directory_admin",
            Role::Operator => "operator",
            Role::Integration => "integration",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        ALL_ROLES.into_iter().find(|r| r.as_str() == s.trim())
    }
}

/// Kinds of act on cases and referrals, each with the roles that may do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Reading: the agency's staff and its own systems.
    Read,
    /// Opening cases, submitting and acknowledging referrals.
    Work,
    /// Decisions that commit the agency: accept, decline, withdraw, confirm, record a court decision, close.
    Decide,
}

impl Act {
    pub fn roles(self) -> &'static [Role] {
        match self {
            Act::Read => &[Role::Caseworker, Role::Supervisor, Role::Integration],
            Act::Work => &[Role::Caseworker, Role::Supervisor],
            Act::Decide => &[Role::Supervisor],
        }
    }
}

/// The roles of a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Roles(u8);

impl Roles {
    pub fn of(roles: &[Role]) -> Self {
        Self(roles.iter().fold(0, |acc, r| acc | (1 << *r as u8)))
    }

    pub fn has(self, role: Role) -> bool {
        self.0 & (1 << role as u8) != 0
    }

    pub fn any(self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    pub fn list(self) -> Vec<Role> {
        ALL_ROLES.into_iter().filter(|r| self.has(*r)).collect()
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The agency the call acts for.
    pub agency_id: Uuid,
    /// Who: the token's subject (a person or a system), for the audit trail.
    pub subject: String,
    pub roles: Roles,
    /// The bearer token, forwarded when a service calls another on the caller's behalf.
    token: Option<Arc<str>>,
}

impl Caller {
    pub fn new(agency_id: Uuid, subject: impl Into<String>, roles: Roles) -> Self {
        Self {
            agency_id,
            subject: subject.into(),
            roles,
            token: None,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.has(role)
    }

    /// PERMISSION_DENIED unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), crate::ServiceError> {
        if self.roles.any(roles) {
            Ok(())
        } else {
            Err(crate::ServiceError::denied(format!(
                "needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }

    /// Makes an outgoing request to another service act for the same caller, with the same credentials.
    pub fn forward<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        match &self.token {
            Some(token) => {
                let value = MetadataValue::try_from(format!("Bearer {token}"))
                    .expect("a token that arrived as metadata is valid metadata");
                request.metadata_mut().insert("authorization", value);
            }
            None => {
                let value = MetadataValue::try_from(self.agency_id.to_string())
                    .expect("a UUID is valid metadata");
                request.metadata_mut().insert(AGENCY_HEADER, value);
                let roles = self
                    .roles
                    .list()
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                if let Ok(value) = MetadataValue::try_from(roles) {
                    request.metadata_mut().insert(ROLES_HEADER, value);
                }
            }
        }
        request
    }
}

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

    fn identify(&self, request: &Request<()>) -> Result<Caller, Status> {
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

/// The tonic interceptor every service's API sits behind: no verified caller, no call.
#[derive(Clone)]
pub struct Authenticate(pub Arc<Verifier>);

impl tonic::service::Interceptor for Authenticate {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.0.identify(&request)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

pub trait CallerExt {
    /// The verified caller (UNAUTHENTICATED if the interceptor did not run, which is a wiring error).
    #[allow(clippy::result_large_err)]
    fn caller(&self) -> Result<Caller, Status>;
}

impl<T> CallerExt for Request<T> {
    fn caller(&self) -> Result<Caller, Status> {
        self.extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))
    }
}

/// Mints tokens: the development command and the tests use it; production tokens come from the
/// government's identity provider.
pub struct Signer {
    key: EncodingKey,
    kid: String,
    pub issuer: String,
    pub audience: String,
}

impl Signer {
    /// From a PKCS#8 PEM Ed25519 private key.
    pub fn ed25519(pem: &[u8], kid: &str, issuer: &str, audience: &str) -> Result<Self, String> {
        Ok(Self {
            key: EncodingKey::from_ed_pem(pem).map_err(|e| e.to_string())?,
            kid: kid.into(),
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    pub fn mint(
        &self,
        agency: Uuid,
        subject: &str,
        roles: &[Role],
        ttl: std::time::Duration,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.into(),
            exp: now.saturating_add(ttl),
            iat: Some(now),
            nbf: None,
            agency_id: agency.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_string()).collect(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).expect("an Ed25519 key signs")
    }

    /// Signs `claims` as they are (tests use it for expired tokens, wrong audiences, missing claims).
    pub fn sign(&self, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("an Ed25519 key signs")
    }

    /// The same signer for another issuer or audience (to test that they are refused).
    pub fn with_claims(&self, issuer: &str, audience: &str) -> Self {
        Self {
            key: self.key.clone(),
            kid: self.kid.clone(),
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }
}

/// The metadata key carrying a correlation id chosen by the client, propagated into events.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// The request's correlation id, or a fresh one.
pub fn correlation_id<T>(request: &Request<T>) -> Uuid {
    request
        .metadata()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        .unwrap_or_else(Uuid::now_v7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip() {
        let roles = Roles::of(&[Role::Caseworker, Role::Operator]);
        assert!(roles.has(Role::Caseworker) && roles.has(Role::Operator));
        assert!(!roles.has(Role::Supervisor));
        assert_eq!(roles.list(), vec![Role::Caseworker, Role::Operator]);
        for r in ALL_ROLES {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1024))]

            /// Any token that is not a valid signed one is UNAUTHENTICATED, never a panic.
            #[test]
            fn random_tokens(token in "\\PC{0,600}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,80}", 3)) {
                let verifier = Verifier::new(&AuthSettings {
                    development: true, jwks_file: None, issuer: "i".into(), audience: "a".into(),
                }).unwrap();
                for t in [token, parts.join(".")] {
                    let e = verifier.verify(&t).unwrap_err();
                    prop_assert_eq!(e.code(), tonic::Code::Unauthenticated);
                }
            }
        }
    }
}
