//! The benchmark: the raw parts of the machine first (PostgreSQL commits, RabbitMQ confirmed round trips, a
//! trivial gRPC call), then the real flow through the API at a constant arrival rate stepped up until it
//! breaks down, then read latencies with an empty history and with a large one, then the staff web app's
//! pages with the large history under half the peak load, then a search to five services. One table, one
//! JSON file, one SVG of latency against offered load.

mod history;
mod reports;
mod search;
mod steady;
mod telemetry;
mod web;

pub use reports::ReportFigures;
pub use search::SearchFigures;
pub use steady::SteadyRun;
pub use telemetry::TelemetryRun;
pub use web::WebFigures;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::Datelike;
use futures::StreamExt;
use hdrhistogram::Histogram;
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use placement_cli::{
    clients::{Clients, as_agency},
    demo::{self, DemoDirectory, NATIONAL_AUTHORITY},
};
use placement_proto::v1::{
    AcceptReferralRequest, AcknowledgeReferralRequest, Child, ConfirmPlacementRequest,
    CreateServiceRequest, Date, GetReferralRequest, LegalBasis, LegalBasisKind,
    ListMunicipalitiesRequest, ListReferralsRequest, NotificationKind, OpenCaseRequest,
    PageRequest, ReferralDirection, SearchServicesRequest, ServiceType, Sex, SubmitReferralRequest,
    WatchNotificationsRequest, report_service_client::ReportServiceClient,
};
use serde::Serialize;
use sqlx::{Connection as _, Executor, PgConnection};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{Stack, StackOptions, amqp_url, web_app::WebAppPlan};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Seconds each raw measurement and each load step lasts.
    pub seconds: f64,
    /// The first offered load (flows per second); each step multiplies it by `step_factor`.
    pub first_rate: f64,
    pub step_factor: f64,
    pub max_steps: usize,
    /// Steps halving the gap between the last load that held and the first that did not.
    pub refinements: usize,
    /// Social services created across the municipalities, so that searches are not trivial.
    pub services: usize,
    /// Referrals stored for the growth measurement.
    pub history: u64,
    /// Samples per read-latency measurement.
    pub samples: usize,
    /// Seconds the web app's pages are timed (under half the peak load).
    pub web_seconds: f64,
    /// Seconds of load in each run of the cost of observing, and the rounds of its three settings.
    pub telemetry_seconds: f64,
    pub telemetry_rounds: usize,
    /// Seconds searches to five services are offered.
    pub search_seconds: f64,
    pub out_dir: PathBuf,
    /// Names the run's row of headline figures (e.g. a commit).
    pub label: String,
}

impl BenchConfig {
    pub fn full(out_dir: PathBuf) -> Self {
        Self {
            // Long enough that a step's p99 rests on hundreds of flows even at the lowest load.
            seconds: 10.0,
            first_rate: 10.0,
            step_factor: 1.5,
            max_steps: 12,
            refinements: 2,
            services: 400,
            history: 1_000_000,
            samples: 300,
            web_seconds: 30.0,
            telemetry_seconds: 15.0,
            telemetry_rounds: 3,
            search_seconds: 15.0,
            out_dir,
            label: String::new(),
        }
    }

    /// Seconds, a tiny load: for the test suite, so the program never rots.
    pub fn smoke(out_dir: PathBuf) -> Self {
        Self {
            seconds: 0.5,
            first_rate: 4.0,
            step_factor: 2.0,
            max_steps: 2,
            refinements: 0,
            services: 20,
            history: 2_000,
            samples: 10,
            web_seconds: 1.0,
            telemetry_seconds: 0.5,
            telemetry_rounds: 1,
            search_seconds: 0.5,
            out_dir,
            label: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
        }
    }
}

fn histogram() -> Histogram<u64> {
    // Microseconds, up to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram bounds")
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    let _ = h
        .lock()
        .expect("histogram")
        .record((d.as_micros() as u64).max(1));
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct RawFigures {
    pub pg_commits_per_s_1_conn: f64,
    pub pg_commits_per_s_32_conns: f64,
    pub amqp_confirmed_round_trips_per_s_100_in_flight: f64,
    pub amqp_round_trip_1_in_flight: Latency,
    pub grpc_health_checks_per_s: f64,
}

/// How long each call of a flow took.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Calls {
    pub submit: Latency,
    pub acknowledge: Latency,
    pub accept: Latency,
    pub confirm_placement: Latency,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct StepFigures {
    pub offered_flows_per_s: f64,
    pub submissions_per_s: f64,
    pub flows_per_s: f64,
    #[serde(flatten)]
    pub calls: Calls,
    pub commit_to_notification_visible: Latency,
    pub errors: u64,
    pub error_kinds: HashMap<String, u64>,
    pub cpu_seconds_per_flow: HashMap<String, f64>,
    /// The durable work each flow left behind, counted from rows: audited calls (one commit each),
    /// events written to outboxes and events applied by consumers (one commit each).
    pub work_per_flow: Work,
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Work {
    pub audited_calls: f64,
    pub events: f64,
    pub deliveries: f64,
}

impl Work {
    /// Flows per second this machine could do if nothing but this work cost anything, each commit
    /// as much as the raw single-row commit and each applied event as much as the raw confirmed
    /// publish and consume, both measured at full load in the same run: a ceiling for any
    /// implementation that commits every call and every applied event.
    pub fn ceiling(&self, raw: &RawFigures) -> f64 {
        self.ceiling_with_commits(self.audited_calls + self.deliveries, raw)
    }

    /// The same, had consumers applied any number of events in one commit (commits of calls only).
    pub fn ceiling_batched(&self, raw: &RawFigures) -> f64 {
        self.ceiling_with_commits(self.audited_calls, raw)
    }

    fn ceiling_with_commits(&self, commits: f64, raw: &RawFigures) -> f64 {
        let seconds = commits / raw.pg_commits_per_s_32_conns
            + self.deliveries / raw.amqp_confirmed_round_trips_per_s_100_in_flight;
        if seconds > 0.0 { 1.0 / seconds } else { 0.0 }
    }
}

/// (audited calls, outbox events, applied events) so far, over the four schemas.
async fn count_work(db: &mut PgConnection) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM referrals.audit_trail) + (SELECT count(*) FROM cases.audit_trail),
                (SELECT count(*) FROM referrals.outbox) + (SELECT count(*) FROM cases.outbox)
                  + (SELECT count(*) FROM directory.outbox) + (SELECT count(*) FROM notifications.outbox),
                (SELECT count(*) FROM referrals.processed_events) + (SELECT count(*) FROM cases.processed_events)
                  + (SELECT count(*) FROM directory.processed_events)
                  + (SELECT count(*) FROM notifications.processed_events)",
    )
    .fetch_one(db)
    .await
    .expect("count the work")
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ReadFigures {
    pub get_referral: Latency,
    pub list_referrals_busy_agency: Latency,
    pub search_services: Latency,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ProcessFigures {
    pub idle_rss_mib: f64,
    pub peak_rss_mib: f64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub machine: String,
    /// What the run measured (`--label`, e.g. a commit): names its row among the earlier runs'.
    pub label: String,
    pub raw: RawFigures,
    pub steps: Vec<StepFigures>,
    /// The last step that held: errors under 1%, submissions keeping up with the offered load, submit p99 under 50 ms.
    pub peak: Option<StepFigures>,
    pub empty_history: ReadFigures,
    pub stored_referrals: u64,
    pub large_history: ReadFigures,
    /// The web app's pages with the large history stored, under half the peak load.
    pub web_pages: WebFigures,
    /// The reports with the large history in their read model, under half the peak load.
    pub reports: ReportFigures,
    /// A search to five services: time to its first offer and each service's CPU per search.
    pub search: SearchFigures,
    /// The services' CPU per flow with metrics and traces off and on, under half the peak load.
    pub telemetry: Vec<TelemetryRun>,
    /// Each service's CPU and database round trips per flow, under half the peak load, every statement
    /// counted (on a stack of its own: counting costs CPU).
    pub costs: Option<SteadyRun>,
    pub processes: HashMap<String, ProcessFigures>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
                    / 1024.0
                    / 1024.0
            })
        })
        .unwrap_or(0.0);
    format!("{cores} cores ({cpu}), {mem:.0} GiB")
}

