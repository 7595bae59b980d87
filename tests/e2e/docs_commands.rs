//! A newcomer's path works as written: every shell block of README.md and docs/*.md says whether the tests
//! run it (`<!-- run-by-the-tests: NAME -->`) or why they cannot (`<!-- not-run-by-the-tests: WHY -->`), and
//! the blocks a test can run are run here, each as `bash -c "set -euo pipefail\n<block>"` from the project's
//! folder, in the order a reader would: against one stack started the README's way (`deploy/start.sh`, the
//! documented ports, `.run/`), in a shell that exported `PLACEMENT_DEV_KEYS` as the README's lines do.

use std::{
    collections::BTreeSet,
    net::TcpStream,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use placement_e2e::service_names;
use sqlx::Connection as _;

/// The blocks run by other tests: the README's by-hand lines (its unnamed marker, `readme.rs`) and the
/// token minted with openssl (`authz.rs`).
const RUN_ELSEWHERE: [&str; 2] = ["", "mint-with-openssl"];
/// The blocks this file runs, in the order it runs them.
const RUN_HERE: [&str; 9] = [
    "traces",
    "readyz",
    "import-register",
    "export-hsds",
    "operator-cli",
    "prometheus",
    "one-machine",
    "logs-by-trace",
    "demo-kept-running",
];
const SHELLS: [&str; 5] = ["sh", "bash", "shell", "console", "zsh"];
/// The collector the traces block names.
const OTLP_PORT: u16 = 4317;
/// A block may build the workspace (`start.sh`, `run-demo.sh`) before it does its work.
const BLOCK_DEADLINE: Duration = Duration::from_secs(600);
/// What a block started in the background and stopped itself has this long to exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(20);
/// The files the import and export blocks write in the project's folder.
const WRITTEN: [&str; 2] = ["report.csv", "directory.json"];

/// The services' documented ports and `.run/` exist once per machine: the tests that start the stack the
/// README's way take turns.
static DEFAULT_PORTS: Mutex<()> = Mutex::new(());

pub(crate) fn default_ports() -> MutexGuard<'static, ()> {
    DEFAULT_PORTS.lock().unwrap_or_else(PoisonError::into_inner)
}

fn project() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[derive(Debug, Clone, PartialEq)]
enum Marker {
    Run(String),
    NotRun(String),
}

#[derive(Debug, Clone)]
struct Block {
    place: String,
    marker: Option<Marker>,
    body: String,
}

/// README.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(project().join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    pages.insert(0, project().join("README.md"));
    pages
}

/// The marker among the HTML comments right above a fence.
fn marker_above(lines: &[&str], fence: usize) -> Option<Marker> {
    let comments = lines[..fence]
        .iter()
        .rev()
        .map(|l| l.trim())
        .take_while(|l| l.starts_with("<!--") && l.ends_with("-->"));
    for comment in comments {
        let inner = comment
            .trim_start_matches("<!--")
            .trim_end_matches("-->")
            .trim();
        if let Some(why) = inner.strip_prefix("not-run-by-the-tests") {
            return Some(Marker::NotRun(
                why.trim_start_matches(':').trim().to_string(),
            ));
        }
        if let Some(name) = inner.strip_prefix("run-by-the-tests") {
            let name = name.trim_start_matches(':').split_whitespace().next();
            return Some(Marker::Run(name.unwrap_or_default().to_string()));
        }
    }
    None
}

/// Every fenced shell block of `page`, with the marker above it.
fn shell_blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).expect("a page");
    let name = page.strip_prefix(project()).unwrap_or(page).display();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let Some(lang) = lines[at].trim().strip_prefix("```") else {
            at += 1;
            continue;
        };
        let end = (at + 1..lines.len())
            .find(|&i| lines[i].trim() == "```")
            .unwrap_or_else(|| panic!("{name}:{}: a fence that is never closed", at + 1));
        if SHELLS.contains(&lang.trim()) {
            blocks.push(Block {
                place: format!("{name}:{}", at + 1),
                marker: marker_above(&lines, at),
                body: lines[at + 1..end].join("\n"),
            });
        }
        at = end + 1;
    }
    blocks
}

fn all_shell_blocks() -> Vec<Block> {
    pages().iter().flat_map(|p| shell_blocks(p)).collect()
}

