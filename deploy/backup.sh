#!/usr/bin/env bash
# Backs up the exchange: one logical dump (pg_dump, custom format) of its database, every service's schema
# in it, taken in one snapshot, so that each service's state and its outbox agree with each other's as of
# one instant. Prints the file; writes FILE.sha256 beside it.
#
#   bash deploy/backup.sh [FILE]        # default backups/placement-<UTC time>.dump
#
# PLACEMENT_DATABASE_OWNER_URL names the database as the schemas' owner (a service's own role reads only its
# schema), else PLACEMENT_DATABASE_URL, else the services' default. Logical, not physical: a
# dump restores into any PostgreSQL 15 or later and into a fresh database beside the damaged one, which a
# restore drill needs; it is the unit of a nightly backup. For point-in-time recovery in production, take
# physical base backups with WAL archiving as well (CloudNativePG's scheduled backups do, see docs/operating.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DATABASE_URL="${PLACEMENT_DATABASE_OWNER_URL:-${PLACEMENT_DATABASE_URL:-postgres://placement:placement@127.0.0.1:5432/placement}}"
OUT="${1:-backups/placement-$(date -u +%Y%m%dT%H%M%SZ).dump}"
if ! command -v pg_dump >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-client >/dev/null
fi
mkdir -p "$(dirname "$OUT")"
# Written under another name and moved when complete, so a dump cut short is never taken for a backup.
pg_dump --format=custom --no-owner --no-privileges --file="$OUT.partial" "$DATABASE_URL"
pg_restore --list "$OUT.partial" >/dev/null
mv "$OUT.partial" "$OUT"
(cd "$(dirname "$OUT")" && sha256sum "$(basename "$OUT")" >"$(basename "$OUT").sha256")
echo "[backup] $(du -h "$OUT" | cut -f1) in $OUT" >&2
echo "$OUT"
