#!/usr/bin/env bash
# Runs the browser end-to-end tests: Debian's chromium driven by playwright-core against the real
# roomcast binary. Usage: ROOMCAST_BIN=path/to/roomcast tests/browser/run.sh [test files...]
# Installs what is missing first (chromium through apt as root, node_modules through npm ci).
# Failure screenshots go to tests/browser/artifacts/. The last line printed is the test runner's.
set -euo pipefail

# shellcheck source=../browser/require-roomcast-bin.sh
source "$(dirname "${BASH_SOURCE[0]}")/require-roomcast-bin.sh"
require_roomcast_bin build/browser/src/roomcast
if [[ -n "${ROOMCAST_WEB_ROOT:-}" ]]; then
  ROOMCAST_WEB_ROOT="$(realpath "$ROOMCAST_WEB_ROOT")"
  export ROOMCAST_WEB_ROOT
  echo "run.sh: the server serves the page from $ROOMCAST_WEB_ROOT (not the embedded copy)"
fi

# Test files given on the command line are taken relative to where run.sh was called from.
files=()
for file in "$@"; do
  files+=("$(realpath "$file")")
done

cd "$(dirname "${BASH_SOURCE[0]}")"

./ensure-chromium.sh

# node_modules is stale when a package in package-lock.json is missing or at another version.
lock_matches() {
  [[ -d node_modules ]] || return 1
  node -e '
    const fs = require("node:fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    for (const [where, pkg] of Object.entries(lock.packages)) {
      if (!where) continue;
      const file = `${where}/package.json`;
      if (!fs.existsSync(file) || JSON.parse(fs.readFileSync(file, "utf8")).version !== pkg.version) process.exit(1);
    }
  '
}
if ! lock_matches; then
  echo "run.sh: npm ci"
  npm ci --no-audit --no-fund
fi

rm -rf artifacts
if [[ ${#files[@]} -eq 0 ]]; then
  files=(./*.test.mjs)
fi
# The timeout bounds a whole test file (node runs each file as one test), not one step: every
# wait for the page has its own 10 s deadline (support.mjs, WAIT). A file of a dozen tests on a
# loaded 2-core machine took over 120 s once.
exec node --test --test-reporter=./reporter.mjs --test-reporter-destination=stdout --test-timeout=600000 "${files[@]}"
