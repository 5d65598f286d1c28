/**
 * Throughput of the multi-worker process through Kafka, with 1 and 2 worker threads: replays N
 * spans into a topic (one OTLP request per trace, keyed by trace id), then runs
 * `tracefold run` bounded with blackhole sinks (the compute and consume path, no sink I/O) for
 * each worker count, several rounds, and prints spans/s from the first join to the exit, the
 * wall time, the process's CPU seconds (user + sys, from /usr/bin/time) and its peak RSS.
 *
 *   node dist/bench/workers.js [--spans N] [--partitions P] [--rounds R] [--workers 1,2] [--shuffle none,lz4]
 *
 * --shuffle: also run the keyBy(traceId) thread shuffle (source.kafka.keyedByTraceId=false) with
 * these exchange compressions, so the hand-off's cost shows beside the keyed rows.
 *
 * Needs a broker: KAFKA_BROKERS or .state/services.env (scripts/services.sh up kafka).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Kafka } from "kafkajs";
import { replayToKafka } from "../sources/kafka/replay-to-kafka.js";

const ROOT = join(import.meta.dirname, "..", "..");
const { values } = parseArgs({ options: { spans: { type: "string" }, partitions: { type: "string" }, rounds: { type: "string" }, workers: { type: "string" }, shuffle: { type: "string" } } });
const modes = ["keyed", ...(values.shuffle ? values.shuffle.split(",").map((c) => `shuffle-${c}`) : [])];
const spans = Number(values.spans ?? 2_000_000);
const partitions = Number(values.partitions ?? 4);
const rounds = Number(values.rounds ?? 3);
const workerCounts = (values.workers ?? "1,2").split(",").map(Number);

function brokers(): string {
  if (process.env.KAFKA_BROKERS) return process.env.KAFKA_BROKERS;
  const env = join(ROOT, ".state", "services.env");
  const m = existsSync(env) ? /KAFKA_BROKERS=(\S+)/.exec(readFileSync(env, "utf8")) : null;
  if (!m) throw new Error("no broker: set KAFKA_BROKERS or run `bash scripts/services.sh up kafka`");
  return m[1];
}

const b = brokers();
const topic = `bench_workers_${process.pid}`;
console.log(`# ${cpus()[0]?.model} x${cpus().length}, node ${process.version}, load ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
const admin = new Kafka({ brokers: b.split(","), logLevel: 0 }).admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
try {
  const r = await replayToKafka({ brokers: b, topic, rate: 0, spans, durationS: 0, replay: { seed: 42, services: 40 } });
  console.log(`# topic ${topic}: ${r.spans} spans in ${r.messages} messages, ${partitions} partitions`);
  console.log("mode | workers | round | spans/s (first join to exit) | wall s | CPU s | CPU s per M spans | peak RSS MB");
  const runs = modes.flatMap((mode) => workerCounts.map((w) => ({ mode, w })));
  for (let round = 1; round <= rounds; round++) {
    for (const { mode, w } of round % 2 ? runs : [...runs].reverse()) {
      const shuffle = mode.startsWith("shuffle-") ? ["--set", "source.kafka.keyedByTraceId=false", "--set", `runtime.exchangeCompression=${mode.slice(8)}`] : [];
      const args = [
        "-f", "TIME %e %U %S %M", process.execPath, join(ROOT, "bin", "tracefold.mjs"), "run", "--log-format", "json",
        "--set", "source.type=kafka", "--set", `source.kafka.brokers=${b}`, "--set", `source.kafka.topic=${topic}`, "--set", `source.kafka.groupId=bench-${process.pid}-${mode}-${round}-${w}`,
        "--set", "source.kafka.bounded=true", "--set", "sinks.meta=blackhole", "--set", "sinks.traces=blackhole", "--set", `runtime.workers=${w}`, "--set", "http.listen=off",
        ...shuffle,
      ];
      const run = spawnSync("/usr/bin/time", args, { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
      if (run.status !== 0) throw new Error(`run failed (${run.status}): ${run.stderr.slice(-2000)}`);
      const [wall, user, sys, rssKb] = /TIME (\S+) (\S+) (\S+) (\d+)/.exec(run.stderr)!.slice(1).map(Number);
      // the time before the first member joined (startup, group join) is not consumption
      const at = (msg: string) => Date.parse(new RegExp(`"time":"([^"]+)","level":"info","msg":"${msg}"`).exec(run.stderr)?.[1] ?? "");
      const joinS = (at("joined the consumer group") - (at("starting workers") || at("starting the shuffled job: input not keyed by trace id"))) / 1000;
      const reread = Number(/(\d+) read again after rollbacks/.exec(run.stdout)?.[1] ?? 0);
      const folded = Number(/^(\d+) spans in/m.exec(run.stdout)?.[1] ?? -1);
      if (folded !== r.spans) throw new Error(`${mode} with ${w} workers folded ${folded} spans of ${r.spans}: ${run.stdout}`);
      const rate = spans / Math.max(0.1, wall - joinS);
      console.log(`${mode} | ${w} | ${round} | ${Math.round(rate).toLocaleString("en-US")} | ${wall.toFixed(1)} | ${(user + sys).toFixed(1)} | ${((user + sys) / (spans / 1e6)).toFixed(2)} | ${Math.round(rssKb / 1024)}   (spans read again after rollbacks: ${reread})`);
    }
  }
} finally {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
}
