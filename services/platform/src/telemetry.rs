//! Logging and tracing through `tracing`. Logs are human-readable by default, JSON lines with
//! `PLACEMENT_LOG_FORMAT=json` (each line carries the trace id of the span it was written in); `RUST_LOG`
//! filters (default `info`). Traces go to an OpenTelemetry collector over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard
//! `OTEL_*` variables; off otherwise, and with `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// Flushes the spans not exported yet when the service stops.
#[must_use = "keep it until the service stops, then call shutdown"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "spans not all exported at shutdown");
        }
    }
}

/// Whether the `OTEL_*` settings ask for traces.
pub fn tracing_configured() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Installs the global subscriber once (later calls, as in tests starting several services, do nothing
/// more). Must run inside the Tokio runtime: the OTLP exporter sends from it.
pub fn init(service: &'static str) -> Telemetry {
    let provider = if tracing_configured() {
        match tracer_provider(service) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("{service}: traces not exported: {e}");
                None
            }
        }
    } else {
        None
    };
    // The W3C trace context is what crosses gRPC metadata, AMQP headers and the outbox.
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("placement-exchange"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("PLACEMENT_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let logs = if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer().with_target(false).with_filter(filter).boxed()
    };
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()
        .is_ok();
    if installed {
        tracing::info!(service, traces = provider.is_some(), "telemetry ready");
    }
    Telemetry { provider }
}

fn tracer_provider(
    service: &'static str,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let mut resource = Resource::builder();
    // OTEL_SERVICE_NAME, when set, names it (the builder reads it); otherwise its binary's name.
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
