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
export PLACEMENT_DATABASE_URL="postgres://placement:placement@127.0.0.1:${PG_PORT:-5432}/placement_demo"
export PLACEMENT_EXCHANGE="placement-demo.events"
# Each service (the list is placement-cli's) on its default port + 10, with a queue of its own.
echo "[demo] building" >&2
cargo build --workspace --bins --quiet
while read -r svc port; do
  var=$(echo "$svc" | tr '[:lower:]' '[:upper:]')
  export "PLACEMENT_${var}_QUEUE=placement-demo.$svc"
  export "PLACEMENT_${var}_LISTEN_ADDR=127.0.0.1:$((port + 10))"
  export "PLACEMENT_${var}_URL=http://127.0.0.1:$((port + 10))"
done < <(./target/debug/placement-cli services)

# A demo left running by KEEP_RUNNING=1 holds the demo database: stop it, then start from an empty one.
bash deploy/stop.sh
psql_admin() {
  if [ "$(id -u)" -eq 0 ]; then su postgres -c "psql -X -q -p ${PG_PORT:-5432} -c \"$1\""; else sudo -u postgres psql -X -q -p "${PG_PORT:-5432}" -c "$1"; fi
}
psql_admin "DROP DATABASE IF EXISTS placement_demo WITH (FORCE)"
psql_admin "CREATE DATABASE placement_demo OWNER placement"

bash deploy/start.sh
if [ "${KEEP_RUNNING:-0}" != "1" ]; then
  trap 'bash deploy/stop.sh' EXIT
fi
./target/debug/placement-cli scenario
