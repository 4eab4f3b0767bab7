#!/usr/bin/env bash
# Runs the single-call rows of the hot-path bench (ours and the peers, in one run) BENCH_CHECK_RUNS times
# (default 3) and checks them with benches/src/bin/bench_check.rs: differences from the baseline and
# ratios to the peers of the same run, the median over the runs against each bound. Exit status 1 when a
# bound is exceeded. Then the real-export rows (benches/src/bin/real_export.rs: every tracer exporting OTLP
# to one loopback receiver; BENCH_CHECK_RUNS runs interleaved in one invocation, tight loop and paced
# 100 000 spans/s for 10 s, gRPC and HTTP), bounded as ratios to the SDK of the same run.
# Not part of CI: timings belong to benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${BENCH_CHECK_RUNS:-3}"
criterion="${CARGO_TARGET_DIR:-target}/criterion"
kept="$(mktemp -d)"
trap 'rm -rf "$kept"' EXIT
dirs=()
for i in $(seq 1 "$runs"); do
  echo "== run $i of $runs"
  cargo bench -p kotaemon-trace-benches --bench hot_path -- 'call/'
  mkdir -p "$kept/run$i"
  cp -r "$criterion/call" "$kept/run$i/"
  dirs+=("$kept/run$i")
done
echo "== real export: $runs runs"
cargo run -q --release -p kotaemon-trace-benches --bin real_export -- --runs "$runs" --modes loop,paced \
  --out "$kept/real_export.json"
cargo run -q --release -p kotaemon-trace-benches --bin bench_check -- "${dirs[@]}" --real-export "$kept/real_export.json"
