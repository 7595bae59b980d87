#!/usr/bin/env bash
# Starts PostgreSQL and RabbitMQ if needed, builds, and starts the four services in the background,
# logging to .run/logs/. Services already running (per .run/*.pid) are left as they are.
# Settings come from PLACEMENT_* environment variables (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="${PLACEMENT_RUN_DIR:-$ROOT/.run}"
mkdir -p "$RUN/logs"

bash deploy/infra.sh up
echo "[start] building" >&2
cargo build --workspace --bins --quiet

BIN="$ROOT/target/debug"
# Tokens: without an identity provider's keys (PLACEMENT_AUTH_JWKS_FILE), a local development key is made
# once and trusted; placement-cli signs its requests with it (PLACEMENT_DEV_KEYS).
if [ -z "${PLACEMENT_AUTH_JWKS_FILE:-}" ]; then
  export PLACEMENT_DEV_KEYS="${PLACEMENT_DEV_KEYS:-$RUN/keys}"
  export PLACEMENT_AUTH_JWKS_FILE="$("$BIN/placement-cli" dev-keys --dir "$PLACEMENT_DEV_KEYS")"
fi
# Children's names and personal numbers are sealed with PLACEMENT_DATA_KEY; locally, one made with the keys.
if [ -z "${PLACEMENT_DATA_KEY:-}" ] && [ -n "${PLACEMENT_DEV_KEYS:-}" ]; then
  "$BIN/placement-cli" dev-keys --dir "$PLACEMENT_DEV_KEYS" >/dev/null
  export PLACEMENT_DATA_KEY="$(cat "$PLACEMENT_DEV_KEYS/data-key")"
fi
for svc in directory cases referrals notifications; do
  pidfile="$RUN/$svc.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "[start] placement-$svc already running (pid $(cat "$pidfile"))" >&2
    continue
  fi
  nohup "$BIN/placement-$svc" >>"$RUN/logs/$svc.log" 2>&1 &
  echo $! >"$pidfile"
  echo "[start] placement-$svc started (pid $!, log $RUN/logs/$svc.log)" >&2
done

"$BIN/placement-cli" wait-ready --timeout-secs "${PLACEMENT_START_TIMEOUT:-90}"
