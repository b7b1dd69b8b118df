#!/usr/bin/env bash
# A short fuzzing smoke run: builds the targets (build/fuzz), replays each target's regression
# inputs (tools/fuzz/regressions/TARGET/), then fuzzes each target for FUZZ_SMOKE_SECONDS (default
# 8; 48 s of fuzzing in all) from its committed seeds. One line per target, then
# "fuzz: N passed, M failed"; a target passes when its regressions and its fuzzing ran clean.
#
#   tools/fuzz/smoke.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

targets=(fuzz_protocol fuzz_hub fuzz_http fuzz_ws fuzz_resp fuzz_proxy)
seconds=${FUZZ_SMOKE_SECONDS:-8}
build=build/fuzz
started=$(date +%s)

if [[ ! -f $build/build.ninja ]]; then
  cmake --preset fuzz >/dev/null || exit 1
fi
# One compile at a time: the machine is small and shared.
if ! cmake --build --preset fuzz >"$build/smoke-build.log" 2>&1; then
  tail -n 30 "$build/smoke-build.log"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

passed=0
failed=0
for target in "${targets[@]}"; do
  work=$build/smoke/$target
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tools/fuzz/corpus/"$target"/* "$work/corpus/"

  # Regressions: every saved input must now run clean.
  bad_regressions=()
  total_regressions=0
  for input in tools/fuzz/regressions/"$target"/*; do
    [[ -f $input ]] || continue
    total_regressions=$((total_regressions + 1))
    if ! "$build/$target" "$input" >"$work/regression.log" 2>&1; then
      bad_regressions+=("$(basename "$input")")
      grep -m1 -A1 -E 'invariant violated|ERROR: AddressSanitizer|runtime error' "$work/regression.log" \
        | sed "s/^/  $(basename "$input"): /"
    fi
  done

  args=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$work/artifacts/")
  dict=tools/fuzz/${target#fuzz_}.dict
  [[ -f $dict ]] && args+=(-dict="$dict")
  [[ $target == fuzz_hub ]] && args+=(-len_control=20)
  status=0
  "$build/$target" "${args[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1 ||
    status=$?

  execs=$(grep -E '^stat::number_of_executed_units' "$work/fuzz.log" | awk '{print $2}')
  rate=$(grep -E '^stat::average_exec_per_sec' "$work/fuzz.log" | awk '{print $2}')
  last=$(grep -E '^#[0-9]+\s' "$work/fuzz.log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  verdict=ok
  note=""
  if ((status != 0)); then
    verdict=FAILED
    note=" crash: $(ls "$work/artifacts" | head -n 1) ($work/fuzz.log)"
    grep -m1 -A1 -E 'invariant violated|ERROR: AddressSanitizer|runtime error|ERROR: libFuzzer' "$work/fuzz.log" \
      | sed 's/^/  /'
  fi
  if ((${#bad_regressions[@]} > 0)); then
    verdict=FAILED
    note+=" failing regressions: ${bad_regressions[*]}"
  fi
  printf '%-14s %-6s %3s s  %9s execs  %6s exec/s  cov %5s  ft %6s  regressions %d/%d clean%s\n' \
    "$target" "$verdict" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    $((total_regressions - ${#bad_regressions[@]})) "$total_regressions" "$note"
  if [[ $verdict == ok ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done

echo "fuzz smoke: $(($(date +%s) - started)) s"
echo "fuzz: ${passed} passed, ${failed} failed"
((failed == 0))
