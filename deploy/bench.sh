#!/usr/bin/env bash
# The benchmark: a release build of the services and of placement-bench, which starts its own stack on
# free ports against the local PostgreSQL and RabbitMQ (and the web app, an OpenID provider and a browser to
# sign in with) and writes target/bench/{bench.json,latency.svg}.
# Takes several minutes (loading 1,000,000 referrals among them); pass --history N for fewer, or
# --telemetry-only [--first-rate R] for the cost of metrics and traces alone; --reports-only
# [--first-rate R] [--history N] for the reports' latencies alone under that load; --steady --first-rate R
# --seconds S [--count-statements] for one constant load on a fresh stack and each service's CPU (and
# database round trips) per flow, beside the clients' and the whole machine's (which bounds the flows it
# holds), its pids in <out>/pids.txt for a profiler; --label L names the run's row beside the earlier
# runs' of docs/bench-history.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/infra.sh up
# The web app's pages are timed with a session signed in through the OpenID provider in a real browser.
PLACEMENT_TEST_OIDC_DIR="$(bash deploy/infra.sh oidc)"
export PLACEMENT_TEST_OIDC_DIR
PLACEMENT_TEST_CHROMEDRIVER="$(bash deploy/infra.sh browser)"
export PLACEMENT_TEST_CHROMEDRIVER
# The cost of traces is measured with every span sent to an OTLP receiver (Python, opentelemetry-proto).
PLACEMENT_TEST_PYTHON="$(bash deploy/infra.sh python)"
export PLACEMENT_TEST_PYTHON
# Every process of the stack shares this machine's cores: one runtime thread per service is cheaper.
export TOKIO_WORKER_THREADS="${TOKIO_WORKER_THREADS:-1}"
cargo build --release --workspace --bins
"${CARGO_TARGET_DIR:-target}/release/placement-bench" --out target/bench "$@"
