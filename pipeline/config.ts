/**
 * Configuration: one schema (every key with its type, default, unit and doc), read from a file
 * (YAML or JSON), then environment variables, then flags; validated once with every problem
 * reported together; unknown keys rejected.
 *
 *   file:  fold: { traceGapMs: 30000 }
 *   env:   TRACEFOLD_FOLD_TRACE_GAP_MS=30000      (TRACEFOLD_ + path in SNAKE_CASE)
 *   flag:  --set fold.traceGapMs=30000            (plus a few shortcuts: --spans, --seed, ...)
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { parse as parseYaml } from "yaml";
import { TracefoldError } from "./errors.js";

type Kind = "int" | "number" | "bool" | "string" | "strings";
interface Field {
  kind: Kind;
  default: unknown;
  doc: string;
  enum?: readonly string[];
  min?: number;
}

const f = (kind: Kind, def: unknown, doc: string, extra: Partial<Field> = {}): Field => ({ kind, default: def, doc, ...extra });

/** The schema: the user manual of every setting. */
export const SCHEMA: Record<string, Field> = {
  "source.type": f("string", "replay", "Input: `replay` (generated traffic, the embedded default), `file` (capture files) or `kafka`.", { enum: ["replay", "file", "kafka"] }),
  "source.file.paths": f("strings", [], "Capture files to read (source.type=file)."),
  "source.file.format": f("string", "otlp_proto", "Format of the capture files.", { enum: ["otlp_proto", "otlp_json", "zipkin_json", "jaeger_json", "span_log"] }),
  "source.kafka.brokers": f("strings", [], "Kafka bootstrap servers, host:port (comma-separated)."),
  "source.kafka.topic": f("string", "", "Topic to consume."),
  "source.kafka.groupId": f("string", "tracefold", "Consumer group id."),
  "source.kafka.format": f("string", "otlp_proto", "Format of the messages (tracefold_exchange: a repartition topic written by runtime.stage=repartition).", { enum: ["otlp_proto", "otlp_json", "zipkin_json", "jaeger_json", "span_log", "tracefold_exchange"] }),
  "source.kafka.fromBeginning": f("bool", true, "With no committed offset, start at the earliest offset (else the latest)."),
  "source.kafka.bounded": f("bool", false, "Read to the end offsets the topic had at start, then close every window and stop (backfills, tests)."),
  "source.kafka.sessionTimeoutMs": f("int", 30_000, "Consumer-group session timeout (ms).", { min: 1000 }),
  "source.kafka.maxBytesPerPartition": f("int", 4 << 20, "Largest fetch per partition (bytes): the size of the batches the pipeline handles.", { min: 1024 }),
  "source.kafka.keyedByTraceId": f("bool", true, "The producers partition the topic by trace id (every span of a trace in one partition): each worker folds its own partitions. false: a keyBy(traceId) shuffle sends every span to the worker owning its trace (runtime.shuffle)."),
  "source.kafka.client": f("string", "kafkajs", "Kafka client of the consumer: `kafkajs` (pure JS) or `node-rdkafka` (librdkafka; only for the thread shuffle's main-thread consumer, source.kafka.keyedByTraceId=false with runtime.shuffle=thread; installed apart by `bash scripts/ensure-native-kafka.sh`, never by npm install).", { enum: ["kafkajs", "node-rdkafka"] }),
  "source.kafka.deadLetterTopic": f("string", "", "Topic for malformed messages (headers: source topic, partition, offset, error code, reason); empty: log only."),
  "source.kafka.saslMechanism": f("string", "", "SASL mechanism: plain, scram-sha-256, scram-sha-512 (empty: none).", { enum: ["", "plain", "scram-sha-256", "scram-sha-512"] }),
  "source.kafka.saslUsername": f("string", "", "SASL user name."),
  "source.kafka.saslPasswordFile": f("string", "", "File holding the SASL password (e.g. a mounted Secret); the password is never logged."),
  "source.kafka.tls": f("bool", false, "Connect to Kafka with TLS."),
  "source.kafka.tlsCaFile": f("string", "", "CA bundle for Kafka TLS (empty: the system CAs)."),
  "source.replay.spans": f("int", 2_000_000, "Spans to generate; 0 runs forever (until SIGTERM).", { min: 0 }),
  "source.replay.seed": f("int", 1, "Seed of the generator: the same seed gives the same traffic."),
  "source.replay.services": f("int", 40, "Instrumented services in the generated graph.", { min: 1 }),
  "source.replay.partitions": f("int", 4, "Input partitions the traces are spread over.", { min: 1 }),
  "source.replay.tracesPerSecond": f("number", 500, "Traces per second of event time (~21 spans each): at 500, two million spans span ~3 minutes of event time, so windows close while the job runs.", { min: 1 }),
  "source.replay.batchSize": f("int", 4096, "Spans per batch.", { min: 1 }),
  "source.replay.rate": f("number", 0, "Offered rate in spans/s, over every worker: each batch is handed on when it is due (0: as fast as the pipeline takes them). The run's summary says whether it kept up: the replay_behind_spans metrics count how far behind its schedule it ran.", { min: 0 }),
  "source.replay.errorRate": f("number", 1, "Scale of every error probability (1 = about 1% of calls fail).", { min: 0 }),
  "source.replay.brokenTraceRate": f("number", 0.005, "Share of traces with one span dropped (broken traces).", { min: 0 }),
  "source.replay.duplicateRate": f("number", 0, "Probability that a span is sent twice.", { min: 0 }),
  "source.replay.encoded": f("string", "none", "`none`: generated SpanBatches go straight to the fold (no decode). `batch` (OTLP exports of 200 spans), `trace` (one trace per message) or `span` (one span per message): the replay is encoded once as OTLP protobuf messages of that shape before the run (logged, not timed) and fed through the decode operator (otlp_proto) and the fold, as Kafka messages are: the in-process compute ceiling with decode. Needs source.replay.spans > 0; memory: the encoded bytes (~130-175 B per span).", { enum: ["none", "batch", "trace", "span"] }),
  "fold.outOfOrdernessMs": f("int", 30_000, "Watermark = largest span end seen in a partition minus this (ms).", { min: 0 }),
  "fold.allowedLatenessMs": f("int", 0, "A span ending further than this behind the watermark is late (ms).", { min: 0 }),
  "fold.assemblyWindowMs": f("int", 10_000, "A call half waits for its partner until the watermark passes its end plus this (ms).", { min: 0 }),
  "fold.traceGapMs": f("int", 30_000, "A trace is assembled when the watermark passes its last span end plus this (ms).", { min: 0 }),
  "fold.traceMaxOpenMs": f("int", 600_000, "A trace open longer than this is assembled anyway and counted as cut (ms).", { min: 1 }),
  "fold.assembledMemoryMs": f("int", 300_000, "How long an assembled trace id is remembered so its stragglers count as late (ms).", { min: 0 }),
  "fold.idleTimeoutMs": f("int", 10_000, "Processing time without input after which a partition's watermark advances by the clock (ms).", { min: 1 }),
  "fold.operationBudget": f("int", 200, "Distinct operations kept per service; the rest fold into __other__.", { min: 1 }),
  "fold.virtualNodeBudget": f("int", 100, "Distinct virtual peers kept per service; the rest fold into __other__.", { min: 1 }),
  "fold.maxSpansPerTrace": f("int", 10_000, "Spans kept per trace; the rest are counted and dropped.", { min: 1 }),
  "fold.maxPendingSpans": f("int", 2_000_000, "Pending spans per partition; past it the oldest trace is assembled early (counted).", { min: 1 }),
  "fold.aggregates": f("string", "all", "`all`: edges, service and operation stats, trace connectivity. `edges`: only the edges (calls, failures, latency histograms), what Flink or the OTel Collector's servicegraph compute: the benchmark's like-for-like row.", { enum: ["all", "edges"] }),
  "fold.linkParentChild": f("bool", false, "For input without span kinds: an edge for every parent -> child across two services (Jaeger's dependency rule)."),
  "fold.checkpointChain": f("int", 0, "Incremental checkpoints: a checkpoint writes the pending state that changed since the previous one, and an entry unchanged for N checkpoints again, so a restore reads the last N increments at most. 0 (default): N = 1.5 x (outOfOrdernessMs + traceGapMs) / the checkpoint interval, 2..64. 1: every checkpoint writes the whole pending state.", { min: 0 }),
  "fold.flushIntervalMs": f("int", 10_000, "Processing time between flushes of aggregates to the stores (ms).", { min: 1 }),
  "decode.maxMessageBytes": f("int", 16 << 20, "A message larger than this is not decoded: it goes to the dead-letter topic (TF_DECODE_TOO_LARGE) and is counted.", { min: 1 }),
  "sinks.traces": f("string", "embedded", "Where trace details go: `embedded` (in-memory trace store), `hbase` or `blackhole`.", { enum: ["embedded", "hbase", "blackhole"] }),
  "sinks.hbase.client": f("string", "thrift2", "HBase gateway: `thrift2` (measured faster, docs/DECISIONS.md 13) or `rest`.", { enum: ["thrift2", "rest"] }),
  "sinks.hbase.thrift": f("string", "", "Thrift2 gateway host:port (binary protocol, unframed)."),
  "sinks.hbase.rest": f("string", "", "REST gateway URL, http://host:port."),
  "sinks.hbase.table": f("string", "tracefold_traces", "Trace details table (created if absent)."),
  "sinks.hbase.indexTable": f("string", "tracefold_trace_index", "Entry-span index table (created if absent)."),
  "sinks.hbase.ttlSeconds": f("int", 604_800, "Cell time-to-live of both tables (s).", { min: 1 }),
  "sinks.hbase.saltBuckets": f("int", 16, "Row-key salt buckets (pre-split regions), at most 256.", { min: 1 }),
  "sinks.hbase.layout": f("string", "chunk", "`chunk`: one LZ4 cell per trace per write (measured faster); `span`: one cell per span.", { enum: ["chunk", "span"] }),
  "sinks.hbase.index": f("bool", true, "Write the entry-span index (search by service, time, duration, error)."),
  "sinks.hbase.maxBytesPerTrace": f("int", 8 << 20, "Cut a trace whose details pass this many bytes (uncompressed span records): its later spans are not written to HBase, and counted (hbase_spans_over_trace_bytes, hbase_traces_cut_by_bytes); aggregates are not affected (fold.maxSpansPerTrace bounds those). 0: no limit.", { min: 0 }),
  "sinks.hbase.maxBatchRows": f("int", 1000, "Rows per put request.", { min: 1 }),
  "sinks.hbase.maxInFlight": f("int", 4, "Put requests outstanding at most (bounded in-flight).", { min: 1 }),
  "sinks.hbase.maxAttempts": f("int", 0, "Attempts for a call that fails transiently, with exponential backoff (0: until the gateway is back; the pipeline waits, Kafka pauses, nothing is dropped).", { min: 0 }),
  "sinks.hbase.timeoutMs": f("int", 30_000, "Timeout of one gateway call (ms).", { min: 100 }),
  "sinks.meta": f("string", "embedded", "Where topology and stats go: `embedded` (in-memory store), `mysql` or `blackhole`.", { enum: ["embedded", "mysql", "blackhole"] }),
  "sinks.mysql.url": f("string", "", "mysql://user[:password]@host:port/database (MySQL 8 or MariaDB 10.11)."),
  "sinks.mysql.passwordFile": f("string", "", "File holding the MySQL password (overrides the URL's); never logged."),
  "sinks.mysql.tls": f("bool", false, "Connect to MySQL with TLS."),
  "sinks.mysql.tlsCaFile": f("string", "", "CA bundle for MySQL TLS."),
  "sinks.mysql.maxAttempts": f("int", 0, "Attempts of a transaction that fails transiently (0: until MySQL is back; the pipeline waits, Kafka pauses, nothing is dropped).", { min: 0 }),
  "sinks.traceStore.maxTraces": f("int", 200_000, "Traces the embedded trace store keeps (least recently written evicted first).", { min: 1 }),
  "runtime.workers": f("string", "auto", "Worker threads: `auto` (one per core) or a number. With Kafka input each worker runs its own consumer-group member(s), so partitions spread over workers and pods. Replay input: `auto` runs in one thread (the embedded default); a number N > 1 runs N worker threads, each replaying its share of the partitions (partition p on worker p % N, at most source.replay.partitions workers) end to end with its own sinks, and the main thread merges their aggregates for the truth check. File input runs in one thread."),
  "runtime.consumersPerWorker": f("int", 1, "Kafka consumer-group members per worker thread.", { min: 1 }),
  "runtime.shuffle": f("string", "thread", "How input not keyed by trace id is re-keyed: thread (between the worker threads of one process, which must own every partition of the topic) or topic (through a repartition topic keyed by trace id, across processes; Kafka transactions, docs/DECISIONS.md 18).", { enum: ["thread", "topic"] }),
  "runtime.stage": f("string", "all", "runtime.shuffle=topic: which stages this process runs: all, repartition (input -> decode -> HBase -> the repartition topic) or fold (the repartition topic -> fold -> MySQL); stages can be deployed and scaled apart.", { enum: ["all", "repartition", "fold"] }),
  "runtime.repartitionTopic": f("string", "", "runtime.shuffle=topic: the repartition topic (default <topic>.tracefold-rekeyed; created with the input's partition count when absent)."),
  "runtime.repartitionPartitions": f("int", 0, "Partitions of a repartition topic tracefold creates (0: as many as the input topic).", { min: 0 }),
  "runtime.keyGroups": f("int", 64, "Key groups of the shuffled fold (its unit of state, Flink's max parallelism): fixed for the life of a deployment, at least the worker count.", { min: 1 }),
  "runtime.exchangeCompression": f("string", "none", "LZ4 on the batches the shuffle hands between worker threads: none or lz4 (bench/README.md has both).", { enum: ["none", "lz4"] }),
  "runtime.exchangeCredits": f("int", 4, "Credit-based flow control: batches in flight from one worker to another, and input batches handed to one worker.", { min: 1 }),
  "runtime.memoryBudgetMb": f("int", 0, "Fold state per worker thread (MB; 0: auto = half of the container's memory limit, or of the machine's, per worker). Over it the worker pauses its partitions holding the most state (lag grows, nothing is dropped) and resumes them below 90%; only a partition that alone exceeds it loses its oldest traces, assembled early and counted (fold_memory_evictions).", { min: 0 }),
  "runtime.drainTimeoutMs": f("int", 20_000, "SIGTERM budget: stop fetching, checkpoint the pending state (no window closed), flush, commit and leave the group within this; keep it below Kubernetes' terminationGracePeriodSeconds (ms).", { min: 100 }),
  "runtime.workerRestartBackoffMs": f("int", 1_000, "First delay before a dead worker thread is restarted (doubles up to 30 s while it keeps dying).", { min: 0 }),
  "http.listen": f("string", "auto", "host:port of /metrics, /livez and /readyz; `auto`: 0.0.0.0:9464 with Kafka input, off otherwise; `off`: never."),
  "debug.crashWorkerAfterBatches": f("int", 0, "Fault injection for tests: the first incarnation of every worker thread throws at this batch (0: never).", { min: 0 }),
  "runtime.checkpointIntervalMs": f("int", 10_000, "Processing time between checkpoints (deltas + offsets + pending state in one MySQL transaction) for Kafka input (ms).", { min: 100 }),
  "runtime.tickMs": f("int", 250, "Processing-time timer tick (ms).", { min: 1 }),
  "log.format": f("string", "text", "Log format on stderr: `text` or `json` (structured).", { enum: ["text", "json"] }),
  "progress": f("string", "auto", "Progress line: `auto` (on a terminal), `always`, `never`.", { enum: ["auto", "always", "never"] }),
};

