#!/usr/bin/env bash
# 3 rounds x 5 variants, order alternated per round. Results appended to results.jsonl.
set -u
cd "$(dirname "$0")"
TOPIC=${TOPIC:-kclients-otlp}
N=${N:?expected message count}
declare -A CMD=(
  [kafkajs]="node kafkajs.cjs $TOPIC $N"
  [node-rdkafka]="node rdkafka-consume-n.cjs $TOPIC $N node-rdkafka 1000"
  [confluent-rd]="node rdkafka-consume-n.cjs $TOPIC $N @confluentinc/kafka-javascript 1000"
  [confluent-kjs-32]="node confluent-kafkajs.cjs $TOPIC $N 32"
  [confluent-kjs-1000]="node confluent-kafkajs.cjs $TOPIC $N 1000"
)
ORDER1=(kafkajs node-rdkafka confluent-rd confluent-kjs-32 confluent-kjs-1000)
ORDER2=(confluent-kjs-1000 confluent-kjs-32 confluent-rd node-rdkafka kafkajs)
ORDER3=(confluent-rd kafkajs confluent-kjs-1000 node-rdkafka confluent-kjs-32)
for round in 1 2 3; do
  eval "ORDER=(\"\${ORDER$round[@]}\")"
  for v in "${ORDER[@]}"; do
    echo "== round $round $v :: ${CMD[$v]} :: $(uptime)"
    out=$(timeout 900 ${CMD[$v]} 2>&1); rc=$?
    line=$(echo "$out" | grep '^RESULT ' | sed 's/^RESULT //')
    if [ -n "$line" ]; then echo "{\"variant\":\"$v\",\"round\":$round,\"rc\":$rc,\"r\":$line}" | tee -a results.jsonl
    else echo "FAILED rc=$rc"; echo "$out" | tail -20; fi
    sleep 3
  done
done
