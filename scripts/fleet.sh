#!/usr/bin/env bash
# Jaeger's production topology on loopback, every process native (no containers):
#
#   services ─OTLP─▶ 2 × Jaeger collector ─▶ Kafka (KRaft) ─▶ 2 × Jaeger ingester (tail sampling) ─▶ Cassandra
#                                                                              Jaeger query (UI, API) ─┘
#
#   scripts/fleet.sh build              fetch Kafka and Cassandra from Maven Central into the cache, build Jaeger
#   scripts/fleet.sh start [NAME...]    start everything (or the named processes), wait until each is ready
#   scripts/fleet.sh stop [NAME...]     stop everything (or the named processes); data stays
#   scripts/fleet.sh kill NAME          SIGKILL one process (fault injection)
#   scripts/fleet.sh status             one line per process: pid, ready or not, log
#   scripts/fleet.sh ports              the port of every listener, as NAME=PORT lines
#   scripts/fleet.sh clean              stop everything and delete the data (Kafka log, Cassandra tables)
#
# NAME is one of: cassandra kafka query ingester1 ingester2 collector1 collector2.
# Environment:
#   FLEET_PORT_BASE (24000)   every listener is BASE+n, see `ports`; moving the block moves them all
#   FLEET_DIR                 pids, logs, generated configs and data (default $KOTAEMON_TRACE_CACHE/fleet)
#   FLEET_KAFKA_PARTITIONS (4), FLEET_TAIL_PERCENT (20), FLEET_TAIL_SLOW_MS (1000),
#   FLEET_TAIL_DECISION_WAIT (10s), FLEET_TAIL_SENSITIVE_SPANS (regex of span names always kept)
#   FLEET_STORE_WRITERS (8) concurrent Cassandra writers per ingester, FLEET_STORE_QUEUE_SIZE (1000) batches waiting
#   FLEET_ADAPTIVE_TARGET (1 trace/s per operation), FLEET_ADAPTIVE_INTERVAL (1m), FLEET_ADAPTIVE_INITIAL (0.1),
#   FLEET_ADAPTIVE_DELAY (2m), FLEET_ADAPTIVE_FOLLOWER_REFRESH (1m, the leader lease's lifetime)
#   FLEET_START_TIMEOUT (180) seconds to wait for each process to be ready
#   KOTAEMON_TRACE_CACHE (~/.cache/kotaemon-trace), KAFKA_VERSION (4.3.2), CASSANDRA_VERSION (5.0.9)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${KOTAEMON_TRACE_CACHE:-$HOME/.cache/kotaemon-trace}"
kafka_version="${KAFKA_VERSION:-4.3.2}"
cassandra_version="${CASSANDRA_VERSION:-5.0.9}"
# The cache directory names the pom's content too: a changed dependency list is fetched anew.
pom_id() { cksum "$here/fleet/$1" | cut -d' ' -f1; }
kafka_lib="$cache/kafka-$kafka_version-$(pom_id kafka-pom.xml)"
cassandra_lib="$cache/cassandra-$cassandra_version-$(pom_id cassandra-pom.xml)"
dir="${FLEET_DIR:-$cache/fleet}"
base="${FLEET_PORT_BASE:-24000}"
timeout_s="${FLEET_START_TIMEOUT:-180}"
jaeger_bin="$("$here/jaeger.sh" path)"
# shellcheck source=common.sh
. "$here/common.sh"

case "$base" in '' | *[!0-9]*) echo "fleet: FLEET_PORT_BASE='$base' is not a port number" >&2; exit 2 ;; esac
if [ "$base" -lt 1024 ] || [ "$base" -gt 65480 ]; then
  echo "fleet: FLEET_PORT_BASE=$base is out of range; accepted: 1024..65480 (the block is 50 ports)" >&2
  exit 2
fi

all=(cassandra kafka query ingester1 ingester2 collector1 collector2)

