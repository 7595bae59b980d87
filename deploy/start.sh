#!/usr/bin/env bash
# Starts PostgreSQL and RabbitMQ if needed, builds, and starts every service in the background,
# logging to .run/logs/. Services already running (per .run/*.pid) are left as they are.
# Settings come from PLACEMENT_* environment variables (see docs/configuration.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="${PLACEMENT_RUN_DIR:-$ROOT/.run}"
mkdir -p "$RUN/logs"

bash deploy/infra.sh up
echo "[start] building" >&2
cargo build --workspace --bins --quiet

BIN="$ROOT/target/debug"
# Every process of the stack shares this machine's cores: one runtime thread per service is cheaper.
export TOKIO_WORKER_THREADS="${TOKIO_WORKER_THREADS:-1}"
# Credentials: whatever PLACEMENT_* settings are given are used; what is missing comes from local
# development credentials (deploy/dev-pki.sh), made once under $RUN/keys: the CA and certificates for mutual
# TLS, the token-signing key (placement-cli signs its requests with it) and the data key.
export PLACEMENT_DEV_KEYS="${PLACEMENT_DEV_KEYS:-$RUN/keys}"
"$BIN/placement-cli" dev-keys --dir "$PLACEMENT_DEV_KEYS" >/dev/null
export PLACEMENT_AUTH_JWKS_FILE="${PLACEMENT_AUTH_JWKS_FILE:-$PLACEMENT_DEV_KEYS/jwks.json}"
export PLACEMENT_TLS_CA="${PLACEMENT_TLS_CA:-$PLACEMENT_DEV_KEYS/ca.pem}"
export PLACEMENT_TLS_CERT="${PLACEMENT_TLS_CERT:-$PLACEMENT_DEV_KEYS/service.pem}"
export PLACEMENT_TLS_KEY="${PLACEMENT_TLS_KEY:-$PLACEMENT_DEV_KEYS/service-key.pem}"
export PLACEMENT_DATA_KEY="${PLACEMENT_DATA_KEY:-$(cat "$PLACEMENT_DEV_KEYS/data-key")}"
# The database: each process serves as its own role (placement_<name>, made by deploy/infra.sh), granted
# only its schema by the owner, which runs the migrations (PLACEMENT_DATABASE_OWNER_URL, default the local
# owner). A PLACEMENT_DATABASE_URL given is used by every process as it is.
OWNER_URL="${PLACEMENT_DATABASE_OWNER_URL:-postgres://placement:placement@127.0.0.1:${PG_PORT:-5432}/placement}"
database_env() {
  if [ -n "${PLACEMENT_DATABASE_URL:-}" ]; then
    return
  fi
  local role="placement_$1" scheme="${OWNER_URL%%://*}"
  echo "PLACEMENT_DATABASE_OWNER_URL=$OWNER_URL"
  echo "PLACEMENT_DATABASE_URL=$scheme://$role:$role@${OWNER_URL##*@}"
}
# Starts placement-$1 in the background unless it runs already (per its pid file).
start_one() {
  local svc=$1 pidfile="$RUN/$1.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "[start] placement-$svc already running (pid $(cat "$pidfile"))" >&2
    return
  fi
  local settings
  mapfile -t settings < <(database_env "$svc")
  nohup env "${settings[@]}" "$BIN/placement-$svc" >>"$RUN/logs/$svc.log" 2>&1 &
  echo $! >"$pidfile"
  echo "[start] placement-$svc started (pid $!, log $RUN/logs/$svc.log)" >&2
}
for svc in $("$BIN/placement-cli" services | cut -d" " -f1); do
  start_one "$svc"
done

"$BIN/placement-cli" wait-ready --timeout-secs "${PLACEMENT_START_TIMEOUT:-90}"

# The staff web app, when asked for (run-demo.sh does): it signs people in at PLACEMENT_OIDC_ISSUER and
# serves its pages on PLACEMENT_WEB_HTTP_ADDR.
if [ "${PLACEMENT_START_WEB:-0}" = "1" ]; then
  start_one web
  web_addr="${PLACEMENT_WEB_HTTP_ADDR:-127.0.0.1:8080}"
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "http://$web_addr/healthz" && break
    kill -0 "$(cat "$RUN/web.pid")" 2>/dev/null || { echo "[start] placement-web exited; see $RUN/logs/web.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fs -o /dev/null "http://$web_addr/healthz" || { echo "[start] placement-web not answering on $web_addr" >&2; exit 1; }
fi
