//! Restarting the shared PostgreSQL and RabbitMQ, always leaving them running as they were found.

use std::{process::Command, time::Duration};

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn pg_version() -> String {
    std::env::var("PG_VERSION").unwrap_or_else(|_| "15".into())
}

fn pg_cluster() -> String {
    std::env::var("PG_CLUSTER").unwrap_or_else(|_| "main".into())
}

/// Starts whatever a fault left stopped, when dropped (also while a failing test unwinds).
pub struct InfraGuard;

impl Drop for InfraGuard {
    fn drop(&mut self) {
        ensure_rabbitmq_running();
        ensure_postgres_running();
    }
}

pub fn ensure_rabbitmq_running() {
    if !run("rabbitmq-diagnostics", &["-q", "check_running"]) {
        run("rabbitmqctl", &["-q", "start_app"]);
    }
}

pub fn ensure_postgres_running() {
    let (v, c) = (pg_version(), pg_cluster());
    if !run("pg_ctlcluster", &[&v, &c, "status"]) {
        run("pg_ctlcluster", &[&v, &c, "start"]);
    }
}

/// `rabbitmqctl stop_app`; the broker is down until [`start_rabbitmq_app`].
pub fn stop_rabbitmq_app() {
    assert!(
        run("rabbitmqctl", &["-q", "stop_app"]),
        "rabbitmqctl stop_app failed"
    );
}

pub fn start_rabbitmq_app() {
    assert!(
        run("rabbitmqctl", &["-q", "start_app"]),
        "rabbitmqctl start_app failed"
    );
}

/// Stops PostgreSQL in fast mode: every connection is terminated.
pub fn stop_postgres() {
    let (v, c) = (pg_version(), pg_cluster());
    assert!(
        run("pg_ctlcluster", &[&v, &c, "stop", "-m", "fast"]),
        "pg_ctlcluster stop failed"
    );
}

/// Starts PostgreSQL again and waits until it answers.
pub fn start_postgres() {
    let (v, c) = (pg_version(), pg_cluster());
    assert!(
        run("pg_ctlcluster", &[&v, &c, "start"]),
        "pg_ctlcluster start failed"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !run("pg_isready", &["-q", "-h", "127.0.0.1"]) {
        assert!(
            std::time::Instant::now() < deadline,
            "PostgreSQL did not come back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
