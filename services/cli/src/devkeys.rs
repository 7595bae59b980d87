//! Development credentials: a token-signing key with its JWKS, made locally so the demo, the tests and
//! people trying the system get real signed tokens. Production keys come from configuration (the identity
//! provider's JWKS), never from here or from the repository.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use placement_platform::caller::{NATIONAL_AUTHORITY, Role, Signer};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const SIGNING_KEY_FILE: &str = "jwt-signing-key.pem";
pub const JWKS_FILE: &str = "jwks.json";
pub const DATA_KEY_FILE: &str = "data-key";
pub const ISSUER: &str = "placement-exchange";
pub const AUDIENCE: &str = "placement-exchange";

#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    #[error("making a key: {0}")]
    Key(#[from] rcgen::Error),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("the signing key {0}: {1}")]
    Signer(PathBuf, String),
}

/// Makes an Ed25519 signing key and its JWKS, and a data key for sealing personal data
/// (`PLACEMENT_DATA_KEY`, base64), in `dir`, unless they are there already.
pub fn ensure(dir: &Path) -> Result<(), DevKeyError> {
    let (key_path, jwks_path) = (dir.join(SIGNING_KEY_FILE), dir.join(JWKS_FILE));
    std::fs::create_dir_all(dir).map_err(|e| DevKeyError::Io(dir.into(), e))?;
    let data_key = dir.join(DATA_KEY_FILE);
    if !data_key.exists() {
        let bytes: [u8; 32] = rand::random();
        write_private(
            &data_key,
            base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .as_bytes(),
        )?;
    }
    if key_path.exists() && jwks_path.exists() {
        return Ok(());
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let public = key.public_key_raw();
    let kid = format!("dev-{}", &hex_prefix(&Sha256::digest(public)));
    let jwks = serde_json::json!({
        "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(public),
            "kid": kid,
            "alg": "EdDSA",
            "use": "sig",
        }]
    });
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    std::fs::write(&jwks_path, serde_json::to_vec_pretty(&jwks).expect("JSON"))
        .map_err(|e| DevKeyError::Io(jwks_path.clone(), e))?;
    // The kid travels with the key, so a signer read back from the files names it.
    std::fs::write(dir.join("kid"), &kid).map_err(|e| DevKeyError::Io(dir.join("kid"), e))?;
    Ok(())
}

/// The signer for the key made by [`ensure`] in `dir`.
pub fn signer(dir: &Path) -> Result<Signer, DevKeyError> {
    let key_path = dir.join(SIGNING_KEY_FILE);
    let pem = std::fs::read(&key_path).map_err(|e| DevKeyError::Io(key_path.clone(), e))?;
    let kid = std::fs::read_to_string(dir.join("kid"))
        .map_err(|e| DevKeyError::Io(dir.join("kid"), e))?;
    Signer::ed25519(&pem, kid.trim(), ISSUER, AUDIENCE)
        .map_err(|e| DevKeyError::Signer(key_path, e))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DevKeyError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(path)
        .map_err(|e| DevKeyError::Io(path.into(), e))?;
    f.write_all(bytes)
        .map_err(|e| DevKeyError::Io(path.into(), e))
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes[..4].iter().map(|b| format!("{b:02x}")).collect()
}

static SIGNER: OnceLock<Signer> = OnceLock::new();

/// Makes [`crate::clients::as_agency`] sign its requests with `signer` (once per process).
pub fn use_signer(signer: Signer) {
    let _ = SIGNER.set(signer);
}

pub(crate) fn current() -> Option<&'static Signer> {
    SIGNER.get()
}

/// The roles a demo or test token carries for `agency` when none are asked for: the national authority
/// runs the system and the directory; every other agency works and decides its own cases and referrals
/// and keeps its own directory entries.
pub fn default_roles(agency: Uuid) -> &'static [Role] {
    if agency == NATIONAL_AUTHORITY {
        &[Role::Operator, Role::DirectoryAdmin, Role::Supervisor]
    } else {
        &[Role::Caseworker, Role::Supervisor, Role::DirectoryAdmin]
    }
}

/// A token for `agency` with `roles`, valid for an hour.
pub fn token(signer: &Signer, agency: Uuid, roles: &[Role]) -> String {
    signer.mint(
        agency,
        &format!("dev-user@{agency}"),
        roles,
        Duration::from_secs(3600),
    )
}