/// (utime + stime) seconds and (VmRSS, VmHWM) MiB of a process.
/// The kernel's clock ticks per second (CLK_TCK on Linux), the unit of /proc's CPU times.
const CLOCK_TICKS_PER_S: f64 = 100.0;

fn process_usage(pid: u32) -> (f64, f64, f64) {
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            // After the command: state is field 3; utime and stime are fields 14 and 15.
            Some(
                (rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?)
                    / CLOCK_TICKS_PER_S,
            )
        })
        .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (cpu, kib("VmRSS:"), kib("VmHWM:"))
}

async fn pg_commit_rate(url: &str, connections: usize, seconds: f64) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let url = url.to_string();
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = PgConnection::connect(&url).await.expect("PostgreSQL");
            while Instant::now() < deadline {
                sqlx::query("INSERT INTO public.bench_commits (payload) VALUES ($1)")
                    .bind("a row the size of a small event")
                    .execute(&mut conn)
                    .await
                    .expect("insert");
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        t.await.expect("pg task");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64().max(seconds)
}

async fn amqp_figures(seconds: f64, samples: usize) -> (f64, Latency) {
    let bench = AmqpBench::open().await;
    let rate = bench.confirmed_rate(seconds).await;
    bench.round_trips(samples).await;
    let latency = Latency::of(&bench.rtt.lock().expect("rtt"));
    bench.close().await;
    (rate, latency)
}

/// A quorum queue of the benchmark's own, a confirming publisher and a consumer that counts what it
/// receives and times the messages it was told of.
struct AmqpBench {
    conn: Connection,
    publisher: lapin::Channel,
    queue: String,
    in_flight: Arc<Semaphore>,
    received: Arc<AtomicU64>,
    sent_at: Arc<Mutex<HashMap<u64, Instant>>>,
    rtt: Arc<Mutex<Histogram<u64>>>,
}

/// A 300-byte message numbered `n`.
fn message(n: u64) -> Vec<u8> {
    let mut b = n.to_le_bytes().to_vec();
    b.resize(300, 0);
    b
}

fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

impl AmqpBench {
    async fn open() -> AmqpBench {
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
            .await
            .expect("RabbitMQ");
        let publisher = conn.create_channel().await.expect("channel");
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let queue = format!("bench.{}", Uuid::new_v4().simple());
        let mut args = FieldTable::default();
        args.insert(
            ShortString::from("x-queue-type"),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        publisher
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                args,
            )
            .await
            .expect("quorum queue");
        let bench = AmqpBench {
            conn,
            publisher,
            queue,
            in_flight: Arc::new(Semaphore::new(100)),
            received: Arc::new(AtomicU64::new(0)),
            sent_at: Arc::default(),
            rtt: Arc::new(Mutex::new(histogram())),
        };
        bench.consume().await;
        bench
    }

