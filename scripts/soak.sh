#!/usr/bin/env bash
# The soak run (not in CI): a private Jaeger on spare loopback ports, then the soak binary against it over
# OTLP/gRPC, printing RSS and drops every 10 s.
#
#   scripts/soak.sh [SECONDS] [SPANS_PER_SECOND]        default 600 s at 20000 spans/s
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/jaeger.sh build >/dev/null
bin="$(scripts/jaeger.sh path)"
log="$(mktemp)"
export JAEGER_QUERY_PORT=26686 JAEGER_QUERY_GRPC_PORT=26685 JAEGER_SAMPLING_HTTP_PORT=25778 \
  JAEGER_SAMPLING_GRPC_PORT=25779 JAEGER_HEALTH_PORT=23133 JAEGER_OTLP_GRPC_PORT=24317 JAEGER_OTLP_HTTP_PORT=24318
"$bin" --config scripts/jaeger-config.yaml >"$log" 2>&1 &
jaeger=$!
trap 'kill -9 $jaeger 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 120); do curl -fsS -o /dev/null "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" 2>/dev/null && break; sleep 0.5; done
OTEL_SERVICE_NAME=kotaemon-soak OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT" \
  cargo run -q --release -p kotaemon-trace-benches --bin soak -- "$@"
echo "soak: Jaeger holds $(curl -fsS "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services" | tr -d '\n')"
