//! A whole Placement Exchange on this machine for one test: every service binary as a child process,
//! in a PostgreSQL database and behind an exchange and queues of their own, so tests run side by side and
//! leave nothing behind.

// Measuring and test code: the rule against wrapping casts guards what services do with requests.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

pub mod bench;
pub mod browser;
pub mod cluster;
pub mod in_process;
pub mod infra;
pub mod load;
pub mod mail;
pub mod oidc;
pub mod otlp;
pub mod proxy;
pub mod web_app;
pub mod webhook;

use std::{
    collections::BTreeMap,
    fs::OpenOptions,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures::StreamExt;
use lapin::{
    Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, ExchangeDeleteOptions, QueueBindOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};
use placement_cli::clients::{Clients, Endpoints, wait_ready};
use placement_platform::services;
use placement_proto::v1::EventEnvelope;
use prost::Message;
use sqlx::{Connection as _, Executor, PgConnection};
use tokio::sync::mpsc;
use uuid::Uuid;

pub use in_process::InProcessStack;

/// The names of every service, from the one list ([`services::ALL`]).
pub fn service_names() -> impl Iterator<Item = &'static str> {
    services::ALL.iter().map(|s| s.name)
}

pub fn admin_url() -> String {
    std::env::var("PLACEMENT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://placement:placement@127.0.0.1:5432/placement".into())
}

/// `database_url` (the stack's, as the owner) as `service`'s runtime role, which deploy/infra.sh makes:
/// `placement_<service>`, its password its name.
pub fn runtime_url(database_url: &str, service: &str) -> String {
    let (scheme, rest) = database_url
        .split_once("://")
        .expect("a database URL with a scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let role = format!("placement_{service}");
    format!("{scheme}://{role}:{role}@{host}")
}

/// The Python with the tests' packages: `PLACEMENT_TEST_PYTHON` (set by deploy/test.sh to the environment
/// `deploy/infra.sh python` makes), else the one that script makes, else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLACEMENT_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

pub fn amqp_url() -> String {
    std::env::var("PLACEMENT_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Where the service binaries are: beside the test binary's `deps/` folder, unless PLACEMENT_BIN_DIR says.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PLACEMENT_BIN_DIR") {
        return dir.into();
    }
    // A test binary lives in target/<profile>/deps, a program (placement-bench) in target/<profile>.
    let exe = std::env::current_exe().expect("binary path");
    let dir = exe.parent().expect("target/<profile>");
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Appends a line to `target/<profile>/test-summary.txt`, which deploy/test.sh prints at the end.
pub fn record_summary(line: &str) {
    use std::io::Write;
    if let Ok(mut f) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(bin_dir().join("test-summary.txt"))
    {
        let _ = writeln!(f, "{line}");
    }
}

/// This test process's development credentials: a signing key the services trust (their JWKS) and that
/// [`placement_cli::clients::as_agency`] signs every request with.
pub fn dev_keys() -> &'static PathBuf {
    static KEYS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("placement-keys-{}", std::process::id()));
        placement_cli::devkeys::ensure(&dir).expect("development keys");
        placement_cli::devkeys::ensure_pki(&dir).expect("development certificates");
        placement_cli::devkeys::use_client_tls(&dir).expect("client certificate");
        placement_cli::devkeys::use_signer(
            placement_cli::devkeys::signer(&dir).expect("development signer"),
        );
        dir
    })
}

/// Ports handed to the processes the tests start are taken from below the kernel's ephemeral range
/// (32768 and up on Linux): a port picked by binding port 0 and let go lies in that range, where every
/// outgoing connection takes its own, so it was now and then taken before the child bound it.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port that is free now and that no other test process will hand out: each port given is held
/// by a lock on a file under the temporary directory for the life of this process (the lock ends
/// with the process, however it ends), so the suites running side by side never share one.
pub fn free_port() -> u16 {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join("placement-test-ports");
    std::fs::create_dir_all(&dir).expect("port lock directory");
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = TEST_PORTS.start + ((start + step) % span) as u16;
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        if file.try_lock().is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().expect("held ports").push(file);
            return port;
        }
    }
    panic!("no free port in {TEST_PORTS:?}")
}

