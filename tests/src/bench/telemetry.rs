//! What observing costs: the same constant load on a fresh stack with metrics and traces off, with metrics
//! on (the default), and with metrics on and every span exported to an OTLP receiver; the services' CPU
//! time per flow in each.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use placement_cli::demo;
use serde::Serialize;

use super::{count_work, create_directory, offer, open_cases, process_usage};
use crate::{Stack, StackOptions, otlp::OtlpReceiver};

#[derive(Debug, Clone, Serialize, Default)]
pub struct TelemetryRun {
    /// "off", "metrics" or "metrics and traces".
    pub setting: String,
    pub offered_flows_per_s: f64,
    pub flows: u64,
    pub errors: u64,
    /// CPU seconds of every service together, per flow.
    pub cpu_seconds_per_flow: f64,
}

/// The three settings, each on a stack of its own, `rounds` times in turn (so that a drift of the machine
/// falls on every setting alike).
pub(super) async fn measure(rate: f64, seconds: f64, rounds: usize) -> Vec<TelemetryRun> {
    let receiver = OtlpReceiver::start();
    let settings: [(&str, Vec<(String, String)>); 3] = [
        ("off", vec![("PLACEMENT_METRICS_ADDR".into(), "off".into())]),
        ("metrics", vec![]),
        (
            "metrics and traces",
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint())],
        ),
    ];
    let mut runs = Vec::new();
    for _ in 0..rounds {
        for (setting, env) in &settings {
            eprintln!("telemetry {setting}: {rate:.1} flows/s for {seconds} s");
            runs.push(run(setting, env.clone(), rate, seconds).await);
        }
    }
    runs
}

async fn run(setting: &str, env: Vec<(String, String)>, rate: f64, seconds: f64) -> TelemetryRun {
    let mut options = StackOptions {
        env: vec![("PLACEMENT_DATABASE_MAX_CONNECTIONS".into(), "10".into())],
        ..Default::default()
    };
    options.env.extend(env);
    let mut stack = Stack::start(options).await;
    let clients = stack.clients();
    let demo = demo::seed(&clients).await.expect("demo data");
    let targets = Arc::new(create_directory(&clients, &demo, 20).await);
    let cases = open_cases(&clients, &demo, (rate * seconds).ceil() as usize).await;
    let mut db = stack.db().await;
    let pids = stack.pids();
    let cpu = || -> f64 { pids.iter().map(|(_, pid)| process_usage(*pid).0).sum() };
    let before = cpu();
    let (step, _) = offer(clients.clone(), targets, cases, rate, seconds).await;
    // The flows' events are all applied when the counts stop moving.
    let mut work = count_work(&mut db).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = count_work(&mut db).await;
        if now == work {
            break;
        }
        work = now;
    }
    let flows = step.flows.load(Ordering::Relaxed);
    let spent = cpu() - before;
    stack.stop_all();
    TelemetryRun {
        setting: setting.to_string(),
        offered_flows_per_s: rate,
        flows,
        errors: step.errors.load(Ordering::Relaxed),
        cpu_seconds_per_flow: spent / flows.max(1) as f64,
    }
}

/// The median CPU per flow of each setting, and how much above "off" it is.
pub(super) fn table(runs: &[TelemetryRun]) -> String {
    let median = |setting: &str| {
        let mut v: Vec<f64> = (runs.iter())
            .filter(|r| r.setting == setting)
            .map(|r| r.cpu_seconds_per_flow)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let Some(off) = median("off") else {
        return String::new();
    };
    let rate = runs.first().map_or(0.0, |r| r.offered_flows_per_s);
    let mut t = format!(
        "Cost of observing (CPU s per flow, every service, median of {} runs at {rate:.1} flows/s)\n",
        runs.len() / 3
    );
    for setting in ["off", "metrics", "metrics and traces"] {
        if let Some(cpu) = median(setting) {
            let extra = (cpu / off.max(1e-9) - 1.0) * 100.0;
            t += &format!("  {setting:<20} {cpu:.4}  ({extra:+.0}% of off)\n");
        }
    }
    t
}