export type Config = Record<string, unknown>;

export interface ConfigInputs {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** `path=value` pairs from --set and the flag shortcuts. */
  sets?: string[];
}

export function envName(path: string): string {
  return "TRACEFOLD_" + path.replace(/\./g, "_").replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Loads and validates; throws one TF_CONFIG_INVALID error listing every problem. */
export function loadConfig(inputs: ConfigInputs = {}): Config {
  const problems: string[] = [];
  const cfg: Config = {};
  for (const [k, fl] of Object.entries(SCHEMA)) cfg[k] = fl.default;
  if (inputs.file) {
    let doc: unknown;
    try {
      const text = readFileSync(inputs.file, "utf8");
      doc = inputs.file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      problems.push(`${inputs.file}: cannot read: ${(err as Error).message}`);
    }
    if (doc !== undefined && doc !== null) {
      if (typeof doc !== "object" || Array.isArray(doc)) problems.push(`${inputs.file}: the top level must be a mapping`);
      else flatten(doc as Record<string, unknown>, "", (path, value) => assign(cfg, path, value, `${inputs.file}: ${path}`, problems, false));
    }
  }
  const env = inputs.env ?? {};
  for (const path of Object.keys(SCHEMA)) {
    const v = env[envName(path)];
    if (v !== undefined) assign(cfg, path, v, `${envName(path)}`, problems, true);
  }
  for (const s of inputs.sets ?? []) {
    const eq = s.indexOf("=");
    if (eq < 0) {
      problems.push(`--set ${s}: expected path=value`);
      continue;
    }
    assign(cfg, s.slice(0, eq), s.slice(eq + 1), `--set ${s.slice(0, eq)}`, problems, true);
  }
  if (cfg["source.type"] === "file" && (cfg["source.file.paths"] as string[]).length === 0) problems.push("source.file.paths: source.type=file needs at least one file");
  if (cfg["source.type"] === "kafka") {
    if ((cfg["source.kafka.brokers"] as string[]).length === 0) problems.push("source.kafka.brokers: source.type=kafka needs at least one broker");
    if (cfg["source.kafka.topic"] === "") problems.push("source.kafka.topic: source.type=kafka needs a topic");
  }
  if (cfg["sinks.meta"] === "mysql" && cfg["sinks.mysql.url"] === "") problems.push("sinks.mysql.url: sinks.meta=mysql needs a URL");
  if (cfg["sinks.traces"] === "hbase") {
    if (cfg["sinks.hbase.client"] === "thrift2" && cfg["sinks.hbase.thrift"] === "") problems.push("sinks.hbase.thrift: sinks.traces=hbase with the thrift2 client needs host:port");
    if (cfg["sinks.hbase.client"] === "rest" && cfg["sinks.hbase.rest"] === "") problems.push("sinks.hbase.rest: sinks.traces=hbase with the rest client needs a URL");
  }
  if (cfg["source.type"] === "kafka" && cfg["source.kafka.keyedByTraceId"] === false && cfg["sinks.meta"] === "embedded")
    problems.push("source.kafka.keyedByTraceId: the shuffle (false) keeps its checkpoints in MySQL: it needs sinks.meta=mysql (or blackhole, for benchmarks)");
  if (cfg["source.type"] === "kafka" && cfg["source.kafka.client"] === "node-rdkafka" && !(cfg["source.kafka.keyedByTraceId"] === false && cfg["runtime.shuffle"] === "thread"))
    problems.push(
      "source.kafka.client: node-rdkafka runs only in the main thread (it aborts the process inside a worker thread, and loads in one thread per process), and only the thread shuffle's consumer runs there: set source.kafka.keyedByTraceId=false to use the main-thread consumer (with runtime.shuffle=thread), or use source.kafka.client=kafkajs",
    );
  if (cfg["source.type"] === "replay" && cfg["source.replay.encoded"] !== "none" && cfg["source.replay.spans"] === 0)
    problems.push("source.replay.encoded: the messages are encoded before the run, so it needs a bounded replay (source.replay.spans > 0, not --forever)");
  if (!/^(auto|[1-9]\d*)$/.test(cfg["runtime.workers"] as string)) problems.push(`runtime.workers: must be auto or a number >= 1, got ${JSON.stringify(cfg["runtime.workers"])}`);
  if (!/^(auto|off|[^:]*:\d+)$/.test(cfg["http.listen"] as string)) problems.push(`http.listen: must be host:port, auto or off, got ${JSON.stringify(cfg["http.listen"])}`);
  if ((cfg["fold.assemblyWindowMs"] as number) > (cfg["fold.traceGapMs"] as number))
    problems.push("fold.assemblyWindowMs: must not exceed fold.traceGapMs (a call must close before its trace is assembled)");
  if (problems.length > 0) throw new TracefoldError("TF_CONFIG_INVALID", `invalid configuration:\n  - ${problems.join("\n  - ")}`, "config");
  return cfg;
}

function flatten(obj: Record<string, unknown>, prefix: string, out: (path: string, value: unknown) => void): void {
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === "object" && !Array.isArray(v) && !(path in SCHEMA)) flatten(v as Record<string, unknown>, path, out);
    else out(path, v);
  }
}