/// Every instance a stack starts serves its metrics on a port of its own.
const METRICS_ADDR: &str = "PLACEMENT_METRICS_ADDR";

/// Settings that differ between tests.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    /// `PLACEMENT_ACK_DEADLINE`, e.g. "2s".
    pub ack_deadline: Option<String>,
    /// `PLACEMENT_ESCALATION_INTERVAL`, e.g. "200ms".
    pub escalation_interval: Option<String>,
    /// The AMQP URL of one service instead of the broker's (e.g. through a [`proxy::TcpProxy`]).
    pub amqp_url_of: BTreeMap<&'static str, String>,
    /// `PLACEMENT_AUTH_JWKS_URI` instead of the JWKS file of [`dev_keys`].
    pub jwks_uri: Option<String>,
    /// An identity provider whose tokens are taken *beside* those of the development signer (its
    /// `jwks_uri` and issuer), as for staff signed in through the web app.
    pub identity_provider: Option<(String, String)>,
    /// Further `PLACEMENT_*` settings for every service (e.g. `PLACEMENT_SMTP_URL`).
    pub env: Vec<(String, String)>,
    /// The broker for the whole stack (the services and the stack's own checks): one AMQP URL or several
    /// nodes' comma-separated; the machine's RabbitMQ when unset.
    pub broker: Option<String>,
    /// An existing database to start on (one restored from a backup, named `pe_<pid>_…` so that it is
    /// dropped like a stack's own), instead of a new one.
    pub database: Option<String>,
}

pub struct Stack {
    pub id: String,
    pub endpoints: Endpoints,
    /// The stack's database as the schemas' owner (every schema readable); each service serves as its
    /// own role ([`runtime_url`]).
    pub database_url: String,
    pub exchange: String,
    pub log_dir: PathBuf,
    /// Where each instance ("referrals", "referrals#2", "web") serves its metrics, as `host:port`.
    pub metrics: BTreeMap<String, String>,
    /// The broker's nodes' AMQP URLs.
    broker: Vec<String>,
    database: String,
    children: Vec<(String, Child)>,
    environments: BTreeMap<String, Vec<(String, String)>>,
}

