#!/usr/bin/env bash
# Checks deploy/: haproxy accepts deploy/haproxy.cfg (haproxy -c, with the variables compose sets
# and a throwaway certificate), and deploy/compose.yaml is valid YAML whose services fit it: a
# Redis, two nodes started with --redis, --proxy-protocol on and a --trusted-proxy that holds the
# compose network, and haproxy given every variable the file needs (ROOMCAST_NODE3 is optional).
# Run by ctest.
#
#   tools/check-deploy.sh [HAPROXY]      default: haproxy on PATH or in /usr/sbin
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
haproxy=${1:-$(command -v haproxy || echo /usr/sbin/haproxy)}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
cat "$dir/cert.pem" "$dir/key.pem" >"$dir/haproxy.pem"

ROOMCAST_LB_CERT=$dir/haproxy.pem ROOMCAST_NODE1=127.0.0.1:3001 ROOMCAST_NODE2=127.0.0.1:3002 \
  "$haproxy" -c -q -f deploy/haproxy.cfg
# With the optional third node (tests/integration/haproxy_test.cpp runs three).
ROOMCAST_LB_CERT=$dir/haproxy.pem ROOMCAST_NODE1=127.0.0.1:3001 ROOMCAST_NODE2=127.0.0.1:3002 \
  ROOMCAST_NODE3=127.0.0.1:3003 "$haproxy" -c -q -f deploy/haproxy.cfg
echo "check-deploy: deploy/haproxy.cfg is valid (two nodes, and three)"

python3 - <<'PY'
import ipaddress, re, sys, yaml

compose = yaml.safe_load(open("deploy/compose.yaml"))
config = open("deploy/haproxy.cfg").read()
services = compose["services"]
problems = []
subnet = ipaddress.ip_network(compose["networks"]["cluster"]["ipam"]["config"][0]["subnet"])
nodes = [name for name in services if name.startswith("node")]
if "redis" not in services or len(nodes) < 2:
    problems.append("expected redis and at least two nodes, got %s" % sorted(services))
for name in nodes:
    args = services[name]["command"]
    flags = dict(zip(args[::2], args[1::2]))
    if flags.get("--proxy-protocol") != "on":
        problems.append(name + ": not started with --proxy-protocol on")
    if not flags.get("--redis", "").startswith("redis://redis:"):
        problems.append(name + ": --redis does not name the redis service")
    trusted = [ipaddress.ip_network(c.strip()) for c in flags.get("--trusted-proxy", "").split(",") if c.strip()]
    if not any(subnet.subnet_of(t) for t in trusted if t.version == subnet.version):
        problems.append(name + ": --trusted-proxy does not hold the compose network " + str(subnet))
# What lies between .if and .endif (a server line read only when its variable is set) is optional.
required = re.sub(r'^\.if\b.*?^\.endif\b', '', config, flags=re.M | re.S)
needed = set(re.findall(r'\$\{(ROOMCAST_[A-Z0-9_]+)\}', required))  # those without a default
given = set(services["haproxy"]["environment"])
if needed - given:
    problems.append("haproxy lacks " + ", ".join(sorted(needed - given)))
servers = re.findall(r'^\s*server (\S+) "\$\{(ROOMCAST_NODE\d+)\}"', config, re.M)
for server, variable in servers:
    if variable not in needed and variable not in given:
        continue  # an optional node that compose does not run
    target = services["haproxy"]["environment"].get(variable, "")
    if target.split(":")[0] not in services:
        problems.append("%s (%s=%s) is not a compose service" % (server, variable, target))
for p in problems:
    print("check-deploy: " + p)
if problems:
    sys.exit(1)
print("check-deploy: deploy/compose.yaml fits (%d nodes, network %s)" % (len(nodes), subnet))
PY
