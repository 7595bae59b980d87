//! The start-up and shutdown sequence every service shares: database with migrations, broker, outbox relay,
//! consumer, health reporting; and the wait for all of it to stop.

use std::{sync::Arc, time::Duration};

use placement_platform::caller::{Authenticate, Verifier};
use placement_platform::tls::TlsMaterial;
use placement_platform::{backoff::Backoff, config::CommonConfig, db};
use sqlx::{PgPool, migrate::Migrator};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Broker, Consumer, ConsumerSpec, EventHandler, Outbox, OutboxRelay, operator::Operator,
    outbox::RelaySettings,
};

pub use placement_platform::grpc::MAX_REQUEST_BYTES;

/// The gRPC routes of a service: every server behind the service's authentication and the request size
/// limit, so that neither can be left off one of them. `routes![infra; FooServer::new(api), …]`.
#[macro_export]
macro_rules! routes {
    ($infra:expr; $first:expr $(, $rest:expr)* $(,)?) => {{
        let auth = $infra.auth.clone();
        let routes = ::tonic::service::Routes::new(
            ::tonic::service::interceptor::InterceptedService::new(
                $first.max_decoding_message_size($crate::runtime::MAX_REQUEST_BYTES),
                auth.clone(),
            ),
        );
        $(
            let routes = routes.add_service(::tonic::service::interceptor::InterceptedService::new(
                $rest.max_decoding_message_size($crate::runtime::MAX_REQUEST_BYTES),
                auth.clone(),
            ));
        )*
        routes
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] db::DbSetupError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("shutdown requested during start-up")]
    Cancelled,
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("configuration: {0}")]
    Config(String),
}

