//! The fault suite: 300 whole flows from concurrent clients, while one fault is injected per run. Most send
//! one referral (submit, both acknowledgements, accept, place); every third is a search to three services
//! in two districts (two accept, the sender confirms one, the third declines at once or is withdrawn as
//! placed elsewhere). After each run, read back through the API and the broker: every flow placed exactly
//! once (each search's other requests withdrawn as placed elsewhere or declined), exactly one notification
//! per event per agency concerned, the directory's places adding up with none held, every outbox drained,
//! no dead letter but the poison message.
//!
//! These tests restart the machine's PostgreSQL and RabbitMQ, so they run one at a time (a lock) in a test
//! binary of their own (cargo runs test binaries one after another), and always leave both running.

// Measuring and test code: the rule against wrapping casts guards what services do with requests.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use placement_cli::{
    clients::as_agency,
    demo::{self, NATIONAL_AUTHORITY},
    scenario::eventually,
};
use placement_e2e::{
    Stack, StackOptions,
    cluster::RabbitCluster,
    infra::{self, InfraGuard},
    load::{
        End, FOLLOWED, Flow, Load, Request, Retries, SENDERS, Target, notification_counts,
        planned_events,
    },
    proxy::TcpProxy,
    webhook::WebhookReceiver,
};
use placement_proto::v1::{
    AddNotificationEndpointRequest, CreateServiceRequest, GetDistrictReportRequest,
    GetServiceRequest, NotificationChannel, ReferralStatus, ServiceType, SocialService,
    report_service_client::ReportServiceClient,
};
use uuid::Uuid;

const REFERRALS: usize = 300;
const CONCURRENCY: usize = 12;
/// How many services a run stops one after the other.
const SERVICE_COUNT: usize = placement_platform::services::ALL.len();
const OUTAGE: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_secs(120);

/// Fault runs share the machine's PostgreSQL and RabbitMQ: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Run {
    stack: Stack,
    load: Load,
    /// The foster-care team's system, told of every request and placement by webhook.
    webhooks: WebhookReceiver,
    /// Each target's occupied places before the run.
    occupied_before: [u32; 3],
    started: Instant,
}

/// A service of the run's own (room for every flow), run by the demo's `provider` in `municipality`.
async fn create_target(
    clients: &placement_cli::clients::Clients,
    demo: &demo::DemoDirectory,
    run: &str,
    (provider, foster, municipality): (&str, &str, &str),
) -> (Target, SocialService) {
    let service = clients
        .directory
        .clone()
        .create_service(as_agency(
            NATIONAL_AUTHORITY,
            CreateServiceRequest {
                provider_agency_id: demo.agency(provider).to_string(),
                r#type: ServiceType::FamilyTypePlacementCentre as i32,
                name: format!("FTPC {municipality}, fault run {run}"),
                municipality_code: municipality.into(),
                capacity: 1000,
                occupied_places: 100,
                min_age: 0,
                max_age: 17,
                name_en: String::new(),
            },
        ))
        .await
        .expect("CreateService")
        .into_inner();
    let target = Target {
        service: Uuid::parse_str(&service.id).expect("id"),
        provider: demo.agency(provider),
        foster: demo.agency(foster),
        region: if municipality.starts_with("VRC") {
            "VRC"
        } else {
            "HKV"
        },
    };
    (target, service)
}

