#!/usr/bin/env bash
# Packages the three published crates exactly as crates.io would receive them, then builds each package
# from its own unpacked contents (cargo's verification step). This catches what the workspace build cannot
# see: a file the package leaves out, a path outside the crate's directory, a dependency that has no
# version and so would be dropped or refused on publishing.
#
#   scripts/package.sh [extra cargo package flags]
#
# The three crates are packaged in one command: cargo then resolves kotaemon-trace-macros and kotaemon-trace
# from a temporary local registry of the packages it just made, so nothing has to be on crates.io yet.
# `--allow-dirty`: CI and local runs check the working tree as it is, committed or not. Packages and
# verification builds go to target/package, apart from the test builds (a package build compiles the crate
# from other paths, which would only evict the test build's artifacts). PACKAGE_TIMEOUT bounds the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${PACKAGE_TARGET_DIR:-$(pwd)/target/package}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

crates=(kotaemon-trace-macros kotaemon-trace kotaemon-trace-cli)
args=()
for crate in "${crates[@]}"; do args+=(-p "$crate"); done

timeout "${PACKAGE_TIMEOUT:-1500}" cargo package --allow-dirty "${args[@]}" "$@"

# What each package ships, for the log: its file list and size.
for crate in "${crates[@]}"; do
  version=$(cargo pkgid -p "$crate" | sed 's/.*[#@]//')
  file="$CARGO_TARGET_DIR/package/$crate-$version.crate"
  echo "== $crate-$version.crate: $(du -k "$file" | cut -f1) KiB"
  tar -tzf "$file" | sed "s|^$crate-$version/|  |"
done
