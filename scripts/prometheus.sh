#!/usr/bin/env bash
# Build (once, cached) and run a real Prometheus on loopback, for the metrics end-to-end tests (Jaeger's
# Monitor tab reads span metrics from it) and the native observability stack.
#
#   scripts/prometheus.sh build                  build the binary into the cache (about 10 min, first time)
#   scripts/prometheus.sh start CONFIG [PORT]    start it on 127.0.0.1:PORT (default 9090), wait until ready
#   scripts/prometheus.sh stop                   stop the instance started by `start`
#   scripts/prometheus.sh path                   print the cached binary's path
#
# Environment: KOTAEMON_TRACE_CACHE (default ~/.cache/kotaemon-trace), PROMETHEUS_VERSION (default v0.316.0,
# the Go module version of Prometheus 3.x).
set -euo pipefail

version="${PROMETHEUS_VERSION:-v0.316.0}"
cache="${KOTAEMON_TRACE_CACHE:-$HOME/.cache/kotaemon-trace}"
bin="$cache/prometheus-$version"
run_dir="$cache/run"
# shellcheck source=common.sh
. "$(cd "$(dirname "$0")" && pwd)/common.sh"

build() { go_build_cached prometheus github.com/prometheus/prometheus/cmd/prometheus "$version" "$bin"; }

start() {
  build
  config="${1:?usage: prometheus.sh start CONFIG [PORT]}"
  port="${2:-9090}"
  mkdir -p "$run_dir/prometheus-data"
  ready() { curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null; }
  if ready; then echo "prometheus: already answering on 127.0.0.1:$port"; return 0; fi
  start_background prometheus "$run_dir" ready "$bin" --config.file "$config" --web.listen-address "127.0.0.1:$port" \
    --storage.tsdb.path "$run_dir/prometheus-data" --web.enable-otlp-receiver
}

stop() {
  [ -f "$run_dir/prometheus.pid" ] || { echo "prometheus: not started by this script"; return 0; }
  stop_pid prometheus "$(cat "$run_dir/prometheus.pid")"
  rm -f "$run_dir/prometheus.pid"
}

case "${1:-}" in
  build) build ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  path) echo "$bin" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