impl Run {
    async fn start(name: &str, options: StackOptions) -> Run {
        let stack = Stack::start(options).await;
        let clients = stack.clients();
        let demo = demo::seed(&clients).await.expect("demo data");
        // A referral sent alone goes to the first; a search asks all three: the first and the third share
        // Vratsa's district (one acknowledgement of its foster-care team for both), the second is in Haskovo's.
        let mut targets = Vec::new();
        for placed in [
            ("provider-vratsa", "foster-vratsa", "VRC10"),
            ("provider-haskovo", "foster-haskovo", "HKV34"),
            ("provider-mezdra", "foster-vratsa", "VRC27"),
        ] {
            targets.push(create_target(&clients, &demo, name, placed).await);
        }
        // The foster-care team registers a webhook; the run waits until the notifications service has it.
        let webhooks = WebhookReceiver::start().await;
        let foster = demo.agency("foster-vratsa");
        let hook = clients
            .directory
            .clone()
            .add_notification_endpoint(as_agency(
                foster,
                AddNotificationEndpointRequest {
                    agency_id: foster.to_string(),
                    channel: NotificationChannel::Webhook as i32,
                    address: webhooks.url(),
                    event_types: vec!["referral.submitted".into(), "referral.placed".into()],
                    language: 0,
                },
            ))
            .await
            .expect("AddNotificationEndpoint")
            .into_inner();
        webhooks.set_secret(&hook.secret);
        assert!(
            stack.wait_for_endpoints(1, SETTLE).await,
            "the webhook endpoint to reach notifications"
        );
        let load = Load {
            retries: Retries::default(),
            extra: Vec::new(),
            clients,
            demo,
            targets: [targets[0].0, targets[1].0, targets[2].0],
            run: format!("{name}-{}", Uuid::new_v4().simple()),
            done: Arc::new(AtomicUsize::new(0)),
        };
        Run {
            stack,
            load,
            webhooks,
            occupied_before: [0, 1, 2].map(|n| targets[n].1.occupied_places),
            started: Instant::now(),
        }
    }

    fn drive(&self) -> tokio::task::JoinHandle<Vec<Result<Flow, String>>> {
        let load = self.load.clone();
        tokio::spawn(async move {
            stream::iter(0..REFERRALS)
                .map(|i| load.clone().flow(i))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await
        })
    }

    async fn progress(&self, at_least: usize) {
        let done = self.load.done.clone();
        eventually("the load to progress", Duration::from_secs(120), || {
            let done = done.clone();
            async move { (done.load(Ordering::SeqCst) >= at_least).then_some(()) }
        })
        .await
        .expect("progress");
    }

    /// Seconds from `since` (the fault's end) until every service reports SERVING again and the clients
    /// complete flows again.
    async fn seconds_to_recover(&self, since: Instant) -> f64 {
        let before = self.load.done.load(Ordering::SeqCst);
        self.stack.wait_ready(Duration::from_secs(120)).await;
        if before < REFERRALS {
            self.progress(before + 1).await;
        }
        since.elapsed().as_secs_f64()
    }