/// The running infrastructure of one service.
pub struct Infra {
    pub pool: PgPool,
    pub broker: Arc<Broker>,
    pub outbox: Outbox,
    /// The interceptor every API of the service sits behind.
    pub auth: Authenticate,
    /// How this service calls others: with its certificate, checking theirs (None in development mode
    /// without TLS files).
    pub client_tls: Option<tonic::transport::ClientTlsConfig>,
    server_tls: Option<tonic::transport::ServerTlsConfig>,
    reflection: bool,
    exchange: String,
    producer: &'static str,
    queue: std::sync::Mutex<Option<String>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Infra {
    /// Connects to PostgreSQL (waiting for it), applies the messaging and the service's migrations in the
    /// service's schema, and prepares the broker connection.
    pub async fn start(
        common: &CommonConfig,
        schema: &str,
        migrators: &[&Migrator],
        producer: &'static str,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        // Credentials are checked before anything else starts: a misconfigured service must not serve.
        let verifier = Verifier::new(
            &common
                .auth()
                .map_err(|e| StartError::Config(e.to_string()))?,
        )
        .map_err(|e| StartError::Config(e.to_string()))?;
        let tls =
            TlsMaterial::from_config(common).map_err(|e| StartError::Config(e.to_string()))?;
        if tls.is_none() {
            tracing::warn!("development mode without TLS: the API is served over plain TCP");
        }
        if verifier.development() {
            tracing::warn!(
                "PLACEMENT_AUTH_MODE=development: calls may name their agency with x-agency-id, unverified; never use this outside a developer's machine"
            );
        }
        let pool = db::connect_and_migrate(
            &common.database_url,
            schema,
            common.database_max_connections,
            common.database_acquire_timeout,
            &[&[&crate::MIGRATOR], migrators].concat(),
            &shutdown,
        )
        .await?;
        Ok(Self {
            pool,
            broker: Broker::new(&common.amqp_url, producer),
            outbox: Outbox::new(),
            auth: Authenticate(Arc::new(verifier)),
            client_tls: tls.as_ref().map(TlsMaterial::client),
            server_tls: tls.as_ref().map(TlsMaterial::server),
            reflection: common.reflection(),
            exchange: common.exchange.clone(),
            producer,
            queue: std::sync::Mutex::new(None),
            tasks: TaskTracker::new(),
            shutdown,
        })
    }

    /// Declares the consumer's queue (waiting for the broker), then consumes in the background.
    pub async fn start_consumer<H: EventHandler>(
        &self,
        spec: ConsumerSpec,
        handler: Arc<H>,
    ) -> Result<(), StartError> {
        *self.queue.lock().expect("queue name") = Some(spec.queue.clone());
        let consumer = Consumer::new(
            self.pool.clone(),
            self.broker.clone(),
            self.exchange.clone(),
            spec,
            handler,
            Some(self.outbox.clone()),
        );
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        loop {
            match consumer.declare().await {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, ?delay, "broker not ready; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.shutdown.cancelled() => return Err(StartError::Cancelled),
                    }
                }
            }
        }
        self.tasks.spawn(consumer.run(self.shutdown.clone()));
        Ok(())
    }

    /// Publishes the outbox in the background.
    pub fn start_relay(&self, settings: RelaySettings) {
        let relay = OutboxRelay::new(
            self.pool.clone(),
            self.broker.clone(),
            self.exchange.clone(),
            self.outbox.clone(),
            settings,
        );
        self.tasks.spawn(relay.run(self.shutdown.clone()));
    }

    /// Runs `task` in the background; shutdown waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// The operator's service for this service's queue (after [`start_consumer`](Self::start_consumer)).
    pub fn operator(&self) -> Operator {
        Operator {
            pool: self.pool.clone(),
            broker: self.broker.clone(),
            service: self.producer,
            queue: self
                .queue
                .lock()
                .expect("queue name")
                .clone()
                .unwrap_or_default(),
        }
    }

    /// Keeps the health service in step with the database and the broker: SERVING only while both answer.
    /// Also warns, every 30 seconds while it lasts, that dead letters are waiting.
    fn report_health(&self, reporter: HealthReporter, service_name: &'static str) {
        let pool = self.pool.clone();
        let broker = self.broker.clone();
        let shutdown = self.shutdown.clone();
        let operator = self.operator();
        self.tasks.spawn(async move {
            let mut last = None;
            let mut tick: u64 = 0;
            loop {
                tick += 1;
                if tick % 60 == 1
                    && !operator.queue.is_empty()
                    && let Ok(n) = operator.dead_letter_count().await
                    && n > 0
                {
                    tracing::warn!(dead_letters = n, queue = %operator.queue, "dead letters are waiting; see placement-cli dead-letters");
                }
                let ok = db::ping(&pool).await && broker.is_connected();
                let status = if ok {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                if last != Some(ok) {
                    tracing::info!(?status, "health");
                    reporter.set_service_status("", status).await;
                    reporter.set_service_status(service_name, status).await;
                    last = Some(ok);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => {
                        reporter.set_service_status("", ServingStatus::NotServing).await;
                        reporter.set_service_status(service_name, ServingStatus::NotServing).await;
                        return;
                    }
                }
            }
        });
    }

    /// Serves `routes`, with health (kept in step with the database and broker), reflection and the
    /// operator's service, until shutdown; then stops everything in the background and closes connections.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        service_name: &'static str,
        routes: tonic::service::Routes,
    ) -> Result<(), StartError> {
        let (reporter, health) = placement_platform::grpc::health();
        self.report_health(reporter, service_name);
        let routes = routes.add_service(tonic::service::interceptor::InterceptedService::new(
            placement_proto::v1::operator_service_server::OperatorServiceServer::new(
                self.operator(),
            )
            .max_decoding_message_size(MAX_REQUEST_BYTES),
            self.auth.clone(),
        ));
        let served = placement_platform::grpc::serve(
            listener,
            routes,
            health,
            self.reflection,
            self.server_tls.clone(),
            self.shutdown.clone(),
        )
        .await;
        self.finish(Duration::from_secs(10)).await;
        Ok(served?)
    }

    /// Waits for every background task to stop (after the shutdown token was cancelled), then closes the
    /// broker connection and the pool. Gives up after `grace`.
    async fn finish(self, grace: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "background tasks did not stop in time");
        }
        self.broker.close().await;
        self.pool.close().await;
        tracing::info!("stopped");
    }
}