function assign(cfg: Config, path: string, raw: unknown, where: string, problems: string[], fromText: boolean): void {
  const field = SCHEMA[path];
  if (!field) {
    const near = Object.keys(SCHEMA).filter((k) => k.toLowerCase().includes(path.split(".").pop()!.toLowerCase()));
    problems.push(`${where}: unknown setting${near.length ? ` (did you mean ${near.slice(0, 3).join(", ")}?)` : ""}`);
    return;
  }
  const v = coerce(field, raw, fromText);
  if (v === undefined) {
    problems.push(`${where}: expected ${field.kind}${field.enum ? ` (one of ${field.enum.join(", ")})` : ""}, got ${JSON.stringify(raw)}`);
    return;
  }
  if (field.enum && !field.enum.includes(v as string)) {
    problems.push(`${where}: must be one of ${field.enum.join(", ")}, got ${JSON.stringify(v)}`);
    return;
  }
  if (field.min !== undefined && typeof v === "number" && v < field.min) {
    problems.push(`${where}: must be >= ${field.min}, got ${v}`);
    return;
  }
  cfg[path] = v;
}

function coerce(field: Field, raw: unknown, fromText: boolean): unknown {
  switch (field.kind) {
    case "int":
    case "number": {
      const n = typeof raw === "number" ? raw : fromText && typeof raw === "string" && raw.trim() !== "" ? Number(raw.replace(/_/g, "")) : NaN;
      if (!Number.isFinite(n)) return undefined;
      if (field.kind === "int" && !Number.isInteger(n)) return undefined;
      return n;
    }
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (fromText && typeof raw === "string" && /^(true|false|1|0|yes|no)$/i.test(raw)) return /^(true|1|yes)$/i.test(raw);
      return undefined;
    case "string":
      return typeof raw === "string" ? raw : typeof raw === "number" ? String(raw) : undefined;
    case "strings":
      if (Array.isArray(raw) && raw.every((x) => typeof x === "string")) return raw;
      if (typeof raw === "string") return raw.split(",").filter((x) => x.length > 0);
      return undefined;
  }
}

