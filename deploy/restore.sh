#!/usr/bin/env bash
# Restores a dump made by deploy/backup.sh into a fresh database, then the services may be started on it:
# they apply any newer migrations, publish what their outboxes had not published when the dump was taken
# (consumers apply each event once: a redelivery is acknowledged, not applied again), and go on.
#
#   bash deploy/restore.sh FILE [DATABASE_URL]
#
# DATABASE_URL (default PLACEMENT_DATABASE_OWNER_URL, else PLACEMENT_DATABASE_URL, else the services'
# default) names a database that must not hold the exchange yet: it is created when missing (the role needs
# CREATEDB, as deploy/infra.sh gives it); a database that already has the services' schemas is refused,
# never overwritten. The restored schemas belong to that role and grant nothing: each service, started with
# it as PLACEMENT_DATABASE_OWNER_URL, grants its own runtime role its schema again before it serves.
# The references of cases and referrals («Н-ВРЦ-2026-00042») are never given twice: every reference counter,
# and the start of any counter made later, moves 1000 numbers on (placement_model::reference::RESTORE_GAP),
# past anything given between the backup and the loss.
set -euo pipefail
FILE="${1:?usage: restore.sh FILE [DATABASE_URL]}"
TARGET="${2:-${PLACEMENT_DATABASE_OWNER_URL:-${PLACEMENT_DATABASE_URL:-postgres://placement:placement@127.0.0.1:5432/placement}}}"
if [ -f "$FILE.sha256" ]; then
  (cd "$(dirname "$FILE")" && sha256sum --quiet -c "$(basename "$FILE").sha256")
fi
pg_restore --list "$FILE" >/dev/null
base="${TARGET%/*}"
name="${TARGET##*/}"
name="${name%%\?*}"
[[ "$name" =~ ^[A-Za-z0-9_]+$ ]] || { echo "[restore] unusable database name: $name" >&2; exit 2; }
exists=$(psql -X -q -tA "$base/postgres" -c "SELECT 1 FROM pg_database WHERE datname = '$name'")
if [ "$exists" = "1" ]; then
  held=$(psql -X -q -tA "$TARGET" -c "SELECT count(*) FROM pg_namespace WHERE nspname IN ('directory', 'cases', 'referrals', 'notifications', 'reports', 'web')")
  if [ "$held" != "0" ]; then
    echo "[restore] $name already holds the exchange: restore into a fresh database" >&2
    exit 1
  fi
else
  psql -X -q "$base/postgres" -c "CREATE DATABASE $name"
fi
pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$TARGET" "$FILE"
psql -X -q -v ON_ERROR_STOP=1 "$TARGET" <<'SQL'
DO $$
DECLARE s TEXT;
BEGIN
  FOREACH s IN ARRAY ARRAY['cases', 'referrals'] LOOP
    -- A dump from before references has no counters: its services number what it holds when they start.
    IF to_regclass(s || '.reference_counters') IS NOT NULL THEN
      EXECUTE format('UPDATE %I.reference_counters SET last_number = last_number + 1000', s);
      EXECUTE format('UPDATE %I.reference_floor SET skipped = skipped + 1000', s);
    END IF;
  END LOOP;
END $$;
SQL
echo "[restore] $FILE restored into $name" >&2
