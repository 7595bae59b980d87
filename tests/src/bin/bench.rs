//! `placement-bench`: run with `bash deploy/bench.sh` (a release build). Starts its own stack of the four
//! service binaries beside it, measures, prints a table, and writes `bench.json` and `latency.svg`.

// Measuring and test code: the rule against wrapping casts guards what services do with requests.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::path::PathBuf;

use placement_e2e::bench::{self, BenchConfig};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench"));
    let mut config = if args.iter().any(|a| a == "--smoke") {
        BenchConfig::smoke(out)
    } else {
        BenchConfig::full(out)
    };
    if let Some(n) = args
        .iter()
        .position(|a| a == "--history")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
    {
        config.history = n;
    }
    let number = |flag: &str| -> Option<f64> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
    };
    // For looking at one load closely (profiling): where to start, how many steps, how long each.
    if let Some(label) = (args.iter().position(|a| a == "--label")).and_then(|i| args.get(i + 1)) {
        config.label = label.clone();
    }
    if let Some(rate) = number("--first-rate") {
        config.first_rate = rate;
    }
    if let Some(steps) = number("--steps") {
        config.max_steps = steps as usize;
    }
    if let Some(seconds) = number("--seconds") {
        config.seconds = seconds;
    }
    // One constant load (--first-rate, --seconds) on a fresh stack, each service's cost per flow; the
    // services' pids are in <out>/pids.txt while it runs, for a profiler.
    if args.iter().any(|a| a == "--steady") {
        let count = args.iter().any(|a| a == "--count-statements");
        let run = bench::steady_only(&config, count).await;
        println!("{}", bench::steady_table(&run));
        return;
    }
    if args.iter().any(|a| a == "--reports-only") {
        println!("{}", bench::reports_only(&config).await);
        return;
    }
    if args.iter().any(|a| a == "--telemetry-only") {
        let runs = bench::telemetry_only(&config).await;
        println!("{}", bench::telemetry_table(&runs));
        return;
    }
    let report = bench::run(config.clone()).await;
    println!("{}", bench::table(&report));
    println!(
        "Figures: {}/bench.json, plot: {}/latency.svg",
        config.out_dir.display(),
        config.out_dir.display()
    );
}
