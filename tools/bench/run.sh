#!/usr/bin/env bash
# Runs the benchmark matrix of issue 6 against roomcast and/or the seed's Node server: every run on
# a fresh server process (started here, ended by its PID), the server pinned to CPU 0 and the load
# generator to CPU 1, N repetitions; one JSON line per run in build/bench/<label>.jsonl, then a
# summary with medians and min-max (tools/bench/summary.sh).
#
#   tools/bench/run.sh                       roomcast, the full matrix, 3 repetitions
#   tools/bench/run.sh --peer seed           roomcast, then the same matrix against the seed server
#   tools/bench/run.sh --targets seed        the seed server only
#   tools/bench/run.sh --quick --only churn  1 repetition, short runs, cases matching "churn"
#
# Options:
#   --targets LIST     comma-separated: roomcast, seed, custom (default: roomcast)
#   --peer seed        add the seed server after roomcast
#   --server 'CMD'     the "custom" target's command; {port} is replaced by the port, {flags} by
#                      the case's roomcast flags (the flood cases have some)
#   --label NAME       the "custom" target's label (default: custom)
#   --reps N           repetitions per case (default 3)
#   --duration S       measured window per run (default 10; idle: the hold)
#   --warmup S         warm-up per run (default 2)
#   --quick            --reps 1 --duration 3 --warmup 1 and a shorter sweep
#   --only REGEX       run only the cases whose name matches (grep -E)
#   --list             print the cases and exit
#   --out DIR          where the JSONL files and logs go (default: build/bench)
#   --append           add to the JSONL files instead of starting them afresh
#   --no-build         do not build roomcast and roomcast-loadgen first
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

targets="roomcast"
custom_cmd=""
custom_label="custom"
reps=3
duration=10
warmup=2
quick=0
only=""
list=0
out="$repo/build/bench"
append=0
build=1

die() { echo "run.sh: $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    --targets) targets="${2:?}"; shift 2 ;;
    --peer) [[ "${2:-}" == seed ]] || die "--peer: only 'seed' is known"; targets="$targets,seed"; shift 2 ;;
    --server) custom_cmd="${2:?}"; shift 2 ;;
    --label) custom_label="${2:?}"; shift 2 ;;
    --reps) reps="${2:?}"; shift 2 ;;
    --duration) duration="${2:?}"; shift 2 ;;
    --warmup) warmup="${2:?}"; shift 2 ;;
    --quick) quick=1; shift ;;
    --only) only="${2:?}"; shift 2 ;;
    --list) list=1; shift ;;
    --out) out="${2:?}"; shift 2 ;;
    --append) append=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (--help)" ;;
  esac
