#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), builds the release binary and starts the server.
# Arguments go to roomcast:   tools/run.sh --port 3000 --threads 2
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target roomcast
exec build/release/src/roomcast "$@"