#[test]
fn every_shell_block_of_the_readme_and_the_docs_says_whether_the_tests_run_it() {
    let blocks = all_shell_blocks();
    let unmarked: Vec<&str> = blocks
        .iter()
        .filter(|b| b.marker.is_none())
        .map(|b| b.place.as_str())
        .collect();
    assert!(
        unmarked.is_empty(),
        "shell blocks without <!-- run-by-the-tests: NAME --> or <!-- not-run-by-the-tests: WHY --> \
         right above them: {unmarked:?}"
    );
    for block in &blocks {
        if let Some(Marker::NotRun(why)) = &block.marker {
            assert!(
                !why.is_empty(),
                "{}: say why the tests cannot run it",
                block.place
            );
        }
    }
    // Each block marked runnable is run by a test, once, and each block a test runs is marked.
    let mut names: Vec<&str> = blocks
        .iter()
        .filter_map(|b| match &b.marker {
            Some(Marker::Run(name)) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    names.sort_unstable();
    let mut known: Vec<&str> = RUN_ELSEWHERE.iter().chain(&RUN_HERE).copied().collect();
    known.sort_unstable();
    assert_eq!(names, known, "the blocks marked run-by-the-tests");
}

/// A collector on the port the traces block names: `tests/tools/otlp_receiver.py` writing every span it
/// receives as a JSON line.
struct Collector {
    file: PathBuf,
    child: Child,
}

impl Collector {
    fn start() -> Self {
        let file =
            std::env::temp_dir().join(format!("placement-docs-otlp-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/otlp_receiver.py");
        let mut child = Command::new(placement_e2e::python())
            .arg(script)
            .arg(OTLP_PORT.to_string())
            .arg(&file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the OTLP receiver (`bash deploy/infra.sh python` makes its Python)");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut line,
        )
        .expect("the OTLP receiver starts");
        assert!(
            line.starts_with("listening"),
            "no OTLP receiver on 127.0.0.1:{OTLP_PORT} (is the port taken?): {line}"
        );
        Self { file, child }
    }

    /// (service, trace id) of every span received so far. The receiver may be writing a line as it is
    /// read: a line not whole yet is left for the next look.
    fn spans(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|s| {
                (
                    s["service"].as_str().unwrap_or_default().to_string(),
                    s["trace_id"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Waits until every service in `services` sent a span (of `trace`, when given).
    fn wait_for(&self, services: &BTreeSet<String>, trace: Option<&str>) {
        let deadline = Instant::now() + EXIT_DEADLINE;
        loop {
            let seen: BTreeSet<String> = self
                .spans()
                .into_iter()
                .filter(|(_, t)| trace.is_none_or(|trace| t == trace))
                .map(|(s, _)| s)
                .collect();
            if services.is_subset(&seen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the collector got spans (of trace {trace:?}) from {seen:?}, not from each of {services:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Stops whatever the blocks left running and removes what they wrote, however the test ends.
struct Cleanup;

impl Cleanup {
    fn new() -> Self {
        Self.run();
        Self
    }

    fn run(&self) {
        let _ = Command::new("bash")
            .arg("deploy/stop.sh")
            .current_dir(project())
            .stderr(Stdio::null())
            .status();
        for file in WRITTEN {
            let _ = std::fs::remove_file(project().join(file));
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

struct Ran {
    stdout: String,
    stderr: String,
}

impl Ran {
    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs the docs' blocks by name and remembers which it ran.
struct Runner {
    blocks: Vec<Block>,
    ran: Vec<String>,
}

impl Runner {
    fn body(&self, name: &str) -> &str {
        let marker = Some(Marker::Run(name.to_string()));
        let found: Vec<&Block> = self.blocks.iter().filter(|b| b.marker == marker).collect();
        assert_eq!(found.len(), 1, "one block marked run-by-the-tests: {name}");
        &found[0].body
    }

    /// Runs the block `name` as written and fails the test unless it succeeds within the deadline. A block
    /// that `starts` the stack leaves its services running; any other must leave nothing running.
    fn run(&mut self, name: &str, starts: bool) -> Ran {
        let body = self.body(name).to_string();
        let out_file =
            std::env::temp_dir().join(format!("placement-docs-{}-{name}.out", std::process::id()));
        let err_file = out_file.with_extension("err");
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\n{body}"))
            .current_dir(project())
            .env("PLACEMENT_DEV_KEYS", ".run/keys")
            .env_remove("PLACEMENT_RUN_DIR")
            .env_remove("PLACEMENT_LOG_FORMAT")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_file).expect("stdout file"))
            .stderr(std::fs::File::create(&err_file).expect("stderr file"))
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let group = format!("-{}", child.id());
        let deadline = Instant::now() + BLOCK_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for bash") {
                break Some(status);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let left = !starts && !group_ends(&group);
        if !starts || status.is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
        }
        let ran = Ran {
            stdout: std::fs::read_to_string(&out_file).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_file).unwrap_or_default(),
        };
        let _ = std::fs::remove_file(&out_file);
        let _ = std::fs::remove_file(&err_file);
        let (stdout, stderr) = (&ran.stdout, &ran.stderr);
        let status = status.unwrap_or_else(|| {
            panic!("block {name} did not end in {BLOCK_DEADLINE:?}:\n{stdout}\n{stderr}")
        });
        assert!(
            status.success(),
            "block {name} failed ({status}):\n{stdout}\n{stderr}"
        );
        assert!(
            !left,
            "block {name} left a process running:\n{stdout}\n{stderr}"
        );
        self.ran.push(name.to_string());
        ran
    }
}

/// Whether every process of the process group `group` ("-<pgid>") has exited within the deadline.
fn group_ends(group: &str) -> bool {
    let deadline = Instant::now() + EXIT_DEADLINE;
    loop {
        let alive = Command::new("kill")
            .args(["-0", "--", group])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !alive {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pid files left in a run folder.
fn pid_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "pid"))
                .collect()
        })
        .unwrap_or_default()
}

fn processes() -> BTreeSet<String> {
    service_names().map(|s| format!("placement-{s}")).collect()
}

/// `placement-cli status`: every service answered with its database and broker up.
fn assert_every_service_ok(stdout: &str) {
    for name in service_names() {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no status line for {name}:\n{stdout}"));
        assert!(
            line.contains("database ok") && line.contains("broker ok"),
            "{line}"
        );
    }
}

#[test]
fn the_docs_command_blocks_work_as_written_against_a_stack_started_the_readmes_way() {
    let _turn = default_ports();
    let _cleanup = Cleanup::new();
    let collector = Collector::start();
    let mut runner = Runner {
        blocks: all_shell_blocks(),
        ran: Vec::new(),
    };
    // docs/operating.md "Traces": the stack started afresh, sending spans to the collector, logging JSON.
    let started = runner.run("traces", true);
    let count = service_names().count();
    assert!(
        started
            .all()
            .contains(&format!("all {count} services are serving")),
        "{}",
        started.all()
    );
    // "Health": the metrics port mirrors grpc.health.v1.
    assert_eq!(runner.run("readyz", false).stdout.trim(), "SERVING");
    run_the_integrators_blocks(&mut runner);
    the_reports_service_knows_an_rdsa_of_vratsa();
    run_the_operators_blocks(&mut runner);
    // "Running it on one machine": the placement against the running stack, then every service stopped.
    let one = runner.run("one-machine", false);
    assert!(
        one.stdout.contains("history:") && one.stdout.contains("PLACED"),
        "{}",
        one.all()
    );
    assert!(one.stderr.contains("stopped"), "{}", one.stderr);
    let left = pid_files(&project().join(".run"));
    assert!(left.is_empty(), "left running: {left:?}");
    assert_the_logs_lead_to_the_trace(&mut runner, &collector);
    // README.md: the demo kept running, then stopped with the stack's own stop.sh.
    let demo = runner.run("demo-kept-running", false);
    assert!(demo.all().contains("Done: referral"), "{}", demo.all());
    assert!(
        demo.stderr.contains("placement-web stopped"),
        "{}",
        demo.stderr
    );
    let left = pid_files(&project().join(".run/demo"));
    assert!(left.is_empty(), "the demo left running: {left:?}");
    assert_eq!(runner.ran, RUN_HERE, "the blocks this test runs");
}

/// docs/integrating.md: the register imported (a dry run, then with a report file), then the directory
/// exported in HSDS, with it.
fn run_the_integrators_blocks(runner: &mut Runner) {
    let import = runner.run("import-register", false);
    assert!(
        import.stdout.contains("dry run (nothing changed)"),
        "{}",
        import.all()
    );
    let report =
        std::fs::read_to_string(project().join("report.csv")).expect("the import wrote report.csv");
    assert!(report.starts_with("row,register_id,outcome"), "{report}");
    assert!(report.lines().any(|l| l.contains(",SR-0001,")), "{report}");
    let export = runner.run("export-hsds", false);
    let page: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project().join("directory.json"))
            .expect("the export wrote directory.json"),
    )
    .expect("directory.json is JSON");
    let services = page["contents"]
        .as_array()
        .expect("an HSDS page's contents");
    assert!(
        services
            .iter()
            .any(|s| s["alternate_name"] == "register SR-0001"),
        "the imported service is not in the export: {page}"
    );
    let next: serde_json::Value =
        serde_json::from_str(&export.stdout).expect("the incremental export is JSON");
    assert!(next["total_items"].is_u64(), "{next}");
}

/// The operators' block sends Vratsa's RDSA its digest. On a fresh database nobody has registered one yet:
/// the demo data set does, in the one-machine block further on, or a test of the default ports that ran
/// first. So the data set is loaded here as that block loads it, and the test waits until the reports
/// service learnt of the RDSA from the directory's events.
fn the_reports_service_knows_an_rdsa_of_vratsa() {
    let seeded = Command::new("./target/debug/placement-cli")
        .arg("seed-demo")
        .current_dir(project())
        .env("PLACEMENT_DEV_KEYS", ".run/keys")
        .stdout(Stdio::null())
        .status()
        .expect("placement-cli runs");
    assert!(seeded.success(), "seed-demo failed: {seeded}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(placement_cli::scenario::eventually(
            "the reports service to know an RDSA of VRC",
            Duration::from_secs(60),
            || async {
                let mut db = sqlx::PgConnection::connect(&placement_e2e::admin_url())
                    .await
                    .ok()?;
                let known: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM reports.agencies
                     WHERE kind = 'AGENCY_KIND_RDSA' AND region_code = 'VRC'",
                )
                .fetch_one(&mut db)
                .await
                .ok()?;
                (known > 0).then_some(())
            },
        ))
        .expect("the RDSA of VRC reached the reports service");
}

/// docs/operating.md: the operator's command line, and Prometheus scraping every service.
fn run_the_operators_blocks(runner: &mut Runner) {
    let cli = runner.run("operator-cli", false);
    assert_every_service_ok(&cli.stdout);
    assert!(
        cli.stdout
            .lines()
            .any(|l| l.starts_with("notifications: ") && l.ends_with(" dead letter(s)")),
        "no dead letters listed:\n{}",
        cli.all()
    );
    for line in [
        "dead letter(s) sent back to the queue",
        "delivery(ies) DELIVERY_STATUS_FAILED",
        "District VRC, the last 30 days",
        "sent to the RDSA of VRC",
    ] {
        assert!(cli.stdout.contains(line), "no {line:?}:\n{}", cli.all());
    }
    // The block ends with `kill %1`: nothing is left on Prometheus's port (run() saw its process exit).
    let prometheus = runner.run("prometheus", false);
    assert!(
        prometheus.stdout.contains("SUCCESS"),
        "promtool: {}",
        prometheus.all()
    );
    assert!(
        prometheus
            .stdout
            .contains("placement_referrals_overdue{service=\"referrals\"}"),
        "{}",
        prometheus.all()
    );
    let up = prometheus.stdout.matches("\"health\":\"up\"").count();
    assert_eq!(
        up,
        service_names().count(),
        "every service scraped: {}",
        prometheus.all()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", 9090)).is_err(),
        "Prometheus still answers"
    );
}

/// docs/operating.md "Logs": the last referral's step found in the JSON logs of several services by its
/// trace id, and the collector holding that trace.
fn assert_the_logs_lead_to_the_trace(runner: &mut Runner, collector: &Collector) {
    let logs = runner.run("logs-by-trace", false);
    let lines: Vec<serde_json::Value> = logs
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let traces: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["span"]["trace_id"].as_str())
        .collect();
    assert_eq!(traces.len(), 1, "one trace's lines: {}", logs.stdout);
    let trace = traces.into_iter().next().expect("a trace").to_string();
    assert!(
        lines
            .iter()
            .all(|l| l["span"]["trace_id"] == trace.as_str()),
        "every line carries the trace id: {}",
        logs.stdout
    );
    let targets: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["target"].as_str()?.split("::").next())
        .collect();
    for service in ["placement_referrals", "placement_notifications"] {
        assert!(
            targets.contains(service),
            "no line of {service}: {}",
            logs.stdout
        );
    }
    let both = BTreeSet::from(["placement-referrals", "placement-notifications"].map(String::from));
    collector.wait_for(&both, Some(&trace));
    collector.wait_for(&processes(), None);
}
