#!/usr/bin/env bash
# The whole test suite: formatting, unit, integration, compile-fail (trybuild), doc tests, the feature-off
# crate, the panic = "abort" crate, the fuzz targets for a bounded time (scripts/fuzz.sh, FUZZ_SECONDS
# each), clippy and rustdoc with warnings denied, the end-to-end tests against a real Jaeger started here,
# the three published crates packaged and built from their packages (scripts/package.sh), and the library
# crates built and unit-tested on their declared minimum Rust (scripts/msrv.sh). Each step prints its time.
#
#   scripts/test.sh
#
# Jaeger is built once from the Go module proxy and cached (scripts/jaeger.sh). Under CI=true a Jaeger
# that cannot be built or started fails the run; elsewhere the end-to-end tests print why they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# `step NAME` closes the previous step with its duration and opens the next; `step` alone closes the last.
step_name=""
step_start=$SECONDS
step() {
  if [ -n "$step_name" ]; then echo "   ${step_name}: $((SECONDS - step_start))s"; fi
  step_name="${1:-}"
  step_start=$SECONDS
  if [ -n "$step_name" ]; then echo "== $step_name"; fi
}

# First, as it takes seconds: the workspaces kept apart from the main one are checked too.
step "rustfmt"
cargo fmt --all --check
for manifest in tests/feature-off/Cargo.toml tests/panic-abort/Cargo.toml fuzz/Cargo.toml; do
  cargo fmt --all --check --manifest-path "$manifest"
done
step

started_jaeger=0
cleanup() { if [ "$started_jaeger" = 1 ]; then scripts/jaeger.sh stop >/dev/null || true; fi; }
trap cleanup EXIT

if curl -fsS -o /dev/null http://127.0.0.1:16686/api/services 2>/dev/null; then
  echo "test.sh: using the Jaeger already running on 127.0.0.1:16686"
elif scripts/jaeger.sh start; then
  started_jaeger=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: Jaeger could not be started and CI=true requires it" >&2
  exit 1
else
  echo "test.sh: Jaeger could not be started; the end-to-end tests will skip and say why" >&2
fi

log="$(mktemp)"
trap 'cleanup; rm -f "$log"' EXIT
step "cargo test (workspace)"
# The fleet test is `#[ignore]`d here and has its own step below (minutes rather than seconds). (Not
# `-- --skip`: the criterion benches built as tests reject test-harness options.)
cargo test --workspace --all-targets -q 2>&1 | tee -a "$log"
step "fleet: 2 collectors → Kafka → 2 tail-sampling ingesters → Cassandra: adaptive sampling, whole traces, faults"
# --workspace: the same feature resolution as the step above and the examples the test builds, so nothing
# is compiled again. Each phase prints its time.
cargo test -q --workspace --test fleet -- --ignored --exact \
  the_fleet_samples_adaptively_stores_whole_traces_and_survives_faults 2>&1 | tee -a "$log"
step "doc tests"
cargo test --workspace --doc -q 2>&1 | tee -a "$log"
step "feature off: #[trace_with_otel] is the identity"
cargo test -q --manifest-path tests/feature-off/Cargo.toml 2>&1 | tee -a "$log"
step "panic = \"abort\": annotated sync and async fns compile and trace; a panic aborts with its message"
cargo run -q --manifest-path tests/panic-abort/Cargo.toml 2>&1 | tee -a "$log"
step "fuzz: every parser of outside data, ${FUZZ_SECONDS:-20}s per target from the checked-in seeds"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}" 2>&1 | tee -a "$log"
step "clippy"
cargo clippy --workspace --all-targets -q -- -D warnings
step "feature sets: the library facade and each exporter alone build without warnings"
# What a library that only annotates pulls in: never the exporter stack.
heavy=$(cargo tree -q -p kotaemon-trace --no-default-features --features enabled -e normal --prefix none \
  | grep -E '^(tonic|reqwest|prost|toml|regex|hmac|sha2|tokio|opentelemetry-otlp|opentelemetry-proto) ' | sort -u || true)
if [ -n "$heavy" ]; then
  echo "test.sh: the facade (features = [\"enabled\"]) pulls in the exporter stack:" >&2
  echo "$heavy" >&2
  exit 1
fi
for features in enabled enabled,tracing sdk otlp-http otlp-grpc jaeger-remote prometheus,config-file testing tower reqwest tonic sdk,tower sdk,reqwest; do
  cargo clippy -q -p kotaemon-trace --no-default-features --features "$features" -- -D warnings
done
step "rustdoc: no broken links or doc warnings, with and without the optional features"
RUSTDOCFLAGS="-D warnings" cargo doc -q -p kotaemon-trace --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc -q -p kotaemon-trace --no-deps --all-features
step "cargo package: the published crates build from what they ship"
scripts/package.sh
step "minimum supported Rust (rust-version)"
scripts/msrv.sh
step
# One closing line for the whole suite, summed over every cargo test run above.
passed=$(grep -o '[0-9]* passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -o '[0-9]* failed' "$log" | awk '{s+=$1} END {print s+0}')
# A skip notice can follow the harness's progress dots on the same line.
skipped=$(grep -c 'SKIPPED ' "$log" || true)
echo "test.sh: all passed"
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
