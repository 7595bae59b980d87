#!/usr/bin/env bash
# Makes sure a local PostgreSQL 15 and RabbitMQ are installed, running and answering.
# Installs what is missing from Debian's packages; starts servers without systemd;
# leaves servers that already run exactly as they are.
set -euo pipefail

log() { printf '[infra] %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_PORT="${PG_PORT:-5432}"
PG_USER="${PG_USER:-placement}"
PG_PASSWORD="${PG_PASSWORD:-placement}"
PG_DATABASE="${PG_DATABASE:-placement}"

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "installing $*"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what did not answer within ${secs}s"; return 1
    fi
    sleep 0.5
  done
}

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ ! -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]; then
    apt_install "postgresql-$PG_VERSION" postgresql-client-common postgresql-common
  fi
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION $PG_CLUSTER"; then
    log "creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER"
    $SUDO pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >/dev/null
  fi
  if pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; then
    log "PostgreSQL $PG_VERSION/$PG_CLUSTER already running; leaving it as it is"
  else
    log "starting PostgreSQL $PG_VERSION/$PG_CLUSTER"
    $SUDO pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
  fi
  wait_for "PostgreSQL" 60 pg_isready -q -h 127.0.0.1 -p "$PG_PORT"
  # The project's role and database; created once, never altered if present.
  if ! run_psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'" | grep -q 1; then
    log "creating role $PG_USER"
    run_psql -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'" >/dev/null
  fi
  # The tests drop their databases WITH (FORCE), which must end any backend on them, autovacuum's too:
  # that takes pg_signal_backend (granted once; nothing else about a present role is changed).
  if ! run_psql -tAc "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = 'pg_signal_backend' AND u.rolname = '$PG_USER'" | grep -q 1; then
    log "granting pg_signal_backend to $PG_USER"
    run_psql -c "GRANT pg_signal_backend TO $PG_USER" >/dev/null
  fi
  # Each process serves as a role of its own, which its schema's owner ($PG_USER, who runs the migrations)
  # grants only that schema's rows at every start (PLACEMENT_DATABASE_OWNER_URL, docs/operating.md "Security"). Local
  # roles: each one's password is its name. Created once, never altered if present.
  for svc in directory cases referrals notifications reports web; do
    if ! run_psql -tAc "SELECT 1 FROM pg_roles WHERE rolname='placement_$svc'" | grep -q 1; then
      log "creating role placement_$svc"
      run_psql -c "CREATE ROLE placement_$svc LOGIN PASSWORD 'placement_$svc'" >/dev/null
    fi
  done
  if ! run_psql -tAc "SELECT 1 FROM pg_database WHERE datname='$PG_DATABASE'" | grep -q 1; then
    log "creating database $PG_DATABASE"
    run_psql -c "CREATE DATABASE $PG_DATABASE OWNER $PG_USER" >/dev/null
  fi
  log "PostgreSQL answers on 127.0.0.1:$PG_PORT"
}

# psql runs as postgres from a folder postgres may enter (not the project's, which may be private).
run_psql() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && su postgres -c "psql -X -q -p $PG_PORT $(printf '%q ' "$@")")
  else
    (cd / && sudo -u postgres psql -X -q -p "$PG_PORT" "$@")
  fi
}

rabbit_ping() { rabbitmq-diagnostics -q ping; }

ensure_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  if rabbit_ping >/dev/null 2>&1; then
    log "RabbitMQ already running; leaving it as it is"
  else
    log "starting RabbitMQ"
    # Debian's package may start the server through its own init hooks; only start when nothing answers.
    $SUDO rabbitmq-server -detached >/dev/null 2>&1 || true
    wait_for "RabbitMQ" 120 rabbit_ping
  fi
  # The broker can answer ping before its AMQP listener and apps are up.
  wait_for "RabbitMQ AMQP listener" 60 rabbitmq-diagnostics -q check_port_connectivity
  log "RabbitMQ answers on 127.0.0.1:5672"
}

