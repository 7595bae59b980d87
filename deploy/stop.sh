#!/usr/bin/env bash
# Stops the services started by deploy/start.sh (SIGTERM, then waits for them to drain).
# PostgreSQL and RabbitMQ keep running.
set -uo pipefail
cd "$(dirname "$0")/.."
RUN="${PLACEMENT_RUN_DIR:-$(pwd)/.run}"
for pidfile in "$RUN"/*.pid; do
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
      echo "[stop] placement-$svc stopped" >&2
    fi
  fi
  rm -f "$pidfile"
done
