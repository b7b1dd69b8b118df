#!/usr/bin/env bash
# Builds the Dockerfile and runs the image without a Docker engine or a registry: podman/buildah
# with chroot isolation, on a Debian 12 base image debootstrapped from the host's own mirror.
# Needs root. docs/container.md explains it.
#
#   tools/container-test.sh           build (reusing cached layers and the base image) and test
#   tools/container-test.sh --fresh   first remove every cache below, to measure a cold run
#   tools/container-test.sh --clean   afterwards remove the images, the debootstrap tree and ws
#
# Steps: (1) base image localhost/roomcast-bookworm (debootstrap --variant=minbase, cached in
# build/container/rootfs), (2) podman build of the Dockerfile with that image as both stages,
# checks of the image's config and of the binary's libraries, (3) roomcast started in a buildah
# working container on a free port, (4) /healthz and / with curl, the image's own HEALTHCHECK
# command, a two-client WebSocket chat (node + ws), (5) SIGTERM with a client connected: it must
# get close 1001 and the server must log "stopped", (6) cleanup. Prints each step's time and
# "container-test: PASS" (exit 0) or "container-test: FAIL" (exit 1).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
cache=$repo/build/container
rootfs=$cache/rootfs
base_image=localhost/roomcast-bookworm
image=localhost/roomcast:container-test
ctr=roomcast-container-test-$$

fresh=0 clean=0
for arg in "$@"; do
  case $arg in
    --fresh) fresh=1 ;;
    --clean) clean=1 ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "container-test: unknown argument '$arg' (--fresh, --clean)" >&2; exit 2 ;;
  esac
done

