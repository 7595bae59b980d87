//! Logging through `tracing`: human-readable by default, JSON lines with `PLACEMENT_LOG_FORMAT=json`.
//! `RUST_LOG` filters (default `info`).

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber once; later calls (tests starting several services) do nothing.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("PLACEMENT_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let result = if json {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt::layer().json().with_current_span(false))
            .try_init()
    } else {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt::layer().with_target(false))
            .try_init()
    };
    if result.is_ok() {
        tracing::info!(service, "telemetry ready");
    }
}
