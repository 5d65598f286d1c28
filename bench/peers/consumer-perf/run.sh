#!/usr/bin/env bash
# The raw ceiling: Kafka's own ConsumerPerformance tool (org.apache.kafka.tools.ConsumerPerformance
# in Kafka 3.9) from the jars scripts/services.sh keeps in the per-user cache. It reads the topic
# from the beginning up to the end offsets it has now (the message count from GetOffsetShell),
# decodes nothing and makes no edges.
#   bench/peers/consumer-perf/run.sh --brokers B --topic T [--group G]
# Environment: KAFKA_VERSION (default 3.9.1, as scripts/services.sh). One JSON line on stdout.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ROOT=$(cd "$HERE/../../.." && pwd -P)
KAFKA_VERSION=${KAFKA_VERSION:-3.9.1}
KAFKA_LIB=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/kafka-$KAFKA_VERSION/lib
BROKERS= TOPIC= GROUP=consumer-perf-peer-$$-$(date +%s)
BUILD_ONLY=
while [[ $# -gt 0 ]]; do
  case $1 in
    --brokers) BROKERS=$2; shift 2 ;;
    --topic) TOPIC=$2; shift 2 ;;
    --group) GROUP=$2; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    *) echo "[consumer-perf] unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n $BUILD_ONLY || ( -n $BROKERS && -n $TOPIC ) ]] || { echo "usage: run.sh --brokers B --topic T [--group G]" >&2; exit 2; }
if [[ ! -f $KAFKA_LIB/kafka-tools-$KAFKA_VERSION.jar ]]; then
  # the same jars the local broker runs on; scripts/services.sh fetches them (Maven) once
  echo "[consumer-perf] Kafka $KAFKA_VERSION jars missing in $KAFKA_LIB: run 'bash scripts/services.sh up kafka' once (it downloads them)" >&2
  exit 1
fi
if [[ -n $BUILD_ONLY ]]; then exit 0; fi
JAVA=java
if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA=$JAVA_HOME/bin/java; fi
LOG4J=-Dlog4j.configuration=file:$ROOT/scripts/services/kafka-tools-log4j.properties
# 3.9 moved the tools to org.apache.kafka.tools; older jars have them under kafka.tools
PKG=org.apache.kafka.tools
if [[ $(unzip -l "$KAFKA_LIB/kafka-tools-$KAFKA_VERSION.jar" 2>/dev/null | grep -c 'org/apache/kafka/tools/ConsumerPerformance.class') == 0 ]]; then PKG=kafka.tools; fi
tool() { "$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "$LOG4J" -cp "$KAFKA_LIB/*" "$PKG.$1" "${@:2}"; }

# messages between the earliest and the latest offsets, now (GetOffsetShell prints topic:partition:offset)
sum_offsets() { tool GetOffsetShell --bootstrap-server "$BROKERS" --topic "$TOPIC" --time "$1" | awk -F: '{s += $NF} END {print s + 0}'; }
LATEST=$(sum_offsets -1)
EARLIEST=$(sum_offsets -2)
MESSAGES=$((LATEST - EARLIEST))
echo "[consumer-perf] topic $TOPIC: $MESSAGES messages, group $GROUP" >&2
if [[ $MESSAGES -le 0 ]]; then
  echo '{"peer":"consumer-perf","messages":0,"spans":null,"seconds":0,"cpuSeconds":0,"edges":[]}'
  exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
printf 'max.partition.fetch.bytes=10485760\nfetch.max.bytes=52428800\n' >"$TMP/consumer.properties"
/usr/bin/time -f '%e %U %S' -o "$TMP/time" \
  "$JAVA" -Xms256m -Xmx1g "$LOG4J" -cp "$KAFKA_LIB/*" "$PKG.ConsumerPerformance" \
  --bootstrap-server "$BROKERS" --topic "$TOPIC" --group "$GROUP" --messages "$MESSAGES" \
  --timeout 60000 --consumer.config "$TMP/consumer.properties" >"$TMP/out"
cat "$TMP/out" >&2
# start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
# rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
python3 - "$TMP/out" "$TMP/time" <<'PY'
import json, sys
rows = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("start.time")]
f = [x.strip() for x in rows[-1].split(",")]
wall, user, sys_ = (float(x) for x in open(sys.argv[2]).read().split()[-3:])
mb, n, fetch_ms = float(f[2]), int(f[4]), float(f[7])
seconds = fetch_ms / 1000
print(json.dumps({
    "peer": "consumer-perf", "messages": n, "spans": None,
    "seconds": round(seconds, 3), "cpuSeconds": round(user + sys_, 3),
    "mb": round(mb, 3), "mbPerSecond": round(mb / seconds, 3) if seconds else None,
    "messagesPerSecond": round(n / seconds, 1) if seconds else None,
    "rebalanceMs": float(f[6]), "wallSeconds": wall, "edges": [],
}))
PY
