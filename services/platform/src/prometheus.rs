//! Metrics for Prometheus: the recorder every service installs at start, the `/metrics` endpoint on a
//! port of its own, and the names of every metric the exchange records, described once (the alert rules
//! in `deploy/prometheus/` and docs/operating.md use these names).

use std::{net::SocketAddr, sync::OnceLock, time::Duration};

use axum::{Router, http::header, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const GRPC_REQUESTS: &str = "placement_grpc_requests_total";
pub const GRPC_DURATION: &str = "placement_grpc_request_duration_seconds";
pub const OUTBOX_UNPUBLISHED: &str = "placement_outbox_unpublished_events";
pub const OUTBOX_OLDEST_AGE: &str = "placement_outbox_oldest_unpublished_age_seconds";
pub const OUTBOX_PUBLISHED: &str = "placement_outbox_published_events_total";
pub const EVENTS_CONSUMED: &str = "placement_events_consumed_total";
pub const EVENT_REDELIVERIES: &str = "placement_event_redeliveries_total";
pub const EVENT_RETRIES: &str = "placement_event_apply_retries_total";
pub const CONSUMER_LAG: &str = "placement_event_consumer_lag_seconds";
pub const QUEUE_READY: &str = "placement_queue_ready_messages";
pub const DEAD_LETTERS: &str = "placement_dead_letters";
pub const DELIVERIES: &str = "placement_deliveries_total";
pub const DELIVERIES_PENDING: &str = "placement_deliveries_pending";
pub const DB_POOL_CONNECTIONS: &str = "placement_db_pool_connections";
pub const DB_POOL_MAX: &str = "placement_db_pool_max_connections";
pub const DB_POOL_TIMEOUTS: &str = "placement_db_pool_timeouts_total";
pub const REFERRALS_OVERDUE: &str = "placement_referrals_overdue";
pub const HTTP_REQUESTS: &str = "placement_http_requests_total";
pub const HTTP_DURATION: &str = "placement_http_request_duration_seconds";

/// Bounds of every duration histogram, in seconds: from a millisecond (a cached read) to half a minute
/// (the gRPC server's own timeout).
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bounds of the consumer lag (publish to applied), which waits out broker and database outages.
const LAG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once: later calls return the same handle), labelling every series
/// with `service`. `None` when another recorder was installed first.
pub fn install(service: &'static str) -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .add_global_label("service", service)
                .set_buckets_for_metric(Matcher::Full(CONSUMER_LAG.into()), LAG_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                })
                .and_then(PrometheusBuilder::install_recorder);
            match built {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .clone()
}

/// Serves `GET /metrics` on `listener` until `shutdown`, and keeps the histograms' windows current. Also
/// serves the probes of an orchestrator that cannot speak gRPC over mutual TLS (the kubelet's gRPC probe
/// presents no client certificate): `/livez` answers while the process does, `/readyz` mirrors
/// `grpc.health.v1` (200 while `serving`, 503 otherwise).
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    serving: std::sync::Arc<std::sync::atomic::AtomicBool>,
    shutdown: CancellationToken,
) {
    let upkeep = handle.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => upkeep.run_upkeep(),
                _ = stop.cancelled() => break,
            }
        }
    });
    let ready = move || {
        let serving = serving.load(std::sync::atomic::Ordering::Relaxed);
        async move {
            if serving {
                (axum::http::StatusCode::OK, "SERVING")
            } else {
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, "NOT_SERVING")
            }
        }
    };
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(ready));
    tracing::info!(addr = ?listener.local_addr().ok(), "metrics served at /metrics");
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!(error = %e, "metrics endpoint stopped");
    }
}

/// Where a service serves its metrics: `PLACEMENT_<NAME>_METRICS_ADDR`, else `PLACEMENT_METRICS_ADDR`, else
/// 127.0.0.1 on its gRPC port + 1000; `off` serves none. Read with `variable`, which looks a name up (in the
/// environment, or in an in-process service's given settings).
pub fn address<V: AsRef<str>>(
    listed: crate::services::Listed,
    variable: impl Fn(&str) -> Option<V>,
) -> Result<Option<SocketAddr>, String> {
    let own = listed.setting("metrics_addr");
    let (var, value) = match variable(&own) {
        Some(v) => (own, v),
        None => match variable("PLACEMENT_METRICS_ADDR") {
            Some(v) => ("PLACEMENT_METRICS_ADDR".to_string(), v),
            None => return Ok(Some(listed.default_metrics_addr())),
        },
    };
    let value = value.as_ref();
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|e| format!("{var}={value:?}: {e} (an address such as 127.0.0.1:51053, or off)"))
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        GRPC_REQUESTS,
        "gRPC calls answered, by method and status code"
    );
    describe_histogram!(
        GRPC_DURATION,
        Unit::Seconds,
        "Time to answer a gRPC call, by method"
    );
    describe_gauge!(
        OUTBOX_UNPUBLISHED,
        "Events committed and not yet confirmed by the broker"
    );
    describe_gauge!(
        OUTBOX_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest event still to publish (0 when none)"
    );
    describe_counter!(
        OUTBOX_PUBLISHED,
        "Events published from the outbox and confirmed"
    );
    describe_counter!(
        EVENTS_CONSUMED,
        "Events taken from the queue, by type and outcome (applied, duplicate, dead_lettered)"
    );
    describe_counter!(
        EVENT_REDELIVERIES,
        "Deliveries the broker marked as redelivered"
    );
    describe_counter!(
        EVENT_RETRIES,
        "Applications of an event tried again, by reason"
    );
    describe_histogram!(
        CONSUMER_LAG,
        Unit::Seconds,
        "From the event's occurrence to its application by this service"
    );
    describe_gauge!(QUEUE_READY, "Messages waiting in the service's queue");
    describe_gauge!(
        DEAD_LETTERS,
        "Messages waiting in the service's dead-letter queue"
    );
    describe_counter!(
        DELIVERIES,
        "Delivery attempts of notifications, by channel and status (sent, retry, failed)"
    );
    describe_gauge!(DELIVERIES_PENDING, "Deliveries not sent yet, by channel");
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Database connections, by state (in_use, idle)"
    );
    describe_gauge!(DB_POOL_MAX, "The most database connections the pool opens");
    describe_counter!(
        DB_POOL_TIMEOUTS,
        "Waits for a database connection that timed out"
    );
    describe_gauge!(
        REFERRALS_OVERDUE,
        "Referrals not acknowledged by every party past their acknowledgement deadline"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "Web pages and calls answered, by route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a web request, by route"
    );
}
