#!/usr/bin/env bash
# Runs every test: unit tests and the end-to-end tests against a real PostgreSQL and RabbitMQ
# (installed and started by deploy/infra.sh if missing). Each end-to-end test starts every service
# binaries as child processes in a database and exchange of its own, and removes them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/infra.sh up
# The FHIR export is checked with a FHIR library no one here wrote, and e-mail against a real SMTP server
# (aiosmtpd) the tests start: both from a virtual environment under target/, made once.
PLACEMENT_TEST_PYTHON="$(bash deploy/infra.sh python)"
export PLACEMENT_TEST_PYTHON
# Sign-in is tested against a real OpenID provider (deploy/oidc) under Node.js.
PLACEMENT_TEST_OIDC_DIR="$(bash deploy/infra.sh oidc)"
export PLACEMENT_TEST_OIDC_DIR
# The web app is tried in a real browser: Debian's chromium, driven through chromedriver.
PLACEMENT_TEST_CHROMEDRIVER="$(bash deploy/infra.sh browser)"
export PLACEMENT_TEST_CHROMEDRIVER
# The metrics are scraped by a real Prometheus, and the alert rules checked by its promtool.
PLACEMENT_TEST_PROMETHEUS_DIR="$(bash deploy/infra.sh prometheus)"
export PLACEMENT_TEST_PROMETHEUS_DIR
# The Kubernetes overlays are rendered with kubectl's kustomize and validated against Kubernetes' schemas.
PLACEMENT_TEST_KUBECTL="$(bash deploy/infra.sh kubectl)"
export PLACEMENT_TEST_KUBECTL
PLACEMENT_TEST_CRDS_DIR="$(bash deploy/infra.sh crds)"
export PLACEMENT_TEST_CRDS_DIR
# The docs' block that follows a trace through the JSON logs uses jq, as a reader would.
bash deploy/infra.sh jq >/dev/null
# Two tests run the README's and the docs' lines as written, which start the services on their documented
# ports (50051-50056, metrics 51051-51056; the demo's 50061-50066 and 51061-51066) while other tests hold
# hundreds of outgoing connections: the kernel is asked not to lend those ports to outgoing connections
# (where it lets this user; the reservation adds to any already made and lasts until the machine restarts).
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
if [ -w "$reserved" ]; then
  have=$(cat "$reserved")
  echo "${have:+$have,}50051-50056,51051-51056,50061-50066,51061-51066" > "$reserved" 2>/dev/null || true
fi
# The end-to-end tests start the service binaries, so build them first, in the same target directory.
cargo build --workspace --bins
summary=target/debug/test-summary.txt
rm -f "$summary"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# What the fault suite measured, one line per fault.
[ -f "$summary" ] && cat "$summary"
# One closing line over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
