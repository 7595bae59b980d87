#!/usr/bin/env bash
# The main job: local infrastructure, every service, the demo data set and the cross-region placement
# scenario, printing the referral's timeline. Stops the services afterwards unless KEEP_RUNNING=1.
#
# The demo has a database, queues and ports of its own (placement_demo, placement-demo.*, 50061-50064), made
# afresh on every run, so it can be run again and again and never touches a stack started with start.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
bash deploy/infra.sh up

export PLACEMENT_RUN_DIR="$ROOT/.run/demo"
# The demo signs its requests with a development key made under .run/demo/keys (see start.sh).
export PLACEMENT_DEV_KEYS="$PLACEMENT_RUN_DIR/keys"
# The demo database's owner runs the migrations; each service serves as its own role (see start.sh).
export PLACEMENT_DATABASE_OWNER_URL="postgres://placement:placement@127.0.0.1:${PG_PORT:-5432}/placement_demo"
unset PLACEMENT_DATABASE_URL
export PLACEMENT_EXCHANGE="placement-demo.events"
# Each service (the list is placement-cli's) on its default port + 10 (its metrics on that + 1000), with a
# queue of its own.
echo "[demo] building" >&2
cargo build --workspace --bins --quiet
while read -r svc port; do
  var=$(echo "$svc" | tr '[:lower:]' '[:upper:]')
  export "PLACEMENT_${var}_QUEUE=placement-demo.$svc"
  export "PLACEMENT_${var}_LISTEN_ADDR=127.0.0.1:$((port + 10))"
  export "PLACEMENT_${var}_URL=http://127.0.0.1:$((port + 10))"
  export "PLACEMENT_${var}_METRICS_ADDR=127.0.0.1:$((port + 1010))"
done < <(./target/debug/placement-cli services)

# A demo left running by KEEP_RUNNING=1 holds the demo database: stop it, then start from an empty one.
bash deploy/stop.sh
# Run from / : the postgres user may not read the project's folder, and psql says so when it starts there.
psql_admin() {
  (
    cd /
    if [ "$(id -u)" -eq 0 ]; then su postgres -c "psql -X -q -p ${PG_PORT:-5432} -c \"$1\""; else sudo -u postgres psql -X -q -p "${PG_PORT:-5432}" -c "$1"; fi
  )
}
psql_admin "DROP DATABASE IF EXISTS placement_demo WITH (FORCE)"
psql_admin "CREATE DATABASE placement_demo OWNER placement"

# The demo's OpenID provider (deploy/oidc, a real one: panva's oidc-provider) with the web app as its
# client. The services take its tokens beside the command line's (signed with the development key); the
# demo's people are added to it once the directory is loaded and their agencies have ids.
OIDC_DIR="$(bash deploy/infra.sh oidc)"
OIDC_PORT="${OIDC_PORT:-8090}"
WEB_PORT="${WEB_PORT:-8080}"
WEB_URL="http://127.0.0.1:$WEB_PORT"
OIDC_FILE="$PLACEMENT_RUN_DIR/oidc.json"
mkdir -p "$PLACEMENT_RUN_DIR/logs"
# The reports service's own client: the national authority's integration, by the client-credentials grant.
NATIONAL_AUTHORITY=00000000-0000-4000-8000-000000000001
write_oidc() {
  printf '{"accounts": %s, "clients": [{"client_id": "placement-web", "client_secret": "demo-web-secret", "redirect_uris": ["%s/auth/callback"], "post_logout_redirect_uris": ["%s/signed-out"]}, {"client_id": "placement-reports", "client_secret": "demo-reports-secret", "agency_id": "%s", "roles": ["integration"]}]}\n' "$1" "$WEB_URL" "$WEB_URL" "$NATIONAL_AUTHORITY" >"$OIDC_FILE"
}
write_oidc '{}'
OIDC_PORT="$OIDC_PORT" OIDC_ACCOUNTS="$OIDC_FILE" nohup node "$OIDC_DIR/provider.mjs" >>"$PLACEMENT_RUN_DIR/logs/oidc.log" 2>&1 &
echo $! >"$PLACEMENT_RUN_DIR/oidc.pid"
for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$OIDC_PORT/.well-known/openid-configuration" && break; sleep 0.1; done
export PLACEMENT_AUTH_JWKS_URI="http://127.0.0.1:$OIDC_PORT/jwks"
export PLACEMENT_AUTH_ISSUER="placement-exchange,http://127.0.0.1:$OIDC_PORT"
export PLACEMENT_OIDC_ISSUER="http://127.0.0.1:$OIDC_PORT"
export PLACEMENT_OIDC_CLIENT_ID=placement-web PLACEMENT_OIDC_CLIENT_SECRET=demo-web-secret
export PLACEMENT_REPORTS_TOKEN_URL="http://127.0.0.1:$OIDC_PORT/token"
export PLACEMENT_REPORTS_CLIENT_ID=placement-reports PLACEMENT_REPORTS_CLIENT_SECRET=demo-reports-secret
export PLACEMENT_PUBLIC_URL="$WEB_URL" PLACEMENT_WEB_HTTP_ADDR="127.0.0.1:$WEB_PORT"
export PLACEMENT_WEB_LISTEN_ADDR="127.0.0.1:50065" PLACEMENT_WEB_METRICS_ADDR="127.0.0.1:51065" PLACEMENT_START_WEB=1

bash deploy/start.sh
if [ "${KEEP_RUNNING:-0}" != "1" ]; then
  trap 'bash deploy/stop.sh' EXIT
fi
./target/debug/placement-cli scenario
write_oidc "$(./target/debug/placement-cli demo-accounts)"
# What the coordination mechanism of the receiving district would see (the reports learn it from the events).
echo "[demo] The receiving district's figures (placement-cli report --region VRC):" >&2
./target/debug/placement-cli report --region VRC --days 1
# The directory filled from a register file (deploy/sample-register.csv: Bulgarian headers, one row with a
# municipality code EKATTE does not know, refused); a second import of the same file changes nothing.
echo "[demo] Importing deploy/sample-register.csv into the directory (placement-cli directory import):" >&2
./target/debug/placement-cli directory import deploy/sample-register.csv
./target/debug/placement-cli directory import deploy/sample-register.csv | head -1
# The web app answers, and sends a person who is not signed in to sign in.
code=$(curl -s -o /dev/null -w '%{http_code}' "$WEB_URL/inbox")
[ "$code" = "303" ] || { echo "[demo] the web app answered $code on /inbox" >&2; exit 1; }
cat <<EOF
[demo] The web app: $WEB_URL (sign in at the demo's OpenID provider, any password):
[demo]   pirdop-caseworker, pirdop-supervisor   DSA Pirdop (sends the request, confirms the placement)
[demo]   vratsa-provider, vratsa-director       FTPC Vratsa 1's provider (acknowledges; the director accepts)
[demo]   vratsa-foster-team                     Foster-care team Vratsa (acknowledges)
[demo]   vratsa-rdsa                            RDSA Vratsa (the district's figures)
[demo] With KEEP_RUNNING=1 it stays up; bash deploy/stop.sh stops it.
EOF
