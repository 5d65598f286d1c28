/**
 * `npm run bench`: the end-to-end benchmark of issue 5 (bench/README.md, "The benchmark").
 *
 *   node dist/bench/harness/run.js [--full] [--brokers B] [--spans N] [--services N] [--seed S]
 *       [--partitions P] [--shapes trace,batch,span] [--rounds R] [--peer-rounds R]
 *       [--scenarios inprocess,kafka,shuffle,stores,sustained,peers] [--peers consumer-perf,naive-node,flink,otelcol]
 *       [--hbase-thrift H:P] [--mysql-url URL]
 *       [--traces-per-second N] [--out DIR]
 *       [--sustained-steps N] [--sustained-seconds D] [--sustained-start SPANS_PER_S] [--latency-checkpoints MS,MS]
 *
 * Quick profile (default, < 10 min on 2 cores): 1M spans, shapes trace and batch, 2 rounds of the
 * tracefold scenarios (1 of the HBase + MySQL rows), 1 round of the peers. The in-process scenario includes the encoded replay
 * (source.replay.encoded=<shape>, 1 and 2 worker threads, ~15 s a row) on the first shape, on every
 * shape of --shapes with --full or when no Kafka scenario runs (--scenarios inprocess), and the warm
 * compute ceiling (the micro-benchmark's e2e in 1 and 2 threads: a long-running job's speed,
 * without the ~2 s run's warm-up). --full: 5M spans, all three shapes, 3 rounds each.
 * Without --brokers it starts a private Kafka (scripts/services.sh, ports 29192-29195, state in
 * /tmp/bench-state) and stops it at the end. The rows measure backlog drain: the topic is
 * filled first, then each consumer reads it to the end offsets it had at start. The `sustained`
 * scenario (sustained.ts) searches the highest offered rate with flat lag instead, on the first
 * shape (every shape with --full), and measures end-to-end latency on its steps. The `stores`
 * scenario (stores.ts) runs the keyed job into real HBase + MySQL (private instances unless given)
 * and checks MySQL's totals against the generator's truth.
 */
import { cpus, loadavg, totalmem } from "node:os";
import { execSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createTopic, kafka, produce, replayRetention, startPrivateKafka, stopPrivateKafka, type Sample } from "./kafka.js";
import { loadReplay, SPANS_PER_BATCH_MESSAGE, type ReplayMeta, type ReplaySpec } from "./replay-cache.js";
import { runPeer, runTracefold, runWarmCeiling, type RunResult } from "./scenarios.js";
import { loopable, sustainedSearch, type SustainedResult, type SustainedSample } from "./sustained.js";
import { checkMysql, dropDatabase, freshDatabase, replayTruth, startPrivateStores, stopPrivateStores, type Stores } from "./stores.js";
import { SCHEMA } from "../../pipeline/config.js";
import { writeResults, type Environment } from "./report.js";
import type { MessageShape } from "../../sources/replay/otlp-encode.js";

