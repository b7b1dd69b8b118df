#!/usr/bin/env bash
# The "mixed" scenario of issue 11 (roomcast-loadgen --scenario mixed): 100 rooms x 10 at
# 500 msg/s alone, then beside one 1000-member room at 50 msg/s, against one server on
# --threads 2 started here for each repetition and ended by its PID. The load generator runs the
# big room on a second thread of its own. Nothing is pinned. Prints one line per run:
#   the small rooms' p50/p99/max alone and beside the big room, and the big room's p99 (ms).
#
#   tools/bench/mixed.sh [SERVER_BINARY] [REPS]     default: build/release/src/roomcast, 3
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
server_bin="${1:-$repo/build/release/src/roomcast}"
reps="${2:-3}"
loadgen="$repo/build/release/tools/loadgen/roomcast-loadgen"
[[ -x "$server_bin" && -x "$loadgen" ]] || { echo "mixed.sh: build the release preset first" >&2; exit 2; }
command -v jq >/dev/null || { echo "mixed.sh: needs jq" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"

server_pid=""
log="$(mktemp)"
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

for rep in $(seq "$reps"); do
  "$server_bin" --port 0 --threads 2 --rate-limit 0 --max-members 1000 --max-rooms 10000 \
    --max-connections 20000 --max-connections-per-ip 20000 --log-level info >"$log" 2>&1 &
  server_pid=$!
  port=""
  for _ in $(seq 200); do
    port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -1)"
    [[ -n "$port" ]] && break
    sleep 0.05
  done
  [[ -n "$port" ]] || { echo "mixed.sh: the server did not start" >&2; exit 1; }
  report="$("$loadgen" --scenario mixed --port "$port" --server-pid "$server_pid" --quiet)" || true
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=""
  jq -r --arg rep "$rep" '"mixed rep \($rep): small rooms alone p50 \(.alone_p50_ms) p99 \(.alone_p99_ms) max \(.alone_max_ms) ms; beside the big room p50 \(.beside_p50_ms) p99 \(.beside_p99_ms) max \(.beside_max_ms) ms; big room p99 \(.big_p99_ms) ms; gaps \(.gaps), missing \(.missing_deliveries), ok \(.ok)"' <<<"$report"
done