impl Stack {
    pub async fn start(options: StackOptions) -> Stack {
        // A port picked free can be taken by another process before the service binds it (tests run in
        // parallel): the service then exits, and the stack is started afresh on other ports.
        for _ in 0..3 {
            let mut stack = Self::start_once(options.clone()).await;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                if let Some(dead) = stack.exited() {
                    eprintln!(
                        "placement-{dead} of stack {} exited while starting; starting afresh\n{}",
                        stack.id,
                        stack.logs()
                    );
                    break;
                }
                if wait_ready(&stack.endpoints, Duration::from_millis(500))
                    .await
                    .is_ok()
                {
                    // Ready, and answered by our own processes (none has exited since).
                    if stack.exited().is_none() {
                        return stack;
                    }
                    break;
                }
                if std::time::Instant::now() > deadline {
                    panic!(
                        "stack {} not serving after 60 s\n{}",
                        stack.id,
                        stack.logs()
                    );
                }
            }
        }
        panic!("could not start a stack in three attempts");
    }

    /// The first service process that has exited, if any.
    pub fn exited(&mut self) -> Option<String> {
        self.children
            .iter_mut()
            .find_map(|(name, child)| matches!(child.try_wait(), Ok(Some(_))).then(|| name.clone()))
    }

    async fn start_once(options: StackOptions) -> Stack {
        let id = stack_id();
        let (database, database_url) = create_database(&id, options.database.as_deref()).await;
        let exchange = format!("{id}.events");
        let broker = options.broker.clone().unwrap_or_else(amqp_url);
        let ports: Vec<u16> = services::ALL.iter().map(|_| free_port()).collect();
        let mut endpoints = Endpoints::default();
        for (service, port) in services::ALL.iter().zip(&ports) {
            endpoints.set(*service, format!("http://127.0.0.1:{port}"));
        }
        let log_dir = bin_dir().join("e2e-logs").join(&id);
        std::fs::create_dir_all(&log_dir).expect("log folder");
        let layout = Layout {
            id: &id,
            database_url: &database_url,
            exchange: &exchange,
            broker: &broker,
            endpoints: &endpoints,
            options: &options,
        };
        let environments = (services::ALL.iter().zip(&ports))
            .map(|(listed, port)| {
                let listen = format!("127.0.0.1:{port}");
                let metrics = format!("127.0.0.1:{}", free_port());
                let env = layout.environment(*listed, &listen, &metrics);
                (listed.name.to_string(), env)
            })
            .collect();
        let mut stack = Stack {
            id,
            endpoints,
            database_url,
            exchange,
            log_dir,
            metrics: BTreeMap::new(),
            broker: broker.split(',').map(str::to_string).collect(),
            database,
            children: Vec::new(),
            environments,
        };
        for service in service_names() {
            stack.spawn(service);
        }
        stack
    }

    /// Starts the instance `name` ("referrals", or "referrals#2" for a further instance) with its settings.
    fn spawn(&mut self, name: &str) {
        let service = name.split('#').next().unwrap_or(name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{name}.log")))
            .expect("log file");
        if let Some((_, addr)) = self.environments[name]
            .iter()
            .rev()
            .find(|(k, _)| k == METRICS_ADDR)
        {
            self.metrics.insert(name.to_string(), addr.clone());
        }
        let mut cmd = Command::new(bin_dir().join(format!("placement-{service}")));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            // tokio's own setting, passed on so a run can size the services' runtimes.
            .envs(std::env::var("TOKIO_WORKER_THREADS").map(|v| ("TOKIO_WORKER_THREADS", v)))
            .envs(self.environments[name].iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("start placement-{service} (run `cargo build --workspace --bins`): {e}")
        });
        self.children.push((name.to_string(), child));
    }

    /// Starts a second instance of `service` on a port of its own, sharing the database and queue; returns
    /// its endpoint.
    pub fn add_instance(&mut self, service: &str) -> String {
        let port = free_port();
        let listen = Self::listed(service).setting("listen_addr");
        let mut env = self.environments[service].clone();
        let metrics = format!("127.0.0.1:{}", free_port());
        for (k, v) in env.iter_mut() {
            if *k == listen {
                *v = format!("127.0.0.1:{port}");
            }
            if k == METRICS_ADDR {
                v.clone_from(&metrics);
            }
        }
        let name = format!(
            "{service}#{}",
            self.children
                .iter()
                .filter(|(n, _)| n.starts_with(service))
                .count()
                + 1
        );
        self.environments.insert(name.clone(), env);
        self.spawn(&name);
        format!("http://127.0.0.1:{port}")
    }

    fn listed(service: &str) -> services::Listed {
        services::Listed::named(service)
            .unwrap_or_else(|| panic!("{service:?} is none of {}", services::Listed::names()))
    }

    /// Starts the web app (`placement-web`) on this stack, serving pages on `http_port`, with the
    /// stack's settings and `env` (its OpenID client); waits until it answers. Returns its address.
    pub async fn start_web(&mut self, http_port: u16, env: Vec<(String, String)>) -> String {
        let url = format!("http://127.0.0.1:{http_port}");
        let mut settings = self.environments[services::DIRECTORY.name].clone();
        settings.extend([
            (
                services::WEB.setting("listen_addr"),
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "PLACEMENT_WEB_HTTP_ADDR".into(),
                format!("127.0.0.1:{http_port}"),
            ),
            ("PLACEMENT_PUBLIC_URL".into(), url.clone()),
            (METRICS_ADDR.into(), format!("127.0.0.1:{}", free_port())),
            (
                "PLACEMENT_DATABASE_URL".into(),
                runtime_url(&self.database_url, services::WEB.name),
            ),
        ]);
        settings.extend(env);
        self.environments
            .insert(services::WEB.name.to_string(), settings);
        self.spawn(services::WEB.name);
        let http = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{url}/healthz")).send().await
                && r.status().is_success()
            {
                return url;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "placement-web not answering after 30 s\n{}",
                std::fs::read_to_string(self.log_dir.join("web.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM to `service` and waits for it to exit; returns how long that took.
    pub fn terminate(&mut self, service: &str, limit: Duration) -> Duration {
        let pos = self
            .children
            .iter()
            .position(|(name, _)| name == service)
            .expect("a running service");
        let (_, mut child) = self.children.remove(pos);
        let started = std::time::Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return started.elapsed();
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("placement-{service} did not exit within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id of each running service process.
    pub fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(name, child)| (name.clone(), child.id()))
            .collect()
    }

    /// Stops every service gracefully (the database and queues are removed when the stack is dropped).
    pub fn stop_all(&mut self) {
        self.stop();
    }

    /// SIGKILLs `service`: no shutdown, no last words.
    pub fn kill(&mut self, service: &str) {
        if let Some(pos) = self.children.iter().position(|(name, _)| name == service) {
            let (_, mut child) = self.children.remove(pos);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sets `key` for `service` from its next start on (see [`restart`](Self::restart)).
    pub fn set_env(&mut self, service: &str, key: &str, value: &str) {
        let env = self
            .environments
            .get_mut(service)
            .expect("a service of the stack");
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    /// Starts `service` again (after [`kill`](Self::kill)) with the same settings and port.
    pub fn restart(&mut self, service: &str) {
        self.kill(service);
        self.spawn(service);
    }

    /// What `service` reports on `grpc.health.v1` now (None if it does not answer).
    pub async fn health(&self, service: &str) -> Option<i32> {
        health(&self.endpoints, service).await
    }

    /// Waits until every service reports SERVING.
    pub async fn wait_ready(&self, timeout: Duration) {
        if let Err(e) = wait_ready(&self.endpoints, timeout).await {
            panic!("{e}\n{}", self.logs());
        }
    }

    pub fn clients(&self) -> Clients {
        Clients::connect(&self.endpoints).expect("valid endpoints")
    }

    pub fn queue(&self, service: &str) -> String {
        format!("{}.{service}", self.id)
    }

    /// Everything the services logged so far.
    pub fn logs(&self) -> String {
        service_names()
            .chain([services::WEB.name])
            .map(|s| {
                let text = std::fs::read_to_string(self.log_dir.join(format!("{s}.log")))
                    .unwrap_or_default();
                format!("----- {s} -----\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// A connection to the stack's database, for checks the API does not expose (outbox, inbox).
    pub async fn db(&self) -> PgConnection {
        PgConnection::connect(&self.database_url)
            .await
            .expect("test database")
    }

    /// Waits until the notifications service holds `n` notification endpoints (they reach it by event from
    /// the directory), or `timeout` passes; returns whether it does.
    pub async fn wait_for_endpoints(&self, n: i64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(mut db) = PgConnection::connect(&self.database_url).await {
                let held: Option<i64> =
                    sqlx::query_scalar("SELECT count(*) FROM notifications.endpoints")
                        .fetch_one(&mut db)
                        .await
                        .ok();
                if held == Some(n) {
                    return true;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A connection to the first of the stack's broker nodes that answers.
    async fn broker_connection(&self) -> Connection {
        broker_connection(&self.broker)
            .await
            .expect("RabbitMQ answers")
    }

    /// Messages waiting in each service's dead-letter queue.
    pub async fn dead_letters(&self) -> Vec<(String, u32)> {
        let conn = self.broker_connection().await;
        let channel = conn.create_channel().await.expect("channel");
        let mut out = Vec::new();
        for service in service_names() {
            let name = placement_messaging::topology::dead_letter_queue(&self.queue(service));
            let q = channel
                .queue_declare(
                    name.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .expect("dead-letter queue exists");
            out.push((name, q.message_count()));
        }
        let _ = conn.close(200, "done".into()).await;
        out
    }

    /// Outbox rows not yet published, over every service.
    pub async fn outbox_backlog(&self) -> i64 {
        let mut db = self.db().await;
        let mut total = 0;
        for schema in service_names() {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"
            ))
            .fetch_one(&mut db)
            .await
            .expect("outbox count");
            total += n;
        }
        total
    }

    /// Whether `service` has applied every one of `event_ids`.
    pub async fn has_processed(&self, service: &str, event_ids: &[Uuid]) -> bool {
        let mut db = self.db().await;
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {service}.processed_events WHERE event_id = ANY($1)"
        ))
        .bind(event_ids)
        .fetch_one(&mut db)
        .await
        .expect("inbox count");
        n as usize == event_ids.len()
    }

    /// Starts recording every event on the stack's exchange.
    pub async fn record_events(&self) -> EventRecorder {
        EventRecorder::on(&self.broker, &self.id, &self.exchange).await
    }

    /// Publishes raw bytes on the stack's exchange with `routing_key` (to test consumers with bad input).
    pub async fn publish_raw(&self, routing_key: &str, body: &[u8]) {
        self.publish_to(&self.exchange.clone(), routing_key, body)
            .await
    }

    /// Publishes raw bytes straight onto `service`'s queue (through the default exchange).
    pub async fn publish_to_queue(&self, service: &str, body: &[u8]) {
        self.publish_to("", &self.queue(service), body).await
    }

    /// Puts an event envelope straight into a queue by name, with the properties the relay sets.
    pub async fn put_event_in_queue(&self, queue: &str, envelope: &EventEnvelope) {
        let properties = lapin::BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(envelope.event_id.as_str().into())
            .with_type(envelope.event_type.as_str().into());
        self.publish_with("", queue, &envelope.encode_to_vec(), properties)
            .await
    }

    async fn publish_to(&self, exchange: &str, routing_key: &str, body: &[u8]) {
        self.publish_with(
            exchange,
            routing_key,
            body,
            lapin::BasicProperties::default().with_delivery_mode(2),
        )
        .await
    }

    async fn publish_with(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: lapin::BasicProperties,
    ) {
        let conn = self.broker_connection().await;
        let channel = conn.create_channel().await.expect("channel");
        channel
            .confirm_select(Default::default())
            .await
            .expect("confirms");
        channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                Default::default(),
                body,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        let _ = conn.close(200, "done".into()).await;
    }

    fn stop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        for (name, child) in &mut self.children {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        eprintln!("placement-{name} did not stop on SIGTERM; killing");
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

/// A new stack's id, `pe_<pid>_<random>`: its database, exchange and queues are named after it, and a
/// later run drops the database once the process is gone.
pub(crate) fn stack_id() -> String {
    format!(
        "pe_{}_{}",
        std::process::id(),
        &Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Creates the stack `id`'s database (or, given an `existing` one, starts on that), after dropping those
/// of test runs that are gone; returns its name and its URL as the schemas' owner.
pub(crate) async fn create_database(id: &str, existing: Option<&str>) -> (String, String) {
    let admin = admin_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL answers (run deploy/infra.sh)");
    drop_stale_databases(&mut conn).await;
    let database = existing.unwrap_or(id).to_string();
    if existing.is_none() {
        conn.execute(format!("CREATE DATABASE {id}").as_str())
            .await
            .expect("create the test database");
    }
    conn.close().await.ok();
    let database_url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{database}"),
        None => panic!("database URL without a database name"),
    };
    (database, database_url)
}

/// What every service of one stack is given: the stack's database, exchange and broker, where each of
/// the others is, and the test's options.
pub(crate) struct Layout<'a> {
    pub id: &'a str,
    pub database_url: &'a str,
    pub exchange: &'a str,
    pub broker: &'a str,
    pub endpoints: &'a Endpoints,
    pub options: &'a StackOptions,
}

impl Layout<'_> {
    /// The settings of `listed`, serving on `listen` and its metrics on `metrics` (an address, or "off").
    pub(crate) fn environment(
        &self,
        listed: services::Listed,
        listen: &str,
        metrics: &str,
    ) -> Vec<(String, String)> {
        let mut env = self.connections(listed, listen, metrics);
        env.extend(self.credentials());
        env.extend(test_pace());
        env.extend(self.options.env.iter().cloned());
        env
    }

    /// Its database, broker, queue and addresses, and the other services' addresses.
    fn connections(
        &self,
        listed: services::Listed,
        listen: &str,
        metrics: &str,
    ) -> Vec<(String, String)> {
        let service = listed.name;
        let options = self.options;
        let mut env = vec![
            (
                "RUST_LOG".to_string(),
                std::env::var("PLACEMENT_TEST_RUST_LOG").unwrap_or_else(|_| "info".into()),
            ),
            // Every service as its own runtime role, its schema migrated and granted by the owner: every
            // test runs with the privileges a deployment gives.
            (
                "PLACEMENT_DATABASE_URL".into(),
                runtime_url(self.database_url, service),
            ),
            (
                "PLACEMENT_DATABASE_OWNER_URL".into(),
                self.database_url.to_string(),
            ),
            // Stacks run side by side against one PostgreSQL (100 connections by default), some with
            // two instances of every service: a few connections each is what a test's load needs.
            ("PLACEMENT_DATABASE_MAX_CONNECTIONS".into(), "5".into()),
            (
                "PLACEMENT_AMQP_URL".into(),
                (options.amqp_url_of.get(service).cloned())
                    .unwrap_or_else(|| self.broker.to_string()),
            ),
            ("PLACEMENT_EXCHANGE".into(), self.exchange.to_string()),
            (listed.setting("queue"), format!("{}.{service}", self.id)),
            (listed.setting("listen_addr"), listen.to_string()),
            (METRICS_ADDR.into(), metrics.to_string()),
        ];
        // Where every service is, for those it calls.
        env.extend(
            services::ALL
                .iter()
                .map(|other| (other.setting("url"), self.endpoints.url(*other).to_string())),
        );
        if let Some(d) = &options.ack_deadline {
            env.push(("PLACEMENT_ACK_DEADLINE".into(), d.clone()));
        }
        if let Some(i) = &options.escalation_interval {
            env.push(("PLACEMENT_ESCALATION_INTERVAL".into(), i.clone()));
        }
        env
    }

    /// The keys tokens are verified with, the certificates of mutual TLS and the data key.
    fn credentials(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some((jwks_uri, issuer)) = &self.options.identity_provider {
            env.push(("PLACEMENT_AUTH_JWKS_URI".into(), jwks_uri.clone()));
            env.push((
                "PLACEMENT_AUTH_ISSUER".into(),
                format!("{},{issuer}", placement_cli::devkeys::ISSUER),
            ));
        }
        env.push(match &self.options.jwks_uri {
            Some(uri) => ("PLACEMENT_AUTH_JWKS_URI".into(), uri.clone()),
            None => (
                "PLACEMENT_AUTH_JWKS_FILE".into(),
                dev_keys()
                    .join(placement_cli::devkeys::JWKS_FILE)
                    .display()
                    .to_string(),
            ),
        });
        for (var, file) in [
            (
                "PLACEMENT_TLS_CERT",
                placement_cli::devkeys::SERVICE_CERT_FILE,
            ),
            (
                "PLACEMENT_TLS_KEY",
                placement_cli::devkeys::SERVICE_KEY_FILE,
            ),
            ("PLACEMENT_TLS_CA", placement_cli::devkeys::CA_FILE),
        ] {
            env.push((var.into(), dev_keys().join(file).display().to_string()));
        }
        env.push((
            "PLACEMENT_DATA_KEY".into(),
            std::fs::read_to_string(dev_keys().join(placement_cli::devkeys::DATA_KEY_FILE))
                .expect("the development data key"),
        ));
        env
    }
}

/// Settings that keep a test quick: webhook receivers in tests are plain HTTP on this machine (127.0.0.1,
/// an internal address the stack allows as an operator would a host of its own); retries come quickly.
fn test_pace() -> Vec<(String, String)> {
    [
        ("PLACEMENT_ALLOW_HTTP_WEBHOOKS", "true"),
        ("PLACEMENT_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1"),
        ("PLACEMENT_DELIVERY_POLL_INTERVAL", "100ms"),
        ("PLACEMENT_DELIVERY_RETRY_INITIAL", "100ms"),
        ("PLACEMENT_DELIVERY_RETRY_MAX", "400ms"),
        ("PLACEMENT_DELIVERY_TIMEOUT", "2s"),
        // A test run on a Monday morning would otherwise find every RDSA's inbox holding the week's
        // digest; the digest test sets its own slot.
        ("PLACEMENT_REPORTS_DIGEST_AT", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Events seen on the exchange since recording started.
pub struct EventRecorder {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pub events: Vec<(EventEnvelope, Vec<u8>)>,
}

impl EventRecorder {
    /// Starts recording every event on `exchange` of the broker (nodes `broker`), in a queue named after
    /// the stack `id`.
    pub(crate) async fn on(broker: &[String], id: &str, exchange: &str) -> EventRecorder {
        let conn = broker_connection(broker).await.expect("RabbitMQ answers");
        let channel = conn.create_channel().await.expect("channel");
        let queue = format!("{id}.recorder.{}", Uuid::new_v4().simple());
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("recorder queue");
        channel
            .queue_bind(
                queue.as_str().into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind recorder");
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let _conn = conn;
            while let Some(Ok(delivery)) = consumer.next().await {
                let _ = delivery.ack(BasicAckOptions::default()).await;
                if tx.send(delivery.data.clone()).is_err() {
                    break;
                }
            }
        });
        EventRecorder {
            rx,
            events: Vec::new(),
        }
    }

    /// Waits until `pred` holds over the events seen, or `timeout` passes.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        pred: impl Fn(&[(EventEnvelope, Vec<u8>)]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            while let Ok(body) = self.rx.try_recv() {
                let env = EventEnvelope::decode(body.as_slice()).unwrap_or_default();
                self.events.push((env, body));
            }
            if pred(&self.events) {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(body)) => {
                    let env = EventEnvelope::decode(body.as_slice()).unwrap_or_default();
                    self.events.push((env, body));
                }
                _ => return pred(&self.events),
            }
        }
    }

    /// Events about `aggregate_id`, in the order seen.
    pub fn about(&self, aggregate_id: &str) -> Vec<&EventEnvelope> {
        self.events
            .iter()
            .map(|(e, _)| e)
            .filter(|e| e.aggregate_id == aggregate_id)
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
        StackResources {
            database: self.database.clone(),
            exchange: self.exchange.clone(),
            queues: service_names().map(|s| self.queue(s)).collect(),
            broker: self.broker.clone(),
        }
        .remove();
    }
}

/// What a stack made in PostgreSQL and RabbitMQ, for it to remove once its services stopped.
pub(crate) struct StackResources {
    pub database: String,
    pub exchange: String,
    /// Every service's queue (their dead-letter queues go with them).
    pub queues: Vec<String>,
    /// The broker's nodes' AMQP URLs.
    pub broker: Vec<String>,
}

impl StackResources {
    /// Drops the database and deletes the queues and exchanges. Runs on a thread with a runtime of its
    /// own: a stack is dropped inside a runtime or while unwinding.
    pub(crate) fn remove(self) {
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ = conn
                        .execute(
                            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database)
                                .as_str(),
                        )
                        .await;
                }
                self.remove_from_broker().await;
            });
        });
        let _ = cleanup.join();
    }

    async fn remove_from_broker(&self) {
        let Ok(conn) = broker_connection(&self.broker).await else {
            return;
        };
        let Ok(channel) = conn.create_channel().await else {
            return;
        };
        for q in &self.queues {
            for name in [
                q.clone(),
                placement_messaging::topology::dead_letter_queue(q),
            ] {
                let _ = channel
                    .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
        }
        let exchange = &self.exchange;
        let unroutable = placement_messaging::topology::unroutable_name(exchange);
        let _ = channel
            .queue_delete(unroutable.as_str().into(), QueueDeleteOptions::default())
            .await;
        for ex in [
            exchange.clone(),
            unroutable,
            placement_messaging::topology::dead_letter_exchange(exchange),
        ] {
            let _ = channel
                .exchange_delete(ex.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
        let _ = conn.close(200, "cleanup".into()).await;
    }
}

/// What `service` of the stack at `endpoints` reports on `grpc.health.v1` now (None if it does not
/// answer).
pub async fn health(endpoints: &Endpoints, service: &str) -> Option<i32> {
    let url = endpoints.url(services::Listed::named(service)?).to_string();
    let channel = placement_cli::clients::channel(&url).ok()?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let mut request = tonic::Request::new(tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(1));
    client
        .check(request)
        .await
        .ok()
        .map(|r| r.into_inner().status)
}

/// A connection to the first of `nodes` that answers.
async fn broker_connection(nodes: &[String]) -> Result<Connection, lapin::Error> {
    let mut last = None;
    for url in nodes {
        match Connection::connect(url, ConnectionProperties::default()).await {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one broker node"))
}

/// Removes test databases left by test runs whose process is gone (a run that was killed).
async fn drop_stale_databases(conn: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'pe\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}
