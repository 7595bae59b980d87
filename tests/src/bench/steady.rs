//! One constant load on a fresh stack, each service's CPU and database round trips per flow: what a flow
//! costs, service by service. `placement-bench --steady` runs it alone (to profile the services under a
//! load that does not change); the full benchmark runs it once more with every statement counted.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, atomic::Ordering},
};

use placement_cli::demo;
use serde::Serialize;

use super::{
    CLOCK_TICKS_PER_S, Calls, create_directory, offer, open_cases, process_usage, settled_work,
};
use crate::{Stack, StackOptions};

/// What each flow cost one service.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ServiceCost {
    pub cpu_ms_per_flow: f64,
    /// Of `cpu_ms_per_flow`, what the AMQP client's own I/O thread spent: lapin reads and writes the
    /// broker's socket on a thread of its own, so each frame in or out also costs a hand-over between it
    /// and the runtime's thread.
    pub amqp_io_ms_per_flow: f64,
    /// The round trips the service's database driver made, when they were counted: each statement it
    /// logged, and each transaction's `BEGIN` (or `BEGIN; INSERT …`), which it sends without logging.
    pub round_trips_per_flow: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct SteadyRun {
    pub offered_flows_per_s: f64,
    pub seconds: f64,
    pub flows: u64,
    pub errors: u64,
    /// The calls' latencies at this load: where a load stops holding shows here first.
    #[serde(flatten)]
    pub calls: Calls,
    pub services: BTreeMap<String, ServiceCost>,
    /// CPU ms per flow of this benchmark's own clients.
    pub client_cpu_ms_per_flow: f64,
    /// CPU ms per flow of every process on the machine (the services, PostgreSQL, RabbitMQ, the clients
    /// and the kernel's work for them): what bounds the flows a machine holds, whatever the design's
    /// ceiling, which counts each part's raw rate as if it had the machine to itself.
    pub machine_cpu_ms_per_flow: f64,
}

/// The driver's own record of each statement it sent (the services have sqlx log every one at TRACE
/// under this target).
const STATEMENT_TARGET: &str = "sqlx::query";

/// Offers `rate` flows/s for `seconds` to a fresh stack and measures what they cost each service. With
/// `count_statements`, every service logs each statement it sends (which costs CPU of its own: the CPU
/// figures of such a run are not the ones to compare). The services' process ids are written to
/// `pids_file` before the load starts, so that a profiler can be pointed at them.
pub async fn run(rate: f64, seconds: f64, count_statements: bool, pids_file: &Path) -> SteadyRun {
    let mut options = StackOptions {
        env: vec![("PLACEMENT_DATABASE_MAX_CONNECTIONS".into(), "10".into())],
        ..Default::default()
    };
    if count_statements {
        let filter = format!("info,{STATEMENT_TARGET}=trace");
        options.env.push(("RUST_LOG".into(), filter));
        // JSON lines name their target (the text format leaves it out).
        options
            .env
            .push(("PLACEMENT_LOG_FORMAT".into(), "json".into()));
    }
    let mut stack = Stack::start(options).await;
    let clients = stack.clients();
    let demo = demo::seed(&clients).await.expect("demo data");
    let targets = Arc::new(create_directory(&clients, &demo, 20).await);
    let cases = open_cases(&clients, &demo, (rate * seconds).ceil() as usize).await;
    let mut db = stack.db().await;
    let pids = stack.pids();
    let before: Vec<(f64, f64, usize)> = (pids.iter())
        .map(|(name, pid)| {
            let (cpu, amqp_io) = (process_usage(*pid).0, amqp_io_cpu(*pid));
            (cpu, amqp_io, round_trips(&stack, name))
        })
        .collect();
    let (client_before, machine_before) = (process_usage(std::process::id()).0, machine_busy());
    let listed: Vec<String> = pids.iter().map(|(n, p)| format!("{n} {p}")).collect();
    std::fs::write(pids_file, listed.join("\n") + "\n").expect("write the pids file");
    eprintln!(
        "steady: {rate:.1} flows/s for {seconds} s; pids in {}",
        pids_file.display()
    );
    let (step, _) = offer(clients.clone(), targets, cases, rate, seconds).await;
    settled_work(&mut db).await;
    let flows = step.flows.load(Ordering::Relaxed).max(1) as f64;
    let client_cpu_ms_per_flow =
        (process_usage(std::process::id()).0 - client_before) * 1000.0 / flows;
    let machine_cpu_ms_per_flow = (machine_busy() - machine_before) * 1000.0 / flows;
    let services = (pids.iter().zip(&before))
        .map(|((name, pid), (cpu, amqp_io, sent))| {
            let cost = ServiceCost {
                cpu_ms_per_flow: (process_usage(*pid).0 - cpu) * 1000.0 / flows,
                amqp_io_ms_per_flow: (amqp_io_cpu(*pid) - amqp_io) * 1000.0 / flows,
                round_trips_per_flow: count_statements
                    .then(|| (round_trips(&stack, name) - sent) as f64 / flows),
            };
            (name.clone(), cost)
        })
        .collect();
    stack.stop_all();
    SteadyRun {
        offered_flows_per_s: rate,
        seconds,
        flows: step.flows.load(Ordering::Relaxed),
        errors: step.errors.load(Ordering::Relaxed),
        calls: step.calls(),
        services,
        client_cpu_ms_per_flow,
        machine_cpu_ms_per_flow,
    }
}

