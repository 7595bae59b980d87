//! The service template. A service says what it is (a [`Definition`]: its entry in the list of services,
//! the gRPC API it serves, the events it publishes, its migrations), what it reads from the environment (its
//! own `Config`), and, in [`Service::declare`], what it is made of: its routes, the events it consumes (each
//! handler with the types it routes), its clients and its background tasks, in any order. The kit does the
//! rest, in the one order that is right: credentials checked, database migrated, the queue declared before
//! anything is served, the consumer, the outbox relay (only if the service declares what it publishes) and
//! the tasks started, health kept in step with the database and broker, reflection and the operator API
//! served beside the routes, and on SIGTERM everything drained.
//!
//! A service's `main` is one line: `placement_messaging::service::main::<placement_foo::Foo>()`.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use placement_platform::audit::checkpoint::{CheckpointSettings, Checkpoints};
use placement_platform::caller::{Authenticate, Verifier};
use placement_platform::config::{CommonConfig, ConfigError, Required, Variables};
use placement_platform::services::Listed;
use placement_platform::tls::TlsMaterial;
use placement_platform::{backoff::Backoff, db};
use serde::de::DeserializeOwned;
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::{
    service::{Routes, interceptor::InterceptedService},
    transport::Channel,
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    Broker, Consumer, ConsumerSpec, EventBuilder, EventHandler, EventType, Outbox, OutboxRelay,
    Subscriptions,
    gauges::{Gauges, Sample},
    operator::Operator,
    outbox::RelaySettings,
};
use metrics_exporter_prometheus::PrometheusHandle;

pub use placement_platform::grpc::MAX_REQUEST_BYTES;

/// How long a call to another service may take before it fails with DEADLINE_EXCEEDED.
const CLIENT_DEADLINE: Duration = Duration::from_secs(3);

/// The gRPC routes of a service: every server behind the service's authentication and the request size
/// limit, so that neither can be left off one of them. `routes![kit; FooServer::new(api), …]`.
#[macro_export]
macro_rules! routes {
    ($kit:expr; $first:expr $(, $rest:expr)* $(,)?) => {{
        let auth = $kit.auth();
        let routes = ::tonic::service::Routes::new(
            ::tonic::service::interceptor::InterceptedService::new(
                $first.max_decoding_message_size($crate::service::MAX_REQUEST_BYTES),
                auth.clone(),
            ),
        );
        $(
            let routes = routes.add_service(::tonic::service::interceptor::InterceptedService::new(
                $rest.max_decoding_message_size($crate::service::MAX_REQUEST_BYTES),
                auth.clone(),
            ));
        )*
        routes
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Database(#[from] db::DbSetupError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("the address of the {service} service, {url:?}, is not usable: {source}")]
    Client {
        service: &'static str,
        url: String,
        source: tonic::transport::Error,
    },
    #[error("shutdown requested during start-up")]
    Cancelled,
    #[error("gRPC server: {0}")]
    Serve(#[from] tonic::transport::Error),
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e.to_string())
    }
}

/// What a service is.
#[derive(Debug, Clone, Copy)]
pub struct Definition {
    /// Its entry in [`placement_platform::services::ALL`]: its name, process, schema, queue and settings'
    /// names.
    pub listed: Listed,
    /// The gRPC API it serves, which health reports on by name.
    pub grpc: GrpcApi,
    /// The types of the events it publishes: the outbox relay runs when there is one.
    pub publishes: &'static [EventType],
    /// Its migrations (the outbox and inbox tables are applied first, for every service).
    pub migrators: &'static [&'static Migrator],
    /// What a deployment must set for it beyond [`placement_platform::config::COMMON_REQUIRED`].
    pub required: &'static [Required],
}

/// The gRPC API a process serves beside health, reflection and the operator's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcApi {
    /// A service of the exchange, by its full name (e.g. `placement.v1.ReferralService`, from the
    /// generated server's `SERVICE_NAME`).
    Serves(&'static str),
    /// None of its own (the web app serves pages over HTTP): health reports on the process alone.
    NotServed,
}

impl Definition {
    /// The builder of the service's events: its process as their `producer`, and only the types it
    /// declared it publishes.
    pub const fn events(self) -> EventBuilder {
        EventBuilder::publishing(self.listed.process, self.publishes)
    }

    fn publishes_events(&self) -> bool {
        !self.publishes.is_empty()
    }

    /// The names health reports on: the process ("") and its API.
    fn health_names(&self) -> Vec<&'static str> {
        match self.grpc {
            GrpcApi::Serves(name) => vec!["", name],
            GrpcApi::NotServed => vec![""],
        }
    }

    /// Whether the service keeps an audit trail (its migrations include the trail's), and so checkpoints
    /// its head.
    pub fn keeps_audit_trail(&self) -> bool {
        (self.migrators.iter()).any(|m| std::ptr::eq(*m, &placement_platform::audit::MIGRATOR))
    }
}

