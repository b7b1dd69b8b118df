#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), then builds and runs the whole test suite:
#   1. release build: unit + integration tests (ctest), then clang-tidy over src/ (tools/lint.sh,
#      on the release build's compile commands)
#   2. asan preset (AddressSanitizer + UndefinedBehaviorSanitizer): the same tests
#   3. tsan preset (ThreadSanitizer): the integration tests (server on 2 threads) and the unit
#      tests tagged [threads] (the log thread)
#   4. the libFuzzer smoke run (tools/fuzz/smoke.sh): regressions + 8 s per target
#   5. the browser tests (headless Debian chromium via playwright-core) against the release binary:
#      roomcast's own page, and the seed article's unmodified Vue client (built at test time
#      from ../shared/seed, never committed)
#   6. the container image: tools/container-test.sh (podman/buildah, no Docker engine needed)
# Ends with one summary line "total: N passed, M failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
tools/install-deps.sh || exit 1

passed=0
failed=0
started=$(date +%s)

# Runs ctest for a preset and adds its counts to the totals.
run_ctest() {
  local preset=$1
  local t0=$(date +%s)
  echo "== [$preset] configure + build"
  cmake --preset "$preset" >/dev/null || return 1
  cmake --build --preset "$preset" || return 1
  local t1=$(date +%s)
  echo "== [$preset] ctest"
  local log
  log=$(mktemp)
  ctest --preset "$preset" -j2 2>&1 | tee "$log"
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
  rm -f "$log"
  if [[ -z "$line" ]]; then
    failed=$((failed + 1))
    return 1
  fi
  local bad total
  bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  echo "== [$preset] build $((t1 - t0)) s, tests $(($(date +%s) - t1)) s"
}

run_ctest release || failed=$((failed + 1))

# clang-tidy (tools/lint.sh): one count per source file, clean or not.
echo "== [lint]"
t0=$(date +%s)
log=$(mktemp)
tools/lint.sh 2>&1 | tee "$log"
line=$(grep -E '^lint: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
rm -f "$log"
if [[ -z "$line" ]]; then failed=$((failed + 1)); else
  passed=$((passed + $(awk '{print $2}' <<<"$line")))
  failed=$((failed + $(awk '{print $4}' <<<"$line")))
fi
echo "== [lint] $(($(date +%s) - t0)) s"

run_ctest asan || failed=$((failed + 1))
run_ctest tsan || failed=$((failed + 1))  # the integration and [threads] tests, under TSan


# libFuzzer smoke: regression inputs, then a few seconds of fuzzing per target (tools/fuzz).
echo "== [fuzz] smoke"
t0=$(date +%s)
log=$(mktemp)
tools/fuzz/smoke.sh 2>&1 | tee "$log"
line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n1)
rm -f "$log"
if [[ -z "$line" ]]; then failed=$((failed + 1)); else
  passed=$((passed + $(awk '{print $2}' <<<"$line")))
  failed=$((failed + $(awk '{print $4}' <<<"$line")))
fi
echo "== [fuzz] $(($(date +%s) - t0)) s"

# Node test runs (browser client, seed client): add the runner's pass/fail counts to the totals.
run_node_suite() {
  local name=$1 script=$2
  echo "== [$name]"
  local t0 log ok bad
  t0=$(date +%s)
  log=$(mktemp)
  ROOMCAST_BIN="$root/build/release/src/roomcast" "$script" 2>&1 | tee "$log"
  ok=$(grep -E '^(# |ℹ )pass [0-9]+' "$log" | tail -n1 | awk '{print $3}')
  bad=$(grep -E '^(# |ℹ )fail [0-9]+' "$log" | tail -n1 | awk '{print $3}')
  rm -f "$log"
  if [[ -z "$ok" || -z "$bad" ]]; then
    failed=$((failed + 1))
  else
    passed=$((passed + ok))
    failed=$((failed + bad))
  fi
  echo "== [$name] $(($(date +%s) - t0)) s"
}

# roomcast's own page, and the seed article's unmodified Vue client, in headless chromium.
run_node_suite browser tests/browser/run.sh
run_node_suite seed-client tests/seed-client/run.sh

# The container image (Dockerfile), built and run with podman/buildah: about 3 min cold. It needs
# about 1.5 GB of disk; with less free it is skipped, and says so.
echo "== [container]"
t0=$(date +%s)
free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
if (( free_kb < 3 * 1024 * 1024 )); then
  echo "== [container] skipped: only $((free_kb / 1024)) MB of disk free"
elif tools/container-test.sh; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
fi
echo "== [container] $(($(date +%s) - t0)) s"

echo "== whole suite: $(($(date +%s) - started)) s"
echo "total: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