/// CPU seconds every process on the machine has spent since it started (user, nice, system and
/// interrupts; not idle, waiting for I/O or stolen by the hypervisor).
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = (stat.lines().next().unwrap_or_default().split_whitespace())
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …; guest time is counted in user already.
    let busy = [0, 1, 2, 5, 6]
        .iter()
        .filter_map(|i| ticks.get(*i))
        .sum::<f64>();
    busy / CLOCK_TICKS_PER_S
}

/// The database round trips `service` made so far: the statements it logged, and for each transaction
/// that ended (a logged `COMMIT` or `ROLLBACK`) the `BEGIN` that opened it, which sqlx sends without
/// logging. A transaction dropped unfinished ends with a `ROLLBACK` sent along with the next statement:
/// its `BEGIN` is not counted (none of a flow's, unless a call failed).
fn round_trips(stack: &Stack, service: &str) -> usize {
    let needle = format!(r#""target":"{STATEMENT_TARGET}""#);
    let ends =
        |l: &str| l.contains(r#""summary":"COMMIT""#) || l.contains(r#""summary":"ROLLBACK""#);
    std::fs::read_to_string(stack.log_dir.join(format!("{service}.log")))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(|l| if ends(l) { 2 } else { 1 })
        .sum()
}

/// CPU seconds the AMQP client's I/O thread (`lapin-io-loop`) of process `pid` has spent: a thread
/// that ended (a connection replaced) is not counted.
fn amqp_io_cpu(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    let ticks: f64 = (tasks.flatten())
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|stat| {
            let (head, rest) = stat.rsplit_once(')')?;
            if !head.ends_with("(lapin-io-loop") {
                return None;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
        })
        .sum();
    ticks / CLOCK_TICKS_PER_S
}

/// Each service's CPU (ms) and round trips per flow, and their sums.
pub fn table(run: &SteadyRun) -> String {
    let mut t = format!(
        "Per service, {} flows at {:.1} flows/s ({} errors): CPU ms per flow (of which the AMQP client's I/O thread), database round trips per flow\n",
        run.flows, run.offered_flows_per_s, run.errors
    );
    let (mut cpu, mut amqp_io, mut trips) = (0.0, 0.0, None::<f64>);
    for (name, cost) in &run.services {
        cpu += cost.cpu_ms_per_flow;
        amqp_io += cost.amqp_io_ms_per_flow;
        let counted = cost.round_trips_per_flow.map_or_else(
            || "-".to_string(),
            |n| {
                trips = Some(trips.unwrap_or(0.0) + n);
                format!("{n:.1}")
            },
        );
        t += &format!(
            "  {name:<14} {:>7.2} ms ({:>4.2})  {counted:>6}\n",
            cost.cpu_ms_per_flow, cost.amqp_io_ms_per_flow
        );
    }
    let trips = trips.map_or_else(|| "-".to_string(), |n| format!("{n:.1}"));
    t += &format!(
        "  {:<14} {cpu:>7.2} ms ({amqp_io:>4.2})  {trips:>6}\n",
        "all"
    );
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let machine = run.machine_cpu_ms_per_flow;
    t += &format!(
        "  {:<14} {:>7.2} ms  (the clients driving the load)\n",
        "client", run.client_cpu_ms_per_flow
    );
    t += &format!(
        "  {:<14} {:>7.2} ms  (PostgreSQL, RabbitMQ and the kernel's work for all)\n",
        "rest",
        machine - cpu - run.client_cpu_ms_per_flow
    );
    t += &format!(
        "  {:<14} {machine:>7.2} ms  (every process: {cores} cores hold at most {:.0} flows/s)\n",
        "machine",
        cores as f64 * 1000.0 / machine.max(f64::MIN_POSITIVE)
    );
    t += "Calls (p50/p99 ms):";
    for (name, l) in [
        ("submit", &run.calls.submit),
        ("acknowledge", &run.calls.acknowledge),
        ("accept", &run.calls.accept),
        ("confirm", &run.calls.confirm_placement),
    ] {
        t += &format!("  {name} {:.1}/{:.1}", l.p50_ms, l.p99_ms);
    }
    t + "\n"
}
