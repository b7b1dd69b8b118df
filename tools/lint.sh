#!/usr/bin/env bash
# clang-tidy (14) over every src/*.cpp with the repository's .clang-tidy; the headers in
# include/roomcast are checked through the sources that include them. Uses the compile commands
# of the release preset (configured first if need be), two files at a time. Prints each file's
# warnings, then "lint: N passed, M failed" (N files clean, M files with warnings or errors), and
# exits non-zero when any file has one.
#
# src/asio_impl.cpp is left out: it only includes Asio's and Beast's own sources (none of ours,
# and the header filter skips theirs), yet parsing them is a third of the whole run.
#
#   tools/lint.sh                  every src/*.cpp but asio_impl.cpp
#   tools/lint.sh src/rules.cpp    only these files
#   LINT_JOBS=1 tools/lint.sh      files at a time (default 2)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tidy=clang-tidy-14
jobs=${LINT_JOBS:-2}
build=build/release
started=$(date +%s)

command -v "$tidy" >/dev/null || {
  echo "lint: $tidy is missing (tools/install-deps.sh installs it)" >&2
  echo "lint: 0 passed, 1 failed"
  exit 1
}
if [[ ! -f $build/compile_commands.json ]]; then
  cmake --preset release >/dev/null || {
    echo "lint: 0 passed, 1 failed"
    exit 1
  }
fi

if (($# > 0)); then
  files=("$@")
else
  files=()
  for file in src/*.cpp; do
    [[ $file == src/asio_impl.cpp ]] || files+=("$file")
  done
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# One clang-tidy per file; its output and exit status land in $out, named after the file.
# clang parses the g++ command lines: a g++-only warning flag must not become an error.
lint_one() {
  local file=$1 out=$2 tidy=$3 build=$4
  local name=${file//\//_}
  "$tidy" -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option "$file" \
    >"$out/$name.log" 2>&1
  echo $? >"$out/$name.status"
}
export -f lint_one
printf '%s\0' "${files[@]}" | xargs -0 -P "$jobs" -I{} bash -c 'lint_one "$@"' _ {} "$out" "$tidy" "$build"

passed=0
failed=0
for file in "${files[@]}"; do
  name=${file//\//_}
  status=$(cat "$out/$name.status" 2>/dev/null || echo 1)
  # clang-tidy's own "N warnings generated." and "Suppressed ..." lines are not findings.
  findings=$(grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing' "$out/$name.log")
  if [[ $status == 0 ]] && ! grep -q -E ': (warning|error):' <<<"$findings"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "== $file"
    echo "$findings"
  fi
done

echo "lint ($tidy, $jobs jobs): $(($(date +%s) - started)) s"
echo "lint: ${passed} passed, ${failed} failed"
((failed == 0))