/// A service of the exchange, declared.
pub trait Service {
    const DEFINITION: Definition;
    /// Its own settings (`PLACEMENT_*`), beside the [`Settings`] every service has.
    type Config: DeserializeOwned + Send + 'static;

    /// Says what the service is made of, on `kit`, and returns its routes (made with [`routes!`]).
    fn declare(
        config: Self::Config,
        kit: &mut Kit,
    ) -> impl Future<Output = Result<Routes, StartError>> + Send;
}

/// The settings of one service: those every service has, and its own.
#[derive(Debug, Clone)]
pub struct Settings<T> {
    pub common: CommonConfig,
    /// `PLACEMENT_<NAME>_LISTEN_ADDR`, default 127.0.0.1 and the service's port.
    pub listen_addr: SocketAddr,
    /// `PLACEMENT_<NAME>_QUEUE`, default `placement.<name>`.
    pub queue: String,
    /// Where Prometheus scrapes it (see [`placement_platform::prometheus::address`]); `None` when off.
    pub metrics_addr: Option<SocketAddr>,
    pub own: T,
    /// Where these were read; the kit reads there too what it needs later (the other services'
    /// addresses, the audit checkpoints' settings).
    pub variables: Variables,
}

impl<T: DeserializeOwned> Settings<T> {
    pub fn from_env(listed: Listed) -> Result<Self, ConfigError> {
        Self::from_variables(listed, Variables::Environment)
    }

    /// The settings `variables` give (for a service run in-process, beside others in one process).
    pub fn from_variables(listed: Listed, variables: Variables) -> Result<Self, ConfigError> {
        let var = listed.setting("listen_addr");
        let listen_addr = match variables.get(&var) {
            Some(v) => v
                .parse()
                .map_err(|e| ConfigError::Message(format!("{var}={v:?}: {e}")))?,
            None => listed.default_listen_addr(),
        };
        Ok(Self {
            common: variables.read()?,
            listen_addr,
            queue: (variables.get(&listed.setting("queue")))
                .unwrap_or_else(|| listed.default_queue()),
            metrics_addr: placement_platform::prometheus::address(listed, |name| {
                variables.get(name)
            })
            .map_err(ConfigError::Message)?,
            own: variables.read()?,
            variables,
        })
    }
}

/// Reads the settings, listens, and runs service `S` until SIGTERM or Ctrl-C.
pub async fn main<S: Service>() -> Result<(), StartError> {
    let telemetry = placement_platform::telemetry::init(S::DEFINITION.listed.process);
    let ran = start::<S>().await;
    telemetry.shutdown();
    ran
}

