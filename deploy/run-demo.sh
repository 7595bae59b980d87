#!/usr/bin/env bash
# The main job: local infrastructure, the four services, the demo data set and the cross-region placement
# scenario, printing the referral's timeline. Stops the services afterwards unless KEEP_RUNNING=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/start.sh
if [ "${KEEP_RUNNING:-0}" != "1" ]; then
  trap 'bash deploy/stop.sh' EXIT
fi
./target/debug/placement-cli scenario
