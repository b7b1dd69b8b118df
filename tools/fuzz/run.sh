#!/usr/bin/env bash
# Runs one libFuzzer target for SECONDS (default 60), building it first when needed:
#
#   tools/fuzz/run.sh fuzz_protocol 60      (or fuzz_hub, fuzz_http, fuzz_ws, fuzz_resp, fuzz_proxy)
#
# The committed seeds (tools/fuzz/corpus/TARGET) are copied into a scratch corpus,
# build/fuzz/corpus/TARGET, which keeps what earlier runs found (FUZZ_FRESH=1 starts it over);
# the committed files never grow. Extra arguments go to libFuzzer (e.g. -jobs=1 -only_ascii=1).
# A crash leaves its input in build/fuzz/artifacts/TARGET/ and makes this script fail.
#
# The target's regression inputs (tools/fuzz/regressions/TARGET/: every crash found so far) are
# replayed first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

usage() { echo "usage: tools/fuzz/run.sh fuzz_protocol|fuzz_hub|fuzz_http|fuzz_ws|fuzz_resp|fuzz_proxy [SECONDS] [libFuzzer args]" >&2; }
target=${1:-}
case "$target" in
  fuzz_protocol | fuzz_hub | fuzz_http | fuzz_ws | fuzz_resp | fuzz_proxy) ;;
  *) usage; exit 2 ;;
esac
seconds=${2:-60}
[[ "$seconds" =~ ^[0-9]+$ ]] || { usage; exit 2; }
shift $(($# >= 2 ? 2 : 1))

build=build/fuzz
if [[ ! -f $build/build.ninja ]]; then
  cmake --preset fuzz >/dev/null
fi
# One compile at a time: the machine is small and shared.
cmake --build --preset fuzz --target "$target" | grep -v '^ninja: no work to do' || true
[[ -x $build/$target ]] || { echo "run.sh: $target did not build" >&2; exit 1; }

corpus=$build/corpus/$target
artifacts=$build/artifacts/$target
[[ "${FUZZ_FRESH:-0}" == 1 ]] && rm -rf "$corpus"
mkdir -p "$corpus" "$artifacts"
cp tools/fuzz/corpus/"$target"/* "$corpus"/

for input in tools/fuzz/regressions/"$target"/*; do
  [[ -f $input ]] || continue
  if "$build/$target" "$input" >"$build/$target.regression.log" 2>&1; then
    echo "regression $(basename "$input"): runs clean"
  else
    echo "regression $(basename "$input"): FAILS again" >&2
    exit 1
  fi
done

args=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048
      -print_final_stats=1 -artifact_prefix="$artifacts/")
# A stateful target: let inputs (step sequences) grow faster than libFuzzer's default.
[[ $target == fuzz_hub ]] && args+=(-len_control=20)
dict=tools/fuzz/${target#fuzz_}.dict
[[ -f $dict ]] && args+=(-dict="$dict")

log=$build/$target.log
echo "== $target: ${seconds} s, corpus $corpus ($(ls "$corpus" | wc -l) inputs), log $log"
status=0
"$build/$target" "${args[@]}" "$@" "$corpus" >"$log" 2>&1 || status=$?
if ((status != 0)); then
  # The report: the failed invariant or sanitizer error, and the saved input.
  grep -v -E '^(#[0-9]+\s+(NEW|REDUCE|pulse)|\s+NEW_FUNC)' "$log" | tail -n 60
  echo "== $target: FAILED (exit $status); inputs in $artifacts/" >&2
  exit "$status"
fi
grep -E '^#[0-9]+\s+DONE' "$log" | tail -n 1
grep -E '^(stat::|Done )' "$log"
