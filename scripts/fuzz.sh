#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each): the NDJSON and OTLP logs
# decoders, the raw-line parsers, the log query parser/evaluator, the remote-write decoder,
# the Prometheus text / OpenMetrics parsers, the PromQL engine and the OTLP traces and
# Zipkin span decoders.
#   scripts/fuzz.sh [seconds-per-target]
# Needs cargo-fuzz (installed here when missing); works on stable with --sanitizer none.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in ndjson otlp_logs log_lines log_query remote_write exposition promql otlp_traces zipkin; do
  echo "=== fuzzing $target for ${secs}s"
  mkdir -p "corpus/$target"
  cargo fuzz run --sanitizer none "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=65536
done
echo "no crashes"