# The port block. Offsets are fixed so that a client needs only the base.
kafka_port=$((base + 0)) kafka_controller_port=$((base + 1))
cassandra_port=$((base + 2)) cassandra_storage_port=$((base + 3)) cassandra_ssl_port=$((base + 4))
cassandra_jmx_port=$((base + 5))
query_http_port=$((base + 6)) query_grpc_port=$((base + 7)) query_health_port=$((base + 8))
# collectorN: OTLP gRPC BASE+10N, OTLP HTTP +1, health +2, metrics +3, remote sampling HTTP +4 and gRPC +5;
# ingesterN: health BASE+20+10N, metrics +1.
otlp_grpc_port() { echo $((base + 10 * $1)); }
otlp_http_port() { echo $((base + 10 * $1 + 1)); }
collector_health_port() { echo $((base + 10 * $1 + 2)); }
collector_metrics_port() { echo $((base + 10 * $1 + 3)); }
sampling_http_port() { echo $((base + 10 * $1 + 4)); }
sampling_grpc_port() { echo $((base + 10 * $1 + 5)); }
ingester_health_port() { echo $((base + 20 + 10 * $1)); }
ingester_metrics_port() { echo $((base + 20 + 10 * $1 + 1)); }

say() { echo "fleet: $*"; }
die() { echo "fleet: $*" >&2; exit 1; }
now() { date +%s; }

ports() {
  echo "kafka=$kafka_port"
  echo "kafka_controller=$kafka_controller_port"
  echo "cassandra=$cassandra_port"
  echo "cassandra_storage=$cassandra_storage_port"
  echo "query_http=$query_http_port"
  echo "query_grpc=$query_grpc_port"
  echo "query_health=$query_health_port"
  for n in 1 2; do
    echo "collector${n}_otlp_grpc=$(otlp_grpc_port $n)"
    echo "collector${n}_otlp_http=$(otlp_http_port $n)"
    echo "collector${n}_health=$(collector_health_port $n)"
    echo "collector${n}_metrics=$(collector_metrics_port $n)"
    echo "collector${n}_sampling_http=$(sampling_http_port $n)"
    echo "collector${n}_sampling_grpc=$(sampling_grpc_port $n)"
    echo "ingester${n}_health=$(ingester_health_port $n)"
    echo "ingester${n}_metrics=$(ingester_metrics_port $n)"
  done
}

# The ports a process listens on, to refuse a start on a taken one.
ports_of() {
  case "$1" in
    kafka) echo "$kafka_port $kafka_controller_port" ;;
    cassandra) echo "$cassandra_port $cassandra_storage_port $cassandra_jmx_port" ;;
    query) echo "$query_http_port $query_grpc_port $query_health_port" ;;
    collector*) local n="${1#collector}"
      echo "$(otlp_grpc_port "$n") $(otlp_http_port "$n") $(collector_health_port "$n") $(collector_metrics_port "$n")" \
        "$(sampling_http_port "$n") $(sampling_grpc_port "$n")" ;;
    ingester*) local n="${1#ingester}"; echo "$(ingester_health_port "$n") $(ingester_metrics_port "$n")" ;;
  esac
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# fetch_java NAME POM VERSION_PROPERTY VERSION LIB: the artifact and its runtime dependencies, once.
fetch_java() {
  local name="$1" pom="$2" prop="$3" version="$4" lib="$5"
  if [ -f "$lib/.complete" ]; then say "$name $version: cached at $lib"; return 0; fi
  command -v mvn >/dev/null || die "$name: 'mvn' is not installed; it fetches $name from Maven Central"
  say "$name $version: fetching from Maven Central into $lib"
  rm -rf "$lib.tmp"
  if ! mvn -q -B -Dstyle.color=never -f "$pom" "-D$prop=$version" dependency:copy-dependencies -DincludeScope=runtime \
    "-DoutputDirectory=$lib.tmp"; then
    rm -rf "$lib.tmp"
    die "$name: mvn dependency:copy-dependencies failed (see above)"
  fi
  touch "$lib.tmp/.complete"
  rm -rf "$lib"
  mv "$lib.tmp" "$lib"
}

build() {
  local t0
  t0=$(now)
  fetch_java kafka "$here/fleet/kafka-pom.xml" kafka.version "$kafka_version" "$kafka_lib"
  fetch_java cassandra "$here/fleet/cassandra-pom.xml" cassandra.version "$cassandra_version" "$cassandra_lib"
  "$here/jaeger.sh" build
  say "build: $(($(now) - t0)) s"
}

