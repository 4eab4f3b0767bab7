#!/usr/bin/env bash
# The observability stack without Docker: Jaeger v2 (UI query API, Monitor tab reading Prometheus),
# Prometheus scraping the example service, and the example RAG service itself, all on 127.0.0.1.
#
#   scripts/stack.sh start             build what is missing, start the three, wait until each is ready
#   scripts/stack.sh load [ARGS...]    run the load generator against the service (default: 120 requests)
#   scripts/stack.sh status            what runs, where, and whether it answers (exit 1 if something is down)
#   scripts/stack.sh stop              stop what `start` started (SIGTERM, then SIGKILL after a grace)
#
# Jaeger and Prometheus are built once from the Go module proxy and cached (scripts/jaeger.sh,
# scripts/prometheus.sh); the service is `cargo build --workspace --example rag_service --example rag_load`.
# Ports (environment): STACK_JAEGER_UI_PORT 16686, STACK_OTLP_GRPC_PORT 4317, STACK_OTLP_HTTP_PORT 4318,
# STACK_PROMETHEUS_PORT 9090, STACK_SERVICE_PORT 8080, STACK_METRICS_PORT 9464, and Jaeger's others:
# STACK_JAEGER_QUERY_GRPC_PORT 16685, STACK_JAEGER_SAMPLING_HTTP_PORT 5778, STACK_JAEGER_SAMPLING_GRPC_PORT
# 5779, STACK_JAEGER_HEALTH_PORT 13133. State and logs: ${KOTAEMON_TRACE_CACHE:-~/.cache/kotaemon-trace}/run/stack.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
cache="${KOTAEMON_TRACE_CACHE:-$HOME/.cache/kotaemon-trace}"
run="$cache/run/stack"
target="${CARGO_TARGET_DIR:-$root/target}"

ui_port="${STACK_JAEGER_UI_PORT:-16686}"
otlp_grpc_port="${STACK_OTLP_GRPC_PORT:-4317}"
otlp_http_port="${STACK_OTLP_HTTP_PORT:-4318}"
prometheus_port="${STACK_PROMETHEUS_PORT:-9090}"
service_port="${STACK_SERVICE_PORT:-8080}"
metrics_port="${STACK_METRICS_PORT:-9464}"
# Jaeger's other listeners (query gRPC, remote sampling HTTP/gRPC, health check).
query_grpc_port="${STACK_JAEGER_QUERY_GRPC_PORT:-16685}"
sampling_http_port="${STACK_JAEGER_SAMPLING_HTTP_PORT:-5778}"
sampling_grpc_port="${STACK_JAEGER_SAMPLING_GRPC_PORT:-5779}"
health_port="${STACK_JAEGER_HEALTH_PORT:-13133}"

components=(prometheus jaeger rag_service)

say() { echo "stack: $*"; }
pid_of() { cat "$run/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid="$(pid_of "$1")"; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
answers() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

url_of() {
  case "$1" in
    prometheus) echo "http://127.0.0.1:$prometheus_port/-/ready" ;;
    jaeger) echo "http://127.0.0.1:$ui_port/api/services" ;;
    rag_service) echo "http://127.0.0.1:$service_port/healthz" ;;
  esac
}

# wait_ready NAME: until its URL answers (60 s), or it exits (its log's tail is shown).
wait_ready() {
  for _ in $(seq 1 240); do
    if answers "$(url_of "$1")"; then return 0; fi
    if ! alive "$1"; then
      say "$1 exited during start; last lines of $run/$1.log:" >&2
      tail -20 "$run/$1.log" >&2
      return 1
    fi
    sleep 0.25
  done
  say "$1 not ready after 60 s; see $run/$1.log" >&2
  return 1
}

