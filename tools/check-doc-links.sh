#!/usr/bin/env bash
# Checks that the docs' links to code lines still point at what they name. A link such as
#   [`connection::read_turn`](../src/session.cpp#L226)
# passes when line 226 of src/session.cpp contains `read_turn` (the last `::` part of the code
# span, without a trailing `()`). A line link whose text is not a code span fails: it could not be
# checked. Prints one line per broken link (with where the name stands now, as a hint) and ends
# with "doc-links: N passed, M failed".
#
#   tools/check-doc-links.sh [FILE.md ...]     default: docs/walkthrough.md
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
files=("$@")
((${#files[@]})) || files=(docs/walkthrough.md)

passed=0
failed=0
for doc in "${files[@]}"; do
  [[ -f "$doc" ]] || { echo "doc-links: no such file: $doc"; failed=$((failed + 1)); continue; }
  dir=$(dirname "$doc")
  # One link per line of output: "LINE<TAB>TEXT<TAB>TARGET".
  while IFS=$'\t' read -r at text target; do
    path=${target%%#L*}
    line=${target##*#L}
    line=${line%%-*}
    file="$dir/$path"
    where="$doc:$at"
    if [[ "$text" != \`*\` ]]; then
      echo "$where: link text '$text' is not a code span: it cannot be checked"
      failed=$((failed + 1))
      continue
    fi
    name=${text//\`/}
    name=${name%()}
    name=${name##*::}
    if [[ ! -f "$file" ]]; then
      echo "$where: $path does not exist"
      failed=$((failed + 1))
    elif sed -n "${line}p" "$file" | grep -qF -- "$name"; then
      passed=$((passed + 1))
    else
      now=$(grep -nF -- "$name" "$file" | head -n 3 | cut -d: -f1 | paste -sd, -)
      echo "$where: line $line of $path does not contain '$name' (it is on line(s) ${now:-none})"
      failed=$((failed + 1))
    fi
  done < <(grep -noE '\[[^]]+\]\([^)#]+#L[0-9]+(-L[0-9]+)?\)' "$doc" \
             | sed -E 's/^([0-9]+):\[([^]]+)\]\(([^)]+)\)$/\1\t\2\t\3/')
done
echo "doc-links: $passed passed, $failed failed"
((failed == 0 && passed > 0))
