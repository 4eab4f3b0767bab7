#!/usr/bin/env bash
# Runs the single-call rows of the hot-path bench (ours and the peers, one run) and checks them against
# the bounds in benches/src/bin/bench_check.rs: differences from the baseline and ratios to the peers in
# that same run. Exit status 1 when a bound is exceeded. Not part of CI: timings belong to benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p kotaemon-trace-benches --bench hot_path -- 'call/'
cargo run -q --release -p kotaemon-trace-benches --bin bench_check
