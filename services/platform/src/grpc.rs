//! The gRPC server every service runs: its own API, `grpc.health.v1` and server reflection, on one listener,
//! stopping when the shutdown token is cancelled.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;
use tokio_stream::{StreamExt, wrappers::TcpListenerStream};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// The largest request any service decodes: far above any valid request (the largest, a case with 12
/// children, is a few KiB), far below what would hurt. Larger ones are refused before decoding.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// The health service and its reporter. The reporter starts NOT_SERVING; the service sets SERVING once its
/// database is ready, and its broker if it consumes or publishes events.
pub fn health() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    tonic_health::server::health_reporter()
}

/// Serves `routes` plus health and reflection until `shutdown` is cancelled, then lets calls in flight finish.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    reflection: bool,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let reflection = reflection.then(|| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(placement_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .expect("the embedded descriptor set is valid")
    });
    let local: Option<SocketAddr> = listener.local_addr().ok();
    // Small unary messages must not wait for Nagle's algorithm.
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        })
    });
    tracing::info!(addr = ?local, tls = tls.is_some(), "gRPC server listening");
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls)?;
    }
    server
        .timeout(Duration::from_secs(30))
        .layer(crate::grpc_observed::ObservedLayer)
        .add_routes(routes)
        .add_service(health_service)
        .add_optional_service(reflection)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

/// A channel to another service, connected on first use. Each call has `deadline`, so a slow or absent
/// dependency turns into UNAVAILABLE / DEADLINE_EXCEEDED instead of a hang.
pub fn lazy_channel(
    url: &str,
    deadline: Duration,
    tls: Option<&tonic::transport::ClientTlsConfig>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(crate::tls::endpoint(url, tls)?
        .timeout(deadline)
        .connect_lazy())
}