async fn start<S: Service>() -> Result<(), StartError> {
    placement_platform::config_reference::warn_of_unknown_in_environment(
        placement_platform::config_reference::fields_of::<S::Config>(),
    );
    let settings = Settings::<S::Config>::from_env(S::DEFINITION.listed)?;
    let shutdown = CancellationToken::new();
    placement_platform::shutdown::cancel_on_signal(shutdown.clone());
    let listener = bind(settings.listen_addr).await?;
    let recorder = settings.metrics_addr.and_then(|addr| {
        placement_platform::prometheus::install(S::DEFINITION.listed.name).map(|h| (addr, h))
    });
    let metrics = match recorder {
        Some((addr, handle)) => Some((bind(addr).await?, handle)),
        None => None,
    };
    run::<S>(settings, listener, metrics, shutdown).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    placement_platform::grpc::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Runs service `S` on `listener` until `shutdown` is cancelled, serving its metrics on `metrics`.
///
/// Installs nothing process-wide (no log subscriber, metrics recorder or signal handler: [`main`] does
/// that for a process), so several services, of several stacks, can run in one process; their settings
/// then come from [`Settings::from_variables`], and `metrics` is `None`.
pub async fn run<S: Service>(
    settings: Settings<S::Config>,
    listener: TcpListener,
    metrics: Option<(TcpListener, PrometheusHandle)>,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let mut kit = Kit::start(&settings, S::DEFINITION, shutdown).await?;
    kit.metrics = metrics;
    let routes = S::declare(settings.own, &mut kit).await?;
    kit.serve(listener, routes).await
}

/// The channel of a client made by [`Kit::client`].
pub type Traced = InterceptedService<Channel, TraceContext>;

/// Puts the `traceparent` of the span a call is made in into its metadata, so that the called service's
/// span joins the caller's trace.
#[derive(Debug, Clone, Copy)]
pub struct TraceContext;

impl tonic::service::Interceptor for TraceContext {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(traceparent) = placement_platform::trace_context::current()
            && let Ok(value) = traceparent.parse()
        {
            request
                .metadata_mut()
                .insert(placement_platform::trace_context::TRACEPARENT, value);
        }
        Ok(request)
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a service is declared on: its database, its outbox, its clients, and what it asks to run.
pub struct Kit {
    pool: PgPool,
    common: CommonConfig,
    auth: Authenticate,
    definition: Definition,
    broker: Arc<Broker>,
    outbox: Outbox,
    client_tls: Option<tonic::transport::ClientTlsConfig>,
    server_tls: Option<tonic::transport::ServerTlsConfig>,
    queue: String,
    subscriptions: Subscriptions,
    pending: Vec<Task>,
    metrics: Option<(TcpListener, PrometheusHandle)>,
    samples: Vec<Sample>,
    /// What `grpc.health.v1` reports, also served at the metrics port's `/readyz`.
    serving: Arc<AtomicBool>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// Where the audit trail's head is checkpointed, for a service that keeps a trail and is given a
    /// directory.
    checkpoints: Option<Checkpoints>,
    variables: Variables,
}

impl Kit {
    /// Checks the credentials, connects to PostgreSQL (waiting for it) and applies the messaging and the
    /// service's migrations in the service's schema.
    async fn start<T>(
        settings: &Settings<T>,
        definition: Definition,
        shutdown: CancellationToken,
    ) -> Result<Self, StartError> {
        let common = &settings.common;
        // Credentials are checked before anything else starts: a misconfigured service must not serve.
        let verifier = Verifier::new(
            &common
                .auth()
                .map_err(|e| StartError::Config(e.to_string()))?,
        )
        .map_err(|e| StartError::Config(e.to_string()))?;
        let tls =
            TlsMaterial::from_config(common).map_err(|e| StartError::Config(e.to_string()))?;
        warn_of_development(tls.is_none(), verifier.development());
        if !verifier.development() {
            warn_of_unset(definition, &settings.variables);
        }
        let checkpoints =
            audit_checkpoints(definition, verifier.development(), &settings.variables)?;
        // The identity provider may start after us: without its keys, tokens are refused until a token
        // names a key and the keys are fetched again.
        if let Err(e) = verifier.fetch_keys().await {
            tracing::warn!(error = %e, "verification keys not fetched yet");
        }
        placement_platform::audit::limit_reads(common.audited_reads_per_agency);
        let pool = db::connect_and_migrate(
            &common.database_url,
            common.database_owner_url(),
            definition.listed.name,
            common.database_max_connections,
            common.database_acquire_timeout,
            &[&[&crate::MIGRATOR], definition.migrators].concat(),
            &shutdown,
        )
        .await?;
        Ok(Self {
            pool,
            common: common.clone(),
            auth: Authenticate(Arc::new(verifier)),
            definition,
            broker: Broker::new(&common.amqp_url, definition.listed.process),
            outbox: Outbox::new(),
            client_tls: tls.as_ref().map(TlsMaterial::client),
            server_tls: tls.as_ref().map(TlsMaterial::server),
            queue: settings.queue.clone(),
            subscriptions: Subscriptions::default(),
            pending: Vec::new(),
            metrics: None,
            samples: Vec::new(),
            serving: Arc::new(AtomicBool::new(false)),
            tasks: TaskTracker::new(),
            shutdown,
            checkpoints,
            variables: settings.variables.clone(),
        })
    }

    /// The service's database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The service's settings shared by all (e.g. the authentication mode).
    pub fn common(&self) -> &CommonConfig {
        &self.common
    }

    /// The interceptor every API of the service sits behind (used by [`routes!`]).
    pub fn auth(&self) -> Authenticate {
        self.auth.clone()
    }

    /// The service's audit trail API, checked against its checkpoints when it keeps them.
    pub fn audit_trail(&self) -> placement_platform::audit::AuditTrail {
        placement_platform::audit::AuditTrail {
            pool: self.pool.clone(),
            checkpoints: self.checkpoints.clone(),
        }
    }

    /// The outbox the service's events are written to; the relay publishes them.
    ///
    /// # Panics
    /// When the service's [`Definition`] declares no event it publishes: nothing would relay them.
    pub fn outbox(&self) -> Outbox {
        assert!(
            self.definition.publishes_events(),
            "{} asks for the outbox but its Definition declares nothing it publishes",
            self.definition.listed.process
        );
        self.outbox.clone()
    }

    /// The key webhook secrets are derived from (`PLACEMENT_WEBHOOK_SECRET_KEY`), for the services that
    /// sign or hand out webhook secrets; warns when it is the development key.
    pub fn webhook_key(&self) -> String {
        let key = &self.common.webhook_secret_key;
        if key == placement_platform::config::DEVELOPMENT_WEBHOOK_KEY {
            tracing::warn!(
                "PLACEMENT_WEBHOOK_SECRET_KEY is not set: webhook secrets come from the development key"
            );
        }
        key.clone()
    }

    /// The token cancelled on shutdown, for the service's own tasks and streams.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Consumes, from the service's queue, the events `handler` routes (the queue is bound to their types),
    /// applying each with it. A service may have several handlers, each taking types no other takes.
    ///
    /// # Panics
    /// When an event type `handler` routes is taken by a handler declared before.
    pub fn consume<H: EventHandler>(&mut self, handler: H) {
        self.subscriptions.add(handler);
    }

    /// The consumer of the declared handlers, if any.
    fn consumer(&self) -> Option<Consumer> {
        if self.subscriptions.is_empty() {
            return None;
        }
        let spec = ConsumerSpec::new(&self.queue, &self.subscriptions.bindings());
        Some(Consumer::new(
            self.pool.clone(),
            self.broker.clone(),
            self.common.exchange.clone(),
            spec,
            self.subscriptions.clone(),
            // Events a handler writes to the outbox are relayed as soon as its transaction commits.
            self.definition
                .publishes_events()
                .then(|| self.outbox.clone()),
        ))
    }

    /// Runs `task` once the service serves; shutdown waits for it.
    pub fn spawn<F>(&mut self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.pending.push(Box::pin(task));
    }

    /// Runs `sample` on the metrics' interval, for gauges of the service's own (it sets them itself).
    pub fn sample<F, Fut>(&mut self, sample: F)
    where
        F: Fn(PgPool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.samples
            .push(Arc::new(move |pool| Box::pin(sample(pool)) as Pin<Box<_>>));
    }

    /// A client of another service of the exchange, at `PLACEMENT_<NAME>_URL` (else its default address),
    /// with this service's certificate and a deadline on every call, each carrying the caller's trace
    /// context; connected on first use.
    pub fn client<C>(
        &self,
        service: Listed,
        new: impl FnOnce(Traced) -> C,
    ) -> Result<C, StartError> {
        let url =
            (self.variables.get(&service.setting("url"))).unwrap_or_else(|| service.default_url());
        let channel =
            placement_platform::grpc::lazy_channel(&url, CLIENT_DEADLINE, self.client_tls.as_ref())
                .map_err(|source| StartError::Client {
                    service: service.name,
                    url,
                    source,
                })?;
        Ok(new(InterceptedService::new(channel, TraceContext)))
    }

    fn operator(&self) -> Operator {
        Operator {
            pool: self.pool.clone(),
            broker: self.broker.clone(),
            service: self.definition.listed.process,
            queue: if !self.subscriptions.is_empty() {
                self.queue.clone()
            } else {
                String::new()
            },
        }
    }

    /// Declares the queue (waiting for the broker), so that no event published once the service serves is
    /// missed; then starts the consumer, the relay and the service's tasks.
    async fn start_background(&mut self, operator: Operator) -> Result<(), StartError> {
        if let Some(consumer) = self.consumer() {
            let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
            while let Err(e) = consumer.declare().await {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, ?delay, "broker not ready; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.shutdown.cancelled() => return Err(StartError::Cancelled),
                }
            }
            self.tasks.spawn(consumer.run(self.shutdown.clone()));
        }
        if self.definition.publishes_events() {
            let relay = OutboxRelay::new(
                self.pool.clone(),
                self.broker.clone(),
                self.common.exchange.clone(),
                self.outbox.clone(),
                RelaySettings::default(),
            );
            self.tasks.spawn(relay.run(self.shutdown.clone()));
        }
        for task in self.pending.drain(..) {
            self.tasks.spawn(task);
        }
        if let Some(checkpoints) = &self.checkpoints {
            (self.tasks).spawn(
                checkpoints
                    .clone()
                    .keep(self.pool.clone(), self.shutdown.clone()),
            );
        }
        self.start_metrics(operator);
        Ok(())
    }

    /// Serves the metrics and samples the gauges, when metrics are on.
    fn start_metrics(&mut self, operator: Operator) {
        let Some((listener, handle)) = self.metrics.take() else {
            return;
        };
        self.tasks.spawn(placement_platform::prometheus::serve(
            listener,
            handle,
            self.serving.clone(),
            self.shutdown.clone(),
        ));
        let gauges = Gauges {
            pool: self.pool.clone(),
            operator,
            publishes: self.definition.publishes_events(),
            own: std::mem::take(&mut self.samples),
        };
        self.tasks
            .spawn(gauges.run(self.common.metrics_interval, self.shutdown.clone()));
    }

    /// Keeps the health service in step with what the service needs to serve: SERVING only while the
    /// database answers and, for a service that consumes or publishes events, the broker too. A process
    /// that never uses the broker (the web app) never connects to it, so waiting for it would keep the
    /// process out of service for ever. Also warns, every 30 seconds while it lasts, that dead letters are
    /// waiting.
    fn report_health(&self, reporter: HealthReporter, operator: Operator) {
        let pool = self.pool.clone();
        let uses_broker = !operator.queue.is_empty() || self.definition.publishes_events();
        let broker = uses_broker.then(|| self.broker.clone());
        let shutdown = self.shutdown.clone();
        let names = self.definition.health_names();
        let serving = self.serving.clone();
        self.tasks.spawn(async move {
            let mut last = None;
            let mut tick: u64 = 0;
            loop {
                tick += 1;
                if tick % 60 == 1 {
                    warn_of_dead_letters(&operator).await;
                }
                let ok = db::ping(&pool).await && broker.as_ref().is_none_or(|b| b.is_connected());
                if last != Some(ok) {
                    let status = if ok {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    tracing::info!(?status, "health");
                    for name in &names {
                        reporter.set_service_status(name, status).await;
                    }
                    serving.store(ok, Ordering::Relaxed);
                    last = Some(ok);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
            serving.store(false, Ordering::Relaxed);
            for name in &names {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        });
    }

    /// Starts what was declared, then serves `routes` with health, reflection and the operator's service
    /// until shutdown; then stops everything and closes connections.
    async fn serve(mut self, listener: TcpListener, routes: Routes) -> Result<(), StartError> {
        let operator = self.operator();
        if let Err(e) = self.start_background(operator.clone()).await {
            self.finish(Duration::from_secs(10)).await;
            return Err(e);
        }
        let (reporter, health) = placement_platform::grpc::health();
        self.report_health(reporter, operator.clone());
        let routes = routes.add_service(tonic::service::interceptor::InterceptedService::new(
            placement_proto::v1::operator_service_server::OperatorServiceServer::new(operator)
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            self.auth.clone(),
        ));
        let served = placement_platform::grpc::serve(
            listener,
            routes,
            health,
            self.common.reflection(),
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
        // Serving has stopped: no audited call is left to finish, so this checkpoint covers them all.
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.write_last(&self.pool).await;
        }
        self.broker.close().await;
        self.pool.close().await;
        tracing::info!("stopped");
    }
}

fn warn_of_development(plain_tcp: bool, development_auth: bool) {
    if plain_tcp {
        tracing::warn!("development mode without TLS: the API is served over plain TCP");
    }
    if development_auth {
        tracing::warn!(
            "PLACEMENT_AUTH_MODE=development: calls may name their agency with x-agency-id, unverified; never use this outside a developer's machine"
        );
    }
}

/// The checkpoints of the audit trail's head (`PLACEMENT_AUDIT_CHECKPOINT_*`), for a service that keeps a
/// trail: none without a directory; a directory without a usable key or file stops the start.
fn audit_checkpoints(
    definition: Definition,
    development: bool,
    variables: &Variables,
) -> Result<Option<Checkpoints>, StartError> {
    if !definition.keeps_audit_trail() {
        return Ok(None);
    }
    let settings: CheckpointSettings = variables.read()?;
    Checkpoints::from_settings(&settings, definition.listed.name, development)
        .map_err(|e| StartError::Config(e.to_string()))
}

/// A production process missing a setting mostly still starts (tests run that way), so each one missing
/// is said once, with what it costs.
fn warn_of_unset(definition: Definition, variables: &Variables) {
    let listed = definition.listed;
    let lookup = |name: &str| variables.get(name);
    for missing in placement_platform::config::unset(listed, definition.required, lookup) {
        let names = missing.names_for(listed).join(" or ");
        tracing::warn!(setting = %names, "{names} is not set: {}", missing.without);
    }
}

async fn warn_of_dead_letters(operator: &Operator) {
    if !operator.queue.is_empty()
        && let Ok(n) = operator.dead_letter_count().await
        && n > 0
    {
        tracing::warn!(dead_letters = n, queue = %operator.queue, "dead letters are waiting; see placement-cli dead-letters");
    }
}
