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
    if key_path.exists() && jwks_path.exists() && is_rfc8410_key(&key_path) {
        return Ok(());
    }
    let seed: [u8; 32] = rand::random();
    let der = ed25519_pkcs8_v1(&seed);
    let key = rcgen::KeyPair::try_from(der.as_slice())?;
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
    write_private(&key_path, private_key_pem(&der).as_bytes())?;
    std::fs::write(&jwks_path, serde_json::to_vec_pretty(&jwks).expect("JSON"))
        .map_err(|e| DevKeyError::Io(jwks_path.clone(), e))?;
    // The kid travels with the key, so a signer read back from the files names it.
    std::fs::write(dir.join("kid"), &kid).map_err(|e| DevKeyError::Io(dir.join("kid"), e))?;
    Ok(())
}

pub const CA_FILE: &str = "ca.pem";
pub const SERVICE_CERT_FILE: &str = "service.pem";
pub const SERVICE_KEY_FILE: &str = "service-key.pem";
pub const CLIENT_CERT_FILE: &str = "client.pem";
pub const CLIENT_KEY_FILE: &str = "client-key.pem";

/// Makes a development CA and, signed by it, a certificate for the services (server and client use,
/// for `localhost` and `127.0.0.1`) and one for clients (placement-cli, the tests), in `dir`, unless
/// they are there. ECDSA P-256 keys.
pub fn ensure_pki(dir: &Path) -> Result<(), DevKeyError> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let files = [
        CA_FILE,
        SERVICE_CERT_FILE,
        SERVICE_KEY_FILE,
        CLIENT_CERT_FILE,
        CLIENT_KEY_FILE,
    ];
    if files.iter().all(|f| dir.join(f).exists()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| DevKeyError::Io(dir.into(), e))?;
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "Placement Exchange development CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>| {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usages;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &issuer)?;
        Ok::<_, rcgen::Error>((cert.pem(), key.serialize_pem()))
    };
    let (service_cert, service_key) = leaf(
        "placement-services",
        vec!["localhost".into(), "127.0.0.1".into()],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
    )?;
    let (client_cert, client_key) = leaf(
        "placement-cli",
        vec!["placement-cli".into()],
        vec![ExtendedKeyUsagePurpose::ClientAuth],
    )?;
    let write = |file: &str, text: &str| {
        std::fs::write(dir.join(file), text).map_err(|e| DevKeyError::Io(dir.join(file), e))
    };
    write(CA_FILE, &ca_cert.pem())?;
    write(SERVICE_CERT_FILE, &service_cert)?;
    write_private(&dir.join(SERVICE_KEY_FILE), service_key.as_bytes())?;
    write(CLIENT_CERT_FILE, &client_cert)?;
    write_private(&dir.join(CLIENT_KEY_FILE), client_key.as_bytes())?;
    Ok(())
}

/// Makes [`crate::clients`] dial over TLS with the development client certificate in `dir`.
pub fn use_client_tls(dir: &Path) -> Result<(), DevKeyError> {
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| DevKeyError::Io(dir.join(f), e));
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(CA_FILE)?))
        .identity(tonic::transport::Identity::from_pem(
            read(CLIENT_CERT_FILE)?,
            read(CLIENT_KEY_FILE)?,
        ));
    crate::channels::use_tls(tls);
    Ok(())
}

/// The prefix of an Ed25519 private key in PKCS#8 v1 as RFC 8410 writes it (version 0, the algorithm
/// 1.3.101.112, the 32-byte seed as an OCTET STRING inside the privateKey OCTET STRING); the seed follows.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The key in the form OpenSSL 3, Python's `cryptography` and JWT libraries read. The v2 form the
/// crypto library writes (with the public key in a constructed `[1]`) is refused by OpenSSL.
fn ed25519_pkcs8_v1(seed: &[u8; 32]) -> Vec<u8> {
    [ED25519_PKCS8_V1_PREFIX.as_slice(), seed].concat()
}

/// Whether the key file holds the RFC 8410 form (keys written by earlier versions are made afresh).
fn is_rfc8410_key(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|text| pem::parse(text).ok())
        .is_some_and(|key| {
            key.contents().len() == 48 && key.contents().starts_with(&ED25519_PKCS8_V1_PREFIX)
        })
}

/// `der` as PEM with Unix line endings, as OpenSSL writes it.
fn private_key_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", der),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
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