done
[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "--reps: a positive integer"
if ((quick)); then
  reps=1; duration=3; warmup=1
fi

# ---------------------------------------------------------------------------------------------
# The matrix: name|loadgen arguments[|roomcast flags]. Offered load 50,000 deliveries/s is
# 5,000 msg/s into 100 rooms x 10 and 50 msg/s into 1 room x 1000; those two runs also give the
# latency targets. Roomcast flags of a case come after the common ones (the last one wins); a
# custom target gets them where its command says {flags}; the seed server ignores them.
cases=(
  "fanout-100x10-rate5000|--scenario fanout --rooms 100 --members 10 --rate 5000"
  "fanout-1x1000-rate50|--scenario fanout --rooms 1 --members 1000 --rate 50"
  "fanout-100x10-closed|--scenario fanout --rooms 100 --members 10 --window 8"
  "fanout-1x1000-closed|--scenario fanout --rooms 1 --members 1000 --window 32"
)
if ((quick)); then
  sweep_100x10=(50 500 20000)
  sweep_1x1000=(5 100)
else
  sweep_100x10=(10 20 50 100 200 500 1000 2000 10000 20000)
  sweep_1x1000=(2 5 10 20 100)
fi
for rate in "${sweep_100x10[@]}"; do
  cases+=("sweep-100x10-rate$rate|--scenario fanout --rooms 100 --members 10 --rate $rate")
done
for rate in "${sweep_1x1000[@]}"; do
  cases+=("sweep-1x1000-rate$rate|--scenario fanout --rooms 1 --members 1000 --rate $rate")
done
cases+=(
  "idle-1k|--scenario idle --connections 1000 --members 10"
  "idle-19k|--scenario idle --connections 19000 --members 10"
  "churn-k8|--scenario churn --concurrency 8"
  "churn-shared-k8|--scenario churn --concurrency 8 --shared-room"
)
# Issue 11: two clients flooding control frames beside a member chatting at 100 msg/s (each
# window --duration: without the flood, then with it). With a rate limit (200/s, so that the
# member's own 100 msg/s fit; the flooders send 10^5-10^6 frames/s) the flooders must be closed
# within 5 s; without one (--rate-limit 0) they never are, and only fair reads protect the member.
flood_limits="--rate-limit 200 --rate-burst 200"
cases+=(
  "flood-ping-t1|--scenario flood --flooders 2 --flood-frame ping --rate 100|--threads 1 $flood_limits"
  "flood-ping-t2|--scenario flood --flooders 2 --flood-frame ping --rate 100|--threads 2 $flood_limits"
  "flood-pong-t1|--scenario flood --flooders 2 --flood-frame pong --rate 100|--threads 1 $flood_limits"
  "flood-ping-nolimit-t1|--scenario flood --flooders 2 --flood-frame ping --rate 100 --close-within 0|--threads 1 --rate-limit 0"
  "flood-ping-nolimit-t2|--scenario flood --flooders 2 --flood-frame ping --rate 100 --close-within 0|--threads 2 --rate-limit 0"
)
if [[ -n "$only" ]]; then
  selected=()
  for c in "${cases[@]}"; do
    if grep -Eq -- "$only" <<<"${c%%|*}"; then selected+=("$c"); fi
  done
  cases=("${selected[@]}")
fi
if ((list)); then
  for c in "${cases[@]}"; do printf '%-24s %s\n' "${c%%|*}" "${c#*|}"; done
  exit 0
fi
((${#cases[@]})) || die "no case matches --only '$only'"

# ---------------------------------------------------------------------------------------------
for tool in jq curl taskset ss timeout; do
  command -v "$tool" >/dev/null || die "'$tool' is needed (Debian: apt-get install jq curl util-linux iproute2 coreutils)"
done
(($(nproc) >= 2)) || die "the server and the load generator need two CPUs (0 and 1)"

IFS=',' read -r -a target_list <<<"$targets"
for t in "${target_list[@]}"; do
  case "$t" in
    roomcast) ;;
    seed) command -v node >/dev/null || die "the seed server needs node" ;;
    custom) [[ -n "$custom_cmd" ]] || die "target 'custom' needs --server 'CMD'" ;;
    *) die "unknown target '$t'" ;;
  esac
done

loadgen="$repo/build/release/tools/loadgen/roomcast-loadgen"
roomcast="$repo/build/release/src/roomcast"
if ((build)); then
  [[ -f build/release/build.ninja ]] || cmake --preset release >/dev/null
  cmake --build build/release --target roomcast roomcast-loadgen
fi
[[ -x "$loadgen" ]] || die "$loadgen is missing (build it, or drop --no-build)"

seed_dir="$out/peers/seed-node"
prepare_seed() {
  local prepare="$repo/../shared/peers/seed-node/prepare.sh"
  [[ -x "$prepare" || -f "$prepare" ]] \
    || die "the seed peer needs $prepare (the shared folder next to the repository); it is absent"
  mkdir -p "$seed_dir"
  bash "$prepare" "$seed_dir" >&2
}

mkdir -p "$out/logs"
# Every connection is a descriptor on both sides; the hard limit is what we may have.
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------------------------------------
server_pid=""
stop_server() {
  [[ -n "$server_pid" ]] || return 0
  if kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # A child that exited stays visible to kill -0 until it is reaped: ask ps for its state.
    local deadline=$((SECONDS + 12))
    while ((SECONDS < deadline)); do
      case "$(ps -o stat= -p "$server_pid" 2>/dev/null || true)" in
        "" | Z*) break ;;
      esac
      sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

# A port below the ephemeral range (the load generator's own connections use that) that nothing
# listens on.
free_port() {
  local low port
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % (low > 21000 ? low - 20000 : 10000)))
    if [[ -z "$(ss -Hltn "sport = :$port")" ]]; then echo "$port"; return 0; fi
  done
  return 1
}