    /// Acknowledges every message, timing those `sent_at` names and freeing a place in flight for each.
    async fn consume(&self) {
        let consumer_ch = self.conn.create_channel().await.expect("channel");
        consumer_ch
            .basic_qos(200, BasicQosOptions::default())
            .await
            .expect("qos");
        let mut consumer = consumer_ch
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let (in_flight, received, sent_at, rtt) = (
            self.in_flight.clone(),
            self.received.clone(),
            self.sent_at.clone(),
            self.rtt.clone(),
        );
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let _ = d.ack(BasicAckOptions::default()).await;
                let n = u64::from_le_bytes(d.data[..8].try_into().unwrap_or([0; 8]));
                if let Some(at) = sent_at.lock().expect("sent").remove(&n) {
                    record(&rtt, at.elapsed());
                }
                received.fetch_add(1, Ordering::Relaxed);
                in_flight.add_permits(1);
            }
        });
    }

    /// Rate, 100 messages in flight between publish and consumption.
    async fn confirmed_rate(&self, seconds: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let started = Instant::now();
        let mut n = 0u64;
        let mut confirms = futures::stream::FuturesUnordered::new();
        while Instant::now() < deadline {
            self.in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("permit")
                .forget();
            n += 1;
            let confirm = self
                .publisher
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &message(u64::MAX - n),
                    persistent(),
                )
                .await
                .expect("publish");
            confirms.push(confirm);
            while let Some(Some(c)) = futures::FutureExt::now_or_never(confirms.next()) {
                c.expect("confirm");
            }
        }
        while let Some(c) = confirms.next().await {
            c.expect("confirm");
        }
        while self.received.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        n as f64 / started.elapsed().as_secs_f64()
    }

    /// Round trip, one message in flight: publish (confirmed) to delivery.
    async fn round_trips(&self, samples: usize) {
        for i in 0..samples as u64 {
            let before = self.received.load(Ordering::Relaxed);
            self.sent_at.lock().expect("sent").insert(i, Instant::now());
            self.publisher
                .basic_publish(
                    "".into(),
                    self.queue.as_str().into(),
                    BasicPublishOptions::default(),
                    &message(i),
                    persistent(),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            while self.received.load(Ordering::Relaxed) == before {
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
        }
    }

    async fn close(self) {
        let _ = self
            .publisher
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await;
        let _ = self.conn.close(200, "bench done".into()).await;
    }
}

async fn grpc_health_rate(url: &str, seconds: f64) -> f64 {
    let channel = placement_cli::clients::channel(url).expect("url");
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let mut client = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let count = count.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    client
                        .check(tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .expect("health");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

const SENDERS: [&str; 8] = [
    "dsa-pirdop",
    "dsa-pravets",
    "dsa-dragoman",
    "dsa-zlatitsa",
    "dsa-vratsa",
    "dsa-mezdra",
    "dsa-stara-zagora",
    "dsa-haskovo",
];

/// Services the load is spread over, each with its provider; the foster-care team of their district.
struct Targets {
    services: Vec<(Uuid, Uuid)>,
    foster: Uuid,
}

async fn create_directory(clients: &Clients, demo: &DemoDirectory, n: usize) -> Targets {
    let municipalities = clients
        .directory
        .clone()
        .list_municipalities(as_agency(
            NATIONAL_AUTHORITY,
            ListMunicipalitiesRequest::default(),
        ))
        .await
        .expect("municipalities")
        .into_inner()
        .municipalities;
    let providers = ["provider-vratsa", "provider-mezdra"];
    let mut services = Vec::new();
    for i in 0..n {
        // Services all over the country; the ones the load uses are in Vratsa district.
        let (municipality, provider, capacity) = if i % 10 == 0 {
            ("VRC10".to_string(), demo.agency(providers[i % 2]), 1000)
        } else {
            (
                municipalities[i % municipalities.len()].code.clone(),
                demo.agency(providers[i % 2]),
                12,
            )
        };
        let mut directory = clients.directory.clone();
        let result = directory
            .create_service(as_agency(
                NATIONAL_AUTHORITY,
                CreateServiceRequest {
                    provider_agency_id: provider.to_string(),
                    r#type: if i % 3 == 0 {
                        ServiceType::CrisisCentre
                    } else {
                        ServiceType::FamilyTypePlacementCentre
                    } as i32,
                    name: format!("Bench service {i}"),
                    municipality_code: municipality.clone(),
                    capacity,
                    occupied_places: (i % 7) as u32,
                    min_age: 0,
                    max_age: 17,
                    name_en: String::new(),
                },
            ))
            .await
            .expect("CreateService")
            .into_inner();
        if capacity == 1000 {
            services.push((Uuid::parse_str(&result.id).expect("id"), provider));
        }
    }
    Targets {
        services,
        foster: demo.agency("foster-vratsa"),
    }
}

async fn open_cases(clients: &Clients, demo: &DemoDirectory, n: usize) -> Vec<(Uuid, String)> {
    let year = chrono::Utc::now().year();
    futures::stream::iter(0..n)
        .map(|i| {
            let mut cases = clients.cases.clone();
            let sender = demo.agency(SENDERS[i % SENDERS.len()]);
            async move {
                let c = cases
                    .open_case(as_agency(
                        sender,
                        OpenCaseRequest {
                            children: vec![Child {
                                pseudonym: format!("B{i}"),
                                birth_year: year - 9,
                                sex: Sex::Female as i32,
                                ..Default::default()
                            }],
                            current_setting: String::new(),
                        },
                    ))
                    .await
                    .expect("OpenCase")
                    .into_inner();
                (sender, c.id)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

struct Step {
    submit: Mutex<Histogram<u64>>,
    ack: Mutex<Histogram<u64>>,
    accept: Mutex<Histogram<u64>>,
    confirm: Mutex<Histogram<u64>>,
    submitted_at: Mutex<HashMap<String, Instant>>,
    errors: AtomicU64,
    error_kinds: Mutex<HashMap<String, u64>>,
    submits_in_window: AtomicU64,
    flows: AtomicU64,
}

impl Step {
    fn failed(&self, what: &str, status: &tonic::Status) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let key = format!(
            "{what}: {:?} {}",
            status.code(),
            status.message().chars().take(60).collect::<String>()
        );
        *self
            .error_kinds
            .lock()
            .expect("errors")
            .entry(key)
            .or_insert(0) += 1;
    }

    fn calls(&self) -> Calls {
        let of = |h: &Mutex<Histogram<u64>>| Latency::of(&h.lock().expect("histogram"));
        Calls {
            submit: of(&self.submit),
            acknowledge: of(&self.ack),
            accept: of(&self.accept),
            confirm_placement: of(&self.confirm),
        }
    }

    fn new() -> Self {
        Self {
            submit: Mutex::new(histogram()),
            ack: Mutex::new(histogram()),
            accept: Mutex::new(histogram()),
            confirm: Mutex::new(histogram()),
            submitted_at: Mutex::default(),
            errors: AtomicU64::new(0),
            error_kinds: Mutex::default(),
            submits_in_window: AtomicU64::new(0),
            flows: AtomicU64::new(0),
        }
    }
}

/// A referral of `case_id` to `service` on a DSA director's order of yesterday.
fn submission(case_id: String, service: Uuid) -> SubmitReferralRequest {
    let d = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    SubmitReferralRequest {
        case_id,
        service_id: service.to_string(),
        legal_basis: Some(LegalBasis {
            kind: LegalBasisKind::DsaDirectorOrder as i32,
            number: "ZD-1".into(),
            issued_on: Some(Date {
                year: d.year(),
                month: d.month() as i32,
                day: d.day() as i32,
            }),
            court: String::new(),
        }),
        reason: "Benchmark".into(),
        idempotency_key: Uuid::new_v4().to_string(),
        ..Default::default()
    }
}

#[allow(clippy::too_many_arguments)]
async fn flow(
    clients: Clients,
    step: Arc<Step>,
    scheduled: Instant,
    window_end: Instant,
    sender: Uuid,
    case_id: String,
    service: (Uuid, Uuid),
    foster: Uuid,
) {
    let mut referrals = clients.referrals.clone();
    let submitted = referrals
        .submit_referral(as_agency(sender, submission(case_id, service.0)))
        .await;
    let now = Instant::now();
    // Open loop: latency counts from when the request was due, so a slow system cannot hide it.
    record(&step.submit, now - scheduled);
    let r = match submitted {
        Ok(r) => r,
        Err(e) => return step.failed("submit", &e),
    };
    if now <= window_end {
        step.submits_in_window.fetch_add(1, Ordering::Relaxed);
    }
    let id = r.into_inner().id;
    step.submitted_at
        .lock()
        .expect("map")
        .insert(id.clone(), now);
    for party in [service.1, foster] {
        let t = Instant::now();
        let r = referrals
            .acknowledge_referral(as_agency(
                party,
                AcknowledgeReferralRequest {
                    referral_id: id.clone(),
                },
            ))
            .await;
        record(&step.ack, t.elapsed());
        if let Err(e) = r {
            return step.failed("acknowledge", &e);
        }
    }
    let t = Instant::now();
    let r = referrals
        .accept_referral(as_agency(
            service.1,
            AcceptReferralRequest {
                referral_id: id.clone(),
            },
        ))
        .await;
    record(&step.accept, t.elapsed());
    if let Err(e) = r {
        return step.failed("accept", &e);
    }
    let t = Instant::now();
    let r = referrals
        .confirm_placement(as_agency(
            sender,
            ConfirmPlacementRequest {
                referral_id: id,
                ..Default::default()
            },
        ))
        .await;
    record(&step.confirm, t.elapsed());
    match r {
        Ok(_) => {
            step.flows.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => step.failed("confirm", &e),
    }
}

/// Offers `cases` as flows at `rate` per second from now (for `seconds`), spread over the targets;
/// returns when every flow has ended, with how long that took.
async fn offer(
    clients: Clients,
    targets: Arc<Targets>,
    cases: Vec<(Uuid, String)>,
    rate: f64,
    seconds: f64,
) -> (Arc<Step>, f64) {
    let step = Arc::new(Step::new());
    let started = Instant::now();
    let window_end = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::with_capacity(cases.len());
    for (k, (sender, case_id)) in cases.into_iter().enumerate() {
        let scheduled = started + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(scheduled.into()).await;
        let service = targets.services[k % targets.services.len()];
        tasks.push(tokio::spawn(flow(
            clients.clone(),
            step.clone(),
            scheduled,
            window_end,
            sender,
            case_id,
            service,
            targets.foster,
        )));
    }
    for t in tasks {
        let _ = t.await;
    }
    (step, started.elapsed().as_secs_f64())
}

async fn read_latencies(
    clients: &Clients,
    busy: Uuid,
    referral: &str,
    samples: usize,
) -> ReadFigures {
    let (get, list, search) = (histogram(), histogram(), histogram());
    let (get, list, search) = (Mutex::new(get), Mutex::new(list), Mutex::new(search));
    let mut referrals = clients.referrals.clone();
    let mut directory = clients.directory.clone();
    for _ in 0..samples {
        let t = Instant::now();
        referrals
            .get_referral(as_agency(
                busy,
                GetReferralRequest {
                    referral_id: referral.into(),
                },
            ))
            .await
            .expect("GetReferral");
        record(&get, t.elapsed());
        let t = Instant::now();
        referrals
            .list_referrals(as_agency(
                busy,
                ListReferralsRequest {
                    direction: ReferralDirection::Outgoing as i32,
                    status: 0,
                    page: Some(PageRequest {
                        page_size: 50,
                        page_token: String::new(),
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("ListReferrals");
        record(&list, t.elapsed());
        let t = Instant::now();
        directory
            .search_services(as_agency(
                busy,
                SearchServicesRequest {
                    exclude_region_code: "SFO".into(),
                    service_type: ServiceType::FamilyTypePlacementCentre as i32,
                    min_free_places: 2,
                    child_age: Some(9),
                    ..Default::default()
                },
            ))
            .await
            .expect("SearchServices");
        record(&search, t.elapsed());
    }
    let f = |h: Mutex<Histogram<u64>>| Latency::of(&h.into_inner().expect("histogram"));
    ReadFigures {
        get_referral: f(get),
        list_referrals_busy_agency: f(list),
        search_services: f(search),
    }
}

/// Stores `n` referrals straight into the referrals service's tables, and a notification of each into the
/// notifications service's (a loader, not the API: what is measured is reading with a long history, not
/// writing it). They name the real agencies and services, so pages show them as they would; a fifth are the
/// busy agency's. The notifications are older than any made through the API (negative inbox positions).
async fn load_history(database_url: &str, busy: Uuid, parties: &HistoryParties, n: u64) {
    let mut db = PgConnection::connect(database_url).await.expect("database");
    db.execute("SET synchronous_commit = off")
        .await
        .expect("set");
    // The trigger numbering each agency's inbox would update one row per insert; the loader numbers them.
    db.execute("ALTER TABLE notifications.notifications DISABLE TRIGGER notifications_position")
        .await
        .expect("disable the inbox numbering");
    let batch = 200_000u64;
    let mut done = 0;
    while done < n {
        let m = batch.min(n - done);
        let (first, last) = (done as i64 + 1, (done + m) as i64);
        sqlx::query(HISTORY_REFERRALS)
            .bind(busy)
            .bind(first)
            .bind(last)
            .bind(&parties.senders)
            .bind(&parties.services)
            .bind(&parties.providers)
            .bind(parties.foster)
            .execute(&mut db)
            .await
            .expect("load referrals");
        sqlx::query(HISTORY_NOTIFICATIONS)
            .bind(busy)
            .bind(first)
            .bind(last)
            .bind(&parties.providers)
            .execute(&mut db)
            .await
            .expect("load notifications");
        done += m;
    }
    db.execute("ALTER TABLE notifications.notifications ENABLE TRIGGER notifications_position")
        .await
        .expect("enable the inbox numbering");
    db.execute("ANALYZE referrals.referrals")
        .await
        .expect("analyze");
    db.execute("ANALYZE notifications.notifications")
        .await
        .expect("analyze");
}

/// Who the stored history names: senders besides the busy agency, services with their providers.
struct HistoryParties {
    senders: Vec<Uuid>,
    services: Vec<Uuid>,
    providers: Vec<Uuid>,
    foster: Uuid,
}

impl HistoryParties {
    fn of(demo: &DemoDirectory, targets: &Targets) -> Self {
        Self {
            senders: SENDERS[1..].iter().map(|k| demo.agency(k)).collect(),
            services: targets.services.iter().map(|s| s.0).collect(),
            providers: targets.services.iter().map(|s| s.1).collect(),
            foster: targets.foster,
        }
    }
}

// $1 the busy agency, $2..$3 the numbers, $4 senders, $5 services, $6 their providers, $7 foster-care team.
const HISTORY_REFERRALS: &str = "INSERT INTO referrals.referrals (id, case_id, sender_agency_id,
         sender_region_code, service_id, receiving_agency_id, receiving_region_code, foster_team_agency_id,
         places, legal_basis_kind, legal_basis_number, legal_basis_date, reason, status, ack_deadline,
         idempotency_key, created_at, updated_at, hold_applied, court_decision_number, court_decision_date,
         court_decision_court, reference)
     SELECT md5('history-' || g)::uuid, gen_random_uuid(),
         CASE WHEN g % 5 = 0 THEN $1 ELSE ($4::uuid[])[1 + g % cardinality($4::uuid[])] END, 'SFO',
         ($5::uuid[])[1 + g % cardinality($5::uuid[])], ($6::uuid[])[1 + g % cardinality($6::uuid[])],
         'VRC', $7, 1, 'LEGAL_BASIS_KIND_DSA_DIRECTOR_ORDER', 'ZD-' || g, DATE '2024-01-01', 'history',
         'REFERRAL_STATUS_PLACED', now(), 'history-' || g,
         now() - (g || ' seconds')::interval - interval '1 hour', now(), true,
         'GD-' || g, DATE '2024-02-01', 'District Court',
         -- A year the live referrals of the run never number in, so the loaded history takes no number
         -- the service's own counter will hand out. Five digits at least, as the service writes them
         -- (lpad alone would cut the longer ones short, and numbers 10000 and 100000 would be one).
         'Н-СФО-2000-' || lpad(g::text, greatest(5, length(g::text)), '0')
     FROM generate_series($2::bigint, $3::bigint) g";

// $1 the busy agency (told of its referrals), $2..$3 the numbers, $4 the providers (told of the others).
const HISTORY_NOTIFICATIONS: &str = "INSERT INTO notifications.notifications (id, sequence,
         recipient_agency_id, kind, referral_id, event_id, title, body, created_at, read_at, position)
     SELECT gen_random_uuid(), -g,
         CASE WHEN g % 5 = 0 THEN $1 ELSE ($4::uuid[])[1 + g % cardinality($4::uuid[])] END,
         'NOTIFICATION_KIND_REFERRAL_PLACED', md5('history-' || g)::uuid, gen_random_uuid(),
         'Placement confirmed', 'history', now() - (g || ' seconds')::interval - interval '1 hour',
         now() - (g || ' seconds')::interval, -g
     FROM generate_series($2::bigint, $3::bigint) g";

pub async fn run(config: BenchConfig) -> Report {
    let mut report = Report {
        machine: machine(),
        label: config.label.clone(),
        ..Default::default()
    };
    let mut options = bench_stack_options();
    let plan = WebAppPlan::prepare(&mut options).await;
    let mut stack = Stack::start(options).await;
    let clients = stack.clients();
    let demo = demo::seed(&clients).await.expect("demo data");
    let web_app = plan.start(&mut stack, &demo).await;
    // Every process, the web app's included, for memory; the services alone do the flow's work.
    let pids: Vec<(String, u32)> = stack.pids();
    note_idle_memory(&mut report, &pids);
    // 1. The raw parts of the machine.
    report.raw = raw_figures(&stack, &config).await;

    // 2. The flow at a constant arrival rate, stepped up.
    let targets = Arc::new(create_directory(&clients, &demo, config.services).await);
    let busy = demo.agency("dsa-pirdop");
    let empty_probe = probe_flow(&clients, &demo, &targets).await;
    let stepping = Stepping {
        config: &config,
        clients: &clients,
        demo: &demo,
        targets: targets.clone(),
        services: (pids.iter())
            .filter(|(name, _)| name != placement_platform::services::WEB.name)
            .cloned()
            .collect(),
        visible: watch_submissions(&clients, &targets).await,
    };
    stepping.step_up(&mut report, &mut stack.db().await).await;

    // 3. Growth: the same reads with only the steps' referrals stored, then with a long history.
    report.empty_history =
        read_latencies(&clients, empty_probe.0, &empty_probe.1, config.samples).await;
    let parties = HistoryParties::of(&demo, &targets);
    load_history(&stack.database_url, busy, &parties, config.history).await;
    report.stored_referrals = config.history;
    report.large_history =
        read_latencies(&clients, empty_probe.0, &empty_probe.1, config.samples).await;

    // 4. The web app's pages, as the busy agency's caseworker opens them, under half the peak load.
    let half = report
        .peak
        .as_ref()
        .map_or(config.first_rate, |p| p.offered_flows_per_s)
        / 2.0;
    report.web_pages = stepping
        .time_web_pages(&web_app, &empty_probe.1, half)
        .await;
    report.reports = time_reports(&stack, &clients, &demo, &targets, half, &config).await;
    // As many requests a second as half the peak's flows: each search is five.
    let search_rate = half / search::SERVICES as f64;
    report.search = stepping
        .time_searches(search_rate, config.search_seconds, &mut stack.db().await)
        .await;

    note_peak_memory(&mut report, &pids);
    stack.stop_all();
    measure_alone(&config, &mut report, half).await;
    write_outputs(&config, &report);
    report
}

/// 5. What needs a stack of its own: the telemetry's cost, and the steady load's CPU and statements.
async fn measure_alone(config: &BenchConfig, report: &mut Report, half: f64) {
    report.telemetry =
        telemetry::measure(half, config.telemetry_seconds, config.telemetry_rounds).await;
    std::fs::create_dir_all(&config.out_dir).expect("output folder");
    report.costs = Some(
        steady::run(
            half,
            config.telemetry_seconds,
            true,
            &config.out_dir.join("pids.txt"),
        )
        .await,
    );
}

/// Each process's memory before any load.
fn note_idle_memory(report: &mut Report, pids: &[(String, u32)]) {
    for (name, pid) in pids {
        let (_, rss, _) = process_usage(*pid);
        report.processes.insert(
            name.clone(),
            ProcessFigures {
                idle_rss_mib: rss,
                ..Default::default()
            },
        );
    }
}

/// Each process's highest memory over the run.
fn note_peak_memory(report: &mut Report, pids: &[(String, u32)]) {
    for (name, pid) in pids {
        let (_, _, peak) = process_usage(*pid);
        if let Some(p) = report.processes.get_mut(name) {
            p.peak_rss_mib = peak;
        }
    }
}

/// The raw parts (the benchmark's first part), with the durability the services use: synchronous
/// commit, persistent confirmed messages.
async fn raw_figures(stack: &Stack, config: &BenchConfig) -> RawFigures {
    {
        let mut db = stack.db().await;
        db.execute("CREATE TABLE public.bench_commits (id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL DEFAULT now(), payload TEXT)")
            .await
            .expect("bench table");
    }
    let mut raw = RawFigures {
        pg_commits_per_s_1_conn: pg_commit_rate(&stack.database_url, 1, config.seconds).await,
        pg_commits_per_s_32_conns: pg_commit_rate(&stack.database_url, 32, config.seconds).await,
        ..Default::default()
    };
    // The latency target is five times this p99: enough round trips that the p99 is not a handful of samples.
    let (rate, rtt) = amqp_figures(config.seconds, config.samples.max(20) * 10).await;
    raw.amqp_confirmed_round_trips_per_s_100_in_flight = rate;
    raw.amqp_round_trip_1_in_flight = rtt;
    raw.grpc_health_checks_per_s = grpc_health_rate(
        stack.endpoints.url(placement_platform::services::REFERRALS),
        config.seconds,
    )
    .await;
    raw
}

/// One flow before any load: (its sender, its referral), what the reads are timed on.
async fn probe_flow(clients: &Clients, demo: &DemoDirectory, targets: &Targets) -> (Uuid, String) {
    let case = open_cases(clients, demo, 1).await.remove(0);
    let step = Arc::new(Step::new());
    flow(
        clients.clone(),
        step.clone(),
        Instant::now(),
        Instant::now(),
        case.0,
        case.1,
        targets.services[0],
        targets.foster,
    )
    .await;
    let id = step
        .submitted_at
        .lock()
        .expect("map")
        .keys()
        .next()
        .cloned()
        .expect("a probe referral");
    (case.0, id)
}

/// When each submission became visible to its recipient.
type Visible = Arc<Mutex<HashMap<String, Instant>>>;

/// Every receiving provider watches its inbox: when did each submission become visible to it?
async fn watch_submissions(clients: &Clients, targets: &Targets) -> Visible {
    let visible: Visible = Arc::default();
    let mut watched: Vec<Uuid> = targets.services.iter().map(|s| s.1).collect();
    watched.sort();
    watched.dedup();
    for provider in watched {
        let mut stream = clients
            .notifications
            .clone()
            .watch_notifications(as_agency(
                provider,
                WatchNotificationsRequest {
                    after_sequence: 0,
                    ..Default::default()
                },
            ))
            .await
            .expect("watch")
            .into_inner();
        let visible = visible.clone();
        tokio::spawn(async move {
            while let Some(Ok(n)) = stream.next().await {
                if n.kind == NotificationKind::ReferralSubmitted as i32 {
                    visible
                        .lock()
                        .expect("visible")
                        .insert(n.referral_id, Instant::now());
                }
            }
        });
    }
    visible
}

/// What the load is offered with and measured on, step after step.
struct Stepping<'a> {
    config: &'a BenchConfig,
    clients: &'a Clients,
    demo: &'a DemoDirectory,
    targets: Arc<Targets>,
    /// The services' processes (not the web app's): they do the flow's work.
    services: Vec<(String, u32)>,
    visible: Visible,
}

/// The services' CPU seconds, each, and the durable work counted so far.
struct Usage {
    cpu: Vec<f64>,
    work: (i64, i64, i64),
}

/// One step's load as it ran: the flows, how long they took, and what they cost.
struct Measured {
    step: Arc<Step>,
    elapsed: f64,
    visible_after: Histogram<u64>,
    before: Usage,
    after: Usage,
}

impl Stepping<'_> {
    /// Steps the offered rate up until a load breaks, then refines between the last that held and the
    /// first that did not; records each step and the peak that held.
    async fn step_up(&self, report: &mut Report, db: &mut PgConnection) {
        let config = self.config;
        let mut rate = config.first_rate;
        let (mut held_at, mut broke_at, mut refined) = (None::<f64>, None::<f64>, 0);
        for step_number in 1..=config.max_steps + config.refinements {
            let arrivals = (rate * config.seconds).ceil() as usize;
            let figures = self.step(rate, arrivals, db).await;
            let held = figures.errors as f64 <= 0.01 * arrivals as f64
                && figures.submissions_per_s >= 0.9 * rate
                && figures.calls.submit.p99_ms <= 50.0;
            report.steps.push(figures.clone());
            if held {
                if held_at.is_none_or(|r| rate > r) {
                    report.peak = Some(figures);
                    held_at = Some(rate);
                }
            } else {
                broke_at = Some(broke_at.map_or(rate, |r: f64| r.min(rate)));
            }
            // Up by `step_factor` until a load breaks, then halve the gap between the last that held and
            // the first that did not, so the peak is not just the step below.
            rate = match (held_at, broke_at) {
                (_, None) if step_number < config.max_steps => rate * config.step_factor,
                (Some(low), Some(high)) if refined < config.refinements => {
                    refined += 1;
                    (low + high) / 2.0
                }
                _ => break,
            };
        }
        report
            .steps
            .sort_by(|a, b| a.offered_flows_per_s.total_cmp(&b.offered_flows_per_s));
    }

    /// Offers `arrivals` flows at `rate` and measures them.
    async fn step(&self, rate: f64, arrivals: usize, db: &mut PgConnection) -> StepFigures {
        let seconds = self.config.seconds;
        let cases = open_cases(self.clients, self.demo, arrivals).await;
        let cpu_before = self.cpu();
        let work_before = count_work(db).await;
        eprintln!("offering {rate:.1} flows/s for {seconds} s");
        let (step, elapsed) = offer(
            self.clients.clone(),
            self.targets.clone(),
            cases,
            rate,
            seconds,
        )
        .await;
        eprintln!("step done in {elapsed:.1} s");
        let cpu_after = self.cpu();
        let submitted: HashMap<String, Instant> = step.submitted_at.lock().expect("map").clone();
        self.wait_until_visible(&submitted).await;
        let work_after = settled_work(db).await;
        let measured = Measured {
            visible_after: self.visibility(&submitted),
            step,
            elapsed,
            before: Usage {
                cpu: cpu_before,
                work: work_before,
            },
            after: Usage {
                cpu: cpu_after,
                work: work_after,
            },
        };
        self.figures(rate, &measured)
    }

    fn cpu(&self) -> Vec<f64> {
        (self.services.iter())
            .map(|(_, pid)| process_usage(*pid).0)
            .collect()
    }

    /// Visibility of the step's submissions (wait a little for the last ones).
    async fn wait_until_visible(&self, submitted: &HashMap<String, Instant>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline
            && submitted
                .keys()
                .any(|id| !self.visible.lock().expect("visible").contains_key(id))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// From each submission's commit to its recipient seeing it.
    fn visibility(&self, submitted: &HashMap<String, Instant>) -> Histogram<u64> {
        let mut notif = histogram();
        let seen = self.visible.lock().expect("visible");
        for (id, at) in submitted {
            if let Some(v) = seen.get(id) {
                let _ = notif.record((v.saturating_duration_since(*at).as_micros() as u64).max(1));
            }
        }
        notif
    }

    fn figures(&self, rate: f64, m: &Measured) -> StepFigures {
        let step = &m.step;
        let flows = step.flows.load(Ordering::Relaxed);
        let per_flow = |after: i64, before: i64| (after - before) as f64 / flows.max(1) as f64;
        let (after, before) = (m.after.work, m.before.work);
        StepFigures {
            offered_flows_per_s: rate,
            submissions_per_s: step.submits_in_window.load(Ordering::Relaxed) as f64
                / self.config.seconds,
            flows_per_s: flows as f64 / m.elapsed,
            calls: step.calls(),
            commit_to_notification_visible: Latency::of(&m.visible_after),
            errors: step.errors.load(Ordering::Relaxed),
            error_kinds: step.error_kinds.lock().expect("errors").clone(),
            work_per_flow: Work {
                audited_calls: per_flow(after.0, before.0),
                events: per_flow(after.1, before.1),
                deliveries: per_flow(after.2, before.2),
            },
            cpu_seconds_per_flow: (self.services.iter().enumerate())
                .map(|(i, (name, _))| {
                    let used = m.after.cpu[i] - m.before.cpu[i];
                    (name.clone(), used / flows.max(1) as f64)
                })
                .collect(),
        }
    }

    /// The web app's pages, as the busy agency's caseworker opens them, under `half` the peak load.
    async fn time_web_pages(
        &self,
        web_app: &crate::web_app::WebApp,
        referral: &str,
        half: f64,
    ) -> WebFigures {
        let config = self.config;
        let cases = open_cases(
            self.clients,
            self.demo,
            (half * config.web_seconds).ceil() as usize,
        )
        .await;
        let cookie = web::session_cookie(web_app, "pirdop-caseworker").await;
        eprintln!("timing the web app's pages under {half:.1} flows/s");
        let background = tokio::spawn(offer(
            self.clients.clone(),
            self.targets.clone(),
            cases,
            half,
            config.web_seconds,
        ));
        let until = Instant::now() + Duration::from_secs_f64(config.web_seconds);
        let (inbox, referral_list, referral_page, failed_pages) =
            web::time_pages(web_app, &cookie, referral, until, config.samples / 10).await;
        let (load, elapsed) = background.await.expect("the background load");
        WebFigures {
            inbox,
            referral_list,
            referral_page,
            failed_pages,
            background_offered_flows_per_s: half,
            background_flows_per_s: load.flows.load(Ordering::Relaxed) as f64 / elapsed,
            background_errors: load.errors.load(Ordering::Relaxed),
        }
    }
}

/// The work counted once the step's remaining events are applied: when the counts stop moving.
async fn settled_work(db: &mut PgConnection) -> (i64, i64, i64) {
    let mut work_after = count_work(db).await;
    let settle_deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = count_work(db).await;
        if now == work_after {
            break;
        }
        work_after = now;
    }
    work_after
}

/// The cost of observing alone, at `first_rate` flows/s.
pub async fn telemetry_only(config: &BenchConfig) -> Vec<TelemetryRun> {
    telemetry::measure(
        config.first_rate,
        config.telemetry_seconds,
        config.telemetry_rounds,
    )
    .await
}

pub fn telemetry_table(runs: &[TelemetryRun]) -> String {
    telemetry::table(runs)
}

/// One constant load alone, on a fresh stack, each service's cost per flow (`--steady`): for profiling.
pub async fn steady_only(config: &BenchConfig, count_statements: bool) -> SteadyRun {
    std::fs::create_dir_all(&config.out_dir).expect("output folder");
    let pids = config.out_dir.join("pids.txt");
    steady::run(config.first_rate, config.seconds, count_statements, &pids).await
}

pub fn steady_table(run: &SteadyRun) -> String {
    steady::table(run)
}

/// The reports alone (`--reports-only`): a fresh stack, the long history in their read model, the district
/// report and its export timed under `first_rate` flows/s, as step 5 of the full run does under half its peak.
pub async fn reports_only(config: &BenchConfig) -> String {
    let mut stack = Stack::start(bench_stack_options()).await;
    let clients = stack.clients();
    let demo = demo::seed(&clients).await.expect("demo data");
    let targets = Arc::new(create_directory(&clients, &demo, config.services).await);
    let rate = config.first_rate;
    let figures = time_reports(&stack, &clients, &demo, &targets, rate, config).await;
    stack.stop_all();
    reports_table(&figures, rate)
}

/// The services' default pool, not the tests' smaller one: the benchmark runs alone.
fn bench_stack_options() -> StackOptions {
    StackOptions {
        env: vec![("PLACEMENT_DATABASE_MAX_CONNECTIONS".into(), "10".into())],
        ..Default::default()
    }
}

/// Step 5, the reports: the long history in their read model, the district report and its export timed
/// under half the peak flow, and the read model's lag behind the background flows' steps.
async fn time_reports(
    stack: &Stack,
    clients: &Clients,
    demo: &DemoDirectory,
    targets: &Arc<Targets>,
    rate: f64,
    config: &BenchConfig,
) -> ReportFigures {
    let regions: Vec<String> = (clients.directory.clone())
        .list_regions(as_agency(
            NATIONAL_AUTHORITY,
            placement_proto::v1::ListRegionsRequest {},
        ))
        .await
        .expect("regions")
        .into_inner()
        .regions
        .into_iter()
        .map(|r| r.code)
        .collect();
    reports::load_history(&stack.database_url, &regions, config.history).await;
    let seconds = config.web_seconds / 2.0;
    let cases = open_cases(clients, demo, (rate * seconds).ceil() as usize).await;
    eprintln!("timing the reports under {rate:.1} flows/s");
    let since = chrono::Utc::now();
    let background = tokio::spawn(offer(
        clients.clone(),
        targets.clone(),
        cases,
        rate,
        seconds,
    ));
    let channel =
        placement_cli::clients::channel(stack.endpoints.url(placement_platform::services::REPORTS))
            .expect("channel");
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let (district_30_days, district_365_days, export_xlsx_30_days, failed_calls) =
        reports::time_reports(
            ReportServiceClient::new(channel),
            until,
            config.samples / 10,
        )
        .await;
    let (load, _) = background.await.expect("the background load");
    // Five steps a flow: submitted, two acknowledgements, accepted, placed.
    let steps = 5 * load.flows.load(Ordering::Relaxed) as i64;
    reports::settle(&stack.database_url, since, steps).await;
    ReportFigures {
        stored_referrals: config.history,
        district_30_days,
        district_365_days,
        export_xlsx_30_days,
        read_model_lag: reports::read_model_lag(&stack.database_url, since).await,
        failed_calls,
    }
}

fn write_outputs(config: &BenchConfig, report: &Report) {
    std::fs::create_dir_all(&config.out_dir).expect("output folder");
    std::fs::write(
        config.out_dir.join("bench.json"),
        serde_json::to_string_pretty(report).expect("json"),
    )
    .expect("write json");
    std::fs::write(config.out_dir.join("latency.svg"), svg(report)).expect("write svg");
}

/// Submit p50 and p99 against offered load, on log-scaled axes.
fn svg(report: &Report) -> String {
    let xs: Vec<f64> = report
        .steps
        .iter()
        .map(|s| s.offered_flows_per_s.max(0.1).log10())
        .collect();
    let series = [
        (
            "p50",
            "#1f77b4",
            report
                .steps
                .iter()
                .map(|s| s.calls.submit.p50_ms)
                .collect::<Vec<_>>(),
        ),
        (
            "p99",
            "#d62728",
            report.steps.iter().map(|s| s.calls.submit.p99_ms).collect(),
        ),
    ];
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.2.iter().map(|v| v.max(0.1).log10()))
        .collect();
    let plot = Plot {
        w: 720.0,
        h: 420.0,
        pad: 60.0,
        x: (
            xs.iter().cloned().fold(f64::MAX, f64::min),
            xs.iter().cloned().fold(f64::MIN, f64::max),
        ),
        y: (
            ys.iter().cloned().fold(f64::MAX, f64::min).min(0.0),
            ys.iter().cloned().fold(f64::MIN, f64::max).max(2.0),
        ),
    };
    let mut out = plot.frame();
    out += &plot.ticks(report, &xs);
    for (k, (name, colour, values)) in series.iter().enumerate() {
        out += &plot.line(k, name, colour, values, &xs);
    }
    out + "</svg>\n"
}

/// The latency chart's size, margin and ranges (log10 of flows/s across, of milliseconds up).
struct Plot {
    w: f64,
    h: f64,
    pad: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Plot {
    fn sx(&self, x: f64) -> f64 {
        let (x0, x1) = self.x;
        self.pad + (x - x0) / (x1 - x0).max(1e-9) * (self.w - 2.0 * self.pad)
    }

    fn sy(&self, y: f64) -> f64 {
        let (y0, y1) = self.y;
        self.h - self.pad - (y - y0) / (y1 - y0).max(1e-9) * (self.h - 2.0 * self.pad)
    }

    /// The opening tag, the title, the axes with their names and the 50 ms target line.
    fn frame(&self) -> String {
        let (w, h, pad) = (self.w, self.h, self.pad);
        let mut out = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
        );
        out += &format!(
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">SubmitReferral latency against offered load</text>"#,
            w / 2.0
        );
        out += &format!(
            r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
            h - pad,
            w - pad,
            h - pad,
            h - pad
        );
        out += &format!(
            r#"<text x="{}" y="{}" text-anchor="middle">offered load (flows/s, log scale)</text><text x="15" y="{}" transform="rotate(-90 15 {})" text-anchor="middle">latency (ms, log scale)</text>"#,
            w / 2.0,
            h - 15.0,
            h / 2.0,
            h / 2.0
        );
        let limit = self.sy(50f64.log10());
        out += &format!(
            r##"<line x1="{pad}" y1="{limit}" x2="{}" y2="{limit}" stroke="#999" stroke-dasharray="4"/><text x="{}" y="{}" fill="#666">50 ms</text>"##,
            w - pad,
            w - pad + 4.0,
            limit + 4.0
        );
        out
    }

    /// Each step's offered load under the x axis; 1, 10, 100 and 1000 ms beside the y axis.
    fn ticks(&self, report: &Report, xs: &[f64]) -> String {
        let mut out = String::new();
        for (i, s) in report.steps.iter().enumerate() {
            out += &format!(
                r#"<text x="{}" y="{}" text-anchor="middle">{:.0}</text>"#,
                self.sx(xs[i]),
                self.h - self.pad + 16.0,
                s.offered_flows_per_s
            );
        }
        for v in [1.0f64, 10.0, 100.0, 1000.0] {
            let y = v.log10();
            if y >= self.y.0 && y <= self.y.1 {
                out += &format!(
                    r#"<text x="{}" y="{}" text-anchor="end">{v}</text>"#,
                    self.pad - 6.0,
                    self.sy(y) + 4.0
                );
            }
        }
        out
    }

    /// The `k`th series as a line, named in its colour.
    fn line(&self, k: usize, name: &str, colour: &str, values: &[f64], xs: &[f64]) -> String {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", self.sx(xs[i]), self.sy(v.max(0.1).log10())))
            .collect();
        let mut out = format!(
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        out += &format!(
            r#"<text x="{}" y="{}" fill="{colour}">{name}</text>"#,
            self.w - self.pad - 40.0,
            self.pad + 16.0 * k as f64
        );
        out
    }
}

/// The report as a table, with the targets' ratios.
pub fn table(r: &Report) -> String {
    let mut t = String::new();
    t += &raw_parts_table(r);
    t += &steps_table(r);
    t += &peak_table(r);
    t += &work_per_flow_table(r);
    t += &reads_table(r);
    t += &web_pages_table(r);
    t += &reports_table(&r.reports, r.web_pages.background_offered_flows_per_s);
    t += &search::table(&r.search);
    t += &memory_table(r);
    t += "\n";
    t += &telemetry::table(&r.telemetry);
    if let Some(costs) = &r.costs {
        t += "\n";
        t += &steady::table(costs);
    }
    t += "\n";
    t += &history::table(&history::Row::of(r));
    t
}

/// The machine and its raw parts.
fn raw_parts_table(r: &Report) -> String {
    let mut t = String::new();
    t += &format!("Machine: {}\n\nRaw parts\n", r.machine);
    t += &format!(
        "  PostgreSQL insert+commit, 1 connection      {:>10.0} /s\n",
        r.raw.pg_commits_per_s_1_conn
    );
    t += &format!(
        "  PostgreSQL insert+commit, 32 connections    {:>10.0} /s\n",
        r.raw.pg_commits_per_s_32_conns
    );
    t += &format!(
        "  RabbitMQ confirmed publish+consume, 100 in flight {:>6.0} /s\n",
        r.raw.amqp_confirmed_round_trips_per_s_100_in_flight
    );
    t += &format!(
        "  RabbitMQ round trip, 1 in flight            p50 {:.2} ms  p99 {:.2} ms\n",
        r.raw.amqp_round_trip_1_in_flight.p50_ms, r.raw.amqp_round_trip_1_in_flight.p99_ms
    );
    t += &format!(
        "  gRPC health check                           {:>10.0} /s\n\n",
        r.raw.grpc_health_checks_per_s
    );
    t
}

/// Each step of the flow at a constant arrival rate, and the errors of those that had any.
fn steps_table(r: &Report) -> String {
    let mut t = String::new();
    t += "Flow at constant arrival rate (latencies in ms: p50/p99/p99.9)\n";
    t += "  offered  submits/s  flows/s  errors  submit              acknowledge         accept              confirm             notified\n";
    for s in &r.steps {
        let l = |x: &Latency| format!("{:>5.1}/{:>6.1}/{:>6.1}", x.p50_ms, x.p99_ms, x.p999_ms);
        t += &format!(
            "  {:>7.1}  {:>9.1}  {:>7.1}  {:>6}  {}  {}  {}  {}  {}\n",
            s.offered_flows_per_s,
            s.submissions_per_s,
            s.flows_per_s,
            s.errors,
            l(&s.calls.submit),
            l(&s.calls.acknowledge),
            l(&s.calls.accept),
            l(&s.calls.confirm_placement),
            l(&s.commit_to_notification_visible)
        );
    }
    for s in r.steps.iter().filter(|s| s.errors > 0) {
        t += &format!(
            "  errors at {:.1}/s: {:?}\n",
            s.offered_flows_per_s, s.error_kinds
        );
    }
    t
}

/// The peak that held, against the raw commits, and the notification latency at half of it.
fn peak_table(r: &Report) -> String {
    let mut t = String::new();
    let pg32 = r.raw.pg_commits_per_s_32_conns.max(1e-9);
    if let Some(p) = &r.peak {
        t += &format!(
            "\nPeak that held: {:.1} submissions/s = {:.1}% of raw 32-connection commits (target >= 25%); {:.1} flows/s = {:.1}% (target >= 5%)\n",
            p.submissions_per_s,
            100.0 * p.submissions_per_s / pg32,
            p.flows_per_s,
            100.0 * p.flows_per_s / pg32
        );
        // The target on notification latency is judged at half the peak: the step nearest to it.
        let half = p.offered_flows_per_s / 2.0;
        if let Some(h) = r.steps.iter().min_by(|a, b| {
            (a.offered_flows_per_s - half)
                .abs()
                .total_cmp(&(b.offered_flows_per_s - half).abs())
        }) {
            let limit = 5.0 * r.raw.amqp_round_trip_1_in_flight.p99_ms;
            let notified = h.commit_to_notification_visible.p99_ms;
            t += &format!(
                "Commit to notification visible at {:.1} flows/s (about half the peak): p99 {:.1} ms vs 5 x RabbitMQ round trip p99 = {:.1} ms: {}\n",
                h.offered_flows_per_s,
                notified,
                limit,
                if notified <= limit { "met" } else { "NOT met" }
            );
        }
    } else {
        t += "\nNo load held (errors under 1%, submissions keeping up with the offered load, submit p99 under 50 ms)\n";
    }
    t
}

/// What a flow costs: its durable work, the ceiling that sets, and its CPU seconds.
fn work_per_flow_table(r: &Report) -> String {
    let mut t = String::new();
    let pg32 = r.raw.pg_commits_per_s_32_conns.max(1e-9);
    // What a flow costs does not depend on whether its step held: with no peak, the lowest load tells it.
    if let Some(p) = r.peak.as_ref().or(r.steps.first()) {
        let w = &p.work_per_flow;
        let ceiling = w.ceiling(&r.raw);
        t += &format!(
            "Durable work per flow at {:.1} flows/s (counted): {:.1} audited calls and {:.1} applied events (a commit each), {:.1} events published.\n\
             With only that work costing anything, at the raw rates above, this machine tops out at {:.0} flows/s = {:.1}% of raw commits\n\
             ({:.0} flows/s = {:.1}% even if consumers committed any number of events at once)\n",
            p.offered_flows_per_s,
            w.audited_calls,
            w.deliveries,
            w.events,
            ceiling,
            100.0 * ceiling / pg32,
            w.ceiling_batched(&r.raw),
            100.0 * w.ceiling_batched(&r.raw) / pg32
        );
        let mut cpu: Vec<_> = p.cpu_seconds_per_flow.iter().collect();
        cpu.sort_by(|a, b| a.0.cmp(b.0));
        t += &format!(
            "CPU seconds per flow at that step: {}\n",
            cpu.iter()
                .map(|(k, v)| format!("{k} {:.4}", v))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    t
}

/// Reads with an empty history and with a large one.
fn reads_table(r: &Report) -> String {
    let mut t = String::new();
    t += &format!(
        "\nReads, empty history vs {} stored referrals (p50/p99 ms)\n",
        r.stored_referrals
    );
    for (name, a, b) in [
        (
            "GetReferral",
            &r.empty_history.get_referral,
            &r.large_history.get_referral,
        ),
        (
            "ListReferrals (busy agency)",
            &r.empty_history.list_referrals_busy_agency,
            &r.large_history.list_referrals_busy_agency,
        ),
        (
            "SearchServices",
            &r.empty_history.search_services,
            &r.large_history.search_services,
        ),
    ] {
        t += &format!(
            "  {:<28} {:>6.2}/{:>6.2}   {:>6.2}/{:>6.2}   p99 ratio {:.2}\n",
            name,
            a.p50_ms,
            a.p99_ms,
            b.p50_ms,
            b.p99_ms,
            b.p99_ms / a.p99_ms.max(1e-9)
        );
    }
    t
}

/// The web app's pages under half the peak load.
fn web_pages_table(r: &Report) -> String {
    let mut t = String::new();
    let w = &r.web_pages;
    t += &format!(
        "\nWeb app pages with {} stored referrals, under {:.1} flows/s ({:.1} done, {} errors), response time at a client on this machine (p50/p99/p99.9 ms, target p99 <= 50)\n",
        r.stored_referrals,
        w.background_offered_flows_per_s,
        w.background_flows_per_s,
        w.background_errors
    );
    for (name, l) in [
        ("Inbox", &w.inbox),
        ("Sent referrals", &w.referral_list),
        ("Referral page", &w.referral_page),
    ] {
        t += &format!(
            "  {:<28} {:>6.2}/{:>6.2}/{:>6.2}   {} pages{}\n",
            name,
            l.p50_ms,
            l.p99_ms,
            l.p999_ms,
            l.count,
            if l.p99_ms <= 50.0 {
                ""
            } else {
                "  (p99 over 50 ms)"
            }
        );
    }
    if w.failed_pages > 0 {
        t += &format!("  {} pages not answered 200 OK\n", w.failed_pages);
    }
    t
}

/// The reports under half the peak load.
fn reports_table(r5: &ReportFigures, rate: f64) -> String {
    let mut t = String::new();
    t += &format!(
        "\nReports with {} referrals in their read model, under {:.1} flows/s (p50/p99/p99.9 ms, target p99 <= 100)\n",
        r5.stored_referrals, rate
    );
    for (name, l) in [
        ("District report, 30 days", &r5.district_30_days),
        ("District report, 365 days", &r5.district_365_days),
        ("XLSX export, 30 days", &r5.export_xlsx_30_days),
        ("Read model lag (step to model)", &r5.read_model_lag),
    ] {
        t += &format!(
            "  {:<32} {:>7.2}/{:>7.2}/{:>7.2}   {} samples\n",
            name, l.p50_ms, l.p99_ms, l.p999_ms, l.count
        );
    }
    if r5.failed_calls > 0 {
        t += &format!("  {} report calls failed\n", r5.failed_calls);
    }
    t
}

/// Each process's memory, idle and at its peak.
fn memory_table(r: &Report) -> String {
    let mut t = String::new();
    t += "\nMemory (MiB): idle RSS / peak RSS (target: web idle <= 50)\n";
    let mut procs: Vec<_> = r.processes.iter().collect();
    procs.sort_by(|a, b| a.0.cmp(b.0));
    for (name, p) in procs {
        t += &format!(
            "  {:<14} {:>6.1} / {:>6.1}\n",
            name, p.idle_rss_mib, p.peak_rss_mib
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(rate: f64, audited_calls: f64) -> StepFigures {
        StepFigures {
            offered_flows_per_s: rate,
            work_per_flow: Work {
                audited_calls,
                events: 8.0,
                deliveries: 11.0,
            },
            cpu_seconds_per_flow: HashMap::from([("referrals".to_string(), 0.005)]),
            ..Default::default()
        }
    }

    fn raw() -> RawFigures {
        RawFigures {
            pg_commits_per_s_32_conns: 20_000.0,
            amqp_confirmed_round_trips_per_s_100_in_flight: 15_000.0,
            ..Default::default()
        }
    }

    #[test]
    fn a_run_where_no_load_held_still_reports_what_a_flow_costs() {
        let report = Report {
            raw: raw(),
            steps: vec![step(4.0, 6.0), step(8.0, 7.0)],
            ..Default::default()
        };
        let table = table(&report);
        assert!(table.contains("No load held"), "{table}");
        assert!(!table.contains("Peak that held"), "{table}");
        // The lowest load stands in for the missing peak.
        assert!(
            table.contains("Durable work per flow at 4.0 flows/s (counted): 6.0 audited calls"),
            "{table}"
        );
        assert!(table.contains("referrals 0.0050"), "{table}");
    }

    #[test]
    fn the_peak_is_what_the_cost_of_a_flow_is_read_at() {
        let report = Report {
            raw: raw(),
            steps: vec![step(4.0, 6.0), step(8.0, 7.0)],
            peak: Some(step(8.0, 7.0)),
            ..Default::default()
        };
        let table = table(&report);
        assert!(table.contains("Peak that held"), "{table}");
        assert!(
            table.contains("Durable work per flow at 8.0 flows/s (counted): 7.0 audited calls"),
            "{table}"
        );
        // 18 commits at 20,000/s and 11 deliveries at 15,000/s: 1 / (0.9 ms + 0.733 ms) = 612 flows/s.
        assert!(table.contains("tops out at 612 flows/s"), "{table}");
    }
}
