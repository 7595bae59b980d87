#!/usr/bin/env bash
# Runs every test: unit tests and the end-to-end tests against a real PostgreSQL and RabbitMQ
# (installed and started by deploy/infra.sh if missing). Each end-to-end test starts the four service
# binaries as child processes in a database and exchange of its own, and removes them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/infra.sh up
# The FHIR export is checked with a FHIR library no one here wrote.
python3 -c "import fhir.resources.R4B" 2>/dev/null || python3 -m pip install --quiet "fhir.resources>=7"
# E-mail is checked against a real SMTP server (aiosmtpd), started by the tests.
python3 -c "import aiosmtpd" 2>/dev/null || python3 -m pip install --quiet "aiosmtpd>=1.4"
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