# --- bookkeeping ----------------------------------------------------------------------------
result=FAIL
timings=()
step_name='' step_start=0 step_note=''
now() { date +%s.%N; }
step() { # step NAME: ends the previous step, starts the next
  step_end
  step_name=$1 step_start=$(now) step_note=''
  echo "container-test: == $1" >&2
}
step_end() {
  [[ -n $step_name ]] || return 0
  timings+=("$(awk -v a="$step_start" -v b="$(now)" -v n="$step_name" -v note="$step_note" \
    'BEGIN { printf "%-36s %7.1f s %s", n, b - a, note }')")
  step_name=''
}
log() { echo "container-test: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

server_pid='' hold_pid='' ctr_made=0
descendants() { # every descendant PID of $1
  local child
  # shellcheck disable=SC2013 # the file is one line of space-separated PIDs
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}
roomcast_pid() { # the roomcast process under the buildah process $1 (buildah-chroot-exec's child)
  local p
  for p in $(descendants "$1"); do
    [[ $(cat /proc/"$p"/comm 2>/dev/null) == roomcast ]] && { echo "$p"; return 0; }
  done
  return 1
}
alive() { [[ -n $1 ]] && kill -0 "$1" 2>/dev/null; }
wait_gone() { # wait_gone PID SECONDS: 0 when PID has exited within SECONDS
  local deadline=$((SECONDS + $2))
  while alive "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}
stop_pid() { # stop_pid PID: TERM, then KILL after 5 s
  alive "$1" || return 0
  kill -TERM "$1" 2>/dev/null || true
  wait_gone "$1" 5 || kill -KILL "$1" 2>/dev/null || true
}

remove_caches() {
  if podman image exists "$image"; then podman rmi -f "$image" >/dev/null || true; fi
  # The build stage's cached layers are children of the base image: remove those first.
  if podman image exists "$base_image"; then
    local base_id children
    base_id=$(podman image inspect --format '{{.Id}}' "$base_image")
    children=$(podman images -a -q --no-trunc | xargs -r podman image inspect --format '{{.Id}} {{.Parent}}')
    remove_tree "$base_id" "$children"
    podman rmi -f "$base_image" >/dev/null || true
  fi
  if [[ -d $rootfs ]]; then
    awk -v d="$rootfs/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$rootfs"
  fi
  rm -rf "$rootfs.ok" "$cache/node_modules" "$cache/package.json" "$cache/package-lock.json"
}
remove_tree() { # remove_tree ID "ID PARENT lines": removes the images descending from ID, leaves first
  local id=${1#sha256:} child parent
  while read -r child parent; do
    [[ -n $child && ${parent#sha256:} == "$id" ]] || continue
    remove_tree "$child" "$2"
    podman rmi -f "$child" >/dev/null 2>&1 || true
  done <<<"$2"
}

finish() {
  trap - EXIT INT TERM
  set +e
  step_end
  step "6 cleanup"
  if [[ -n $server_pid ]]; then
    local pid
    pid=$(roomcast_pid "$server_pid")
    [[ -n $pid ]] && stop_pid "$pid"
    stop_pid "$server_pid"
  fi
  stop_pid "$hold_pid"
  ((ctr_made)) && { buildah rm "$ctr" >/dev/null || log "could not remove working container $ctr"; }
  ((clean)) && remove_caches
  step_end
  echo "container-test: step times" >&2
  printf '  %s\n' "${timings[@]}" >&2
  echo "container-test: $result"
  [[ $result == PASS ]] && exit 0
  exit 1
}
trap finish EXIT
trap 'log "interrupted"; exit 1' INT TERM

# --- 0. tools ---------------------------------------------------------------------------------
step tools
[[ $(id -u) -eq 0 ]] || fail "run as root (podman build --isolation=chroot and debootstrap need it)"
missing=()
for tool in podman buildah debootstrap curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -qq
  timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
{ command -v node && command -v npm; } >/dev/null || fail "node and npm are needed (the WebSocket client of step 4 uses the npm package ws)"
mkdir -p "$cache"
((fresh)) && { log "--fresh: removing cached images, base tree and ws"; remove_caches; }
if [[ ! -d $cache/node_modules/ws ]]; then
  printf '{"private":true,"dependencies":{"ws":"^8.18.0"}}\n' >"$cache/package.json"
  timeout 300 npm install --prefix "$cache" --no-audit --no-fund --loglevel=error >/dev/null ||
    fail "npm install ws"
fi

# --- 1. base image ------------------------------------------------------------------------------
step "1 base image (debootstrap+import)"
debian_mirror() { # the host's bookworm mirror: deb822 sources first, then one-line sources
  [[ -n ${ROOMCAST_DEBIAN_MIRROR:-} ]] && { echo "$ROOMCAST_DEBIAN_MIRROR"; return; }
  local m
  m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk 'BEGIN { RS = ""; FS = "\n" }
    { uri = ""; ok = 0; deb = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
        if ($i ~ /^Suites:/ && $i ~ /[ \t]bookworm([ \t]|$)/) ok = 1
        if ($i ~ /^Types:/ && $i ~ /[ \t]deb([ \t]|$)/) deb = 1
      }
      if (ok && deb && uri != "") { print uri; exit } }')
  [[ -n $m ]] || m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '
    $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                  if ($(i + 1) == "bookworm") { print $i; exit } }')
  echo "${m:-http://deb.debian.org/debian}"
}
if podman image exists "$base_image"; then
  log "$base_image exists: reused"
  step_note='(cached)'
else
  if [[ ! -f $rootfs.ok ]]; then
    mirror=$(debian_mirror)
    include=()
    [[ $mirror == https:* ]] && include=(--include=ca-certificates) # apt in the image needs them
    log "debootstrap --variant=minbase bookworm from $mirror"
    rm -rf --one-file-system "$rootfs"
    timeout 1200 debootstrap --variant=minbase "${include[@]}" bookworm "$rootfs" "$mirror" \
      >"$cache/debootstrap.log" 2>&1 || { tail -20 "$cache/debootstrap.log" >&2; fail "debootstrap"; }
    touch "$rootfs.ok"
  fi
  # Left out, as in debian:bookworm-slim: apt's package lists and caches (the build stage runs
  # apt-get update, as it must on a registry image), the downloaded .debs, man pages and
  # translations. So the measured image size is close to what bookworm-slim gives.
  tar -C "$rootfs" --exclude='./var/lib/apt/lists/*_*' --exclude='./var/cache/apt/*.bin' \
    --exclude='./var/cache/apt/archives/*.deb' --exclude='./usr/share/man/*' \
    --exclude='./usr/share/locale/*' -c . |
    podman import -q - "$base_image" >/dev/null || fail "podman import"
fi

# --- 2. image ---------------------------------------------------------------------------------
step "2 image build (podman build)"
# --format docker: the OCI image format has no HEALTHCHECK. --network=host: apt in the build stage.
timeout 3600 podman build --isolation=chroot --network=host --format docker \
  --build-arg BUILD_IMAGE="$base_image" --build-arg RUNTIME_IMAGE="$base_image" \
  -t "$image" -f Dockerfile . >"$cache/build.log" 2>&1 || { tail -30 "$cache/build.log" >&2; fail "podman build (log: $cache/build.log)"; }
grep -q 'Using cache' "$cache/build.log" && log "($(grep -c 'Using cache' "$cache/build.log") build steps from cache)"

inspect() { podman image inspect --format "$1" "$image"; }
[[ $(inspect '{{.Config.User}}') == 10001:10001 ]] || fail "image user is '$(inspect '{{.Config.User}}')', not 10001:10001"
[[ $(inspect '{{.Config.StopSignal}}') == SIGTERM ]] || fail "STOPSIGNAL is not SIGTERM"
[[ $(inspect '{{json .Config.Entrypoint}}') == '["/usr/local/bin/roomcast"]' ]] || fail "ENTRYPOINT is $(inspect '{{json .Config.Entrypoint}}')"
[[ $(inspect '{{json .Config.ExposedPorts}}') == *'"3000/tcp"'* ]] || fail "port 3000 is not exposed"
env_json=$(inspect '{{json .Config.Env}}')
[[ $env_json == *'"ROOMCAST_HOST=0.0.0.0"'* && $env_json == *'"PORT=3000"'* ]] || fail "ENV is $env_json"
mapfile -d '' healthcheck < <(inspect '{{json .Config.Healthcheck}}' | node -e '
  const h = JSON.parse(require("fs").readFileSync(0, "utf8"));
  if (!h || !Array.isArray(h.Test) || h.Test[0] !== "CMD") process.exit(1);
  process.stdout.write(h.Test.slice(1).join("\0"));')
((${#healthcheck[@]})) || fail "no HEALTHCHECK in the image"

buildah from --pull=never --name "$ctr" "$image" >/dev/null || fail "buildah from $image"
ctr_made=1
run_in() { timeout -k 5 "$1" buildah run --isolation=chroot --network=host "${@:2}"; }
libs=$(run_in 30 --user 0:0 "$ctr" -- ldd /usr/local/bin/roomcast) || fail "ldd in the image"
while read -r lib _; do
  case $lib in
    linux-vdso.so.* | libstdc++.so.6 | libgcc_s.so.1 | libc.so.6 | libm.so.6 | /lib64/ld-linux-* | /lib/ld-linux-*) ;;
    *) fail "the binary needs '$lib', which bookworm-slim does not have:"$'\n'"$libs" ;;
  esac
done <<<"$libs"
[[ $libs != *'not found'* ]] || fail "missing libraries: $libs"
image_size=$(inspect '{{.Size}}')
base_size=$(podman image inspect --format '{{.Size}}' "$base_image")
binary_size=$(run_in 30 "$ctr" -- stat -c %s /usr/local/bin/roomcast)
log "image $(numfmt --to=si "$image_size")B = base $(numfmt --to=si "$base_size")B + $(numfmt --to=si $((image_size - base_size)))B (binary $(numfmt --to=si "$binary_size")B, needs only libc/libstdc++/libgcc_s)"

# --- 3. start ---------------------------------------------------------------------------------
step "3 start roomcast in the container"
free_port() { # a port nothing on this host listens on
  local p _
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
  done
  return 1
}
port=$(free_port) || fail "no free port"
# PORT in the container's config, as "docker run -e PORT=..." would set it (the HEALTHCHECK reads it).
buildah config --env PORT="$port" "$ctr"
server_log=$cache/server.log
buildah run --isolation=chroot --network=host "$ctr" -- /usr/local/bin/roomcast >"$server_log" 2>&1 &
server_pid=$!
deadline=$((SECONDS + 30))
until grep -q 'listening on' "$server_log"; do
  alive "$server_pid" || { cat "$server_log" >&2; fail "roomcast exited at start"; }
  ((SECONDS < deadline)) || { cat "$server_log" >&2; fail "roomcast did not listen within 30 s"; }
  sleep 0.2
done
rc_pid=$(roomcast_pid "$server_pid") || fail "cannot find the roomcast process under buildah ($server_pid)"
grep -q "listening on http://0.0.0.0:$port/" "$server_log" || fail "not listening on 0.0.0.0:$port: $(grep listening "$server_log")"
[[ $(stat -c %u /proc/"$rc_pid") == 10001 ]] || fail "roomcast runs as uid $(stat -c %u /proc/"$rc_pid"), not 10001"
log "roomcast pid $rc_pid (uid 10001) on port $port (buildah pid $server_pid)"

# --- 4. checks --------------------------------------------------------------------------------
step "4 checks (http, healthcheck, chat)"
url=http://127.0.0.1:$port
[[ $(curl -fsS --max-time 5 "$url/healthz") == ok ]] || fail "GET /healthz"
[[ $(curl -fsS --max-time 5 -o /dev/null -w '%{http_code} %{content_type}' "$url/") == '200 text/html'* ]] ||
  fail "GET / is not the page"
[[ $(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$url/readyz") == 200 ]] || fail "GET /readyz"
run_in 20 "$ctr" -- "${healthcheck[@]}" || fail "the image's HEALTHCHECK command fails against a running server"
closed=$(free_port) || fail "no free port"
! run_in 20 -e ROOMCAST_PORT="$closed" "$ctr" -- "${healthcheck[@]}" 2>/dev/null ||
  fail "the HEALTHCHECK command succeeds with nothing listening"

cat >"$cache/chat-check.mjs" <<'EOF'
// chat PORT: two clients create/join a room and chat; hold PORT: one client in a room waits for
// the server's close and exits 0 on 1001 (going away). Every wait is bounded.
import WebSocket from "ws";
const [mode, port] = process.argv.slice(2);
const url = `ws://127.0.0.1:${port}/ws`;
const room = String(1000 + Math.floor(Math.random() * 9000));
const fail = (why) => { console.error(`chat-check: ${why}`); process.exit(1); };
setTimeout(() => fail("timed out"), mode === "hold" ? 40000 : 15000).unref();

function client(name) {
  const ws = new WebSocket(url);
  const queue = [], waiters = [];
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString());
    const i = waiters.findIndex((w) => w.test(frame));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(frame); else queue.push(frame);
  });
  ws.on("error", (e) => fail(`${name}: ${e.message}`));
  return {
    ws, name,
    open: () => new Promise((resolve) => ws.once("open", resolve)),
    send: (obj) => ws.send(JSON.stringify(obj)),
    expect(test) {
      const i = queue.findIndex(test);
      if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
  };
}
const ev = (event, extra = () => true) => (f) => f.code === 200 && f.event === event && extra(f);

const a = client("alice");
await a.open();
a.send({ type: "create", roomId: room, name: "alice" });
await a.expect(ev("create", (f) => f.name === "alice" && f.users === 1));
if (mode === "hold") {
  console.log("ready");
  a.ws.on("close", (code) => { console.log(`closed ${code}`); process.exit(code === 1001 ? 0 : 1); });
} else {
  const b = client("bob");
  await b.open();
  b.send({ type: "join", roomId: room, name: "bob" });
  for (const c of [a, b]) await c.expect(ev("join", (f) => f.name === "bob" && f.users === 2));
  b.send({ type: "message", text: "hi from the container test" });
  for (const c of [a, b]) {
    await c.expect(ev("message", (f) => f.name === "bob" && f.text === "hi from the container test"));
  }
  a.send({ type: "message", text: "hello bob" });
  await b.expect(ev("message", (f) => f.name === "alice" && f.text === "hello bob"));
  for (const c of [a, b]) c.ws.close(1000);
  console.log(`chat ok in room ${room}`);
  process.exit(0);
}
EOF
timeout -k 5 30 node "$cache/chat-check.mjs" chat "$port" >&2 || fail "WebSocket chat"

# --- 5. SIGTERM -------------------------------------------------------------------------------
step "5 SIGTERM drain and exit"
node "$cache/chat-check.mjs" hold "$port" >"$cache/hold.log" 2>&1 &
hold_pid=$!
deadline=$((SECONDS + 10))
until grep -q ready "$cache/hold.log"; do
  alive "$hold_pid" || { cat "$cache/hold.log" >&2; fail "holding client"; }
  ((SECONDS < deadline)) || fail "holding client not ready within 10 s"
  sleep 0.1
done
kill -TERM "$rc_pid"
wait_gone "$server_pid" 20 || { tail -5 "$server_log" >&2; fail "roomcast still running 20 s after SIGTERM"; }
buildah_rc=0
wait "$server_pid" || buildah_rc=$?
server_pid=''
wait_gone "$hold_pid" 10 || fail "holding client still open after the server stopped"
hold_rc=0
wait "$hold_pid" || hold_rc=$?
hold_pid=''
tail -3 "$server_log" >&2
grep -q 'signal 15 received: draining' "$server_log" || fail "no drain on SIGTERM"
grep -q 'info stopped$' "$server_log" || fail "roomcast did not log 'stopped' (a clean exit 0)"
((hold_rc == 0)) || fail "connected client did not get close 1001: $(cat "$cache/hold.log")"
((buildah_rc == 0)) || fail "buildah run exited $buildah_rc"
log "drained: client got $(grep closed "$cache/hold.log"), roomcast logged 'stopped', exit code $buildah_rc"

step_end
result=PASS
