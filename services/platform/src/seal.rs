//! Values sealed at rest with AES-256-GCM. Each is sealed with a fresh random nonce and bound (as associated
//! data) to where it belongs, so a sealed value copied to another row or field does not open. The first byte
//! names the key version, so a key can be rotated later by adding one.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};

const KEY_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the key must be 32 bytes in base64")]
    Key,
    #[error("a sealed value does not open (wrong key, or it was altered or moved)")]
    Open,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    pub fn from_base64(key: &str) -> Result<Self, SealError> {
        let bytes = STANDARD.decode(key.trim()).map_err(|_| SealError::Key)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::Key)?;
        Ok(Self::new(&key))
    }

    /// `value` sealed for the place `bound_to` names.
    pub fn seal(&self, bound_to: &[u8], value: &str) -> Vec<u8> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: bound_to,
                },
            )
            .expect("AES-GCM encrypts any message of this size");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(KEY_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, bound_to: &[u8], sealed: &[u8]) -> Result<String, SealError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != KEY_VERSION {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: bound_to,
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_where_they_were_sealed() {
        let s = Sealer::new(&[7u8; 32]);
        let sealed = s.seal(b"child-a/name", "Мария Иванова");
        assert!(
            !sealed
                .windows(5)
                .any(|w| w == "Мария".as_bytes()[..5].to_vec().as_slice())
        );
        assert_eq!(s.open(b"child-a/name", &sealed).unwrap(), "Мария Иванова");
        assert!(s.open(b"child-b/name", &sealed).is_err(), "moved");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(s.open(b"child-a/name", &tampered).is_err());
        assert!(
            Sealer::new(&[8u8; 32])
                .open(b"child-a/name", &sealed)
                .is_err(),
            "another key"
        );
        // A fresh nonce each time.
        assert_ne!(s.seal(b"x", "x"), s.seal(b"x", "x"));
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(Sealer::from_base64("c2hvcnQ=").is_err());
        assert!(Sealer::from_base64("not base64!").is_err());
        assert!(Sealer::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
