#!/usr/bin/env bash
# Proves that the seed article's Vue client, unmodified, works against roomcast: extracts its
# three components from the article (never committed), builds them with Vite, and drives two+
# users in Debian's chromium (playwright-core) against the real roomcast binary.
#
#   ROOMCAST_BIN=path/to/roomcast tests/seed-client/run.sh
#
# The seed article is $ROOMCAST_SEED, else <repo root>/../shared/seed/000_e2ed3aeb104cac2f.txt.
# Installs what is missing (chromium via apt as root, node_modules via npm ci), skips the Vite
# build when its inputs are unchanged. Failure screenshots and frame logs go to artifacts/.
# The last lines printed are the node test runner's TAP summary (# pass N / # fail N ...).
set -euo pipefail

# shellcheck source=../browser/require-roomcast-bin.sh
source "$(dirname "${BASH_SOURCE[0]}")/../browser/require-roomcast-bin.sh"
require_roomcast_bin build/seedclient/src/roomcast
if [[ -n "${ROOMCAST_SEED:-}" ]]; then
  ROOMCAST_SEED="$(realpath -m "$ROOMCAST_SEED")"
  export ROOMCAST_SEED
fi

cd "$(dirname "${BASH_SOURCE[0]}")"

../browser/ensure-chromium.sh

# node_modules is stale unless it was installed by npm ci from this very package-lock.json.
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp=node_modules/.roomcast-seed-client-lock.sha256
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$lock_hash" ]]; then
  echo "run.sh: npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_hash" > "$stamp"
fi

node extract.mjs

rm -rf artifacts
exec node --test --test-reporter=tap --test-timeout=600000 seed-client.test.mjs
