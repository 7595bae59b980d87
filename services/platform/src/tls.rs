//! Mutual TLS between every caller and every service (rustls through tonic): a service presents its
//! certificate and requires a client certificate that chains to the configured CA; as a client it presents
//! the same certificate and checks the called service's. Plain TCP only in development mode.
//!
//! URLs keep their `http://` form in configuration; with TLS configured they are dialled as `https://`.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::config::CommonConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "PLACEMENT_TLS_CERT, PLACEMENT_TLS_KEY and PLACEMENT_TLS_CA go together; set all three or none"
    )]
    Partial,
    #[error(
        "mutual TLS is required outside development mode: set PLACEMENT_TLS_CERT, PLACEMENT_TLS_KEY and PLACEMENT_TLS_CA (deploy/dev-pki.sh makes them for development)"
    )]
    Required,
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
}

/// The PEM files of a TLS identity and its CA.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub ca: Vec<u8>,
}

impl TlsMaterial {
    pub fn read(cert: &str, key: &str, ca: &str) -> Result<Self, TlsError> {
        let read = |p: &str| std::fs::read(p).map_err(|e| TlsError::Read(p.to_string(), e));
        Ok(Self {
            cert: read(cert)?,
            key: read(key)?,
            ca: read(ca)?,
        })
    }

    /// From the service's configuration: None in development mode without files; an error when TLS is
    /// required and missing, or configured by halves.
    pub fn from_config(common: &CommonConfig) -> Result<Option<Self>, TlsError> {
        match (&common.tls_cert, &common.tls_key, &common.tls_ca) {
            (Some(cert), Some(key), Some(ca)) => Ok(Some(Self::read(cert, key, ca)?)),
            (None, None, None) if common.development() => Ok(None),
            (None, None, None) => Err(TlsError::Required),
            _ => Err(TlsError::Partial),
        }
    }

    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            // Required: a caller without a certificate from this CA does not get past the handshake.
            .client_ca_root(Certificate::from_pem(&self.ca))
    }

    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
    }
}

/// An endpoint for `url`, over TLS when `tls` is given.
pub fn endpoint(
    url: &str,
    tls: Option<&ClientTlsConfig>,
) -> Result<Endpoint, tonic::transport::Error> {
    let url = match (tls, url.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => url.to_string(),
    };
    let endpoint = Endpoint::from_shared(url)?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    match tls {
        Some(tls) => endpoint.tls_config(tls.clone()),
        None => Ok(endpoint),
    }
}