# The Python the tests use to check what we produce with libraries no one here wrote (fhir.resources),
# to receive e-mail (aiosmtpd) and traces (an OTLP receiver on the official protocol definitions,
# opentelemetry-proto, served with grpcio): Debian's python3 and python3-venv, and the packages in a virtual
# environment of the project's (Debian's Python refuses system-wide pip installs, PEP 668), made once
# and reused. Prints the environment's python.
PYTHON_VENV="${PYTHON_VENV:-$(cd "$(dirname "$0")/.." && pwd)/target/test-venv}"
PYTHON_PACKAGES=("fhir.resources>=7" "aiosmtpd>=1.4" "opentelemetry-proto>=1.20" "grpcio>=1.60" "jsonschema>=4.18" "referencing>=0.28" "rfc3339-validator>=0.1.4" "PyYAML>=6" "kubernetes-validate>=1.30")
# The Compose specification's JSON schema, as docker-compose 1.29.2 (PyPI) ships it, to check
# deploy/docker-compose.yml against: taken out of the wheel, which is not installed.
COMPOSE_SPEC="$PYTHON_VENV/share/compose_spec.json"
ensure_python() {
  local missing=()
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  # venv needs ensurepip, which Debian ships in python3-venv.
  python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  if [ ! -x "$PYTHON_VENV/bin/python" ]; then
    log "making the tests' Python environment in $PYTHON_VENV"
    python3 -m venv "$PYTHON_VENV"
  fi
  if ! "$PYTHON_VENV/bin/python" -c "import fhir.resources.R4B, aiosmtpd, grpc, opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc, jsonschema, referencing, rfc3339_validator, yaml, kubernetes_validate" >/dev/null 2>&1; then
    log "installing ${PYTHON_PACKAGES[*]} into $PYTHON_VENV"
    "$PYTHON_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PYTHON_PACKAGES[@]}"
  fi
  if [ ! -f "$COMPOSE_SPEC" ]; then
    log "taking the Compose specification's schema out of docker-compose 1.29.2 (PyPI)"
    local wheels
    wheels=$(mktemp -d)
    "$PYTHON_VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
      --only-binary=:all: --dest "$wheels" docker-compose==1.29.2
    mkdir -p "$(dirname "$COMPOSE_SPEC")"
    "$PYTHON_VENV/bin/python" - "$wheels" "$COMPOSE_SPEC" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/docker_compose-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("compose/config/compose_spec.json"))
PY
    rm -rf "$wheels"
  fi
  echo "$PYTHON_VENV/bin/python"
}

# The real OpenID provider the tests sign in against (deploy/oidc: panva's oidc-provider, OpenID
# Certified), under Node.js (Debian's nodejs and npm when there is none; oidc-provider 8 runs on Node 18,
# Debian 12's, and later), its packages installed from the lock file into deploy/oidc/node_modules once.
# Prints the folder.
OIDC_DIR="$(cd "$(dirname "$0")" && pwd)/oidc"
ensure_oidc() {
  local missing=()
  command -v node >/dev/null 2>&1 || missing+=(nodejs)
  command -v npm >/dev/null 2>&1 || missing+=(npm)
  # The demo checks the provider and the web app with curl.
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  if [ ! -f "$OIDC_DIR/node_modules/oidc-provider/package.json" ]; then
    log "installing the OpenID provider's packages into $OIDC_DIR/node_modules"
    (cd "$OIDC_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  echo "$OIDC_DIR"
}

# The browser the web app's tests drive over WebDriver: Debian's chromium and chromium-driver (never a
# browser a test tool downloads). Prints the driver's path.
ensure_browser() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
  command -v chromedriver
}

# The metrics are scraped in the tests by a real Prometheus, and the alert rules checked and unit-tested
# by its promtool: Debian's prometheus package (the tests start their own server, never the package's
# service). Prints the folder holding prometheus and promtool.
ensure_prometheus() {
  if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
    apt_install prometheus
  fi
  dirname "$(command -v promtool)"
}

# The validators of the operators' custom resources (CloudNativePG, KEDA): the models @kubernetes-models
# generates from their published CRDs, from npm, installed from the lock file into
# tests/tools/crds/node_modules once (Node.js as for the OpenID provider). Prints the folder.
CRDS_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/tools/crds"
ensure_crd_models() {
  ensure_oidc >/dev/null
  if [ ! -f "$CRDS_DIR/node_modules/@kubernetes-models/cloudnative-pg/package.json" ]; then
    log "installing the custom resources' validators into $CRDS_DIR/node_modules"
    (cd "$CRDS_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  echo "$CRDS_DIR"
}

# kubectl, to render the Kubernetes overlays with its built-in kustomize (Debian's kubernetes-client when
# there is none). Prints its path.
ensure_kubectl() {
  if ! command -v kubectl >/dev/null 2>&1; then
    apt_install kubernetes-client
  fi
  command -v kubectl
}

# jq, which docs/operating.md's "Logs" uses to follow a trace through the services' JSON logs (and the tests
# run that block as written). Prints its path.
ensure_jq() {
  if ! command -v jq >/dev/null 2>&1; then
    apt_install jq
  fi
  command -v jq
}

case "${1:-up}" in
  up) ensure_postgres; ensure_rabbitmq ;;
  postgres) ensure_postgres ;;
  rabbitmq) ensure_rabbitmq ;;
  python) ensure_python ;;
  oidc) ensure_oidc ;;
  browser) ensure_browser ;;
  prometheus) ensure_prometheus ;;
  kubectl) ensure_kubectl ;;
  crds) ensure_crd_models ;;
  jq) ensure_jq ;;
  *) echo "usage: $0 [up|postgres|rabbitmq|python|oidc|browser|prometheus|kubectl|crds|jq]" >&2; exit 2 ;;
esac
