#!/usr/bin/env bash
# Run a real, single-node Apache Kafka 4.x broker (KRaft: broker + controller in
# one JVM) on this machine, without Docker, from Apache's own jars on Maven
# Central.
#
#   scripts/kafka-local.sh start           fetch jars if needed, format once, start, wait until ready
#   scripts/kafka-local.sh stop [--wipe]   SIGTERM (SIGKILL after 30 s); --wipe also deletes the data
#   scripts/kafka-local.sh status          exit 0 if running, 1 if not
#   scripts/kafka-local.sh perf-classpath  print a classpath for Kafka's tools, e.g.
#       java -cp "$(scripts/kafka-local.sh perf-classpath)" \
#         org.apache.kafka.tools.ProducerPerformance --topic perf ...
#
# Environment:
#   KAFKA_PORT             PLAINTEXT listener port (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port   (default 19093)
#   KAFKA_HEAP             JVM heap flags          (default "-Xmx512m -Xms256m")
#   KAFKA_START_TIMEOUT    seconds to wait for readiness (default 60)
#   KAFKA_LOCAL_DIR        state folder of this broker (default <repo>/.kafka): a second broker
#                          with its own KAFKA_LOCAL_DIR and ports runs beside the first, from the
#                          same jars, and `stop` with the same KAFKA_LOCAL_DIR stops only it, e.g.
#       KAFKA_LOCAL_DIR=/tmp/k2 KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 scripts/kafka-local.sh start
#
# Everything it writes lives in <repo>/.kafka/ (git-ignored), or KAFKA_LOCAL_DIR except lib/:
#   lib/               the jars (mvn dependency:copy-dependencies of scripts/kafka/pom.xml), always <repo>/.kafka/lib
#   data/              the KRaft metadata log and topic partitions
#   logs/server.log    broker log of the current run (log4j2, WARN; config
#                      scripts/kafka/log4j2.properties); the run before: server.log.prev
#   logs/tools.log     log of the Kafka tools this script runs (storage format, readiness probe)
#   logs/broker.out    the JVM's stdout/stderr
#   server.properties  generated on every start
#   broker.pid         pid of the running broker
set -euo pipefail

# ---------------------------------------------------------------- paths & settings
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/kafka/pom.xml"
LOG4J_CONFIG="$ROOT/scripts/kafka/log4j2.properties"

KAFKA_HOME="${KAFKA_LOCAL_DIR:-$ROOT/.kafka}"
LIB_DIR="$ROOT/.kafka/lib"           # shared by every instance
DATA_DIR="$KAFKA_HOME/data"
LOG_DIR="$KAFKA_HOME/logs"
PROPS="$KAFKA_HOME/server.properties"
PID_FILE="$KAFKA_HOME/broker.pid"
JARS_STAMP="$LIB_DIR/.pom.sha256"   # hash of the pom the jars were fetched for

KAFKA_PORT="${KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-19093}"
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m -Xms256m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
BOOTSTRAP="127.0.0.1:${KAFKA_PORT}"

# Fixed cluster id (base64url of 16 bytes, as `kafka-storage random-uuid` prints):
# a local throwaway cluster does not need a random one, and a fixed id keeps
# re-formatting reproducible.
CLUSTER_ID="cXVvdGFmbG93LWxvY2FsIQ"

log() { echo "kafka-local: $*" >&2; }
die() { log "error: $*"; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH ($2)"; }

# --------------------------------------------------------------------- jars
# Fetch the jars into .kafka/lib unless they are already there for this exact pom.
# Maven caches the downloads in ~/.m2, so a re-fetch after a wipe is fast.
fetch_jars() {
  local want
  want="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [[ -f "$JARS_STAMP" && "$(cat "$JARS_STAMP")" == "$want" ]] \
     && compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null \
     && compgen -G "$LIB_DIR/kafka-tools-[0-9]*.jar" >/dev/null; then
    return 0
  fi
  need mvn "Maven 3.8+ is needed to fetch Kafka's jars"
  log "fetching Kafka jars with Maven into $LIB_DIR ..."
  rm -rf "$LIB_DIR"          # never mix jars of two Kafka versions
  mkdir -p "$LIB_DIR"
  # Maven's output is shown only on failure (-q still prints colour codes).
  local out
  if ! out="$(mvn -q -B --no-transfer-progress -f "$POM" dependency:copy-dependencies \
                -DoutputDirectory="$LIB_DIR" -DincludeScope=runtime 2>&1)"; then
    echo "$out" >&2
    die "mvn could not fetch the jars (see above; a refused version may need a pin in $POM)"
  fi
  echo "$want" > "$JARS_STAMP"
}

# Run one of Kafka's command-line classes with the same jars, logging to
# .kafka/logs/tools.log instead of the console.
kafka_java() {
  java -Xmx256m -cp "$LIB_DIR/*" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -Dkafka.logs.dir="$LOG_DIR" -Dkafka.log.file=tools.log \
    "$@"
}

# ------------------------------------------------------------ process state
# Prints the pid and succeeds if the broker recorded in broker.pid is alive
# (and really is a Kafka JVM, so a recycled pid is not mistaken for it).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
  echo "$pid"
}

