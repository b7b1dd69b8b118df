#!/usr/bin/env bash
# Installs the Debian 12 packages roomcast needs, and nothing else. Idempotent: it only calls
# apt-get when a package is missing, so repeated runs cost a dpkg query.
#
#   tools/install-deps.sh          build + test dependencies
#   tools/install-deps.sh --build  only what building the server needs (the container image)
set -euo pipefail

build_packages=(g++ cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev libhiredis-dev)
test_packages=(catch2 libtrompeloeil-cpp-dev clang clang-tidy-14 libfuzzer-14-dev libclang-rt-14-dev
               redis-server haproxy openssl libssl-dev python3-yaml)

packages=("${build_packages[@]}")
[[ "${1:-}" == "--build" ]] || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run this script as root (or install them)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
