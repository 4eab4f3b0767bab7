#!/usr/bin/env bash
# The fleet's capacity on this machine: drives it (scripts/fleet.sh, its own port block and directory) with
# examples/span_load at increasing span rates, counts every span end to end at each step, and reports the
# highest rate with zero loss and each process's CPU (from /proc/<pid>/stat) to show which saturates first.
#
#   scripts/fleet-capacity.sh [RATE...]        spans per second per step (default: 500 1000 2000 4000 8000)
#
# Each step runs two span_load processes (half the rate each, one per collector) for STEP_SECONDS (30),
# traces of 4 spans, head sampler always_on, then waits until the ingesters are idle (at most DRAIN_SECONDS,
# 120). A step has zero loss when: span_load exported every span it ended (none dropped or failed), the
# collectors accepted them all and wrote them all to Kafka, the ingesters read them all, decided every
# trace, and wrote every span of the kept traces (none failed). The tail ratio is FLEET_TAIL_PERCENT
# (default here 100: every trace kept, the store's worst case). The steps stop at the first lossy one.
# Environment: FLEET_PORT_BASE (default 26000), STEP_SECONDS, DRAIN_SECONDS, FLEET_TAIL_PERCENT,
# CARGO_TARGET_DIR (where the examples are built). Not part of the test suite: timings depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export FLEET_PORT_BASE="${FLEET_PORT_BASE:-26000}"
export FLEET_DIR="${FLEET_DIR:-$(mktemp -d /tmp/fleet-capacity.XXXXXX)}"
export FLEET_TAIL_PERCENT="${FLEET_TAIL_PERCENT:-100}"
export FLEET_START_TIMEOUT="${FLEET_START_TIMEOUT:-240}"
step_seconds="${STEP_SECONDS:-30}"
drain_seconds="${DRAIN_SECONDS:-120}"
children=3
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(500 1000 2000 4000 8000)
target="${CARGO_TARGET_DIR:-$root/target}"
base="$FLEET_PORT_BASE"

say() { echo "capacity: $*"; }

cleanup() {
  scripts/fleet.sh clean >/dev/null 2>&1 || true
  rm -rf "$FLEET_DIR"
}
trap cleanup EXIT

say "building examples/span_load"
cargo build -q --workspace --example span_load
load_bin="$target/debug/examples/span_load"
scripts/fleet.sh start

# metric PORT NAME_PREFIX [LABEL_FILTER]: the sum of the samples of a metric on a metrics port.
metric() {
  curl -fsS "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v p="$2" -v f="${3:-}" 'index($0, p) == 1 && (f == "" || index($0, f) > 0) { s += $NF } END { printf "%d\n", s }'
}
collectors() { echo $(($(metric $((base + 13)) "$@") + $(metric $((base + 23)) "$@"))); }
ingesters() { echo $(($(metric $((base + 31)) "$@") + $(metric $((base + 41)) "$@"))); }

# cpu_ticks PID: user + system clock ticks so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
names=(collector1 collector2 kafka ingester1 ingester2 cassandra)
hz=$(getconf CLK_TCK)

printf '%-10s %-8s %-10s %-10s %-10s %-10s %-10s %-8s %s\n' "spans/s" "loss" "sent" "collected" "to-kafka" \
  "ingested" "stored" "drain-s" "CPU seconds per second of load, % of one core (load, then drain included)"