const ROOT = join(import.meta.dirname, "..", "..", "..");
const { values } = parseArgs({
  options: {
    full: { type: "boolean" }, brokers: { type: "string" }, spans: { type: "string" }, services: { type: "string" }, seed: { type: "string" },
    partitions: { type: "string" }, shapes: { type: "string" }, rounds: { type: "string" }, "peer-rounds": { type: "string" },
    scenarios: { type: "string" }, peers: { type: "string" }, "traces-per-second": { type: "string" }, out: { type: "string" },
    "sustained-steps": { type: "string" }, "sustained-topologies": { type: "string" }, "sustained-seconds": { type: "string" }, "sustained-start": { type: "string" }, "latency-checkpoints": { type: "string" },
    "hbase-thrift": { type: "string" }, "mysql-url": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  process.stdout.write(`node dist/bench/harness/run.js [--full] [--brokers H:P] [--spans N] [--services N] [--seed S] [--partitions P]
    [--shapes trace,batch,span] [--rounds R] [--peer-rounds R] [--scenarios inprocess,kafka,shuffle,stores,sustained,peers]
    [--peers consumer-perf,naive-node,flink,otelcol] [--traces-per-second N] [--out DIR]
    [--hbase-thrift H:P] [--mysql-url URL]  stores scenario: use these instead of private HBase + MariaDB
    [--sustained-steps N]          search steps (quick 5, full 6)
    [--sustained-seconds D]        offer window per step (quick 20, full 30)
    [--sustained-start R]          first offered rate, spans/s (default: half the measured drain rate)
    [--sustained-topologies T,..]  what the search runs on: keyed:N (keyed input, N worker threads) or
                                   shuffle:N (unkeyed input, the thread shuffle); default keyed:1
    [--latency-checkpoints MS,..]  extra latency points at the highest sustained rate (default 250; the
                                   search steps run with the default runtime.checkpointIntervalMs)
Environment: BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" passes node flags to every tracefold run
(a CPU profile per thread, the worker threads' included).
See bench/README.md.
`);
  process.exit(0);
}
const full = values.full === true;
const spec = {
  seed: Number(values.seed ?? 42),
  services: Number(values.services ?? 300),
  spans: Number(values.spans ?? (full ? 5_000_000 : 1_000_000)),
  partitions: Number(values.partitions ?? 4),
  tracesPerSecond: Number(values["traces-per-second"] ?? 20_000),
};
const shapes = (values.shapes ?? (full ? "batch,trace,span" : "trace,batch")).split(",") as MessageShape[];
const rounds = Number(values.rounds ?? (full ? 3 : 2));
const peerRounds = Number(values["peer-rounds"] ?? (full ? 3 : 1));
// the stores rows are the slowest (HBase + MySQL, ~30 s each): one round of each in the quick profile
const storeRounds = values.rounds ? rounds : full ? 3 : 1;
const scenarios = new Set((values.scenarios ?? "inprocess,kafka,shuffle,stores,sustained,peers").split(","));
const sustainedSteps = Number(values["sustained-steps"] ?? (full ? 6 : 5));
const sustainedSeconds = Number(values["sustained-seconds"] ?? (full ? 30 : 20));
const sustainedStart = values["sustained-start"] ? Number(values["sustained-start"]) : null;
const sustainedTopologies = (values["sustained-topologies"] ?? "keyed:1").split(",").map((t) => {
  const m = /^(keyed|shuffle):([1-9]\d*)$/.exec(t.trim());
  if (!m) {
    console.error(`--sustained-topologies: ${t}: expected keyed:N or shuffle:N`);
    process.exit(2);
  }
  return { mode: m[1] as "keyed" | "shuffle", workers: Number(m[2]) };
});
const latencyCheckpoints = (values["latency-checkpoints"] ?? "250").split(",").filter(Boolean).map(Number);
const defaultCheckpointMs = SCHEMA["runtime.checkpointIntervalMs"].default as number;
const peers = (values.peers ?? "consumer-perf,naive-node,flink,otelcol").split(",");
const outDir = values.out ?? join(ROOT, "bench", "results");
const command = `npm run bench${process.argv.slice(2).length ? " -- " + process.argv.slice(2).join(" ") : ""}`;

// ---- progress line on stderr ----------------------------------------------------------------------
const t0 = Date.now();
let step = "";
const tty = process.stderr.isTTY;
function progress(msg: string, final = false): void {
  const el = Math.round((Date.now() - t0) / 1000);
  const line = `[bench ${Math.floor(el / 60)}:${String(el % 60).padStart(2, "0")}] ${msg}`;
  if (tty) process.stderr.write(`\r\x1b[K${line}${final ? "\n" : ""}`);
  else if (final || Date.now() - lastPlain > 5000) (process.stderr.write(line + "\n"), (lastPlain = Date.now()));
}
let lastPlain = 0;
let prev: Sample | null = null;
function onSample(s: Sample): void {
  const v = s.spans ?? s.messages;
  const rate = prev && v !== null && (prev.spans ?? prev.messages) !== null && s.t > prev.t ? (v - (prev.spans ?? prev.messages)!) / (s.t - prev.t) : null;
  prev = s;
  progress(`${step}: ${rate === null ? "" : `${Math.round(rate).toLocaleString("en-US")} ${s.spans !== null ? "spans" : "msgs"}/s, `}lag ${s.lag ?? "-"} msgs, ${s.t.toFixed(0)} s`);
}

function summary(r: RunResult): string {
  const cpu = Number.isFinite(r.cpuSPerMSpans) ? `${r.cpuSPerMSpans.toFixed(2)} CPU s/M spans` : "CPU not measured";
  return r.error ? `${step}: FAILED ${r.error.slice(-200)}` : `${step}: ${Math.round(r.spansPerS).toLocaleString("en-US")} spans/s, ${cpu}, ${Math.round(r.peakRssMb)} MB, ${r.correctness}`;
}

// ---- the run ------------------------------------------------------------------------------------
// "AMD EPYC" names several generations: family/model/stepping and the caches tell them apart
const cpuModel = (() => {
  try {
    const l = execSync("lscpu", { encoding: "utf8" });
    const f = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, "m").exec(l)?.[1].trim();
    const id = [["family", f("CPU family")], ["model", f("Model")], ["stepping", f("Stepping")]].filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(" ");
    const caches = [["L2", f("L2 cache")], ["L3", f("L3 cache")]].filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(", ");
    return `${f("Model name") ?? cpus()[0]?.model ?? "?"}${id || caches ? ` (${[id, caches].filter(Boolean).join("; ")})` : ""}`;
  } catch {
    return cpus()[0]?.model ?? "?";
  }
})();
// The same CPU name has run ~2x apart between machines of this kind: one core's speed on a fixed
// in-process workload (the micro-benchmark's decode + full fold, a quarter of its input, ~2 s)
// makes runs on different machines comparable
const calibration = (() => {
  const r = spawnSync(process.execPath, [join(ROOT, "dist", "bench", "micro.js"), "--quick", "--only=e2e"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  return /e2e otlp_proto decode \+ full fold \(one core\): ([\d.]+) M spans\/s/.exec(r.stdout)?.[1] ?? null;
})();
const env: Environment = {
  cpuModel,
  calibration: calibration === null ? "calibration failed" : `one core: ${calibration} M spans/s (node dist/bench/micro.js --quick --only=e2e, at the start)`,
  cores: cpus().length,
  memoryGb: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadStart: loadavg(),
  kafka: values.brokers ? `given broker ${values.brokers}` : "private Kafka 3.9.1 (scripts/services.sh, KRaft, 1 broker) on the same cores",
  kafkaClient: "kafkajs 2.2.4; node-rdkafka 3.6.1 in the shuffle row that names it (it runs only on the main thread: docs/DECISIONS.md 14)",
  partitions: spec.partitions,
  replay: `ReplayGenerator seed ${spec.seed}, ${spec.services} services, ${spec.spans.toLocaleString("en-US")} spans, ${spec.tracesPerSecond} traces/s of event time, OTLP protobuf`,
  batchSizes: `batch shape ${SPANS_PER_BATCH_MESSAGE} spans per message; in-process replay source 4096 spans per batch (encoded replay: the messages of one such batch per MessageBatch); tracefold Kafka fetches at its defaults`,
};
const runs: RunResult[] = [];
const sustainedResults: SustainedResult[] = [];
const notes: string[] = [
  scenarios.has("sustained")
    ? "The table's rows are backlog drain: every topic is filled before the consumers start. The sustained rate (highest offered rate with flat lag) and the end-to-end latency are in their own section below."
    : "Backlog drain: every topic is filled before the consumers start; the sustained rate (highest offered rate with flat lag) was not measured in this run (--scenarios without sustained).",
  "The machine is shared with another engineer's test runs: expect +-30% between rounds; compare rows of the same round.",
];
let brokers = values.brokers ?? "";
let privateKafka = false;
let stores: Stores | null = values["hbase-thrift"] && values["mysql-url"] ? { thrift: values["hbase-thrift"], mysqlUrl: values["mysql-url"] } : null;
let privateStores = false;
const stop = () => {
  if (privateStores) {
    progress("stopping the private HBase and MariaDB", true);
    stopPrivateStores(ROOT);
    privateStores = false;
  }
  if (privateKafka) {
    progress("stopping the private Kafka", true);
    stopPrivateKafka(ROOT);
    privateKafka = false;
  }
};
process.on("SIGINT", () => (stop(), process.exit(130)));

const replaySets = (s: ReplaySpec | typeof spec) => [
  `source.replay.seed=${s.seed}`, `source.replay.services=${s.services}`, `source.replay.spans=${s.spans}`,
  `source.replay.partitions=${s.partitions}`, `source.replay.tracesPerSecond=${s.tracesPerSecond}`,
];

const viaKafka = ["kafka", "shuffle", "stores", "sustained", "peers"].some((s) => scenarios.has(s));
// the encoded in-process rows (~15 s each): every shape with --full or without the Kafka
// scenarios; the first shape only in the whole quick profile (it is ~12 minutes already)
const encodedShapes = full || !viaKafka ? shapes : shapes.slice(0, 1);

try {
  // in-process: the replay source straight into the fold (generation included, no Kafka, no decode)
  if (scenarios.has("inprocess")) {
    for (let round = 1; round <= rounds; round++) {
      for (const sinks of ["blackhole", "embedded"]) {
        step = `in-process replay, ${sinks} sinks, round ${round}`;
        const r = await runTracefold(ROOT, {
          scenario: `in-process replay -> ${sinks}`, shape: "(batches)", topology: "1 thread (replay source: generate + fold)", round,
          sets: [...replaySets(spec), `sinks.meta=${sinks}`, `sinks.traces=${sinks}`], expectSpans: 0, expectMessages: null, blackhole: sinks === "blackhole",
        }, onSample);
        runs.push(r);
        progress(summary(r), true);
      }
      // the compute ceiling with decode: the replay pre-encoded as OTLP messages of each shape
      // (not timed), decoded and folded as from Kafka, minus Kafka; 1 and 2 worker threads
      for (const shape of encodedShapes) {
        for (const workers of round % 2 ? [1, 2] : [2, 1]) {
          step = `in-process encoded replay [${shape}], ${workers} worker(s), round ${round}`;
          const r = await runTracefold(ROOT, {
            scenario: "in-process encoded replay -> blackhole", shape,
            topology: workers === 1 ? "1 thread (pre-encoded messages: decode + fold)" : `1 process, ${workers} worker threads (partition p on worker p % ${workers}: decode + fold)`, round,
            // trace details to the blackhole; the aggregates (per-minute deltas, a few thousand rows)
            // to the embedded store, so the run checks them against the truth
            sets: [...replaySets(spec), `source.replay.encoded=${shape}`, `runtime.workers=${workers}`, "sinks.meta=embedded", "sinks.traces=blackhole"],
            expectSpans: 0, expectMessages: null, blackhole: false, cpu: "window",
          }, onSample);
          runs.push(r);
          progress(summary(r), true);
        }
      }
      // the same decode + fold warm (a long-running job's state): 1 thread on all the spans, 2
      // threads at once on half each (the state per thread of the 2-worker row)
      for (const threads of [1, 2]) {
        step = `warm compute ceiling, ${threads} thread(s), round ${round}`;
        const r = await runWarmCeiling(ROOT, threads, spec.services, Math.round(spec.spans / threads), round);
        runs.push(r);
        progress(summary(r), true);
      }
    }
  }
  if (viaKafka && !brokers) {
    progress("starting a private Kafka on 127.0.0.1:29192 (scripts/services.sh)", true);
    privateKafka = true;
    brokers = startPrivateKafka(ROOT);
  }
  if (scenarios.has("peers")) {
    // each peer's first use builds it into the per-user cache (go build, mvn package, npm install):
    // done here, untimed, so no build counts in a peer's CPU, wall time or peak RSS
    for (const peer of peers) {
      step = `preparing peer ${peer}`;
      progress(`${step} (built once into ~/.cache/tracefold/peers; minutes on the first run)`, true);
      const b = spawnSync("bash", [join(ROOT, "bench", "peers", peer, "run.sh"), "--build-only"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "inherit", "pipe"] });
      if (b.status !== 0) throw new Error(`peer ${peer}: build failed (exit ${b.status}): ${(b.stderr ?? "").slice(-1500)}`);
    }
  }
  for (const [si, shape] of (viaKafka ? shapes : []).entries()) {
    const { meta, messages } = await loadReplay({ ...spec, shape }, (m) => progress(m));
    progress(`${shape} replay: ${meta.spans.toLocaleString("en-US")} spans in ${meta.messages.toLocaleString("en-US")} messages, ${(meta.bytes / 1e6).toFixed(0)} MB (${(meta.bytes / meta.spans).toFixed(0)} B/span)`, true);
    const admin = kafka(brokers).admin();
    await admin.connect();
    const topic = `bench-${shape}-${process.pid}`;
    await createTopic(admin, topic, spec.partitions, replayRetention(meta.bytes, spec.partitions));
    const produceS = await produce(brokers, topic, messages, (n) => progress(`producing ${shape} to ${topic}: ${n.toLocaleString("en-US")} / ${messages.length.toLocaleString("en-US")} messages`));
    progress(`produced ${topic} in ${produceS.toFixed(1)} s (${Math.round(meta.spans / produceS).toLocaleString("en-US")} spans/s, ${Math.round(meta.messages / produceS).toLocaleString("en-US")} messages/s)`, true);
    // the sustained search offers the same messages again, paced (first shape only in the quick profile)
    const sustainedHere = scenarios.has("sustained") && (full || si === 0);
    const replay = sustainedHere ? loopable(messages) : null;
    if (!sustainedHere) messages.length = 0;
    try {
      await runKafkaScenarios(shape, si, topic, meta);
      if (scenarios.has("stores") && (full || si === 0)) await runStores(shape, topic, meta);
      if (replay) await runSustained(shape, topic, meta, replay, admin);
      messages.length = 0;
      if (scenarios.has("peers")) {
        for (let round = 1; round <= peerRounds; round++) {
          for (const peer of round % 2 ? peers : [...peers].reverse()) {
            step = `peer ${peer} [${shape}] round ${round}`;
            prev = null;
            const r = await runPeer(ROOT, admin, peer, brokers, topic, shape, round, meta, onSample);
            runs.push(r);
            progress(summary(r), true);
          }
        }
      }
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    }
  }
} finally {
  env.loadEnd = loadavg();
  const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
  if (runs.length || sustainedResults.length) {
    const w = writeResults(outDir, stamp, command, env, runs, notes, sustainedResults);
    progress(`wrote ${w.md}, ${w.json} and ${w.plots} plots`, true);
  }
  stop();
}

async function runKafkaScenarios(shape: MessageShape, shapeIndex: number, topic: string, meta: ReplayMeta): Promise<void> {
  const list: Array<{ name: string; workers: number; sets: string[] }> = [];
  if (scenarios.has("kafka")) for (const w of [1, 2]) list.push({ name: `kafka keyed -> blackhole`, workers: w, sets: [] });
  // like-for-like with the peers: only the edges (calls, failures, latency histograms)
  if (scenarios.has("kafka")) list.push({ name: `kafka keyed -> blackhole, edges only`, workers: 1, sets: ["fold.aggregates=edges"] });
  // the thread shuffle on the first shape only in the quick profile
  if (scenarios.has("shuffle") && (full || shapeIndex === 0)) {
    for (const c of ["none", "lz4"]) list.push({ name: `kafka shuffle ${c} -> blackhole`, workers: 2, sets: ["source.kafka.keyedByTraceId=false", `runtime.exchangeCompression=${c}`] });
    // the main-thread consumer is where node-rdkafka can run: the same row with it, when installed
    if (nativeKafka()) list.push({ name: `kafka shuffle none -> blackhole, node-rdkafka`, workers: 2, sets: ["source.kafka.keyedByTraceId=false", "runtime.exchangeCompression=none", "source.kafka.client=node-rdkafka"] });
  }
  const stalled = new Set<string>();
  for (let round = 1; round <= rounds; round++) {
    for (const s of round % 2 ? list : [...list].reverse()) {
      if (stalled.has(`${s.name}/${s.workers}`)) continue; // stalled once: later rounds would too
      step = `${s.name}, ${s.workers} worker(s) [${shape}] round ${round}`;
      prev = null;
      const r = await runTracefold(ROOT, {
        scenario: s.name, shape, topology: `1 process, ${s.workers} worker thread(s), kafkajs`, round, expectSpans: meta.spans, expectMessages: meta.messages, blackhole: true, cpu: "window",
        sets: [
          "source.type=kafka", `source.kafka.brokers=${brokers}`, `source.kafka.topic=${topic}`, `source.kafka.groupId=bench-${process.pid}-${Date.now()}`,
          "source.kafka.bounded=true", "sinks.meta=blackhole", "sinks.traces=blackhole", `runtime.workers=${s.workers}`, ...s.sets,
        ],
      }, onSample);
      runs.push(r);
      if (r.correctness.startsWith("stalled")) stalled.add(`${s.name}/${s.workers}`);
      progress(summary(r), true);
    }
  }
}

/** Kafka keyed -> HBase + MySQL, 1 and 2 workers: throughput with the real sinks, and MySQL's totals against the truth. */
async function runStores(shape: MessageShape, topic: string, meta: ReplayMeta): Promise<void> {
  if (!stores) {
    progress("starting a private HBase and MariaDB (scripts/services.sh, ports 29090/23306)", true);
    privateStores = true;
    stores = startPrivateStores(ROOT);
  }
  progress(`regenerating the truth of the ${shape} replay for the MySQL check`, true);
  const truth = replayTruth({ ...spec, shape });
  for (let round = 1; round <= storeRounds; round++) {
    for (const workers of round % 2 ? [1, 2] : [2, 1]) {
      step = `kafka keyed -> HBase + MySQL, ${workers} worker(s) [${shape}] round ${round}`;
      prev = null;
      const name = `tracefold_bench_${process.pid}_${shape}_${workers}_${round}`; // the local server grants tracefold% databases
      const url = await freshDatabase(stores.mysqlUrl, name);
      const r = await runTracefold(ROOT, {
        scenario: "kafka keyed -> HBase + MySQL", shape, topology: `1 process, ${workers} worker thread(s), kafkajs`, round, expectSpans: meta.spans, expectMessages: meta.messages, blackhole: false, cpu: "window",
        sets: [
          "source.type=kafka", `source.kafka.brokers=${brokers}`, `source.kafka.topic=${topic}`, `source.kafka.groupId=${name}`, "source.kafka.bounded=true",
          "sinks.traces=hbase", `sinks.hbase.thrift=${stores.thrift}`, `sinks.hbase.table=${name}_t`, `sinks.hbase.indexTable=${name}_i`,
          "sinks.meta=mysql", `sinks.mysql.url=${url}`, `runtime.workers=${workers}`,
        ],
      }, onSample);
      if (!r.error) {
        const check = checkMysql(ROOT, url, truth);
        r.ok = check.ok;
        r.correctness = check.text;
      }
      await dropDatabase(url).catch(() => {});
      runs.push(r);
      progress(summary(r), true);
    }
  }
  if (privateStores) {
    // HBase flushes and compacts what these rows wrote for minutes afterwards: stopped now, so the
    // rows after this one (sustained, the peers, the next shape) do not share the cores with it
    progress("stopping the private HBase and MariaDB (the later rows run without them)", true);
    stopPrivateStores(ROOT);
    privateStores = false;
    stores = null;
  }
}

/** node-rdkafka compiled by scripts/ensure-native-kafka.sh (the bench does not compile it). */
function nativeKafka(): boolean {
  const r = spawnSync("bash", [join(ROOT, "scripts", "ensure-native-kafka.sh"), "--print"], { encoding: "utf8" });
  return r.status === 0 && existsSync(join(r.stdout.trim(), "node-rdkafka"));
}

async function runSustained(shape: MessageShape, topic: string, meta: ReplayMeta, replay: ReturnType<typeof loopable>, admin: ReturnType<ReturnType<typeof kafka>["admin"]>): Promise<void> {
  // the drain rate to start from: this run's keyed 1-worker rows, else one drain run now
  const keyed = (list: RunResult[]) => list.filter((r) => r.scenario === "kafka keyed -> blackhole" && r.shape === shape && r.topology.includes(" 1 worker") && !r.error && r.spansPerS > 0);
  let drain = keyed(runs);
  let drainSource = `mean of this run's ${drain.length} keyed 1-worker drain round(s)`;
  if (!drain.length && sustainedStart === null) {
    step = `kafka keyed -> blackhole, 1 worker(s) [${shape}] (drain reference for the sustained search)`;
    prev = null;
    const r = await runTracefold(ROOT, {
      scenario: "kafka keyed -> blackhole", shape, topology: "1 process, 1 worker thread(s), kafkajs", round: 1, expectSpans: meta.spans, expectMessages: meta.messages, blackhole: true,
      sets: ["source.type=kafka", `source.kafka.brokers=${brokers}`, `source.kafka.topic=${topic}`, `source.kafka.groupId=bench-${process.pid}-${Date.now()}`, "source.kafka.bounded=true", "sinks.meta=blackhole", "sinks.traces=blackhole", "runtime.workers=1"],
    }, onSample);
    runs.push(r);
    progress(summary(r), true);
    drain = keyed([r]);
    drainSource = "one keyed 1-worker drain run made for the search";
  }
  const drainRate = drain.length ? drain.reduce((a, r) => a + r.spansPerS, 0) / drain.length : 0;
  const startRate = sustainedStart ?? (drainRate > 0 ? 0.5 * drainRate : 50_000);
  if (sustainedStart !== null) drainSource += `; start given by --sustained-start`;
  else if (!(drainRate > 0)) drainSource = "no drain rate measured: started at 50,000";
  let last = 0;
  let lastT = 0;
  const onS = (s: SustainedSample) => {
    const rate = s.spans !== null && s.t > lastT ? Math.round((s.spans - last) / (s.t - lastT)) : null;
    last = s.spans ?? 0;
    lastT = s.t;
    progress(`${step}: ${s.t.toFixed(0)} s, offered ${s.offeredSpans.toLocaleString("en-US")} spans, taken in ${(s.spans ?? 0).toLocaleString("en-US")}${rate !== null ? ` (${rate.toLocaleString("en-US")}/s)` : ""}, lag ${s.lagSpans.toLocaleString("en-US")} spans`);
  };
  for (const { mode, workers } of sustainedTopologies) {
    const res = await sustainedSearch({
      root: ROOT, admin, brokers, topicPrefix: `bench-sustained-${shape}-${mode}${workers}-${process.pid}`, partitions: spec.partitions, replay,
      bytesPerSpan: meta.bytes / meta.spans, durationS: sustainedSeconds,
      sets: ["sinks.meta=blackhole", "sinks.traces=blackhole", `runtime.workers=${workers}`, ...(mode === "shuffle" ? ["source.kafka.keyedByTraceId=false"] : [])],
      scenario: mode === "keyed" ? "kafka keyed -> blackhole, sustained rate" : "kafka shuffle -> blackhole, sustained rate",
      topology: `1 process, ${workers} worker thread${workers > 1 ? "s" : ""}${mode === "shuffle" ? " (thread shuffle, exchange none)" : ""}, kafkajs`,
      onSample: onS, shape, drainRate, drainSource, startRate, maxSteps: sustainedSteps, defaultCheckpointIntervalMs: defaultCheckpointMs,
      latencyCheckpointsMs: latencyCheckpoints,
      onStep: (label, s) => {
        if (s) progress(label, true);
        else ((step = label), (last = 0), (lastT = 0), progress(label, true));
      },
    });
    sustainedResults.push(res);
    progress(`sustained [${shape}]: ${res.sustainedRate === null ? "no offered rate was sustained" : `${res.atLeast ? ">= " : ""}${Math.round(res.sustainedRate).toLocaleString("en-US")} spans/s`}${res.failedRate !== null ? `, not at ${Math.round(res.failedRate).toLocaleString("en-US")}` : ""}`, true);
  }
}
