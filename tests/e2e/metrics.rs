//! The metrics, as operators see them: a real Prometheus (Debian's) scrapes a stack and the counters moved
//! by exactly what the test did; the alert rules pass promtool's checks and unit tests, and evaluate on the
//! series the services really export.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use chrono::{Datelike, Utc};
use placement_cli::clients::as_agency;
use placement_e2e::{
    StackOptions, free_port,
    load::{Retries, with_retries},
    webhook::WebhookReceiver,
};
use placement_proto::v1::{
    AcknowledgeReferralRequest, Child as ChildOf, Language, NotificationChannel, OpenCaseRequest,
    Sex,
};
use uuid::Uuid;

use crate::support::{Fixture, WAIT};

/// Where Debian's prometheus and promtool are (`deploy/infra.sh prometheus` prints it).
fn prometheus_dir() -> PathBuf {
    std::env::var("PLACEMENT_TEST_PROMETHEUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/usr/bin"))
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

#[test]
fn the_alert_rules_pass_promtool_checks_and_their_unit_tests() {
    let promtool = prometheus_dir().join("promtool");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["check", "config", "prometheus.yml"],
        &["check", "config", "compose.yml"],
        &["test", "rules", "alerts.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(rules_dir())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "run {} (deploy/infra.sh prometheus): {e}",
                    promtool.display()
                )
            });
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A Prometheus of the test's own, scraping `targets` every second, with the project's alert rules.
struct Prometheus {
    url: String,
    child: Child,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A folder removed when dropped.
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Prometheus {
    fn start(targets: &[(String, String)]) -> Self {
        let dir = std::env::temp_dir().join(format!("placement-prometheus-{}", Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("data")).expect("prometheus folder");
        let static_configs: Vec<String> = targets
            .iter()
            .map(|(name, addr)| {
                format!("      - targets: [\"{addr}\"]\n        labels: {{ process: \"{name}\" }}")
            })
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: placement\n    static_configs:\n{}\n",
            rules_dir().join("alerts.yml").display(),
            static_configs.join("\n")
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("prometheus config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let child = Command::new(prometheus_dir().join("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start prometheus (deploy/infra.sh prometheus)");
        Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: tempdir::Dir(dir),
        }
    }

    /// The instant vector of `query`: each series' labels and value.
    async fn query(&self, query: &str) -> Option<Vec<(serde_json::Value, f64)>> {
        let url =
            url::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", query)])
                .ok()?;
        let text = reqwest::get(url).await.ok()?.text().await.ok()?;
        let body: serde_json::Value = serde_json::from_str(&text).ok()?;
        let result = body.pointer("/data/result")?.as_array()?;
        result
            .iter()
            .map(|s| {
                let value = s.pointer("/value/1")?.as_str()?.parse().ok()?;
                Some((s["metric"].clone(), value))
            })
            .collect()
    }

    /// The one value of `query` (a sum, say); 0 when no series matches.
    async fn value(&self, query: &str) -> Option<f64> {
        let series = self.query(query).await?;
        Some(series.first().map_or(0.0, |(_, v)| *v))
    }

    /// Waits until `query` answers `expected`; fails with the last answer after the deadline.
    async fn expect(&self, query: &str, expected: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            last = self.value(query).await;
            if last == Some(expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{query}: expected {expected}, Prometheus says {last:?}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the test's calls were answered, counted on the client's side.
#[derive(Default)]
struct Answered {
    submitted: AtomicUsize,
    acknowledged: AtomicUsize,
}

const SUBMIT: &str = "placement.v1.ReferralService/SubmitReferral";
const ACKNOWLEDGE: &str = "placement.v1.ReferralService/AcknowledgeReferral";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_every_service_and_the_counters_move_by_what_was_done() {
    let receiver = WebhookReceiver::start().await;
    let f = Fixture::with(StackOptions {
        // Referrals left unacknowledged are overdue after 3 s.
        ack_deadline: Some("3s".into()),
        env: vec![("PLACEMENT_METRICS_INTERVAL".into(), "500ms".into())],
        ..Default::default()
    })
    .await;
    let targets: Vec<(String, String)> = f
        .stack
        .metrics
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(targets.len(), placement_platform::services::ALL.len());
    assert_each_process_mirrors_its_health(&targets).await;
    let prometheus = Prometheus::start(&targets);
    assert_every_service_scraped(&prometheus, &targets).await;
    add_the_providers_webhook(&f, &receiver).await;
    // Counted from now: what an earlier scrape saw (the demo's loading) is the base.
    let base_submit = prometheus.value(&ok_of(SUBMIT)).await.expect("query");
    let base_ack = prometheus.value(&ok_of(ACKNOWLEDGE)).await.expect("query");
    let (flows, left_unacknowledged) = (16, 4);
    let answered = run_flows_and_one_refused(&f, flows, left_unacknowledged).await;
    let submitted = answered.submitted.load(Ordering::SeqCst) as f64;
    let acknowledged = answered.acknowledged.load(Ordering::SeqCst) as f64;
    prometheus
        .expect(&ok_of(SUBMIT), base_submit + submitted)
        .await;
    prometheus
        .expect(&ok_of(ACKNOWLEDGE), base_ack + acknowledged)
        .await;
    prometheus
        .expect(
            &format!("sum(placement_grpc_requests_total{{method=\"{SUBMIT}\",code=\"INVALID_ARGUMENT\"}})"),
            1.0,
        )
        .await;
    assert_every_call_timed(&prometheus).await;
    assert_each_submission_applied_and_sent_once(&prometheus, &receiver, flows).await;
    assert_the_gauges_and_the_alerts(&prometheus, left_unacknowledged).await;
}

/// Each process mirrors grpc.health.v1 on its metrics port, for probes without mutual TLS.
async fn assert_each_process_mirrors_its_health(targets: &[(String, String)]) {
    for (name, addr) in targets {
        for (path, answer) in [("readyz", "SERVING"), ("livez", "ok")] {
            let r = reqwest::get(format!("http://{addr}/{path}"))
                .await
                .expect("probe");
            assert_eq!(r.status(), 200, "{name} /{path}");
            assert_eq!(r.text().await.expect("body"), answer, "{name} /{path}");
        }
    }
}

/// Prometheus finds every service up, each with its own service label.
async fn assert_every_service_scraped(prometheus: &Prometheus, targets: &[(String, String)]) {
    let every = targets.len() as f64;
    prometheus.expect("sum(up{job=\"placement\"})", every).await;
    let labelled = prometheus
        .query("count by (service) (placement_db_pool_max_connections)")
        .await
        .expect("pool series");
    assert_eq!(
        labelled.len(),
        targets.len(),
        "one service label each: {labelled:?}"
    );
}

/// The provider's webhook for new requests, once the notifications service has it.
async fn add_the_providers_webhook(f: &Fixture, receiver: &WebhookReceiver) {
    let provider = f.agency("provider-vratsa");
    let hook = f
        .add_endpoint(
            provider,
            NotificationChannel::Webhook,
            &receiver.url(),
            &["referral.submitted"],
            Language::En,
        )
        .await
        .expect("a webhook");
    receiver.set_secret(&hook.secret);
    assert!(
        f.stack.wait_for_endpoints(1, WAIT).await,
        "the endpoint reaches notifications"
    );
}

/// `flows` submissions, all but `left_unacknowledged` of them acknowledged by both parties, and one
/// refused request: its code is counted, and nothing else moves. Returns what the calls were answered.
async fn run_flows_and_one_refused(
    f: &Fixture,
    flows: usize,
    left_unacknowledged: usize,
) -> Answered {
    let answered = Answered::default();
    for i in 0..flows {
        let id = submit(f, &answered, i).await;
        if i >= left_unacknowledged {
            acknowledge(f, &answered, &id).await;
        }
    }
    assert_eq!(answered.submitted.load(Ordering::SeqCst), flows);
    // One refused request: its code is counted, and nothing else moves.
    let refused = f
        .clients
        .referrals
        .clone()
        .submit_referral(as_agency(
            f.agency("dsa-pirdop"),
            placement_proto::v1::SubmitReferralRequest::default(),
        ))
        .await
        .expect_err("an empty request is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    answered
}

/// Every call timed: the histogram counts as many calls as the counter, whatever their code.
async fn assert_every_call_timed(prometheus: &Prometheus) {
    let timed = prometheus
        .value(&format!(
            "sum(placement_grpc_request_duration_seconds_count{{method=\"{SUBMIT}\"}})"
        ))
        .await;
    let counted = prometheus
        .value(&format!(
            "sum(placement_grpc_requests_total{{method=\"{SUBMIT}\"}})"
        ))
        .await;
    assert_eq!(timed, counted);
}

/// The notifications service applied each submission once, and its webhook was sent once.
async fn assert_each_submission_applied_and_sent_once(
    prometheus: &Prometheus,
    receiver: &WebhookReceiver,
    flows: usize,
) {
    prometheus
        .expect(
            "sum(placement_events_consumed_total{service=\"notifications\",event_type=\"referral.submitted\",outcome=\"applied\"})",
            flows as f64,
        )
        .await;
    prometheus
        .expect(
            "sum(placement_deliveries_total{channel=\"webhook\",status=\"sent\"})",
            flows as f64,
        )
        .await;
    assert_eq!(receiver.accepted().len(), flows);
}

/// Gauges: the unacknowledged referrals are overdue; nothing is left in the outboxes. The alert rules
/// evaluate on these very series: every rule is healthy, and the overdue one is pending (it waits 15
/// minutes before it fires).
async fn assert_the_gauges_and_the_alerts(prometheus: &Prometheus, left_unacknowledged: usize) {
    prometheus
        .expect(
            "max(placement_referrals_overdue)",
            left_unacknowledged as f64,
        )
        .await;
    prometheus
        .expect("max(placement_outbox_unpublished_events)", 0.0)
        .await;
    prometheus
        .expect("max(placement_deliveries_pending)", 0.0)
        .await;
    prometheus.expect("sum(placement_dead_letters)", 0.0).await;
    assert_rules_healthy(prometheus).await;
    prometheus
        .expect(
            "count(ALERTS{alertname=\"PlacementReferralsOverdue\",alertstate=\"pending\"})",
            1.0,
        )
        .await;
    prometheus
        .expect("count(ALERTS{alertname=\"PlacementServiceDown\"})", 0.0)
        .await;
}

fn ok_of(method: &str) -> String {
    format!("sum(placement_grpc_requests_total{{method=\"{method}\",code=\"OK\"}})")
}

async fn assert_rules_healthy(prometheus: &Prometheus) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = reqwest::get(format!("{}/api/v1/rules", prometheus.url))
            .await
            .expect("rules")
            .text()
            .await
            .expect("rules text");
        let body: serde_json::Value = serde_json::from_str(&text).expect("rules JSON");
        let rules: Vec<&serde_json::Value> = body
            .pointer("/data/groups")
            .and_then(|g| g.as_array())
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten())
            .collect();
        let evaluated = rules.len() == 9 && rules.iter().all(|r| r["health"] == "ok");
        if evaluated {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "alert rules not all healthy: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Opens a one-child case and submits it to FTPC Vratsa 1; counts the OK answers the client saw.
async fn submit(f: &Fixture, answered: &Answered, i: usize) -> String {
    let retries = Retries::default();
    let sender = f.agency("dsa-pirdop");
    let year = Utc::now().year();
    let case = with_retries(&retries, "OpenCase", || {
        let mut cases = f.clients.cases.clone();
        let req = as_agency(
            sender,
            OpenCaseRequest {
                children: vec![ChildOf {
                    pseudonym: format!("Child {i}"),
                    birth_year: year - 8,
                    sex: Sex::Male as i32,
                    ..Default::default()
                }],
                current_setting: String::new(),
            },
        );
        async move { cases.open_case(req).await }
    })
    .await
    .expect("OpenCase")
    .expect("a case")
    .into_inner();
    let submission = f.submission(
        &case,
        f.demo.service("ftpc-vratsa"),
        &format!("metrics-{i}"),
    );
    let referral = with_retries(&retries, "SubmitReferral", || {
        let mut c = f.clients.referrals.clone();
        let req = as_agency(sender, submission.clone());
        async move {
            let r = c.submit_referral(req).await;
            if r.is_ok() {
                answered.submitted.fetch_add(1, Ordering::SeqCst);
            }
            r
        }
    })
    .await
    .expect("SubmitReferral")
    .expect("a referral")
    .into_inner();
    referral.id
}

async fn acknowledge(f: &Fixture, answered: &Answered, id: &str) {
    let retries = Retries::default();
    for party in ["provider-vratsa", "foster-vratsa"] {
        let party = f.agency(party);
        with_retries(&retries, "AcknowledgeReferral", || {
            let mut c = f.clients.referrals.clone();
            let req = as_agency(
                party,
                AcknowledgeReferralRequest {
                    referral_id: id.to_string(),
                },
            );
            async move {
                let r = c.acknowledge_referral(req).await;
                if r.is_ok() {
                    answered.acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                r
            }
        })
        .await
        .expect("AcknowledgeReferral");
    }
}
