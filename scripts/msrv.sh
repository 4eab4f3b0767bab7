#!/usr/bin/env bash
# Builds and unit-tests the two library crates on the oldest Rust they declare (`rust-version` in the
# workspace Cargo.toml), with the default features and with every feature, against the committed Cargo.lock.
# A dependency update or a newer language feature that raises the real minimum fails here, so the declared
# version stays true.
#
#   scripts/msrv.sh
#
# Needs that toolchain: `rustup toolchain install <rust-version> --profile minimal` (.ci/run does it).
# Builds go to target/msrv: another compiler's artifacts would never be reused by the stable builds.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
[ -n "$msrv" ] || { echo "msrv.sh: no rust-version in Cargo.toml" >&2; exit 1; }
if ! rustup run "$msrv" cargo --version >/dev/null 2>&1; then
  echo "msrv.sh: toolchain $msrv missing (rustup toolchain install $msrv --profile minimal)" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${MSRV_TARGET_DIR:-$(pwd)/target/msrv}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
crates=(-p kotaemon-trace-macros -p kotaemon-trace)

for features in "" "--all-features"; do
  echo "== Rust $msrv: ${features:-default features}"
  cargo "+$msrv" build --locked --lib "${crates[@]}" $features
  cargo "+$msrv" test -q --locked --lib "${crates[@]}" $features
done