# need_build NAME: the binary or jars the process runs are in the cache, or a clear error.
need_build() {
  case "$1" in
    kafka)
      [ -f "$kafka_lib/.complete" ] || die "kafka: no Kafka $kafka_version in $kafka_lib; run \`scripts/fleet.sh build\`"
      command -v java >/dev/null || die "kafka: 'java' is not installed; Kafka needs Java 17" ;;
    cassandra)
      [ -f "$cassandra_lib/.complete" ] ||
        die "cassandra: no Cassandra $cassandra_version in $cassandra_lib; run \`scripts/fleet.sh build\`"
      command -v java >/dev/null || die "cassandra: 'java' is not installed; Cassandra 5 needs Java 17" ;;
    *) [ -x "$jaeger_bin" ] ||
      die "$1: no Jaeger build at $jaeger_bin; run \`scripts/fleet.sh build\` (or scripts/jaeger.sh build)" ;;
  esac
}

pid_of() { [ -f "$dir/$1.pid" ] && cat "$dir/$1.pid"; }
running() { local pid; pid="$(pid_of "$1")" && kill -0 "$pid" 2>/dev/null; }

ready() {
  case "$1" in
    kafka) grep -q "Kafka Server started" "$dir/kafka.log" 2>/dev/null && port_taken "$kafka_port" ;;
    cassandra) grep -q "Startup complete" "$dir/cassandra.log" 2>/dev/null && port_taken "$cassandra_port" ;;
    query) curl -fsS -o /dev/null "http://127.0.0.1:$query_http_port/api/services" 2>/dev/null ;;
    collector*) curl -fsS -o /dev/null "http://127.0.0.1:$(collector_health_port "${1#collector}")/status" 2>/dev/null ;;
    ingester*) curl -fsS -o /dev/null "http://127.0.0.1:$(ingester_health_port "${1#ingester}")/status" 2>/dev/null ;;
  esac
}

java_opens() {
  # What Cassandra's jvm17-server.options opens: it reaches into JDK internals (off-heap memory, JMX).
  local m
  for m in java.base/jdk.internal.misc java.base/jdk.internal.ref java.base/sun.nio.ch java.base/java.lang.ref \
    java.management.rmi/com.sun.jmx.remote.internal.rmi java.rmi/sun.rmi.registry java.rmi/sun.rmi.server \
    java.sql/java.sql jdk.unsupported/sun.misc; do
    printf -- '--add-exports=%s=ALL-UNNAMED\n' "$m"
  done
  for m in java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref \
    java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module \
    java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch java.base/java.io \
    java.base/java.nio java.base/java.util.concurrent java.base/java.util java.base/java.util.concurrent.atomic \
    java.base/java.lang java.base/java.math java.base/java.lang.reflect java.base/java.net; do
    printf -- '--add-opens=%s=ALL-UNNAMED\n' "$m"
  done
}

kafka_config() {
  local d="$dir/kafka"
  mkdir -p "$d"
  cat >"$d/server.properties" <<EOF
# Generated by scripts/fleet.sh: one KRaft node that is both controller and broker.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$kafka_controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$kafka_controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
# The span topic is created on first use with this many partitions: the most ingesters that can share it.
num.partitions=${FLEET_KAFKA_PARTITIONS:-4}
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
EOF
  cat >"$d/log4j2.yaml" <<'EOF'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
EOF
}

cassandra_config() {
  local d="$dir/cassandra"
  mkdir -p "$d/data"
  cat >"$d/cassandra.yaml" <<EOF
# Generated by scripts/fleet.sh: one Cassandra node on loopback.
cluster_name: kotaemon-trace-fleet
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
data_file_directories: [$d/data/data]
commitlog_directory: $d/data/commitlog
saved_caches_directory: $d/data/saved_caches
hints_directory: $d/data/hints
cdc_raw_directory: $d/data/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$cassandra_storage_port"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $cassandra_storage_port
ssl_storage_port: $cassandra_ssl_port
native_transport_port: $cassandra_port
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
disk_failure_policy: stop
commit_failure_policy: stop
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
memtable_allocation_type: heap_buffers
EOF
  cat >"$d/logback.xml" <<'EOF'
<configuration>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

# The command line of one process, as words on stdout (one per line).
command_of() {
  case "$1" in
    kafka)
      printf '%s\n' java -Xms256m -Xmx512m "-Dlog4j2.configurationFile=$dir/kafka/log4j2.yaml" -cp "$kafka_lib/*" \
        kafka.Kafka "$dir/kafka/server.properties" ;;
    cassandra)
      printf '%s\n' java -Xms512m -Xmx512m -XX:+UseG1GC -Djdk.attach.allowAttachSelf=true
      java_opens
      printf '%s\n' "-javaagent:$(ls "$cassandra_lib"/jamm-*.jar | head -1)" \
        "-Dcassandra.config=file://$dir/cassandra/cassandra.yaml" "-Dcassandra.storagedir=$dir/cassandra/data" \
        "-Dlogback.configurationFile=$dir/cassandra/logback.xml" "-Dcassandra.jmx.local.port=$cassandra_jmx_port" \
        -Dcassandra-foreground=yes -cp "$cassandra_lib/*" org.apache.cassandra.service.CassandraDaemon ;;
    query | collector* | ingester*)
      local role="${1%[0-9]}"
      printf '%s\n' "$jaeger_bin" --config "$here/fleet/$role.yaml" ;;
  esac
}

