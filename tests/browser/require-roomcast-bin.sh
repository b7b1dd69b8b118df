# Sourced by the run.sh of both browser suites: checks ROOMCAST_BIN and exports it as an absolute
# path (the suites cd before starting the server). $1: an example path for the error message.
require_roomcast_bin() {
  if [[ -z "${ROOMCAST_BIN:-}" ]]; then
    echo "run.sh: set ROOMCAST_BIN to the roomcast binary (e.g. $1)" >&2
    exit 2
  fi
  if [[ ! -x "$ROOMCAST_BIN" ]]; then
    echo "run.sh: ROOMCAST_BIN=$ROOMCAST_BIN is not an executable file" >&2
    exit 2
  fi
  ROOMCAST_BIN="$(realpath "$ROOMCAST_BIN")"
  export ROOMCAST_BIN
}
