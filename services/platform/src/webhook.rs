//! Webhook signing secrets, derived rather than stored or sent.
//!
//! The directory hands an agency its webhook's secret; the notifications service signs with it. Instead of
//! carrying secrets in events (which other systems may read) or asking the directory at every delivery, both
//! derive the secret from the endpoint's id and secret version with a key only they hold
//! (`PLACEMENT_WEBHOOK_SECRET_KEY`). Rotating means a new version, hence a new secret.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// The Standard Webhooks secret of an endpoint: "whsec_" and 32 bytes in base64.
pub fn derive_secret(key: &str, endpoint: Uuid, version: u32) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(b"placement-exchange/webhook-secret/v1/");
    mac.update(endpoint.as_bytes());
    mac.update(&version.to_be_bytes());
    format!("whsec_{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_differ_by_endpoint_version_and_key() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let s = derive_secret("k", a, 1);
        assert!(s.starts_with("whsec_"));
        assert_eq!(s, derive_secret("k", a, 1));
        assert_ne!(s, derive_secret("k", b, 1));
        assert_ne!(s, derive_secret("k", a, 2));
        assert_ne!(s, derive_secret("other", a, 1));
        assert_eq!(STANDARD.decode(&s[6..]).unwrap().len(), 32);
    }
}