# The FLEET_* variables each Jaeger configuration reads.
env_of() {
  # Jaeger traces its own query API over OTLP to 127.0.0.1:4317 by default: that would be another Jaeger
  # (or nothing) on this machine. Off, and aimed at the block's unused port should anything still send.
  local common="FLEET_KAFKA_BROKERS=127.0.0.1:$kafka_port FLEET_CASSANDRA_PORT=$cassandra_port"
  common="$common OTEL_TRACES_SAMPLER=always_off OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$((base + 9))"
  case "$1" in
    query) echo "$common FLEET_QUERY_HTTP_PORT=$query_http_port FLEET_QUERY_GRPC_PORT=$query_grpc_port" \
      "FLEET_HEALTH_PORT=$query_health_port" ;;
    collector*) local n="${1#collector}"
      echo "$common FLEET_OTLP_GRPC_PORT=$(otlp_grpc_port "$n") FLEET_OTLP_HTTP_PORT=$(otlp_http_port "$n")" \
        "FLEET_HEALTH_PORT=$(collector_health_port "$n") FLEET_METRICS_PORT=$(collector_metrics_port "$n")" \
        "FLEET_SAMPLING_HTTP_PORT=$(sampling_http_port "$n") FLEET_SAMPLING_GRPC_PORT=$(sampling_grpc_port "$n")" ;;
    ingester*) local n="${1#ingester}"
      echo "$common FLEET_HEALTH_PORT=$(ingester_health_port "$n") FLEET_METRICS_PORT=$(ingester_metrics_port "$n")" ;;
  esac
}

start_one() {
  local name="$1" pid t0 p
  local -a cmd
  need_build "$name"
  if running "$name"; then
    if ready "$name"; then say "$name: already running (pid $(pid_of "$name"))"; return 0; fi
    die "$name: running (pid $(pid_of "$name")) but not ready; see $dir/$name.log, or \`scripts/fleet.sh stop $name\`"
  else
    for p in $(ports_of "$name"); do
      port_taken "$p" && die "$name: port $p is taken by another process; free it or move the block with FLEET_PORT_BASE (now $base)"
    done
  fi
  case "$name" in
    kafka)
      kafka_config
      if [ ! -f "$dir/kafka/data/meta.properties" ]; then
        # KRaft needs its log directory formatted once, with a cluster id.
        local id
        id="$(java -cp "$kafka_lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
        java -Dlog4j2.configurationFile="$dir/kafka/log4j2.yaml" -cp "$kafka_lib/*" kafka.tools.StorageTool format \
          -t "$id" -c "$dir/kafka/server.properties" >"$dir/kafka-format.log" 2>&1 ||
          { cat "$dir/kafka-format.log" >&2; die "kafka: formatting $dir/kafka/data failed"; }
      fi ;;
    cassandra) cassandra_config ;;
  esac
  mapfile -t cmd < <(command_of "$name")
  t0=$(now)
  # shellcheck disable=SC2046 # env_of is a list of NAME=VALUE words
  # The previous run's log is kept beside (readiness is read from the new log).
  [ -f "$dir/$name.log" ] && mv "$dir/$name.log" "$dir/$name.log.1"
  nohup env $(env_of "$name") "${cmd[@]}" >"$dir/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/$name.pid"
  for _ in $(seq 1 $((timeout_s * 2))); do
    if ready "$name"; then
      say "$name: ready in $(($(now) - t0)) s (pid $pid, log $dir/$name.log)"
      case "$name" in
        kafka) create_topic ;;
        ingester*) group_settled ;;
      esac
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "fleet: $name exited during start; last log lines:" >&2
      tail -20 "$dir/$name.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  die "$name: not ready after $timeout_s s (FLEET_START_TIMEOUT); see $dir/$name.log"
}