# launch NAME COMMAND...: in the background, its output in $run/NAME.log, its pid in $run/NAME.pid.
launch() {
  local name="$1"; shift
  nohup "$@" >"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

start() {
  mkdir -p "$run"
  for c in "${components[@]}"; do
    if alive "$c"; then say "already running ($c pid $(pid_of "$c")); \`scripts/stack.sh stop\` first" >&2; exit 1; fi
  done
  for port in "$ui_port" "$otlp_grpc_port" "$otlp_http_port" "$prometheus_port" "$service_port" "$metrics_port" \
    "$query_grpc_port" "$sampling_http_port" "$sampling_grpc_port" "$health_port"; do
    if ! port_free "$port"; then
      say "127.0.0.1:$port is taken (another Jaeger from scripts/jaeger.sh? stop it, or set the STACK_*_PORT variables)" >&2
      exit 1
    fi
  done
  "$here/jaeger.sh" build
  "$here/prometheus.sh" build
  say "building the example service (cargo build --workspace --example rag_service --example rag_load)"
  (cd "$root" && CARGO_TARGET_DIR="$target" cargo build -q --workspace --example rag_service --example rag_load)
  trap 'say "start failed; stopping what was started" >&2; stop >/dev/null' ERR

  cat >"$run/prometheus.yml" <<EOF
# Written by scripts/stack.sh: scrape the example service's metrics endpoint every 2 s.
global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: rag-service
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
  launch prometheus "$("$here/prometheus.sh" path)" --config.file="$run/prometheus.yml" \
    --web.listen-address="127.0.0.1:$prometheus_port" --storage.tsdb.path="$run/prometheus-data"
  wait_ready prometheus

  # Jaeger: the loopback base config plus the SPM overlay (its Monitor tab reads that Prometheus).
  JAEGER_QUERY_PORT="$ui_port" JAEGER_OTLP_GRPC_PORT="$otlp_grpc_port" JAEGER_OTLP_HTTP_PORT="$otlp_http_port" \
    JAEGER_QUERY_GRPC_PORT="$query_grpc_port" JAEGER_SAMPLING_HTTP_PORT="$sampling_http_port" \
    JAEGER_SAMPLING_GRPC_PORT="$sampling_grpc_port" JAEGER_HEALTH_PORT="$health_port" \
    PROMETHEUS_URL="http://127.0.0.1:$prometheus_port" \
    launch jaeger "$("$here/jaeger.sh" path)" --config "$here/jaeger-config.yaml" --config "$here/jaeger-spm.yaml"
  wait_ready jaeger

  OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-rag-service}" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp_http_port" \
    OTEL_METRICS_EXPORTER=prometheus OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1 OTEL_EXPORTER_PROMETHEUS_PORT="$metrics_port" \
    OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-1000}" \
    launch rag_service "$target/debug/examples/rag_service" --listen "127.0.0.1:$service_port" \
      --log-file "$run/rag_service.jsonl"
  wait_ready rag_service
  trap - ERR
  # Prometheus applies new targets in batches (every 5 s); wait for its first scrape of the service, so
  # that a load run right after `start` shows in the rates.
  for _ in $(seq 1 60); do
    if curl -fsS --max-time 2 "http://127.0.0.1:$prometheus_port/api/v1/query?query=up" 2>/dev/null | grep -q '"1"\]'; then break; fi
    sleep 0.25
  done

  say "ready, all on 127.0.0.1:"
  say "  the service      http://127.0.0.1:$service_port/ask  (POST {\"question\": ..., \"user_phone\": ...})"
  say "  Jaeger query API http://127.0.0.1:$ui_port/api/traces?service=rag-service  (OTLP :$otlp_grpc_port grpc, :$otlp_http_port http)"
  say "  Jaeger Monitor   http://127.0.0.1:$ui_port/api/metrics/calls?service=rag-service&spanKind=server"
  say "  Prometheus       http://127.0.0.1:$prometheus_port/api/v1/query?query=traces_span_metrics_calls_total"
  say "  service metrics  http://127.0.0.1:$metrics_port/metrics;  JSON logs with trace_id: $run/rag_service.jsonl"
  say "next: scripts/stack.sh load"
}

load() {
  [ -x "$target/debug/examples/rag_load" ] || { say "no load generator built; run \`scripts/stack.sh start\` first" >&2; exit 1; }
  [ "$#" -gt 0 ] || set -- --requests 120 --concurrency 4
  OTEL_SERVICE_NAME="${OTEL_SERVICE_NAME:-rag-load}" OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp_http_port" \
    "$target/debug/examples/rag_load" --url "http://127.0.0.1:$service_port" "$@"
}

status() {
  local down=0
  for c in "${components[@]}"; do
    local url; url="$(url_of "$c")"
    if alive "$c" && answers "$url"; then
      say "$c: up (pid $(pid_of "$c")) $url"
    elif alive "$c"; then
      say "$c: running (pid $(pid_of "$c")) but $url does not answer; see $run/$c.log"; down=1
    else
      say "$c: down"; down=1
    fi
  done
  return "$down"
}

stop() {
  # The service first, so it flushes its last spans to a Jaeger that is still there.
  for c in rag_service jaeger prometheus; do
    local pid; pid="$(pid_of "$c")"
    if [ -z "$pid" ]; then continue; fi
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      # Jaeger can take over 10 s to stop gracefully; 5 s of grace, then SIGKILL.
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      say "$c stopped"
    fi
    rm -f "$run/$c.pid"
  done
}

case "${1:-}" in
  start) start ;;
  load) shift; load "$@" ;;
  status) status ;;
  stop) stop ;;
  *) sed -n '2,17p' "$0"; exit 2 ;;
esac
