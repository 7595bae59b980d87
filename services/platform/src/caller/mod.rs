//! Who is calling, and what they may do: the one place that turns request metadata into a verified caller.
//!
//! Every call carries `authorization: Bearer <JWT>`, signed (EdDSA or ES256) by a key in the configured JWKS,
//! with issuer, audience and expiry checked, naming the agency it acts for (`agency_id`) and its roles
//! (`roles`). A call without a valid token is `UNAUTHENTICATED` before any service code runs. The
//! `x-agency-id` header is honoured only in the explicit development mode (`PLACEMENT_AUTH_MODE=development`),
//! which logs a warning at start.

//!
//! - [`roles`]: the role vocabulary and the acts each role may do;
//! - [`token`]: the claims of a token and their verification against the JWKS (with a cache of tokens
//!   already verified);
//! - [`signer`]: minting tokens, for development and tests.

mod roles;
mod signer;
mod token;

use std::sync::Arc;

use tonic::{Request, Status, metadata::MetadataValue};
use uuid::Uuid;

pub use roles::{ALL_ROLES, Act, Role, Roles};
pub use signer::Signer;
pub use token::{AuthError, AuthSettings, Claims, Verifier};

/// The metadata key naming the agency a call acts for, in development mode only.
pub const AGENCY_HEADER: &str = "x-agency-id";
/// In development mode: the caller's roles, comma-separated (all roles when absent).
pub const ROLES_HEADER: &str = "x-roles";

/// The national Agency for Social Assistance: it operates the system (created by the directory's first
/// migration; registers the first agencies).
pub const NATIONAL_AUTHORITY: Uuid = Uuid::from_u128(0x00000000_0000_4000_8000_000000000001);

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
    /// When the token expires (its `exp`, seconds since the epoch); none in development mode. What outlives
    /// the call (a stream) ends then.
    expires_at: Option<i64>,
}

impl Caller {
    pub fn new(agency_id: Uuid, subject: impl Into<String>, roles: Roles) -> Self {
        Self {
            agency_id,
            subject: subject.into(),
            roles,
            token: None,
            expires_at: None,
        }
    }

    /// When the caller's token expires; `None` for a caller without one (development mode).
    pub fn expires_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.expires_at
            .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0))
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

    /// Whether the caller holds operator powers: the `operator` role on a token of the national authority.
    /// The system's operators are the national authority's staff; the role on another agency's token grants
    /// nothing, as an agency's own administrator could otherwise read every agency's records.
    pub fn is_operator(&self) -> bool {
        self.has(Role::Operator) && self.agency_id == NATIONAL_AUTHORITY
    }

    /// PERMISSION_DENIED unless [`Self::is_operator`]: every operator and audit RPC of every service asks this.
    pub fn require_operator(&self) -> Result<(), crate::ServiceError> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(crate::ServiceError::denied(
                "needs the role operator of the national authority: operators are the national authority's staff",
            ))
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

    #[test]
    fn operators_are_the_national_authority_s_staff() {
        let everything = Roles::of(&ALL_ROLES);
        let ordinary = Caller::new(Uuid::from_u128(7), "someone", everything);
        assert!(!ordinary.is_operator());
        let e = tonic::Status::from(ordinary.require_operator().unwrap_err());
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(
            e.message().contains("national authority"),
            "{}",
            e.message()
        );
        let national = Caller::new(NATIONAL_AUTHORITY, "someone", Roles::of(&[Role::Operator]));
        assert!(national.is_operator() && national.require_operator().is_ok());
        let without_role = Caller::new(
            NATIONAL_AUTHORITY,
            "someone",
            Roles::of(&[Role::Supervisor]),
        );
        assert!(without_role.require_operator().is_err());
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
                    development: true, jwks_file: None, jwks_uri: None, issuer: "i".into(), audience: "a".into(),
                }).unwrap();
                for t in [token, parts.join(".")] {
                    let e = verifier.verify(&t).unwrap_err();
                    prop_assert_eq!(e.code(), tonic::Code::Unauthenticated);
                }
            }
        }
    }
}
