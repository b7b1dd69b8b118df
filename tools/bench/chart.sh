#!/usr/bin/env bash
# Draws latency against offered load from benchmark JSONL files (tools/bench/run.sh): p99 (solid)
# and p50 (dashed) per server, medians over repetitions, for one room shape; a ringed point is a
# run whose server fell behind (messages still undelivered when the run ended).
#
#   tools/bench/chart.sh                          build/bench/*.jsonl, 100x10, docs/benchmarks/latency.png
#   tools/bench/chart.sh --shape 1x1000 --out docs/benchmarks/latency-1x1000.png FILE.jsonl...
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
shape="100x10"
out="$repo/docs/benchmarks/latency.png"
files=()
while (($#)); do
  case "$1" in
    --shape) shape="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "chart.sh: unknown option '$1'" >&2; exit 2 ;;
    *) files+=("$1"); shift ;;
  esac
done
if ((${#files[@]} == 0)); then
  shopt -s nullglob
  files=("$repo"/build/bench/*.jsonl)
fi
((${#files[@]})) || { echo "chart.sh: no JSONL files (run tools/bench/run.sh first)" >&2; exit 2; }
[[ "$shape" =~ ^([0-9]+)x([0-9]+)$ ]] || { echo "chart.sh: --shape ROOMSxMEMBERS" >&2; exit 2; }
rooms="${BASH_REMATCH[1]}"
members="${BASH_REMATCH[2]}"
command -v jq >/dev/null || { echo "chart.sh: jq is needed" >&2; exit 2; }
if ! command -v gnuplot >/dev/null; then
  echo "chart.sh: installing gnuplot-nox" >&2
  apt-get install -y gnuplot-nox >/dev/null || { apt-get update >/dev/null && apt-get install -y gnuplot-nox >/dev/null; }
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mapfile -t labels < <(jq -rs '[.[] | .label | select(. != null)] | unique | .[]' "${files[@]}")
plots=()
index=0
for label in "${labels[@]}"; do
  data="$tmp/$index.tsv"
  jq -rs --arg server "$label" --argjson rooms "$rooms" --argjson members "$members" '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                       else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    [.[] | select(.label == $server and .scenario == "fanout" and .mode == "open"
                  and .rooms == $rooms and .members == $members and (.latency_samples // 0) > 0)]
    | group_by(.offered_deliveries_per_s)[]
    | [.[0].offered_deliveries_per_s, (map(.latency_p50_us / 1000) | median),
       (map(.latency_p99_us / 1000) | median), (map(.missing_messages // 0) | max), length]
    | @tsv' "${files[@]}" >"$data"
  if [[ -s "$data" ]]; then
    color=$((index + 1))
    plots+=("'$data' using 1:3 with linespoints lw 2 pt 7 lc $color title '$label p99'")
    plots+=("'$data' using 1:2 with linespoints lw 2 pt 7 dt 2 lc $color title '$label p50'")
    plots+=("'$data' using 1:(\$4 > 0 ? \$3 : 1/0) with points pt 6 ps 2.5 lc $color notitle")
    echo "$label: $(wc -l <"$data") load levels" >&2
  fi
  index=$((index + 1))
done
((${#plots[@]})) || { echo "chart.sh: no open-loop fan-out runs of shape $shape in ${files[*]}" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
{
  echo "set terminal pngcairo size 1000,640 font 'sans,11'"
  echo "set output '$out'"
  echo "set title 'Latency from send to receipt against offered load: $rooms room(s) x $members members (medians; ringed: server fell behind)'"
  echo "set xlabel 'offered load (deliveries/s = messages/s x members)'"
  echo "set ylabel 'latency (ms)'"
  echo "set logscale xy"
  echo "set grid xtics ytics mxtics mytics"
  echo "set key top left"
  printf 'plot %s\n' "$(IFS=,; echo "${plots[*]}")"
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp"
echo "wrote $out" >&2