# start_server TARGET PORT LOG [ROOMCAST_FLAGS]: sets server_pid, server_cmd.
start_server() {
  local target="$1" port="$2" log="$3" flags="${4:-}"
  case "$target" in
    roomcast)
      server_cmd="$roomcast --host 127.0.0.1 --port $port --threads 1 --rate-limit 0 --max-members 1000 --max-rooms 10000 --max-connections 20000 --max-connections-per-ip 20000 --log-level warn${flags:+ $flags}"
      # shellcheck disable=SC2086
      taskset -c 0 $server_cmd >"$log" 2>&1 &
      server_pid=$!
      ;;
    seed)
      server_cmd="cd $seed_dir && PORT=$port node -r ./loopback.js server.js"
      (cd "$seed_dir" && PORT="$port" exec taskset -c 0 node -r ./loopback.js server.js) >"$log" 2>&1 &
      server_pid=$!
      ;;
    custom)
      server_cmd="${custom_cmd//\{port\}/$port}"
      server_cmd="${server_cmd//\{flags\}/$flags}"
      PORT="$port" taskset -c 0 bash -c "exec $server_cmd" >"$log" 2>&1 &
      server_pid=$!
      ;;
  esac
}

# Ready when /healthz answers 200 (roomcast) or anything at all answers over HTTP (the seed
# server has no /healthz: its 404 says it listens).
wait_ready() {
  local target="$1" port="$2" deadline=$((SECONDS + 15)) code
  while ((SECONDS < deadline)); do
    kill -0 "$server_pid" 2>/dev/null || return 1
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$port/healthz" || true)"
    if [[ "$code" == 200 || ("$target" != roomcast && "$code" != 000) ]]; then return 0; fi
    sleep 0.05
  done
  return 1
}

label_of() {
  case "$1" in
    custom) echo "$custom_label" ;;
    *) echo "$1" ;;
  esac
}

run_case() {
  local target="$1" label="$2" name="$3" args="$4" rep="$5" file="$6" flags="${7:-}"
  local log="$out/logs/$label-$name-$rep.log" port attempt
  for attempt in 1 2 3; do
    port="$(free_port)" || die "no free port"
    start_server "$target" "$port" "$log" "$flags"
    if wait_ready "$target" "$port"; then break; fi
    echo "run.sh: $label did not become ready on port $port (attempt $attempt); log: $log" >&2
    tail -5 "$log" >&2 || true
    stop_server
    ((attempt < 3)) || return 1
  done

  local extra=(--duration "$duration" --warmup "$warmup" --drain 5 --setup-timeout 120)
  local bound
  bound=$(awk -v d="$duration" -v w="$warmup" 'BEGIN { printf "%d", d + w + 5 + 120 + 60 }')
  local started load report status=0
  started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  read -r load _ </proc/loadavg
  echo "== $label $name (rep $rep): port $port, server pid $server_pid" >&2
  # shellcheck disable=SC2086
  report="$(timeout --kill-after=5 "$bound" taskset -c 1 "$loadgen" $args "${extra[@]}" \
    --cpu 1 --port "$port" --label "$label" --server-pid "$server_pid" \
    2> >(sed 's/^/   /' >&2))" || status=$?
  stop_server
  if ! jq -e . >/dev/null 2>&1 <<<"$report"; then
    report="$(jq -nc --arg server "$label" --argjson code "$status" \
      '{"label": $server, ok: false, exit_code: $code, error: "the load generator wrote no report"}')"
  fi
  jq -c --arg case "$name" --argjson rep "$rep" --arg started "$started" --arg load "$load" \
    --arg server "$server_cmd" --argjson status "$status" \
    '. + {case: $case, rep: $rep, started: $started, loadavg_1m: ($load | tonumber),
          server_command: $server, loadgen_status: $status}' <<<"$report" >>"$file"
  jq -r '"   -> " + (if .ok then "ok" else "FAILED: " + (.error // "?") end)' <<<"$report" >&2
  # 1: the run itself failed (set-up, stalled server); the other repetitions would too.
  [[ "$status" != 1 ]]
}

files=()
for target in "${target_list[@]}"; do
  label="$(label_of "$target")"
  [[ "$target" == seed ]] && prepare_seed
  file="$out/$label.jsonl"
  ((append)) || : >"$file"
  files+=("$file")
  for c in "${cases[@]}"; do
    name="${c%%|*}"
    args="${c#*|}"
    flags=""
    if [[ "$args" == *"|"* ]]; then
      flags="${args#*|}"
      args="${args%%|*}"
    fi
    for ((rep = 1; rep <= reps; rep++)); do
      if ! run_case "$target" "$label" "$name" "$args" "$rep" "$file" "$flags"; then
        echo "   (the remaining repetitions of $name are skipped: the run failed)" >&2
        break
      fi
    done
  done
done

"$repo/tools/bench/summary.sh" "${files[@]}"
