//! Channels to the services. Whether this process dials over mutual TLS is chosen once, at start (from
//! its settings, or the development certificates of `devkeys`), before any channel is made; both the
//! clients and the development credentials reach it here, so neither depends on the other for it.

use tonic::transport::Channel;

static TLS: std::sync::OnceLock<tonic::transport::ClientTlsConfig> = std::sync::OnceLock::new();

/// Makes every channel of this process use mutual TLS with `tls` (once per process).
pub fn use_tls(tls: tonic::transport::ClientTlsConfig) {
    let _ = TLS.set(tls);
}

/// A channel to `url`, connected on first use, over TLS when [`use_tls`] was called.
pub fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(placement_platform::tls::endpoint(url, TLS.get())?.connect_lazy())
}