# The bootstrap address of the broker that is running now, from the
# server.properties it was started with (KAFKA_PORT may differ in this shell).
running_bootstrap() {
  local adv
  adv="$(sed -n 's|^advertised.listeners=PLAINTEXT://||p' "$PROPS" 2>/dev/null || true)"
  echo "${adv:-$BOOTSTRAP}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

show_log_tail() {
  local f
  for f in "$LOG_DIR/server.log" "$LOG_DIR/broker.out"; do
    [[ -s "$f" ]] || continue
    log "---- last lines of $f ----"
    tail -n 40 "$f" >&2
  done
}

# ------------------------------------------------------------------- config
write_server_properties() {
  mkdir -p "$KAFKA_HOME" "$DATA_DIR" "$LOG_DIR"
  cat > "$PROPS" <<EOF
# Generated by scripts/kafka-local.sh on every start: edit the script, not this file.
# Single-node KRaft: this JVM is both broker and (the only) controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${KAFKA_CONTROLLER_PORT}

listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT},CONTROLLER://127.0.0.1:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${KAFKA_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER

log.dirs=${DATA_DIR}
num.partitions=4
auto.create.topics.enable=true

# One broker: every internal topic gets a single replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Let consumer groups start right away instead of waiting 3 s for more members.
group.initial.rebalance.delay.ms=0
EOF
}

# Format the storage directory once (KRaft needs a cluster id and a
# meta.properties before the first start).
format_storage_once() {
  [[ -f "$DATA_DIR/meta.properties" ]] && return 0
  log "formatting $DATA_DIR (cluster id $CLUSTER_ID)"
  local out
  if ! out="$(kafka_java kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$PROPS" 2>&1)"; then
    echo "$out" >&2
    die "storage format failed"
  fi
}

# Ready = the port accepts TCP connections AND the broker answers a metadata
# request (listing topics goes through the whole client/broker path).
broker_answers_metadata() {
  timeout 15 java -Xmx128m -cp "$LIB_DIR/*" \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -Dkafka.logs.dir="$LOG_DIR" -Dkafka.log.file=tools.log \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "$BOOTSTRAP" --list >/dev/null 2>&1
}

# ----------------------------------------------------------------- commands
cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    log "already running (pid $pid)"
    echo "KAFKA_BROKERS=$(running_bootstrap)"
    return 0
  fi
  rm -f "$PID_FILE"
  need java "Java 17+ is needed to run Kafka 4"
  if port_open "$KAFKA_PORT" || port_open "$KAFKA_CONTROLLER_PORT"; then
    die "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
  fi

  fetch_jars
  write_server_properties
  format_storage_once

  # Keep the previous run's log aside so a failure shows only this run's lines.
  [[ -f "$LOG_DIR/server.log" ]] && mv -f "$LOG_DIR/server.log" "$LOG_DIR/server.log.prev"
  log "starting broker on $BOOTSTRAP (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
  # shellcheck disable=SC2086  # KAFKA_HEAP holds several flags on purpose
  nohup java $KAFKA_HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
    -Dkafka.logs.dir="$LOG_DIR" -Dkafka.log.file=server.log \
    -cp "$LIB_DIR/*" kafka.Kafka "$PROPS" \
    > "$LOG_DIR/broker.out" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PID_FILE"

  # Poll until ready, the JVM dies, or the timeout passes.
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  while (( SECONDS < deadline )); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_log_tail
      die "broker exited during startup"
    fi
    if port_open "$KAFKA_PORT" && broker_answers_metadata; then
      log "ready (pid $pid) after ${SECONDS}s"
      echo "KAFKA_BROKERS=$BOOTSTRAP"
      return 0
    fi
    sleep 1
  done

  show_log_tail
  log "not ready after ${KAFKA_START_TIMEOUT}s: stopping it"
  stop_pid "$pid"
  die "broker did not become ready"
}

# SIGTERM (a clean shutdown flushes the logs), up to 30 s, then SIGKILL.
stop_pid() {
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$PID_FILE"
}

cmd_stop() {
  local wipe=0 arg pid
  for arg in "$@"; do
    case "$arg" in
      --wipe) wipe=1 ;;
      *) die "unknown option for stop: $arg" ;;
    esac
  done
  if pid="$(running_pid)"; then
    log "stopping broker (pid $pid)"
    stop_pid "$pid"
    log "stopped"
  else
    rm -f "$PID_FILE"
    log "not running"
  fi
  if (( wipe )); then
    rm -rf "$DATA_DIR"
    log "wiped $DATA_DIR"
  fi
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running (pid $pid) KAFKA_BROKERS=$(running_bootstrap)"
    return 0
  fi
  echo "not running"
  return 1
}

cmd_perf_classpath() {
  fetch_jars
  # A literal '*' entry: the JVM expands it to every jar in the folder.
  echo "$LIB_DIR/*"
}

usage() {
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case "${1:-}" in
  start)          shift; cmd_start "$@" ;;
  stop)           shift; cmd_stop "$@" ;;
  status)         shift; cmd_status "$@" ;;
  perf-classpath) shift; cmd_perf_classpath "$@" ;;
  *)              usage ;;
esac
