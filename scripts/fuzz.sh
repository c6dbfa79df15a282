#!/usr/bin/env bash
# `make fuzz`: every cargo-fuzz target for a bounded time, then a table of
# executions and corpus sizes in target/fuzz-report.md. A crash stops the run with
# libFuzzer's reproducer in fuzz/artifacts/<target>/; turn it into a regression
# test before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
targets=(route_match extractors envelope filter_policy sigv4 webhook_signature)
report=target/fuzz-report.md
mkdir -p target
{
  echo "| target | seconds | executions | exec/s | corpus files |"
  echo "|---|---|---|---|---|"
} > "$report.tmp"
for t in "${targets[@]}"; do
  echo "==> fuzzing $t for ${seconds}s"
  log="target/fuzz-$t.log"
  (cd fuzz && cargo +nightly fuzz run "$t" -- -max_total_time="$seconds" -print_final_stats=1) > "$log" 2>&1 || {
    tail -n 40 "$log"; echo "fuzz target $t failed; see $log"; exit 1; }
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  corpus=$(find "fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
  echo "| $t | $seconds | $runs | $rate | $corpus |" >> "$report.tmp"
done
mv "$report.tmp" "$report"
cat "$report"
