//! Minting tokens: the development command and the tests sign with a local key; production tokens come
//! from the identity provider.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use uuid::Uuid;

use super::{Claims, Role};

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
