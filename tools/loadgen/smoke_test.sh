#!/usr/bin/env bash
# Smoke test of roomcast-loadgen against the real roomcast binary: each scenario for about a
# second at a small size must exit 0 with zero gaps and nothing missing (flood: the member lost
# nothing); a bad flag exits 2.
#   smoke_test.sh ROOMCAST_BINARY LOADGEN_BINARY
set -euo pipefail
roomcast="${1:?usage: smoke_test.sh ROOMCAST LOADGEN}"
loadgen="${2:?usage: smoke_test.sh ROOMCAST LOADGEN}"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
      case "$(ps -o stat= -p "$server_pid" 2>/dev/null || true)" in "" | Z*) break ;; esac
      sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  echo "--- server log (last lines)" >&2
  tail -20 "$work/server.log" >&2 || true
  exit 1
}

# The server picks a free port and logs it.
# Created before the server starts, so that the wait below can read it at once.
: >"$work/server.log"
"$roomcast" --port 0 --threads 1 --rate-limit 0 --log-level info >"$work/server.log" 2>&1 &
server_pid=$!
port=""
deadline=$((SECONDS + 15))
while [[ -z "$port" ]] && ((SECONDS < deadline)); do
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited at start"
  port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/server.log" | head -1)"
  [[ -n "$port" ]] || sleep 0.05
done
[[ -n "$port" ]] || fail "the server did not log its port within 15 s"
echo "roomcast pid $server_pid on port $port"

field() {  # field NAME JSON: a number or true/false from the report
  sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"
}

# run NAME LOADGEN-ARGS...: one scenario, bounded by timeout; checks the report.
run() {
  local name="$1"
  shift
  local report status=0
  report="$(timeout --kill-after=5 60 "$loadgen" --port "$port" --server-pid "$server_pid" \
    --label smoke --quiet "$@" 2>"$work/$name.err")" || status=$?
  echo "$name: $report"
  last_report="$report"
  ((status == 0)) || { cat "$work/$name.err" >&2; fail "$name exited with $status"; }
  [[ "$(field ok "$report")" == true ]] || fail "$name: ok is not true"
  for key in gaps missing_messages missing_deliveries connections_lost failures; do
    local value
    value="$(field "$key" "$report")"
    [[ -z "$value" || "$value" == 0 ]] || fail "$name: $key is $value"
  done
}

run fanout-open --scenario fanout --rooms 2 --members 3 --rate 200 --duration 1 --warmup 0.2 \
  --drain 3 --settle 0.1
run fanout-closed --scenario fanout --rooms 2 --members 3 --senders 2 --window 4 --duration 1 \
  --warmup 0.2 --drain 3 --settle 0.1 --room-base 2000
run idle --scenario idle --connections 20 --members 10 --duration 1 --room-base 3000
run churn --scenario churn --concurrency 2 --duration 1 --warmup 0.2 --room-base 4000
run churn-shared --scenario churn --concurrency 2 --duration 1 --warmup 0.2 --shared-room \
  --room-base 5000
# This server has no rate limit: the flooders are never closed, and only the member is checked.
run flood --scenario flood --flooders 2 --rate 50 --duration 1 --warmup 0.2 --drain 3 \
  --close-within 0 --max-slowdown 0 --room-base 6000
# Small rooms alone, then beside a big room that the load generator runs on a second thread.
run mixed --scenario mixed --rooms 2 --members 3 --rate 100 --big-members 20 --big-rate 10 \
  --duration 1 --warmup 0.2 --drain 3 --settle 0.1 --room-base 8000
for key in alone_p99_ms beside_p99_ms big_p99_ms; do
  value="$(field "$key" "$last_report")"
  [[ -n "$value" && "$value" != null && "$value" != 0.000 ]] || fail "mixed: $key is '$value'"
done
# Two "nodes" that are the same server: members spread over both ports, CPU reported per node.
run fanout-nodes --scenario fanout --port "$port,$port" --server-pid "$server_pid,$server_pid" \
  --rooms 2 --members 3 --rate 200 --duration 1 --warmup 0.2 --drain 3 --settle 0.1 \
  --room-base 7000
[[ "$(field nodes "$last_report")" == 2 ]] || fail "fanout-nodes: nodes is not 2"
for node in 0 1; do
  value="$(field "node${node}_cpu_us_per_delivery" "$last_report")"
  [[ -n "$value" && "$value" != null ]] || fail "fanout-nodes: no CPU per delivery for node $node"
done

status=0
"$loadgen" --scenario idle --port "$port,$port" --connections 2 --members 2 >/dev/null 2>&1 ||
  status=$?
((status == 2)) || fail "idle over two ports exited with $status, not 2"
status=0
"$loadgen" --scenario fanout --port "$port,x" --rooms 1 --members 2 --rate 1 >/dev/null 2>&1 ||
  status=$?
((status == 2)) || fail "a bad port in a list exited with $status, not 2"
status=0
"$loadgen" --scenario fanout --port "$port" --rooms 1 --members 2 >/dev/null 2>&1 || status=$?
((status == 2)) || fail "a missing --rate/--window exited with $status, not 2"
status=0
"$loadgen" --scenario idle --host 10.0.0.1 --port "$port" --connections 1 --members 1 \
  >/dev/null 2>&1 || status=$?
((status == 2)) || fail "a non-loopback --host exited with $status, not 2"

# A server that is gone: the load generator says so and exits 1, in bounded time.
kill -TERM "$server_pid"
cleanup_deadline=$((SECONDS + 10))
while ((SECONDS < cleanup_deadline)); do
  case "$(ps -o stat= -p "$server_pid" 2>/dev/null || true)" in "" | Z*) break ;; esac
  sleep 0.05
done
wait "$server_pid" 2>/dev/null || true
server_pid=""
status=0
timeout --kill-after=5 30 "$loadgen" --scenario fanout --port "$port" --rooms 1 --members 2 \
  --rate 10 --duration 1 --quiet >/dev/null 2>"$work/gone.err" || status=$?
((status == 1)) || fail "against a stopped server the load generator exited with $status, not 1"
echo "all loadgen smoke checks passed"