    /// Waits (within the outage) until `service` reports NOT_SERVING.
    async fn sees_not_serving(&self, service: &str) {
        let stack = &self.stack;
        eventually("health to turn NOT_SERVING", OUTAGE, || async {
            (stack.health(service).await
                != Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32))
            .then_some(())
        })
        .await
        .unwrap_or_else(|e| panic!("{service} kept reporting SERVING during the outage: {e:?}"));
    }

    /// Whether the reports service, learning from the same events, counts every request of the run to
    /// Vratsa's district exactly once: submitted, accepted and placed, and placed now (a redelivered event
    /// counted twice, or one lost, shows here).
    async fn reports_count_every_request_once(&self, flows: &[Flow]) -> bool {
        let url = self
            .stack
            .endpoints
            .url(placement_platform::services::REPORTS);
        let reports =
            ReportServiceClient::new(placement_cli::clients::channel(url).expect("channel"));
        let now = chrono::Utc::now();
        let asked = || GetDistrictReportRequest {
            region_code: "VRC".into(),
            period_start: Some(placement_platform::time::timestamp(
                now - chrono::Duration::hours(2),
            )),
            period_end: Some(placement_platform::time::timestamp(
                now + chrono::Duration::hours(1),
            )),
        };
        let to_vratsa: Vec<&Request> = (flows.iter())
            .flat_map(|f| &f.requests)
            .filter(|r| r.target.region == "VRC")
            .collect();
        let count =
            |keep: fn(&Request) -> bool| to_vratsa.iter().filter(|r| keep(r)).count() as u32;
        let placed = count(|r| r.end == End::Placed);
        let expected = (count(|_| true), count(|r| r.accepted), placed, placed);
        eventually("the reports' figures", SETTLE, || async {
            let r = (reports.clone())
                .get_district_report(as_agency(NATIONAL_AUTHORITY, asked()))
                .await
                .ok()?
                .into_inner();
            let side = r.as_receiver?;
            let placed_now = (side.by_status_now.iter())
                .find(|c| c.status == ReferralStatus::Placed as i32)
                .map_or(0, |c| c.count);
            ((side.submitted, side.accepted, side.placed, placed_now) == expected).then_some(())
        })
        .await
        .is_ok()
    }

    /// Waits for the flows, then checks everything; prints the summary line.
    async fn finish(
        self,
        name: &str,
        driver: tokio::task::JoinHandle<Vec<Result<Flow, String>>>,
        options: Finish,
    ) {
        let outcomes = driver.await.expect("driver");
        let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        let flows: Vec<Flow> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().cloned())
            .collect();
        let searches = flows.iter().filter(|f| f.search_id.is_some()).count();
        let placed = self.placed(&flows).await;
        let (lost, duplicated) = self.settled_notifications(&flows).await;
        let places = self.directory_places(&flows).await;
        let backlog = self.stack.outbox_backlog().await;
        let dead = self.stack.dead_letters().await;
        let reports_match = self.reports_count_every_request_once(&flows).await;
        let hooks = self.webhook_tally(self.foster_hooks(&flows)).await;
        let retries = self.load.retries.lock().expect("retries").clone();
        let line = format!(
            "fault: {name}: referrals={} searches={searches} placed={placed} faults_injected={} lost={} duplicated={duplicated} webhooks_missing={} webhooks_repeated={} reports_match={reports_match} recovered_in_s={:.1} run_s={:.1} client_retries={retries:?}",
            REFERRALS,
            options.faults,
            lost + (REFERRALS - placed),
            hooks.missing,
            hooks.repeated,
            options.recovery,
            self.started.elapsed().as_secs_f64()
        );
        println!("{line}");
        placement_e2e::record_summary(&line);
        // Outages surface as UNAVAILABLE (or a broken connection when a process dies), never as a server error.
        assert!(
            !retries
                .keys()
                .any(|k| k.starts_with("Internal: internal error")),
            "{name}: the services answered INTERNAL during the fault: {retries:?}"
        );
        assert!(
            failures.is_empty(),
            "{name}: {} flows failed, first: {:?}",
            failures.len(),
            failures.first()
        );
        assert_eq!(placed, REFERRALS, "{name}: flows not placed exactly once");
        assert_eq!(
            (lost, duplicated),
            (0, 0),
            "{name}: notifications lost / duplicated or told to an agency not concerned"
        );
        hooks.assert_each_accepted(name, options.may_repeat_webhooks);
        assert!(
            reports_match,
            "{name}: the reports' figures are not the referrals'"
        );
        let services = places.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        for s in services {
            assert_eq!(
                s.capacity,
                s.free_places + s.held_places + s.occupied_places,
                "{name}: {}",
                s.id
            );
        }
        assert_eq!(backlog, 0, "{name}: outbox not drained");
        self.assert_dead_letters(name, dead, options.poisoned);
    }

    /// Every flow placed exactly once, as its sender sees it: how many are.
    async fn placed(&self, flows: &[Flow]) -> usize {
        let mut placed = 0;
        for flow in flows {
            if self.placed_once(flow).await {
                placed += 1;
            }
        }
        placed
    }

    /// Whether each request of `flow` ended as the flow left it (placed; withdrawn as placed elsewhere;
    /// declined) and, for a search, the search shows that one placement and no other.
    async fn placed_once(&self, flow: &Flow) -> bool {
        for r in &flow.requests {
            match self.load.referral(flow.sender, &r.id).await {
                Ok(now) if r.shows(&now) => {}
                _ => return false,
            }
        }
        let Some(search_id) = &flow.search_id else {
            return true;
        };
        let Ok(search) = self.load.search(flow.sender, search_id).await else {
            return false;
        };
        let chosen = (flow.requests.iter())
            .find(|r| r.end == End::Placed)
            .map(|r| r.id.as_str());
        let placements = (search.referrals.iter())
            .filter(|r| r.status == ReferralStatus::Placed as i32)
            .count();
        Some(search.placed_referral_id.as_str()) == chosen
            && placements == 1
            && search.referrals.len() == flow.requests.len()
    }

    /// Exactly one notification per event per agency concerned, and none to an agency a step does not
    /// concern (counted as duplicated): (lost, duplicated) once nothing is lost and the outboxes are
    /// drained, or as they stand at the settling deadline.
    async fn settled_notifications(&self, flows: &[Flow]) -> (usize, usize) {
        let mut agencies: Vec<Uuid> = SENDERS.iter().map(|k| self.load.demo.agency(k)).collect();
        for t in &self.load.targets {
            agencies.extend([t.provider, t.foster]);
        }
        agencies.sort();
        agencies.dedup();
        let tally = || async {
            let (mut lost, mut duplicated) = (0usize, 0usize);
            for agency in &agencies {
                let counts = notification_counts(&self.load.clients, *agency).await;
                for flow in flows {
                    for (r, kind) in (flow.requests.iter()).flat_map(|r| FOLLOWED.map(|k| (r, k))) {
                        let want = r.expected(*agency, flow.sender, kind);
                        let got = (counts.get(&(r.id.clone(), kind as i32)).copied()).unwrap_or(0);
                        lost += want.saturating_sub(got);
                        duplicated += got.saturating_sub(want);
                    }
                }
            }
            (lost, duplicated)
        };
        let settle_deadline = Instant::now() + SETTLE;
        loop {
            let (lost, duplicated) = tally().await;
            if (lost == 0 && self.stack.outbox_backlog().await == 0)
                || Instant::now() > settle_deadline
            {
                break (lost, duplicated);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The directory's places add up: each of the run's services once it holds nothing (no place held
    /// for a placed search, none left by a withdrawal) and has occupied one place per flow placed there.
    async fn directory_places(
        &self,
        flows: &[Flow],
    ) -> Result<Vec<SocialService>, placement_cli::scenario::ScenarioError> {
        let placed_at = |t: &Target| {
            (flows.iter())
                .flat_map(|f| &f.requests)
                .filter(|r| r.end == End::Placed && r.target.service == t.service)
                .count() as u32
        };
        let expected: Vec<(Uuid, u32)> = (self.load.targets.iter().zip(self.occupied_before))
            .map(|(t, before)| (t.service, before + placed_at(t)))
            .collect();
        eventually(
            "the directory's places",
            Duration::from_secs(60),
            || async {
                let mut services = Vec::new();
                for (id, occupied) in &expected {
                    let s = (self.load.clients.directory.clone())
                        .get_service(as_agency(
                            NATIONAL_AUTHORITY,
                            GetServiceRequest {
                                service_id: id.to_string(),
                            },
                        ))
                        .await
                        .ok()?
                        .into_inner();
                    (s.held_places == 0 && s.occupied_places == *occupied).then_some(())?;
                    services.push(s);
                }
                Some(services)
            },
        )
        .await
    }

    /// The webhooks the foster-care team of Vratsa must have accepted: one per request to its district
    /// and one per placement there.
    fn foster_hooks(&self, flows: &[Flow]) -> usize {
        let foster = self.load.targets[0].foster;
        (flows.iter())
            .flat_map(|f| &f.requests)
            .filter(|r| r.target.foster == foster)
            .map(|r| 1 + usize::from(r.end == End::Placed))
            .sum()
    }

    /// Every request and placement reached the foster-care team's system by webhook, each accepted once.
    async fn webhook_tally(&self, expected_hooks: usize) -> WebhookTally {
        let calls = self
            .webhooks
            .wait_for(SETTLE, |calls| {
                calls
                    .iter()
                    .filter(|c| c.status < 300)
                    .map(|c| c.id.as_str())
                    .collect::<std::collections::HashSet<_>>()
                    .len()
                    >= expected_hooks
            })
            .await;
        let accepted: Vec<&str> = calls
            .iter()
            .filter(|c| c.status < 300)
            .map(|c| c.id.as_str())
            .collect();
        let distinct: std::collections::HashSet<&str> = accepted.iter().copied().collect();
        WebhookTally {
            missing: expected_hooks.saturating_sub(distinct.len()),
            repeated: accepted.len() - distinct.len(),
            unverified: calls.iter().filter(|c| !c.verified).count(),
        }
    }

    /// No dead letter but the poison message, on the poisoned service's dead-letter queue.
    fn assert_dead_letters(&self, name: &str, dead: Vec<(String, u32)>, poisoned: Option<&str>) {
        for (queue, n) in dead {
            let allowed = u32::from(poisoned.is_some_and(|svc| {
                queue == placement_messaging::topology::dead_letter_queue(&self.stack.queue(svc))
            }));
            assert_eq!(n, allowed, "{name}: dead-letter queue {queue}");
        }
    }
}

/// What a run injected and what it may show for it, named rather than positional.
#[derive(Default)]
struct Finish {
    /// How many faults the run injected (for the summary line).
    faults: usize,
    /// Seconds the slowest recovery took (for the summary line).
    recovery: f64,
    /// The service whose queue was given a poison message: one dead letter is allowed there.
    poisoned: Option<&'static str>,
    /// A sender killed between a receiver's answer and recording it sends again after its lease (the
    /// receiver drops the repeat by webhook-id): only such a run may repeat a webhook.
    may_repeat_webhooks: bool,
}

/// The foster-care team's webhook calls, counted.
struct WebhookTally {
    missing: usize,
    repeated: usize,
    unverified: usize,
}

impl WebhookTally {
    fn assert_each_accepted(&self, name: &str, may_repeat: bool) {
        assert_eq!(self.missing, 0, "{name}: webhooks never accepted");
        assert_eq!(self.unverified, 0, "{name}: webhooks with a bad signature");
        if !may_repeat {
            assert_eq!(self.repeated, 0, "{name}: webhooks accepted twice");
        }
    }
}

async fn blocking(f: impl FnOnce() + Send + 'static) {
    tokio::task::spawn_blocking(f).await.expect("blocking task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restarted_mid_run() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let _guard = InfraGuard;
    let run = Run::start("rabbitmq-restart", StackOptions::default()).await;
    let driver = run.drive();
    run.progress(REFERRALS / 4).await;
    blocking(infra::stop_rabbitmq_app).await;
    let outage = Instant::now();
    for service in placement_e2e::service_names() {
        run.sees_not_serving(service).await;
    }
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    blocking(infra::start_rabbitmq_app).await;
    let restored = Instant::now();
    let recovery = run.seconds_to_recover(restored).await;
    run.finish(
        "rabbitmq restarted (stop_app/start_app)",
        driver,
        Finish {
            faults: 1,
            recovery,
            ..Finish::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let _guard = InfraGuard;
    let run = Run::start("postgres-restart", StackOptions::default()).await;
    let driver = run.drive();
    run.progress(REFERRALS / 4).await;
    blocking(infra::stop_postgres).await;
    let outage = Instant::now();
    for service in placement_e2e::service_names() {
        run.sees_not_serving(service).await;
    }
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    blocking(infra::start_postgres).await;
    let restored = Instant::now();
    let recovery = run.seconds_to_recover(restored).await;
    run.finish(
        "postgresql stopped (fast) and started",
        driver,
        Finish {
            faults: 1,
            recovery,
            ..Finish::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_killed_and_restarted_mid_run() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let _guard = InfraGuard;
    let mut run = Run::start("sigkill", StackOptions::default()).await;
    let driver = run.drive();
    let mut worst: f64 = 0.0;
    for (i, service) in placement_e2e::service_names().enumerate() {
        run.progress(REFERRALS * (i + 1) / (SERVICE_COUNT + 2))
            .await;
        run.stack.kill(service);
        tokio::time::sleep(Duration::from_millis(500)).await;
        run.stack.restart(service);
        let restarted = Instant::now();
        worst = worst.max(run.seconds_to_recover(restarted).await);
    }
    run.finish(
        "each service SIGKILLed and restarted",
        driver,
        Finish {
            faults: 4,
            recovery: worst,
            may_repeat_webhooks: true,
            ..Finish::default()
        },
    )
    .await;
}

/// A three-node RabbitMQ cluster of the test's own (quorum queues on every node), every service given
/// the three nodes: the node leading most of the run's queues is SIGKILLed mid-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_cluster_node_leading_the_queues_killed_mid_run() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let _guard = InfraGuard;
    let mut cluster = tokio::task::spawn_blocking(|| RabbitCluster::start(3))
        .await
        .expect("a three-node cluster");
    let options = StackOptions {
        broker: Some(cluster.urls()),
        ..Default::default()
    };
    let run = Run::start("cluster-node-killed", options).await;
    let driver = run.drive();
    run.progress(REFERRALS / 4).await;
    let leader = cluster
        .leader_of(&run.stack.id)
        .expect("the run's queues have a leader");
    cluster.kill(&leader);
    let killed = Instant::now();
    let recovery = run.seconds_to_recover(killed).await;
    run.finish(
        "rabbitmq cluster: the node leading the queues killed",
        driver,
        Finish {
            faults: 1,
            recovery,
            ..Finish::default()
        },
    )
    .await;
    drop(cluster);
}

/// The same cluster; the node leading most of the run's queues is partitioned away from the other two
/// mid-run (it pauses, as a minority under `pause_minority` does, closing its clients' connections), then
/// healed (it rejoins and serves again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_cluster_minority_node_partitioned_away_and_healed() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let _guard = InfraGuard;
    let cluster = tokio::task::spawn_blocking(|| RabbitCluster::start(3))
        .await
        .expect("a three-node cluster");
    let cluster = Arc::new(cluster);
    let options = StackOptions {
        broker: Some(cluster.urls()),
        ..Default::default()
    };
    let run = Run::start("cluster-partition", options).await;
    let driver = run.drive();
    run.progress(REFERRALS / 4).await;
    let minority = cluster
        .leader_of(&run.stack.id)
        .expect("the run's queues have a leader");
    let (c, node) = (cluster.clone(), minority.clone());
    blocking(move || c.partition(&node)).await;
    let outage = Instant::now();
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    let (c, node) = (cluster.clone(), minority.clone());
    blocking(move || c.heal(&node)).await;
    let healed = Instant::now();
    let recovery = run.seconds_to_recover(healed).await;
    run.finish(
        "rabbitmq cluster: a minority node partitioned away and healed",
        driver,
        Finish {
            faults: 1,
            recovery,
            ..Finish::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_between_referrals_and_rabbitmq_cut() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let _guard = InfraGuard;
    let proxy = TcpProxy::start("127.0.0.1:5672".into()).await;
    let mut options = StackOptions::default();
    options.amqp_url_of.insert(
        "referrals",
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port),
    );
    let run = Run::start("network-cut", options).await;
    let driver = run.drive();
    run.progress(REFERRALS / 4).await;
    proxy.cut();
    let outage = Instant::now();
    run.sees_not_serving("referrals").await;
    tokio::time::sleep(OUTAGE.saturating_sub(outage.elapsed())).await;
    proxy.restore();
    let restored = Instant::now();
    let recovery = run.seconds_to_recover(restored).await;
    run.finish(
        "network referrals<->rabbitmq cut",
        driver,
        Finish {
            faults: 1,
            recovery,
            ..Finish::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_message_on_a_queue() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let run = Run::start("poison", StackOptions::default()).await;
    let driver = run.drive();
    run.progress(REFERRALS / 4).await;
    let injected = Instant::now();
    run.stack
        .publish_to_queue("notifications", b"\x08\x96\x01 definitely not an envelope")
        .await;
    let stack = &run.stack;
    eventually(
        "the poison message to be dead-lettered",
        Duration::from_secs(30),
        || async {
            stack
                .dead_letters()
                .await
                .iter()
                .any(|(q, n)| q.contains(".notifications.") && *n == 1)
                .then_some(())
        },
    )
    .await
    .expect("dead-lettered");
    let recovery = injected.elapsed().as_secs_f64();
    run.finish(
        "poison message on the notifications queue",
        driver,
        Finish {
            faults: 1,
            recovery,
            poisoned: Some("notifications"),
            ..Finish::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_every_service_share_the_work() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let mut run = Run::start("two-instances", StackOptions::default()).await;
    let second = start_second_instances(&mut run).await;
    run.load.extra.push(second.clone());
    // The provider watches its inbox through the second notifications instance while both instances
    // write notifications concurrently: the stream must show every one, once.
    let provider = run.load.demo.agency("provider-vratsa");
    let streamed = watch_inbox(&second, provider).await;
    let mut recorder = run.stack.record_events().await;
    let started = Instant::now();
    let driver = run.drive();
    run.progress(REFERRALS).await;
    assert_every_event_published_once(&mut recorder).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_stream_shows_every_notification_once(&run, provider, &streamed).await;
    println!("two instances: all 300 flows done in {elapsed:.1}s");
    run.finish("two instances of every service", driver, Finish::default())
        .await;
}

/// A second instance of every service beside the first, serving; clients that call the second ones.
async fn start_second_instances(run: &mut Run) -> placement_cli::clients::Clients {
    let mut endpoints = run.stack.endpoints.clone();
    for service in placement_platform::services::ALL {
        endpoints.set(*service, run.stack.add_instance(service.name));
    }
    placement_cli::clients::wait_ready(&endpoints, Duration::from_secs(60))
        .await
        .expect("second instances serving");
    placement_cli::clients::Clients::connect(&endpoints).expect("clients")
}

/// The ids of the notifications `agency`'s stream shows, as they arrive.
async fn watch_inbox(
    clients: &placement_cli::clients::Clients,
    agency: Uuid,
) -> Arc<std::sync::Mutex<Vec<String>>> {
    let mut stream = clients
        .notifications
        .clone()
        .watch_notifications(as_agency(
            agency,
            placement_proto::v1::WatchNotificationsRequest {
                after_sequence: 0,
                ..Default::default()
            },
        ))
        .await
        .expect("WatchNotifications")
        .into_inner();
    let streamed: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    {
        let streamed = streamed.clone();
        tokio::spawn(async move {
            while let Some(Ok(n)) = stream.next().await {
                streamed.lock().expect("streamed").push(n.id);
            }
        });
    }
    streamed
}

/// Every event of every referral crossed the broker once: no outbox row was published by both relays.
async fn assert_every_event_published_once(recorder: &mut placement_e2e::EventRecorder) {
    let ids: Vec<String> = recorder
        .wait_until(SETTLE, |events| {
            events
                .iter()
                .filter(|(e, _)| e.event_type.starts_with("referral."))
                .count()
                >= planned_events(REFERRALS)
        })
        .await
        .then(|| {
            recorder
                .events
                .iter()
                .map(|(e, _)| e.event_id.clone())
                .collect()
        })
        .expect("every referral event on the exchange");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an event was published twice");
}

async fn assert_stream_shows_every_notification_once(
    run: &Run,
    provider: Uuid,
    streamed: &Arc<std::sync::Mutex<Vec<String>>>,
) {
    let listed = eventually(
        "every notification of the provider on its stream",
        SETTLE,
        || {
            let clients = run.load.clients.clone();
            let streamed = streamed.clone();
            async move {
                let listed = notification_counts(&clients, provider)
                    .await
                    .values()
                    .sum::<usize>();
                (streamed.lock().expect("streamed").len() >= listed && listed >= REFERRALS * 2)
                    .then_some(listed)
            }
        },
    )
    .await
    .expect("the stream kept up");
    let mut ids = streamed.lock().expect("streamed").clone();
    assert_eq!(ids.len(), listed, "the stream showed a notification twice");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), listed, "the stream showed a notification twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_stopped_gracefully_mid_run() {
    let _lock = ONE_AT_A_TIME.lock().await;
    let mut run = Run::start("sigterm", StackOptions::default()).await;
    let driver = run.drive();
    let mut slowest = Duration::ZERO;
    for (i, service) in placement_e2e::service_names().enumerate() {
        run.progress(REFERRALS * (i + 1) / (SERVICE_COUNT + 2))
            .await;
        // SIGTERM: stop taking work, finish or hand back what is in flight, exit within a bounded time.
        slowest = slowest.max(run.stack.terminate(service, Duration::from_secs(15)));
        run.stack.restart(service);
    }
    println!("slowest graceful exit: {:.2}s", slowest.as_secs_f64());
    let options = Finish {
        faults: 4,
        recovery: slowest.as_secs_f64(),
        ..Finish::default()
    };
    run.finish(
        "each service stopped with SIGTERM and restarted",
        driver,
        options,
    )
    .await;
}
