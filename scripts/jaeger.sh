#!/usr/bin/env bash
# Build (once, cached) and run a real Jaeger v2 on loopback for the end-to-end tests and local debugging.
#
#   scripts/jaeger.sh build            build the binary into the cache (about 8 min on 2 cores, first time)
#   scripts/jaeger.sh start [CONFIG]   start it in the background on 127.0.0.1, wait until ready
#   scripts/jaeger.sh stop             stop the instance started by `start`
#   scripts/jaeger.sh path             print the cached binary's path
#
# Environment: KOTAEMON_TRACE_CACHE (default ~/.cache/kotaemon-trace), JAEGER_VERSION (default v1.76.0).
set -euo pipefail

version="${JAEGER_VERSION:-v1.76.0}"
cache="${KOTAEMON_TRACE_CACHE:-$HOME/.cache/kotaemon-trace}"
bin="$cache/jaeger-$version"
run_dir="$cache/run"
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"

build() { go_build_cached jaeger github.com/jaegertracing/jaeger/cmd/jaeger "$version" "$bin"; }

ready() { curl -fsS -o /dev/null "http://127.0.0.1:16686/api/services" 2>/dev/null; }

start() {
  build
  config="${1:-$here/jaeger-config.yaml}"
  if ready; then echo "jaeger: already answering on 127.0.0.1:16686"; return 0; fi
  start_background jaeger "$run_dir" ready "$bin" --config "$config"
}

stop() {
  [ -f "$run_dir/jaeger.pid" ] || { echo "jaeger: not started by this script"; return 0; }
  stop_pid jaeger "$(cat "$run_dir/jaeger.pid")"
  rm -f "$run_dir/jaeger.pid"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  path) echo "$bin" ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
