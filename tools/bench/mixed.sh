#!/usr/bin/env bash
# The "mixed" scenario of issue 11: one 1000-member room at 50 msg/s beside 100 rooms x 10 at
# 500 msg/s, against one server on --threads 2. Two load generators run at once (the big room's
# in the background); the small rooms' latency is the figure: does the big room's fan-out hold
# them up (head-of-line blocking)? Also runs the small rooms alone first, for the baseline.
# Every process is started here and ended by its PID. Prints one line per run:
#   mixed: alone|beside p50 p99 max (ms) of the small rooms, and the big room's p99.
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
big_pid=""
cleanup() {
  [[ -n "$big_pid" ]] && kill "$big_pid" 2>/dev/null || true
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_server() {
  local log
  log="$(mktemp)"
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
}
small() {
  "$loadgen" --scenario fanout --port "$port" --rooms 100 --members 10 --rate 500 \
    --duration 10 --warmup 2 --room-base 1000 --quiet
}

for rep in $(seq "$reps"); do
  start_server
  alone="$(small)"
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  start_server
  "$loadgen" --scenario fanout --port "$port" --rooms 1 --members 1000 --rate 50 \
    --duration 20 --warmup 4 --room-base 9000 --quiet >/tmp/mixed-big.$$ &
  big_pid=$!
  # The big room is filled and talking before the small rooms' warm-up starts.
  sleep 6
  beside="$(small)"
  wait "$big_pid" || true
  big_pid=""
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=""
  line() { jq -r --arg what "$1" '"\($what) p50 \(.latency_p50_us / 10 | round / 100) p99 \(.latency_p99_us / 10 | round / 100) max \(.latency_max_us / 10 | round / 100) ms, gaps \(.gaps), missing \(.missing_deliveries)"'; }
  echo "mixed rep $rep: $(line "small rooms alone:" <<<"$alone")"
  echo "mixed rep $rep: $(line "small rooms beside the big room:" <<<"$beside")"
  echo "mixed rep $rep: $(line "big room:" </tmp/mixed-big.$$)"
  rm -f /tmp/mixed-big.$$
done
