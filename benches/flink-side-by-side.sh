#!/usr/bin/env bash
# Whole-process tidemark beside Apache Flink 2.3.0 on the same CSV file.
#
#   benches/flink-side-by-side.sh FLINK_PEER_DIR [EVENTS] [ROUNDS]
#
# FLINK_PEER_DIR holds a Flink DataStream job with a run.sh whose
# `flink-bench --input FILE.csv --window W --size MS [--slide MS] --delay MS`
# prints `flink: events=… results=… load_ms=… processing_ms=…` (parse and
# in-job processing, the JVM's and the MiniCluster's start excluded). The
# file is one partition of `partition,offset,key,ts,value` rows without a
# header (`tidemark gen --format csv`), 10 000 keys, 50 ms of disorder, one
# event per ms. tidemark reads it as users do: one file with a partition
# column, results written to a file. Rounds alternate the two, so both see
# the same machine. Prints one line per run.
set -euo pipefail
peer=${1:?usage: $0 FLINK_PEER_DIR [EVENTS] [ROUNDS]}
events=${2:-2000000}
rounds=${3:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/target/release/tidemark
[ -x "$bin" ] || (cd "$here" && cargo build --release --quiet)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" gen --format csv --events "$events" --keys 10000 --disorder 50ms --out "$work/gen" >/dev/null
input=$work/gen/part-00000.csv
echo "input: $input, $events events, $(du -m "$input" | cut -f1) MB"
for window in tumbling sliding; do
  case $window in
    tumbling) flink_window=(--window tumbling --size 1000); spec=tumbling:1s ;;
    sliding) flink_window=(--window sliding --size 10000 --slide 1000); spec=sliding:10s/1s ;;
  esac
  for round in $(seq "$rounds"); do
    if ! line=$("$peer/run.sh" flink-bench --input "$input" "${flink_window[@]}" --delay 50 2>"$work/flink.err" | grep '^flink:'); then
      echo "the Flink peer printed no result line; its errors:" >&2
      cat "$work/flink.err" >&2
      exit 1
    fi
    load=$(sed -E 's/.*load_ms=([0-9]+).*/\1/' <<<"$line")
    proc=$(sed -E 's/.*processing_ms=([0-9]+).*/\1/' <<<"$line")
    results=$(sed -E 's/.*results=([0-9]+).*/\1/' <<<"$line")
    echo "$window round $round flink load_ms=$load processing_ms=$proc total_ms=$((load + proc)) results=$results"
    for workers in 1 2; do
      /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$bin" run -q --input "$input" --format csv \
        --partition-field 0 --key 2 --time 3 --value 4 --window "$spec" --delay 50ms \
        --workers "$workers" --output "$work/out.jsonl"
      read -r wall user sys rss <"$work/time"
      rows=$(wc -l <"$work/out.jsonl")
      echo "$window round $round tidemark workers=$workers wall_s=$wall cpu_s=$(echo "$user + $sys" | bc) rss_kb=$rss results=$rows"
      [ "$rows" = "$results" ] || echo "MISMATCH: tidemark wrote $rows final rows, flink counted $results"
    done
  done
done
