#!/usr/bin/env bash
# Runs the single-call rows of the hot-path bench (ours and the peers, in one run) BENCH_CHECK_RUNS times
# (default 3) and checks them with benches/src/bin/bench_check.rs: differences from the baseline and
# ratios to the peers of the same run, the median over the runs against each bound. Exit status 1 when a
# bound is exceeded. Not part of CI: timings belong to benchmarks.
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
cargo run -q --release -p kotaemon-trace-benches --bin bench_check -- "${dirs[@]}"
