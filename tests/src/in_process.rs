//! A whole Placement Exchange inside the test process: every service as tasks on a runtime of the
//! stack's own, serving gRPC on a port the kernel picked on 127.0.0.1, in a database and behind an
//! exchange and queues made for the stack exactly as [`Stack`](crate::Stack) makes them, and removed with
//! it. It starts in a fraction of a process stack's time, so a test can have one to itself; the tests of
//! what only processes show (a kill, a signal, metrics, logs, the web app) keep [`Stack`](crate::Stack).

use std::time::Duration;

use placement_cli::clients::{Clients, Endpoints, wait_ready};
use placement_messaging::service::{Service, Settings, StartError, run};
use placement_platform::{config::Variables, services};
use tokio::{runtime::Runtime, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{Layout, StackOptions, StackResources, amqp_url, create_database, stack_id};

/// How long a stack may take to serve, and each service to stop.
const START_LIMIT: Duration = Duration::from_secs(60);
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// Starts one service on `runtime` with `variables` as its settings, serving on `listener`.
type Starter = fn(&Runtime, Variables, std::net::TcpListener, CancellationToken) -> Running;

type Running = JoinHandle<Result<(), StartError>>;

/// Every service of the exchange, as this kit starts it: in the order of [`services::ALL`] (checked
/// when a stack starts).
const SERVICES: [(services::Listed, Starter); 5] = [
    (
        placement_directory::Directory::DEFINITION.listed,
        spawn::<placement_directory::Directory>,
    ),
    (
        placement_cases::Cases::DEFINITION.listed,
        spawn::<placement_cases::Cases>,
    ),
    (
        placement_referrals::Referrals::DEFINITION.listed,
        spawn::<placement_referrals::Referrals>,
    ),
    (
        placement_notifications::Notifications::DEFINITION.listed,
        spawn::<placement_notifications::Notifications>,
    ),
    (
        placement_reports::Reports::DEFINITION.listed,
        spawn::<placement_reports::Reports>,
    ),
];

fn spawn<S: Service>(
    runtime: &Runtime,
    variables: Variables,
    listener: std::net::TcpListener,
    shutdown: CancellationToken,
) -> Running
where
    S::Config: Sync,
{
    runtime.spawn(async move {
        let settings = Settings::<S::Config>::from_variables(S::DEFINITION.listed, variables)?;
        let addr = settings.listen_addr;
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|source| StartError::Bind { addr, source })?;
        run::<S>(settings, listener, None, shutdown).await
    })
}

/// A listener on a port the kernel picks on 127.0.0.1: held from the start, so no other process can
/// take the port before the service serves on it.
fn bind_loopback() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a port on 127.0.0.1");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    listener
}

pub struct InProcessStack {
    pub id: String,
    pub endpoints: Endpoints,
    /// The stack's database as the schemas' owner; each service serves as its own role.
    pub database_url: String,
    pub exchange: String,
    runtime: Option<Runtime>,
    shutdown: CancellationToken,
    services: Vec<(&'static str, Running)>,
    resources: Option<StackResources>,
}

impl InProcessStack {
    /// Starts every service with the settings a [`Stack`](crate::Stack) of `options` gives its processes
    /// (metrics off), and waits until each serves.
    pub async fn start(options: StackOptions) -> InProcessStack {
        let listed: Vec<_> = SERVICES.iter().map(|(l, _)| l.name).collect();
        let all: Vec<_> = services::ALL.iter().map(|l| l.name).collect();
        assert_eq!(listed, all, "the kit starts every service of services::ALL");
        let id = stack_id();
        let (database, database_url) = create_database(&id, options.database.as_deref()).await;
        let exchange = format!("{id}.events");
        let broker = options.broker.clone().unwrap_or_else(amqp_url);
        let listeners: Vec<_> = SERVICES.iter().map(|_| bind_loopback()).collect();
        let mut endpoints = Endpoints::default();
        for ((listed, _), listener) in SERVICES.iter().zip(&listeners) {
            let addr = listener.local_addr().expect("a bound address");
            endpoints.set(*listed, format!("http://{addr}"));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{id}-services"))
            .enable_all()
            .build()
            .expect("the stack's runtime");
        let shutdown = CancellationToken::new();
        let layout = Layout {
            id: &id,
            database_url: &database_url,
            exchange: &exchange,
            broker: &broker,
            endpoints: &endpoints,
            options: &options,
        };
        let services = (SERVICES.iter().zip(listeners))
            .map(|((listed, start), listener)| {
                let listen = listener.local_addr().expect("a bound address").to_string();
                let env = layout.environment(*listed, &listen, "off");
                let running = start(&runtime, Variables::given(env), listener, shutdown.clone());
                (listed.name, running)
            })
            .collect();
        let resources = StackResources {
            database,
            exchange: exchange.clone(),
            queues: SERVICES
                .iter()
                .map(|(l, _)| format!("{id}.{}", l.name))
                .collect(),
            broker: broker.split(',').map(str::to_string).collect(),
        };
        let mut stack = InProcessStack {
            id,
            endpoints,
            database_url,
            exchange,
            runtime: Some(runtime),
            shutdown,
            services,
            resources: Some(resources),
        };
        stack.wait_serving().await;
        stack
    }

    /// Waits until every service reports SERVING; panics with the error of one that stopped instead.
    async fn wait_serving(&mut self) {
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if let Some(pos) = self.services.iter().position(|(_, s)| s.is_finished()) {
                let (name, stopped) = self.services.remove(pos);
                panic!(
                    "{name} of stack {} stopped while starting: {:?}",
                    self.id,
                    stopped.await
                );
            }
            if wait_ready(&self.endpoints, Duration::from_millis(500))
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "stack {} not serving after {START_LIMIT:?}",
                self.id
            );
        }
    }

    pub fn clients(&self) -> Clients {
        Clients::connect(&self.endpoints).expect("valid endpoints")
    }

    /// Starts recording every event on the stack's exchange.
    pub async fn record_events(&self) -> crate::EventRecorder {
        let broker = &self.resources.as_ref().expect("a running stack").broker;
        crate::EventRecorder::on(broker, &self.id, &self.exchange).await
    }

    /// What `service` reports on `grpc.health.v1` now (None if it does not answer).
    pub async fn health(&self, service: &str) -> Option<i32> {
        crate::health(&self.endpoints, service).await
    }

    /// Stops every service as SIGTERM stops a process, and waits for each; panics if one failed or
    /// did not stop in time. (Dropping the stack stops them too, without the checks.)
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for (name, running) in std::mem::take(&mut self.services) {
            match tokio::time::timeout(STOP_LIMIT, running).await {
                Ok(Ok(Ok(()))) => {}
                Ok(stopped) => panic!("{name} of stack {} stopped with {stopped:?}", self.id),
                Err(_) => panic!(
                    "{name} of stack {} still running after {STOP_LIMIT:?}",
                    self.id
                ),
            }
        }
    }
}

impl Drop for InProcessStack {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let runtime = self.runtime.take();
        let services = std::mem::take(&mut self.services);
        let resources = self.resources.take();
        // The services' runtime cannot be waited on or dropped inside another runtime, where a stack is
        // dropped; and its queues are deleted only once no consumer is left to declare them again.
        let stopping = std::thread::spawn(move || {
            if let Some(runtime) = runtime {
                runtime.block_on(async {
                    for (_, running) in services {
                        let _ = tokio::time::timeout(STOP_LIMIT, running).await;
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            }
            if let Some(resources) = resources {
                resources.remove();
            }
        });
        let _ = stopping.join();
    }
}
