#!/usr/bin/env bash
# Makes development credentials in a folder (default .run/keys), unless they are there: a local CA with a
# certificate for the services and one for clients (mutual TLS), a token-signing key with its JWKS, and a
# data key for sealing personal data. Prints the settings that use them. Never use these in production:
# there, the CA, the certificates, the identity provider's JWKS and the data key come from the operator.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:-$(pwd)/.run/keys}"
cargo build --quiet -p placement-cli
./target/debug/placement-cli dev-keys --dir "$DIR" >/dev/null
cat <<ENV
export PLACEMENT_TLS_CA="$DIR/ca.pem"
export PLACEMENT_TLS_CERT="$DIR/service.pem"
export PLACEMENT_TLS_KEY="$DIR/service-key.pem"
export PLACEMENT_AUTH_JWKS_FILE="$DIR/jwks.json"
export PLACEMENT_DATA_KEY="\$(cat "$DIR/data-key")"
export PLACEMENT_DEV_KEYS="$DIR"
ENV
