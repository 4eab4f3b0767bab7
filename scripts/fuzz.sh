#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time, starting from the checked-in seeds (fuzz/seeds/TARGET).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default 20 s, every target
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); under CI=true their absence is
# a failure, elsewhere the fuzzing is skipped with a notice. New inputs found go to a scratch corpus, never
# into the seeds; a crash leaves its input in fuzz/artifacts/TARGET and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(otel_env config_file propagation jaeger_strategy redactor)

missing=""
rustup toolchain list 2>/dev/null | grep -q '^nightly' || missing="the nightly toolchain"
cargo +nightly fuzz --version >/dev/null 2>&1 || missing="${missing:+$missing and }cargo-fuzz"
if [ -n "$missing" ]; then
  if [ "${CI:-}" = "true" ]; then echo "fuzz.sh: $missing missing and CI=true requires fuzzing" >&2; exit 1; fi
  echo "SKIPPED fuzz.sh: $missing missing (rustup toolchain install nightly; cargo install cargo-fuzz)"
  exit 0
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# Sanitizer builds never share artifacts with the stable builds, but keep them apart anyway.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$(pwd)/fuzz/target}"
cd fuzz
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  echo "== fuzz $target for ${seconds}s"
  # -max_len: the largest input tried (the parsers' own bounds are tested in tests/reliability/bounds.rs);
  # -timeout: one input taking over 10 s is reported as a hang; -rss_limit_mb: memory per run.
  set +e
  cargo +nightly fuzz run -O "$target" "$scratch/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|stat::slowest_unit_time_sec)|^#[0-9]+ +DONE' "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz.sh: $target failed; the input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no failure"