/// A token for `agency` with `roles`, reused for half its life, as a real client keeps its token.
pub fn cached_token(signer: &Signer, agency: Uuid, roles: &[Role]) -> String {
    use std::{collections::HashMap, sync::Mutex, time::Instant};
    type Tokens = Mutex<HashMap<(Uuid, Vec<Role>), (String, Instant)>>;
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    let mut tokens = TOKENS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    let key = (agency, roles.to_vec());
    match tokens.get(&key) {
        Some((token, minted)) if minted.elapsed() < Duration::from_secs(1800) => token.clone(),
        _ => {
            let token = token(signer, agency, roles);
            tokens.insert(key, (token.clone(), Instant::now()));
            token
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use placement_platform::caller::{AuthSettings, Claims, Verifier};

    fn verifier(jwks: &Path) -> Verifier {
        Verifier::new(&AuthSettings {
            development: false,
            jwks_file: Some(jwks.display().to_string()),
            jwks_uri: None,
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
        })
        .unwrap()
    }

    #[test]
    fn development_tokens_verify_and_tampered_ones_do_not() {
        let dir = std::env::temp_dir().join(format!("pe-devkeys-{}", Uuid::new_v4()));
        ensure(&dir).unwrap();
        let v = verifier(&dir.join(JWKS_FILE));
        let agency = Uuid::new_v4();
        let token = token(&signer(&dir).unwrap(), agency, &[Role::Caseworker]);
        let caller = v.verify(&token).unwrap();
        assert_eq!(caller.agency_id, agency);
        assert!(caller.has(Role::Caseworker) && !caller.has(Role::Supervisor));
        // Another payload under the same signature.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let forged = serde_json::json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 4_000_000_000i64, "iat": 0,
            "agency_id": agency.to_string(), "roles": ["operator"],
        });
        parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
        assert!(v.verify(&parts.join(".")).is_err());
        std::fs::remove_dir_all(dir).ok();
    }

    /// Every registered time claim is honoured: `nbf` in the future, `iat` in the future and a missing
    /// `exp` are refused; a token within its times, with or without `nbf`/`iat`, is accepted.
    #[test]
    fn registered_time_claims_are_honoured() {
        let dir = std::env::temp_dir().join(format!("pe-claims-{}", Uuid::new_v4()));
        ensure(&dir).unwrap();
        let v = verifier(&dir.join(JWKS_FILE));
        let s = signer(&dir).unwrap();
        let now = chrono::Utc::now().timestamp();
        let agency = Uuid::new_v4().to_string();
        let token = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({
                "iss": ISSUER, "aud": AUDIENCE, "sub": "x", "agency_id": agency, "roles": ["caseworker"],
            });
            for (k, val) in extra.as_object().unwrap() {
                claims[k] = val.clone();
            }
            s.sign(&claims)
        };
        let refused = [
            (
                "nbf in an hour",
                serde_json::json!({"exp": now + 7200, "nbf": now + 3600}),
            ),
            (
                "iat in an hour",
                serde_json::json!({"exp": now + 7200, "iat": now + 3600}),
            ),
            ("no exp", serde_json::json!({"iat": now})),
            ("exp not a number", serde_json::json!({"exp": "tomorrow"})),
            ("expired", serde_json::json!({"exp": now - 3600})),
        ];
        for (what, extra) in refused {
            let e = v.verify(&token(extra)).expect_err(what);
            assert_eq!(e.code(), tonic::Code::Unauthenticated, "{what}: {e:?}");
        }
        let accepted = [
            serde_json::json!({"exp": now + 600}),
            serde_json::json!({"exp": now + 600, "nbf": now - 60, "iat": now - 60}),
            // Clocks differ by a few seconds: within the leeway.
            serde_json::json!({"exp": now + 600, "nbf": now + 5, "iat": now + 5}),
            serde_json::json!({"exp": i64::MAX}),
        ];
        for extra in accepted {
            let what = extra.to_string();
            v.verify(&token(extra)).expect(&what);
        }
        std::fs::remove_dir_all(dir).ok();
    }

    /// The development key is an RFC 8410 PKCS#8 v1 document, which OpenSSL 3 and common JWT libraries read.
    #[test]
    fn the_signing_key_is_written_in_the_rfc_8410_form() {
        let dir = std::env::temp_dir().join(format!("pe-keyform-{}", Uuid::new_v4()));
        ensure(&dir).unwrap();
        assert!(is_rfc8410_key(&dir.join(SIGNING_KEY_FILE)));
        let text = std::fs::read_to_string(dir.join(SIGNING_KEY_FILE)).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn es256_keys_are_accepted_too() {
        let dir = std::env::temp_dir().join(format!("pe-es256-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        // The uncompressed point: 0x04, x, y.
        let point = key.public_key_raw();
        assert_eq!((point.len(), point[0]), (65, 4));
        let jwks = serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "es-1", "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]});
        std::fs::write(dir.join(JWKS_FILE), jwks.to_string()).unwrap();
        let v = verifier(&dir.join(JWKS_FILE));
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "integration@example".into(),
            exp: now + 60,
            iat: Some(now),
            nbf: None,
            agency_id: NATIONAL_AUTHORITY.to_string(),
            roles: vec!["integration".into()],
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("es-1".into());
        let encoding =
            jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&header, &claims, &encoding).unwrap();
        let caller = v.verify(&token).unwrap();
        assert!(caller.has(Role::Integration));
        // An EdDSA header on the ES256 key is refused.
        let mut wrong = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        wrong.kid = Some("es-1".into());
        let hs = jsonwebtoken::encode(
            &wrong,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(v.verify(&hs).is_err());
        std::fs::remove_dir_all(dir).ok();
    }
}
