#!/usr/bin/env bash
# Installs Debian's chromium when it is missing (as root); shared by the browser test scripts.
set -euo pipefail
[[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]] && exit 0
if [[ "$(id -u)" -ne 0 ]]; then
  echo "ensure-chromium: /usr/bin/chromium is missing; install Debian's chromium package as root" >&2
  exit 1
fi
echo "ensure-chromium: installing Debian's chromium"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