kafka_tool() {
  java -Dlog4j2.configurationFile="$dir/kafka/log4j2.yaml" -cp "$kafka_lib/*" "$@" 2>/dev/null
}

# The span topic, created before any ingester or collector starts: a topic created by the first span
# would make the ingesters' group rebalance under load, and a partition moving from one ingester to the
# other in the middle of a trace splits that trace between two tail samplers.
create_topic() {
  local topic="${FLEET_KAFKA_TOPIC:-jaeger-spans}"
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$kafka_port" --create \
    --if-not-exists --topic "$topic" --partitions "${FLEET_KAFKA_PARTITIONS:-4}" --replication-factor 1 \
    >"$dir/kafka-topic.log" 2>&1 || { cat "$dir/kafka-topic.log" >&2; die "kafka: creating the topic $topic failed"; }
  say "kafka: topic $topic with ${FLEET_KAFKA_PARTITIONS:-4} partitions"
}

# Waits until every running ingester is a member of the consumer group with partitions assigned, so that
# no rebalance is pending when spans arrive (same reason as above).
group_settled() {
  local want=0 have t0 n
  for n in ingester1 ingester2; do running "$n" && want=$((want + 1)); done
  t0=$(now)
  while :; do
    have="$(kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
      --bootstrap-server "127.0.0.1:$kafka_port" --describe --group jaeger-ingester --members |
      awk '$1 == "jaeger-ingester" && $NF > 0 { n++ } END { print n + 0 }')"
    if [ "$have" -eq "$want" ]; then
      say "ingesters: the group has $have members with partitions ($(($(now) - t0)) s)"
      return 0
    fi
    [ $(($(now) - t0)) -lt "$timeout_s" ] ||
      die "ingesters: $have of $want ingesters hold partitions after $timeout_s s; see $dir/ingester*.log"
    sleep 1
  done
}

# Java servers flush on SIGTERM (Kafka's log, Cassandra's commit log): they get longer than Jaeger.
stop_one() {
  local name="$1" pid grace=10
  pid="$(pid_of "$name")" || { say "$name: not started"; return 0; }
  case "$name" in kafka | cassandra) grace=60 ;; esac
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 4))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$name: still running $grace s after SIGTERM; SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$dir/$name.pid"
  say "$name: stopped"
}

kill_one() {
  local pid
  pid="$(pid_of "$1")" || die "$1: not started"
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$dir/$1.pid"
  say "$1: killed (pid $pid)"
}

status() {
  local name state pid
  for name in "${all[@]}"; do
    pid="$(pid_of "$name" || true)"
    if running "$name"; then
      if ready "$name"; then state=ready; else state="running, not ready"; fi
    else
      state=stopped pid=-
    fi
    printf 'fleet: %-10s %-18s pid %-8s log %s\n' "$name" "$state" "${pid:--}" "$dir/$name.log"
  done
}

check_names() {
  local n a ok
  for n in "$@"; do
    ok=0
    for a in "${all[@]}"; do [ "$n" = "$a" ] && ok=1; done
    [ "$ok" = 1 ] || die "unknown process '$n'; accepted: ${all[*]}"
  done
}

mkdir -p "$dir"
cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  build) build ;;
  start)
    check_names "$@"
    t_all=$(now)
    # Order: the store, then the query (it creates the schema), Kafka, the ingesters, the collectors.
    if [ $# -eq 0 ]; then set -- "${all[@]}"; fi
    for name in "$@"; do start_one "$name"; done
    say "start: $(($(now) - t_all)) s; UI and API on http://127.0.0.1:$query_http_port, OTLP on" \
      "127.0.0.1:$(otlp_grpc_port 1) and 127.0.0.1:$(otlp_grpc_port 2) (gRPC)" ;;
  stop)
    check_names "$@"
    if [ $# -eq 0 ]; then set -- collector1 collector2 ingester1 ingester2 query kafka cassandra; fi
    for name in "$@"; do stop_one "$name"; done ;;
  kill) [ $# -eq 1 ] || die "usage: scripts/fleet.sh kill NAME"; check_names "$1"; kill_one "$1" ;;
  status) status ;;
  ports) ports ;;
  clean)
    for name in collector1 collector2 ingester1 ingester2 query kafka cassandra; do stop_one "$name"; done
    rm -rf "$dir/kafka" "$dir/cassandra" "$dir"/*.log
    say "data deleted from $dir" ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
