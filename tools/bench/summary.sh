#!/usr/bin/env bash
# Summarises benchmark JSONL files (tools/bench/run.sh): per server and case, the median and the
# min-max over the repetitions.   tools/bench/summary.sh build/bench/roomcast.jsonl build/bench/seed.jsonl
set -euo pipefail
(($#)) || { echo "usage: summary.sh FILE.jsonl..." >&2; exit 2; }
command -v jq >/dev/null || { echo "summary.sh: jq is needed" >&2; exit 2; }

# table SCENARIO TITLE HEADER ROW: one row per server and case; nothing when no run matches.
table() {
  local scenario="$1" title="$2" header="$3" row="$4" rows
  rows="$(jq -rs --arg scenario "$scenario" --arg header "$header" '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor]
                       else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def fmt: if . == null then "-"
             elif (. | fabs) >= 100 then (. | round | tostring)
             else ((. * 100 | round) / 100 | tostring) end;
    def stat(f): [.[] | f | select(. != null)]
      | if length == 0 then "-"
        elif length == 1 or min == max then (.[0] | fmt)
        else "\(median | fmt) [\(min | fmt)-\(max | fmt)]" end;
    def per(n): if . == null then null else . / n end;
    def worst(f): [.[] | f | select(. != null)] | if length == 0 then "-" else (max | tostring) end;
    [.[] | select(.scenario == $scenario)]
    | if length == 0 then empty else
      ($header | split(",") | join("\t")),
      (group_by([.label, .case])[] |
        [.[0].label, .[0].case, "\([.[] | select(.ok)] | length)/\(length)", '"$row"'] | join("\t"))
      end' "${files[@]}")"
  [[ -n "$rows" ]] || return 0
  printf '%s\n' "$title"
  column -t -s $'\t' <<<"$rows"
  echo
}

files=("$@")
table fanout "fan-out (median [min-max] over repetitions; latency in ms; deliveries include the sender's echo)" \
  "server,case,ok,msg/s,deliveries/s,srv_us/deliv,lg_us/deliv,lg_cpu,p50,p99,p99.9,max,gaps,missing" \
  'stat(.messages_per_s), stat(.deliveries_per_s), stat(.server_cpu_us_per_delivery),
   stat(.loadgen_cpu_us_per_delivery), stat(.loadgen_cpu_share), stat(.latency_p50_us | per(1000)),
   stat(.latency_p99_us | per(1000)), stat(.latency_p999_us | per(1000)), stat(.latency_max_us | per(1000)),
   worst(.gaps), worst(.missing_messages)'
table idle "idle (RSS per connection = (RSS after - RSS before) / connections)" \
  "server,case,ok,connect+join_s,us/conn,rss/conn_B,rss_after_MB,lost" \
  'stat(.connect_join_s), stat(.connect_join_us_per_connection),
   stat(.server_rss_per_connection_bytes), stat(.server_rss_after_bytes | per(1048576)),
   worst(.connections_lost)'
table churn "churn (connect, upgrade, join, leave, close)" \
  "server,case,ok,cycles/s,srv_us/cycle,lg_us/cycle,lg_cpu,cycle_p99_ms,failures" \
  'stat(.cycles_per_s), stat(.server_cpu_us_per_cycle), stat(.loadgen_cpu_us_per_cycle),
   stat(.loadgen_cpu_share), stat(.cycle_p99_ms), worst(.failures)'
table flood "flood (the member's echo in ms, without and with the flooders; close_ms: the slowest flooder's time until the server closed it)" \
  "server,case,ok,base_p50,base_p99,flood_p50,flood_p99,flood_max,p99_ratio,closed,close_ms,srv_cpu,other_cpu_s" \
  'stat(.baseline_p50_ms), stat(.baseline_p99_ms), stat(.flood_p50_ms), stat(.flood_p99_ms),
   stat(.flood_max_ms), stat(.p99_ratio), stat(.flooders_closed),
   stat(.flooder_slowest_close_s | per(0.001)), stat(.server_cpu_share), stat(.other_cpu_s)'
failed="$(jq -rs '[.[] | select(.ok | not)] | length' "${files[@]}")"
if ((failed > 0)); then
  echo "runs that failed a check or did not complete:"
  jq -r 'select(.ok | not) | "  \(.label) \(.case) rep \(.rep): \(.error // "?")"' "${files[@]}"
fi
