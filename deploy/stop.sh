#!/usr/bin/env bash
# Stops the services started by deploy/start.sh (SIGTERM, then waits for them to drain): those of
# PLACEMENT_RUN_DIR when it is set, else both the stack's (.run) and a demo's left running with
# KEEP_RUNNING=1 (.run/demo, with its OpenID provider). PostgreSQL and RabbitMQ keep running.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -n "${PLACEMENT_RUN_DIR:-}" ]; then
  RUNS=("$PLACEMENT_RUN_DIR")
else
  RUNS=("$(pwd)/.run" "$(pwd)/.run/demo")
fi
for run in "${RUNS[@]}"; do
  for pidfile in "$run"/*.pid; do
    [ -f "$pidfile" ] || continue
    svc=$(basename "$pidfile" .pid)
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "[stop] placement-$svc did not stop in 15s; killing" >&2
        kill -KILL "$pid"
      else
        echo "[stop] placement-$svc stopped ($run)" >&2
      fi
    fi
    rm -f "$pidfile"
  done
done
