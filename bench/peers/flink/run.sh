#!/usr/bin/env bash
# The Flink peer: a shaded jar built once with Maven into the per-user cache (keyed by the Flink
# and connector versions and a hash of the sources), run with `java -jar` (a local MiniCluster).
#   bench/peers/flink/run.sh --brokers B --topic T [--group G] [--parallelism N] [--gap-ms MS]
# Environment: FLINK_PEER_HEAP (default 2g). One JSON line on stdout; progress on stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
ver() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$HERE/pom.xml" | head -1; }
FLINK=$(ver flink.version)
CONNECTOR=$(ver flink.kafka.version)
SRC_HASH=$( (cat "$HERE/pom.xml"; find "$HERE/src" -type f | sort | xargs cat) | sha256sum | cut -c1-12)
DIR=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold/peers/flink-$FLINK-kafka$CONNECTOR-$SRC_HASH
JAR=$DIR/flink-peer.jar
JAVA=java
if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then JAVA=$JAVA_HOME/bin/java; fi
if [[ ! -f $JAR ]]; then
  echo "[flink] building $JAR (Flink $FLINK, flink-connector-kafka $CONNECTOR)" >&2
  mkdir -p "$DIR/build"
  cp -r "$HERE/pom.xml" "$HERE/src" "$DIR/build/"
  (cd "$DIR/build" && mvn -q -B package -DskipTests >&2)
  mv "$DIR/build/target/flink-peer-1.jar" "$JAR"
  rm -rf "$DIR/build"
  # older builds of this peer (other versions or sources) are no longer used
  find "$(dirname "$DIR")" -mindepth 1 -maxdepth 1 -name 'flink-*' ! -path "$DIR" -exec rm -rf {} +
fi
# the harness builds every peer before it times any (the build must not count in a run)
if [[ ${1:-} == --build-only ]]; then exit 0; fi
# the MiniCluster unpacks its RPC jar (~21 MB) and keeps its blob/working folders under
# java.io.tmpdir and leaves them behind: give it a private one and remove it afterwards
TMP=$(mktemp -d -t flink-peer-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
# Flink's MiniCluster needs these on Java 17 (as Flink's own start scripts pass them)
"$JAVA" "-Djava.io.tmpdir=$TMP" -Xms512m "-Xmx${FLINK_PEER_HEAP:-2g}" -XX:+UseG1GC \
  --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED \
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED --add-opens java.base/java.io=ALL-UNNAMED \
  --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
  --add-opens java.base/java.net=ALL-UNNAMED --add-opens java.base/java.time=ALL-UNNAMED \
  --add-opens java.base/java.util.concurrent=ALL-UNNAMED --add-opens java.base/java.util.concurrent.atomic=ALL-UNNAMED \
  --add-opens java.base/java.text=ALL-UNNAMED --add-opens java.base/java.math=ALL-UNNAMED \
  -jar "$JAR" "$@"