/** runtime.workers as a number: `auto` is one per core. */
export function workerCount(cfg: Config): number {
  const w = cfg["runtime.workers"] as string;
  return w === "auto" ? Math.max(1, availableParallelism()) : Number(w);
}

/**
 * Worker threads of a replay run: `auto` keeps the embedded default in one thread, a number asks
 * for that many, at most one per replay partition (a worker without partitions has nothing to do).
 */
export function replayWorkerCount(cfg: Config): number {
  const w = cfg["runtime.workers"] as string;
  return w === "auto" ? 1 : Math.max(1, Math.min(Number(w), cfg["source.replay.partitions"] as number));
}

/** Where /metrics, /livez and /readyz listen, or null for nowhere. */
export function httpListen(cfg: Config): { host: string; port: number } | null {
  let v = cfg["http.listen"] as string;
  if (v === "off" || (v === "auto" && cfg["source.type"] !== "kafka")) return null;
  if (v === "auto") v = "0.0.0.0:9464";
  const i = v.lastIndexOf(":");
  return { host: v.slice(0, i) || "0.0.0.0", port: Number(v.slice(i + 1)) };
}

/** Settings under a prefix as a nested-free object: section(cfg, "fold") -> { traceGapMs: ... }. */
export function section(cfg: Config, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) if (k.startsWith(prefix + ".") && !k.slice(prefix.length + 1).includes(".")) out[k.slice(prefix.length + 1)] = v;
  return out;
}

/** The settings table for --help. */
export function describeSettings(): string {
  const rows = Object.entries(SCHEMA).map(([k, fl]) => `  ${k.padEnd(30)} ${String(JSON.stringify(fl.default)).padEnd(12)} ${fl.doc}\n  ${"".padEnd(30)} ${"".padEnd(12)} env ${envName(k)}`);
  return rows.join("\n");
}
