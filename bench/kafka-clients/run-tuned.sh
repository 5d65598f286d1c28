#!/usr/bin/env bash
# Tuned librdkafka fetch queue: 3 rounds x 4 variants, alternated order. Appends to results-tuned.jsonl.
set -u
cd "$(dirname "$0")"
TOPIC=${TOPIC:-kclients-otlp}; N=${N:?expected message count}
export THREADS=1
T='{"fetch.queue.backoff.ms":10,"queued.max.messages.kbytes":262144}'
declare -A CMD=(
  [kafkajs]="node kafkajs.cjs $TOPIC $N"
  [node-rdkafka-tuned]="node rdkafka-consume-n.cjs $TOPIC $N node-rdkafka 1000"
  [confluent-rd-tuned]="node rdkafka-consume-n.cjs $TOPIC $N @confluentinc/kafka-javascript 1000"
  [confluent-kjs-1000-tuned]="node confluent-kafkajs.cjs $TOPIC $N 1000"
)
ORDER1=(kafkajs node-rdkafka-tuned confluent-rd-tuned confluent-kjs-1000-tuned)
ORDER2=(confluent-kjs-1000-tuned confluent-rd-tuned node-rdkafka-tuned kafkajs)
ORDER3=(node-rdkafka-tuned confluent-kjs-1000-tuned kafkajs confluent-rd-tuned)
for round in 1 2 3; do
  eval "ORDER=(\"\${ORDER$round[@]}\")"
  for v in "${ORDER[@]}"; do
    case $v in *tuned) export RDCONF="$T";; *) unset RDCONF;; esac
    echo "== round $round $v :: RDCONF=${RDCONF:-} ${CMD[$v]} :: $(uptime)"
    out=$(timeout 900 ${CMD[$v]} 2>&1); rc=$?
    line=$(echo "$out" | grep '^RESULT ' | sed 's/^RESULT //')
    if [ -n "$line" ]; then echo "{\"variant\":\"$v\",\"round\":$round,\"rc\":$rc,\"r\":$line}" | tee -a results-tuned.jsonl
    else echo "FAILED rc=$rc"; echo "$out" | tail -20; fi
    sleep 3
  done
done