best=0
for rate in "${rates[@]}"; do
  # Counters before the step: the fleet's are cumulative.
  c_acc0=$(collectors otelcol_receiver_accepted_spans)
  c_out0=$(collectors otelcol_exporter_sent_spans 'exporter="kafka"')
  i_in0=$(ingesters otelcol_receiver_accepted_spans)
  i_dec0=$(ingesters otelcol_processor_tail_sampling_global_count_traces_sampled)
  i_kept0=$(ingesters otelcol_processor_tail_sampling_global_count_traces_sampled 'sampled="true"')
  i_out0=$(ingesters otelcol_exporter_sent_spans)
  i_fail0=$(ingesters otelcol_exporter_send_failed_spans)
  declare -A t0=()
  for n in "${names[@]}"; do t0[$n]=$(cpu_ticks "$(cat "$FLEET_DIR/$n.pid")"); done
  per_op=$(awk -v r="$rate" -v c="$children" 'BEGIN { printf "%.3f", r / (c + 1) / 2 }')
  started=$(date +%s.%N)
  pids=()
  for n in 1 2; do
    env -i PATH="$PATH" OTEL_SERVICE_NAME="capacity-$rate" OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$((base + 10 * n + 1))" \
      OTEL_BSP_SCHEDULE_DELAY=200 OTEL_BSP_MAX_QUEUE_SIZE=65536 OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512 \
      OTEL_METRICS_EXPORTER=none "$load_bin" --op "capacity=$per_op" --seconds "$step_seconds" \
      --children "$children" --report-s "$step_seconds" >"$FLEET_DIR/load-$rate-$n.out" 2>&1 &
    pids+=($!)
  done
  load_ticks=0
  # span_load's CPU, sampled just before it exits.
  while kill -0 "${pids[0]}" 2>/dev/null || kill -0 "${pids[1]}" 2>/dev/null; do
    t=0
    for p in "${pids[@]}"; do t=$((t + $(cpu_ticks "$p"))); done
    [ "$t" -gt "$load_ticks" ] && load_ticks=$t
    sleep 0.5
  done
  wait "${pids[@]}" || true
  load_end=$(date +%s.%N)
  sent=0 dropped=0 traces=0
  for n in 1 2; do
    s=$(grep '"summary"' "$FLEET_DIR/load-$rate-$n.out" || echo '{}')
    sent=$((sent + $(echo "$s" | sed -n 's/.*"spans_exported":\([0-9]*\).*/\1/p')))
    dropped=$((dropped + $(echo "$s" | sed -n 's/.*"spans_dropped":\([0-9]*\).*/\1/p') + $(echo "$s" | sed -n 's/.*"spans_failed":\([0-9]*\).*/\1/p')))
    traces=$((traces + $(echo "$s" | sed -n 's/.*"started":\([0-9]*\).*/\1/p')))
  done
  # Drain: until the ingesters have decided every trace and written every span of the kept ones, or
  # DRAIN_SECONDS have passed (what is not written by then counts as lost: the fleet did not keep up).
  drain_start=$(date +%s)
  while :; do
    decided=$(($(ingesters otelcol_processor_tail_sampling_global_count_traces_sampled) - i_dec0))
    kept=$(($(ingesters otelcol_processor_tail_sampling_global_count_traces_sampled 'sampled="true"') - i_kept0))
    stored=$(($(ingesters otelcol_exporter_sent_spans) - i_out0))
    if [ "$decided" -ge "$traces" ] && [ "$stored" -ge $((kept * (children + 1))) ]; then break; fi
    [ $(($(date +%s) - drain_start)) -lt "$drain_seconds" ] || break
    sleep 2
  done
  drain=$(($(date +%s) - drain_start))
  # The fleet's CPU over the load and its drain: the ingesters decide and write up to decision_wait
  # (10 s) after a trace's first span, and a store that falls behind keeps writing after the load.
  drain_end=$(date +%s.%N)
  declare -A t1=()
  for n in "${names[@]}"; do t1[$n]=$(cpu_ticks "$(cat "$FLEET_DIR/$n.pid")"); done
  collected=$(($(collectors otelcol_receiver_accepted_spans) - c_acc0))
  to_kafka=$(($(collectors otelcol_exporter_sent_spans 'exporter="kafka"') - c_out0))
  ingested=$(($(ingesters otelcol_receiver_accepted_spans) - i_in0))
  kept=$(($(ingesters otelcol_processor_tail_sampling_global_count_traces_sampled 'sampled="true"') - i_kept0))
  stored=$(($(ingesters otelcol_exporter_sent_spans) - i_out0))
  failed=$(($(ingesters otelcol_exporter_send_failed_spans) - i_fail0))
  want_stored=$((kept * (children + 1)))
  # Each hop's shortfall (a hop may count more than the one before, e.g. a retried write; that is no loss).
  pos() { [ "$1" -gt 0 ] && echo "$1" || echo 0; }
  loss=$((dropped + $(pos $((sent - collected))) + $(pos $((collected - to_kafka))) + $(pos $((to_kafka - ingested))) \
    + $(pos $((traces - decided))) + $(pos $((want_stored - stored))) + failed))
  secs=$(awk -v a="$started" -v b="$load_end" 'BEGIN { print b - a }')
  cpu=$(awk -v t="$load_ticks" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%d", 100 * t / hz / s }')
  # CPU seconds per second of load: what the fleet spends to keep up with this rate.
  for n in "${names[@]}"; do
    cpu="$cpu $(awk -v n="$n" -v a="${t0[$n]}" -v b="${t1[$n]}" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%s=%d", n, 100 * (b - a) / hz / s }')"
  done
  verdict=none
  [ "$loss" -eq 0 ] || verdict="$loss"
  printf '%-10s %-8s %-10s %-10s %-10s %-10s %-10s %-8s span_load=%s\n' "$rate" "$verdict" "$sent" "$collected" "$to_kafka" \
    "$ingested" "$stored/$want_stored" "$drain" "$cpu"
  if [ "$loss" -ne 0 ]; then
    say "loss at $rate spans/s: dropped or failed in span_load $dropped, traces $traces decided $decided, kept $kept, store failures $failed"
    break
  fi
  best=$rate
done
say "highest rate with zero loss: $best spans/s (traces of $((children + 1)) spans, tail ratio $FLEET_TAIL_PERCENT %, $step_seconds s a step)"
