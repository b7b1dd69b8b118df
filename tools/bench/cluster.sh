#!/usr/bin/env bash
# Cluster mode against single-node mode, in one run: 100 rooms x 10 members at --rate msg/s,
# first against one node without Redis, then against N nodes sharing one redis-server, every
# room's members spread over the nodes (roomcast-loadgen --port P1,P2,P3). Every process is
# started here and ended by its PID; Redis runs without persistence on a unix socket in a temp dir.
# Nothing is pinned (N nodes, Redis and the load generator share the machine's cores).
# Prints one line per run, and keeps the JSON reports in OUT (default build/bench-cluster).
#
#   tools/bench/cluster.sh [--nodes N] [--rate R] [--reps K] [--duration S] [--out DIR]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
server_bin="${ROOMCAST_BIN:-$repo/build/release/src/roomcast}"
loadgen="${ROOMCAST_LOADGEN:-$repo/build/release/tools/loadgen/roomcast-loadgen}"
nodes=3
rate=5000
reps=3
duration=10
out="$repo/build/bench-cluster"

die() { echo "cluster.sh: $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --nodes) nodes="${2:?}"; shift 2 ;;
    --rate) rate="${2:?}"; shift 2 ;;
    --reps) reps="${2:?}"; shift 2 ;;
    --duration) duration="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
[[ "$nodes" =~ ^[1-9]$ ]] || die "--nodes: 1..9"
[[ -x "$server_bin" && -x "$loadgen" ]] || die "build the release preset first"
command -v redis-server >/dev/null || die "needs redis-server (tools/install-deps.sh)"
command -v jq >/dev/null || die "needs jq"
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# cpu_ticks PID: utime + stime in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# start_node LOG ARGS...: starts roomcast (at log level info: the port is read from its
# "listening on" line), waits for its port; sets node_pid and node_port.
start_node() {
  local log="$1"
  shift
  "$server_bin" --port 0 --rate-limit 0 --max-members 1000 --max-rooms 10000 \
    --max-connections 20000 --max-connections-per-ip 20000 --log-level info "$@" >"$log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  node_port=""
  for _ in $(seq 300); do
    node_port="$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -1)"
    [[ -n "$node_port" ]] && return 0
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  die "a node did not start"
}

stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}

load() {  # load LABEL PORTS PIDS
  "$loadgen" --scenario fanout --port "$2" --server-pid "$3" --rooms 100 --members 10 \
    --rate "$rate" --duration "$duration" --warmup 2 --label "$1" --quiet
}

line() {
  jq -r '"\(.label): \(.deliveries_per_s) deliveries/s, p50 \(.latency_p50_us / 1000 * 100 | round / 100) p99 \(.latency_p99_us / 1000 * 100 | round / 100) ms, server \(.server_cpu_us_per_delivery) us/delivery, gaps \(.gaps), missing \(.missing_deliveries)"'
}

for rep in $(seq "$reps"); do
  # One node, no Redis.
  start_node "$work/single.log" --threads 1
  single="$(load single "$node_port" "$node_pid")"
  stop_all
  echo "$single" >>"$out/single.jsonl"
  echo "rep $rep: $(line <<<"$single")"

  # N nodes and one Redis.
  redis-server --port 0 --unixsocket "$work/redis.sock" --save '' --appendonly no \
    --daemonize no --loglevel warning >"$work/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 200); do [[ -S "$work/redis.sock" ]] && break; sleep 0.05; done
  [[ -S "$work/redis.sock" ]] || die "redis-server did not start"
  ports=()
  node_pids=()
  for i in $(seq "$nodes"); do
    start_node "$work/node$i.log" --threads 1 --redis "unix://$work/redis.sock"
    ports+=("$node_port")
    node_pids+=("$node_pid")
  done
  redis_before="$(cpu_ticks "$redis_pid")"
  t0="$(date +%s.%N)"
  cluster="$(load "cluster-$nodes" "$(IFS=,; echo "${ports[*]}")" "$(IFS=,; echo "${node_pids[*]}")")"
  t1="$(date +%s.%N)"
  redis_after="$(cpu_ticks "$redis_pid")"
  stop_all
  hz="$(getconf CLK_TCK)"
  redis_share="$(awk -v a="$redis_before" -v b="$redis_after" -v hz="$hz" -v t0="$t0" -v t1="$t1" \
    'BEGIN {printf "%.3f", (b - a) / hz / (t1 - t0)}')"
  cluster="$(jq -c --argjson share "$redis_share" '. + {redis_cpu_share_whole_run: $share}' <<<"$cluster")"
  echo "$cluster" >>"$out/cluster.jsonl"
  echo "rep $rep: $(line <<<"$cluster"), per node $(jq -r '[to_entries[] | select(.key | test("^node[0-9]+_cpu_us_per_delivery$")) | .value] | join(" / ")' <<<"$cluster") us/delivery, Redis CPU share $redis_share (whole run)"
done
