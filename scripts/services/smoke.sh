#!/usr/bin/env bash
# Checks that the services of scripts/services.sh are usable, end to end:
#   Kafka: create a topic, produce on PLAINTEXT, SASL SCRAM-SHA-256 and SASL PLAIN, consume all
#          three over SASL SCRAM-SHA-512, delete the topic;
#   HBase: create a table, put and get a cell through REST, get it again through Thrift2
#          (binary protocol, unframed), delete the table;
#   MySQL: SELECT VERSION() over TCP with MYSQL_URL.
# Usage: scripts/services/smoke.sh [kafka|hbase|mysql]...   (default: all; needs `services.sh up`)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
eval "$(bash "$HERE/../services.sh" env)"
(($# > 0)) || set -- kafka hbase mysql
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/tracefold
TAG=smoke$$
ok() { printf 'smoke: ok   %s\n' "$*"; }
bad() { printf 'smoke: FAIL %s\n' "$*" >&2; exit 1; }

smoke_kafka() {
  local lib=$CACHE/kafka-3.9.1/lib topic=tracefold-$TAG d
  [[ -d $lib ]] || bad "kafka: no jars in $lib (run scripts/services.sh up kafka)"
  d=$(mktemp -d)
  kt() { java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    "-Dlog4j.configuration=file:$HERE/kafka-tools-log4j.properties" -cp "$lib/*" "$@"; }
  for mech in PLAIN SCRAM-SHA-256 SCRAM-SHA-512; do
    module=org.apache.kafka.common.security.scram.ScramLoginModule
    [[ $mech == PLAIN ]] && module=org.apache.kafka.common.security.plain.PlainLoginModule
    printf 'security.protocol=SASL_PLAINTEXT\nsasl.mechanism=%s\nsasl.jaas.config=%s required username="%s" password="%s";\n' \
      "$mech" "$module" "$KAFKA_SASL_USER" "$KAFKA_SASL_PASSWORD" >"$d/$mech.properties"
  done
  kt org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --create \
    --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null
  ok "kafka: created topic $topic on $KAFKA_BROKERS"
  echo "m1-plaintext" | kt kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_BROKERS" --topic "$topic"
  echo "m2-scram256" | kt kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_SASL_BROKERS" \
    --topic "$topic" --producer.config "$d/SCRAM-SHA-256.properties"
  echo "m3-plain" | kt kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_SASL_BROKERS" \
    --topic "$topic" --producer.config "$d/PLAIN.properties"
  ok "kafka: produced on PLAINTEXT $KAFKA_BROKERS, SASL SCRAM-SHA-256 and SASL PLAIN $KAFKA_SASL_BROKERS"
  local got
  got=$(kt org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$KAFKA_SASL_BROKERS" \
    --consumer.config "$d/SCRAM-SHA-512.properties" --topic "$topic" --from-beginning \
    --max-messages 3 --timeout-ms 30000 --group "$TAG" 2>/dev/null | tr '\n' ' ')
  [[ $got == "m1-plaintext m2-scram256 m3-plain " ]] || bad "kafka: consumed '$got'"
  ok "kafka: consumed over SASL SCRAM-SHA-512: $got"
  kt org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" --delete --topic "$topic"
  rm -rf "$d"
}

smoke_hbase() {
  local t=tracefold_$TAG r=$HBASE_REST code got
  b64() { printf '%s' "$1" | base64 | tr -d '\n'; }
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    -H 'Accept: application/json' "$r/$t/schema" -d "{\"name\":\"$t\",\"ColumnSchema\":[{\"name\":\"d\"}]}")
  [[ $code == 201 || $code == 200 ]] || bad "hbase: create table $t via REST returned HTTP $code"
  ok "hbase: created table $t via REST $r"
  code=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
    -H 'Accept: application/json' "$r/$t/row1" \
    -d "{\"Row\":[{\"key\":\"$(b64 row1)\",\"Cell\":[{\"column\":\"$(b64 d:q)\",\"\$\":\"$(b64 hello-hbase)\"}]}]}")
  [[ $code == 200 ]] || bad "hbase: put via REST returned HTTP $code"
  got=$(curl -sS -H 'Accept: application/octet-stream' "$r/$t/row1/d:q")
  [[ $got == hello-hbase ]] || bad "hbase: get via REST returned '$got'"
  ok "hbase: put and got row1/d:q = $got via REST"
  # Thrift2 THBaseService.get(table, TGet{row}) in the binary protocol, unframed
  got=$(node -e '
    const net = require("net");
    const [host, port] = process.argv[1].split(":"), table = Buffer.from(process.argv[2]);
    const str = (b) => { const l = Buffer.alloc(4); l.writeInt32BE(b.length); return Buffer.concat([l, b]); };
    const fld = (type, id) => { const h = Buffer.alloc(3); h.writeInt8(type); h.writeInt16BE(id, 1); return h; };
    const head = Buffer.alloc(4); head.writeUInt32BE(0x80010001);
    const seq = Buffer.alloc(4); seq.writeInt32BE(1);
    const msg = Buffer.concat([head, str(Buffer.from("get")), seq,
      fld(11, 1), str(table), fld(12, 2), fld(11, 1), str(Buffer.from("row1")), Buffer.from([0, 0])]);
    const s = net.connect(Number(port), host, () => s.write(msg));
    let buf = Buffer.alloc(0);
    s.setTimeout(15000, () => { console.log("timeout"); process.exit(1); });
    s.on("data", (d) => { buf = Buffer.concat([buf, d]);
      if (buf.includes("hello-hbase")) { console.log("hello-hbase"); s.destroy(); } });
    s.on("close", () => { if (!buf.includes("hello-hbase")) console.log("reply:" + buf.toString("hex")); });
  ' "$HBASE_THRIFT" "$t")
  [[ $got == hello-hbase ]] || bad "hbase: get via Thrift2 $HBASE_THRIFT returned '$got'"
  ok "hbase: got row1/d:q = $got via Thrift2 $HBASE_THRIFT (binary, unframed)"
  curl -sS -o /dev/null -X DELETE "$r/$t/schema"
}

smoke_mysql() {
  local u=${MYSQL_URL#mysql://} user pass hostport host port db client
  user=${u%%:*}; u=${u#*:}; pass=${u%%@*}; u=${u#*@}
  hostport=${u%%/*}; db=${u#*/}; host=${hostport%%:*}; port=${hostport##*:}
  client=$(command -v mariadb || command -v mysql) || bad "mysql: no mariadb/mysql client"
  got=$("$client" --no-defaults --protocol=TCP -h"$host" -P"$port" -u"$user" -p"$pass" "$db" \
    -N -e 'SELECT VERSION()')
  ok "mysql: SELECT VERSION() = $got via $host:$port/$db"
}

for s in "$@"; do "smoke_$s"; done
echo "smoke: all checks passed ($*)"
