/**
 * The `tracefold` command line: `run` (the long-running job; embedded default with no
 * configuration) and `fold` (fold capture files and print the topology report).
 */
// before anything loads kafkajs: its read_committed filter lets aborted records through
import "../sources/kafka/kafkajs-patch.js";
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { consoleLogger, type Logger } from "./contracts.js";
import { describeSettings, loadConfig, replayWorkerCount, section, type Config } from "./config.js";
import { TracefoldError } from "./errors.js";
import { assembleRuntime, prepareSources } from "./assemble.js";
import { runReplayProcess } from "./replay-workers.js";
import { connectionFromSettings } from "../sources/kafka/config.js";
import type { LocalRuntime } from "./runtime.js";
import { buildReport, formatReport, type TopologyReport } from "../operators/fold/report.js";
import { emptyReport, fmtRate, printProcessSummary, printRunSummary, truthVerdict } from "./run-summary.js";
import type { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import type { ReplaySource } from "../sources/replay/source.js";
import { FORMATS } from "../operators/decode/types.js";

const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

const HELP = `tracefold ${VERSION}: fold distributed-tracing spans into service topology, failure rates,
latency distributions and trace connectivity.

Usage:
  tracefold run  [--config FILE] [--set path=value]... [flags]
  tracefold fold FILE... --format FORMAT [--json] [--set path=value]...
  tracefold produce --brokers HOST:PORT --topic T --format FORMAT [--shape batch|trace|span] [--partitions N] FILE...
  tracefold topology --mysql-url URL [--from TIME] [--to TIME] [--json]
  tracefold trace TRACE_ID [--hbase-thrift HOST:PORT | --hbase-rest URL] [--json]
  tracefold replay --to kafka --brokers HOST:PORT --topic T [--partitions N] [--rate SPANS_PER_S] [--duration S] [--spans N] [--seed N]
  tracefold help [run|fold|settings]
  tracefold --version

Commands:
  run    The long-running job. With no configuration it runs the embedded default: generated
         microservice traffic (the replay source) folded into in-memory stores, a live progress
         line on a terminal, and at the end a topology summary and a check of the folded topology
         against the generator's truth (exit code 1 if it does not match). It ends by itself after
         source.replay.spans spans (default 2,000,000) unless --forever; SIGTERM or Ctrl-C stops
         it gracefully (a second signal exits at once). source.replay.encoded=batch|trace|span
         pre-encodes the replay as OTLP protobuf messages (not timed) and decodes them in the run,
         as Kafka input is; runtime.workers=N (a number) replays over N worker threads, each on its
         share of the partitions, with one merged truth check.
         With source.type=kafka and MySQL it runs runtime.workers worker threads (auto: one per
         core), each a consumer-group member; /metrics, /livez and /readyz on http.listen
         (0.0.0.0:9464); checkpoints every runtime.checkpointIntervalMs make the MySQL totals
         exact across crashes, restarts and rebalances; SIGTERM drains within
         runtime.drainTimeoutMs (see examples/kafka-mysql.yaml and 'tracefold help settings').
  fold   Folds capture files with the same windows as run, closes every window at end of input,
         and prints the topology report: a table, or with --json one JSON document on stdout.
         Malformed messages are reported on stderr (format, file, message, byte offset) and
         skipped; decoding goes on with the next message.

  produce   Writes capture files to a Kafka topic keyed by the lower-case hex trace id: each
         message as it is (--shape batch, the default), one trace per message (trace) or one span
         per message (span). SASL/TLS: --set source.kafka.saslMechanism=... etc. apply here too.
         A missing topic is an error unless --partitions N asks to create it (never auto-created:
         a typo would make a one-partition topic).
  trace     One trace from HBase as a tree with timings and errors (--json: the spans).
  replay    Streams generated traffic (the run command's replay, same seed = same traffic) into a
         Kafka topic, one OTLP request per trace keyed by trace id, at --rate spans/s, for
         --duration seconds or --spans spans. --partitions N creates a missing topic, as for produce.
  topology  The topology stored in MySQL over a time range (ISO times or epoch ms; default all),
         as a table or, with --json, in the same shape as fold --json.

Flags:
  --config FILE        Settings file (YAML or JSON); see 'tracefold help settings'.
  --set path=value     Any setting, e.g. --set fold.traceGapMs=60000 (repeatable).
  --format FORMAT      Input format of the files: ${FORMATS.join(", ")}.
  --json               fold: print the report as one JSON document.
  --link-parent-child  fold/run: for input without span kinds, make an edge of every parent -> child
                       across two services (Jaeger's dependency rule).
  --spans N            run: spans to generate (0 = forever).     = --set source.replay.spans=N
  --seed N             run: generator seed.                       = --set source.replay.seed=N
  --services N         run: services in the generated graph.      = --set source.replay.services=N
  --forever            run: do not stop after a number of spans.
  --log-format F       text or json (structured logs on stderr).
  --no-progress        Never print the progress line.
  -h, --help           This help.

Settings are read from the file, then environment variables (TRACEFOLD_<PATH_IN_SNAKE_CASE>, e.g.
TRACEFOLD_FOLD_TRACE_GAP_MS), then flags; every problem is reported at once.

Input formats:
  otlp_proto   an OTLP ExportTraceServiceRequest (protobuf), one per file (an OTLP/HTTP body)
  otlp_json    the same in OTLP/JSON; one request per file, or one per line
  zipkin_json  a JSON array of Zipkin v2 spans
  jaeger_json  Jaeger's query-API JSON ({"data":[trace...]}) or span objects with a process
  span_log     newline-delimited JSON span records (docs/FORMATS.md)
`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case "-h":
      case "--help":
      case "help":
        if (rest[0] === "settings") process.stdout.write(`Settings (path, default, meaning, environment variable):\n${describeSettings()}\n`);
        else process.stdout.write(HELP);
        return 0;
      case "--version":
      case "-v":
        process.stdout.write(`tracefold ${VERSION}\n`);
        return 0;
      case "run":
        return await runCommand(rest);
      case "fold":
        return await foldCommand(rest);
      case "produce":
        return await produceCommand(rest);
      case "topology":
        return await topologyCommand(rest);
      case "replay":
        return await replayCommand(rest);
      case "trace":
        return await traceCommand(rest);
      default:
        process.stderr.write(`tracefold: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof TracefoldError) {
      process.stderr.write(`tracefold: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

const COMMON = {
  config: { type: "string" },
  set: { type: "string", multiple: true },
  "link-parent-child": { type: "boolean" },
  "log-format": { type: "string" },
  "no-progress": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function parse<O extends Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new TracefoldError("TF_CONFIG_INVALID", `${(err as Error).message} (see tracefold --help)`, "cli");
  }
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    spans: { type: "string" },
    seed: { type: "string" },
    services: { type: "string" },
    forever: { type: "boolean" },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 0) throw new TracefoldError("TF_CONFIG_INVALID", `run takes no file arguments (got ${positionals.join(" ")}); use fold, or source.file.paths`, "cli");
  const sets = [...(values.set ?? [])];
  if (values.spans !== undefined) sets.push(`source.replay.spans=${values.spans}`);
  if (values.seed !== undefined) sets.push(`source.replay.seed=${values.seed}`);
  if (values.services !== undefined) sets.push(`source.replay.services=${values.services}`);
  if (values.forever) sets.push("source.replay.spans=0");
  commonSets(values, sets);
  const cfg = loadConfig({ file: values.config, env: process.env, sets });
  const log = consoleLogger(cfg["log.format"] === "json");
  if (cfg["source.type"] === "kafka" && cfg["sinks.meta"] !== "embedded") {
    // the multi-worker process: worker threads, each its own consumer-group member (the embedded
    // stores live in one thread, so with them the job runs in-process like replay and file input)
    // input not keyed by trace id: the keyBy(traceId) shuffle between the worker threads
    const shuffled = cfg["source.kafka.keyedByTraceId"] === false;
    if (shuffled && cfg["runtime.shuffle"] === "topic") {
      const { runRepartitionJob } = await import("./repartition.js");
      return runRepartitionJob(cfg, log);
    }
    const r = shuffled ? await (await import("./shuffle.js")).runShuffleProcess(cfg, log) : await (await import("./process.js")).runProcess(cfg, log);
    printProcessSummary(cfg, r);
    return r.exitCode;
  }
  if (cfg["source.type"] === "replay" && replayWorkerCount(cfg) > 1) {
    // replay over worker threads: each replays its share of the partitions, the main thread
    // merges their aggregates (pipeline/replay-workers.ts)
    const r = await runReplayProcess(cfg, log);
    const report = r.store ? buildReport(r.store) : emptyReport();
    if (r.process.exitCode !== 0 || r.problems.length > 0) {
      process.stdout.write(`replay over ${r.process.outcomes?.length ?? 0} workers failed: ${[...r.problems, r.process.exitCode !== 0 ? "a worker thread failed (see stderr)" : ""].filter(Boolean).join("; ")}\n`);
      return 1;
    }
    const m = r.metrics;
    const dead = m.runtime_dead_letters ?? 0;
    printRunSummary(cfg, report, { metrics: m, elapsedMs: r.process.windowMs ?? 0, cpuS: r.process.windowCpuS ?? 0, deadLetters: dead, workers: r.process.outcomes?.length ?? 0, prepareMs: r.prepareMs });
    return truthVerdict(report, r.truth!, m, r.process.stopped);
  }
  const { runtime, result, report, cpuS } = await execute(cfg, log, true);
  const m = result.metrics;
  const source = cfg["source.type"] === "replay" ? runtime.get<ReplaySource>("replay") : null;
  printRunSummary(cfg, report, { metrics: m, elapsedMs: result.elapsedMs, cpuS, deadLetters: result.deadLetters, workers: 1, prepareMs: source?.prepareMs ?? 0 });
  if (!source) return 0;
  return truthVerdict(report, source.generator.truth, m, result.stopped);
}




async function foldCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { format: { type: "string" }, json: { type: "boolean" } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new TracefoldError("TF_CONFIG_INVALID", "fold needs at least one FILE (see tracefold --help)", "cli");
  const sets = [...(values.set ?? []), "source.type=file", `source.file.paths=${positionals.join(",")}`, "progress=never"];
  if (values.format !== undefined) sets.push(`source.file.format=${values.format}`);
  else if (!values.config) throw new TracefoldError("TF_CONFIG_INVALID", `fold needs --format (one of ${FORMATS.join(", ")})`, "cli");
  commonSets(values, sets);
  const cfg = loadConfig({ file: values.config, env: process.env, sets });
  const log = consoleLogger(cfg["log.format"] === "json");
  const { result, report } = await execute(cfg, log, false);
  if (values.json) {
    process.stdout.write(JSON.stringify({ ...report, deadLetters: result.deadLetters, counters: result.metrics }) + "\n");
  } else {
    process.stdout.write(formatReport(report) + "\n");
    if (result.deadLetters > 0) process.stdout.write(`\n${result.deadLetters} malformed message(s) skipped (see stderr)\n`);
  }
  return 0;
}

async function produceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { brokers: { type: "string" }, topic: { type: "string" }, format: { type: "string" }, shape: { type: "string" }, partitions: { type: "string" } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const sets = [...(values.set ?? []), "source.type=kafka"];
  if (values.brokers) sets.push(`source.kafka.brokers=${values.brokers}`);
  if (values.topic) sets.push(`source.kafka.topic=${values.topic}`);
  if (values.format) sets.push(`source.kafka.format=${values.format}`);
  const cfg = loadConfig({ file: values.config, env: process.env, sets });
  const shape = (values.shape ?? "batch") as "batch" | "trace" | "span";
  if (!["batch", "trace", "span"].includes(shape)) throw new TracefoldError("TF_CONFIG_INVALID", `--shape must be batch, trace or span (got ${shape})`, "cli");
  if (positionals.length === 0) throw new TracefoldError("TF_CONFIG_INVALID", "produce needs at least one FILE", "cli");
  const { produce } = await import("../sources/kafka/produce.js");
  const k = section(cfg, "source.kafka");
  await ensureTopicOf(k, values.partitions);
  const r = await produce({ ...connectionFromSettings(k), topic: k.topic as string, format: k.format as never, files: positionals, shape });
  process.stdout.write(`produced ${r.messages} messages (${r.spans} spans, ${r.malformed} malformed sent as is) to ${k.topic}\n`);
  return 0;
}

async function traceCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { "hbase-thrift": { type: "string" }, "hbase-rest": { type: "string" }, json: { type: "boolean" } });
  if (positionals.length !== 1 || !/^[0-9a-fA-F]{1,32}$/.test(positionals[0])) throw new TracefoldError("TF_CONFIG_INVALID", "trace needs one trace id (hex)", "cli");
  const sets = [...(values.set ?? []), "sinks.traces=hbase"];
  if (values["hbase-thrift"]) sets.push(`sinks.hbase.thrift=${values["hbase-thrift"]}`, "sinks.hbase.client=thrift2");
  if (values["hbase-rest"]) sets.push(`sinks.hbase.rest=${values["hbase-rest"]}`, "sinks.hbase.client=rest");
  const cfg = loadConfig({ file: values.config, env: process.env, sets });
  const { HBaseSink } = await import("../sinks/hbase/sink.js");
  const { formatTrace } = await import("./trace-view.js");
  // a reading command gives up instead of waiting for the gateway like the job does
  const sink = new HBaseSink({ ...(section(cfg, "sinks.hbase") as object), createTables: false, maxAttempts: 3 } as never);
  await sink.open();
  try {
    const spans = await sink.getTrace(positionals[0].toLowerCase().padStart(32, "0"));
    process.stdout.write((values.json ? JSON.stringify(spans) : formatTrace(spans)) + "\n");
    return spans.length > 0 ? 0 : 1;
  } finally {
    await sink.close();
  }
}

async function replayCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { to: { type: "string" }, brokers: { type: "string" }, topic: { type: "string" }, partitions: { type: "string" }, rate: { type: "string" }, duration: { type: "string" }, spans: { type: "string" }, seed: { type: "string" }, services: { type: "string" } });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if ((values.to ?? "kafka") !== "kafka") throw new TracefoldError("TF_CONFIG_INVALID", `replay --to supports kafka (got ${values.to})`, "cli");
  const sets = [...(values.set ?? []), "source.type=kafka"];
  if (values.brokers) sets.push(`source.kafka.brokers=${values.brokers}`);
  if (values.topic) sets.push(`source.kafka.topic=${values.topic}`);
  if (values.seed) sets.push(`source.replay.seed=${values.seed}`);
  if (values.services) sets.push(`source.replay.services=${values.services}`);
  const cfg = loadConfig({ file: values.config, env: process.env, sets });
  const num = (v: string | undefined, name: string) => {
    const n = v === undefined ? 0 : Number(v);
    if (!Number.isFinite(n) || n < 0) throw new TracefoldError("TF_CONFIG_INVALID", `--${name} must be a number >= 0 (got ${v})`, "cli");
    return n;
  };
  const rate = num(values.rate, "rate");
  const durationS = num(values.duration, "duration");
  const spans = num(values.spans, "spans");
  if (durationS === 0 && spans === 0) throw new TracefoldError("TF_CONFIG_INVALID", "replay needs --duration or --spans", "cli");
  const { replayToKafka } = await import("../sources/kafka/replay-to-kafka.js");
  const k = section(cfg, "source.kafka");
  const r = section(cfg, "source.replay");
  await ensureTopicOf(k, values.partitions);
  const showProgress = process.stderr.isTTY;
  const res = await replayToKafka({
    ...connectionFromSettings(k), topic: k.topic as string, rate, durationS, spans,
    replay: { seed: r.seed as number, services: r.services as number, tracesPerSecond: r.tracesPerSecond as number, errorRate: r.errorRate as number, brokenTraceRate: r.brokenTraceRate as number, duplicateRate: r.duplicateRate as number },
    onProgress: showProgress ? (s, m, e) => process.stderr.write(`\rspans ${fmtRate(s)}  messages ${fmtRate(m)}  ${fmtRate(s / Math.max(e, 1e-3))} spans/s\x1b[K`) : undefined,
  });
  if (showProgress) process.stderr.write("\n");
  process.stdout.write(`replayed ${res.spans} spans in ${res.messages} messages to ${k.topic} in ${res.elapsedS.toFixed(1)} s (${fmtRate(res.spans / Math.max(res.elapsedS, 1e-3))} spans/s, ${fmtRate(res.messages / Math.max(res.elapsedS, 1e-3))} messages/s)\n`);
  return 0;
}

async function topologyCommand(args: string[]): Promise<number> {
  const { values } = parse(args, { "mysql-url": { type: "string" }, from: { type: "string" }, to: { type: "string" }, json: { type: "boolean" } });
  const sets = [...(values.set ?? [])];
  if (values["mysql-url"]) sets.push(`sinks.mysql.url=${values["mysql-url"]}`, "sinks.meta=mysql");
  const cfg = loadConfig({ file: values.config, env: process.env, sets });
  if (cfg["sinks.mysql.url"] === "") throw new TracefoldError("TF_CONFIG_INVALID", "topology needs --mysql-url (or sinks.mysql.url)", "cli");
  const time = (t: string | undefined, dflt: number) => (t === undefined ? dflt : /^\d+$/.test(t) ? Number(t) : Date.parse(t));
  const from = time(values.from, 0);
  const to = time(values.to, Number.MAX_SAFE_INTEGER);
  if (!Number.isFinite(from) || !Number.isFinite(to)) throw new TracefoldError("TF_CONFIG_INVALID", "--from/--to must be ISO times or epoch milliseconds", "cli");
  const { MysqlSink } = await import("../sinks/mysql/sink.js");
  const { loadStore } = await import("../sinks/mysql/read.js");
  // a reading command gives up instead of waiting for MySQL like the job does
  const sink = new MysqlSink({ ...(section(cfg, "sinks.mysql") as object), url: cfg["sinks.mysql.url"] as string, maxAttempts: 3 } as never);
  await sink.open();
  try {
    const report = buildReport(await loadStore(sink.pool, from, to));
    process.stdout.write((values.json ? JSON.stringify(report) : formatReport(report)) + "\n");
  } finally {
    await sink.close();
  }
  return 0;
}

/** produce / replay: the target topic exists, or is created with --partitions N (sources/kafka/topic.ts). */
async function ensureTopicOf(k: Record<string, unknown>, partitionsFlag: string | undefined): Promise<void> {
  const partitions = partitionsFlag === undefined ? 0 : Number(partitionsFlag);
  if (!Number.isInteger(partitions) || partitions < 0) throw new TracefoldError("TF_CONFIG_INVALID", `--partitions must be a whole number >= 1 (got ${partitionsFlag})`, "cli");
  const { ensureTopic } = await import("../sources/kafka/topic.js");
  const t = await ensureTopic(connectionFromSettings(k), k.topic as string, partitions);
  if (t.created) process.stderr.write(`created topic ${k.topic as string} with ${t.partitions} partitions\n`);
}

function commonSets(values: Record<string, unknown>, sets: string[]): void {
  if (values["link-parent-child"]) sets.push("fold.linkParentChild=true");
  if (values["log-format"] !== undefined) sets.push(`log.format=${values["log-format"]}`);
  if (values["no-progress"]) sets.push("progress=never");
}

async function execute(cfg: Config, log: Logger, signals: boolean): Promise<{ runtime: LocalRuntime; result: Awaited<ReturnType<LocalRuntime["run"]>>; report: TopologyReport; cpuS: number }> {
  const runtime = await assembleRuntime(cfg, log);
  // an encoded replay generates and encodes its input now, before the run's clock starts
  await prepareSources(runtime, log);
  const progressMode = cfg["progress"] as string;
  const showProgress = progressMode === "always" || (progressMode === "auto" && process.stderr.isTTY === true);
  const started = Date.now();
  let lastSpans = 0;
  let lastAt = started;
  const progress = setInterval(() => {
    const m = runtime.metrics();
    const now = Date.now();
    const rate = ((m.fold_spans_in - lastSpans) * 1000) / Math.max(1, now - lastAt);
    lastSpans = m.fold_spans_in;
    lastAt = now;
    const meta = runtime.nodes.get("meta")?.impl as Partial<EmbeddedMetaStore> | undefined;
    const line = `spans ${fmtRate(m.fold_spans_in)}  ${fmtRate(rate)} spans/s  traces ${fmtRate(m.fold_traces_assembled)}  pending ${fmtRate(m.fold_pending_spans)}  edge rows ${meta?.edges?.size ?? "-"}  late ${m.fold_late_spans}  dead letters ${m.runtime_dead_letters}  ${((now - started) / 1000).toFixed(0)} s`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K`);
    else process.stderr.write(line + "\n");
  }, process.stderr.isTTY ? 1000 : 5000);
  if (!showProgress) clearInterval(progress);
  progress.unref();
  let signalled = 0;
  const onSignal = (sig: string) => {
    signalled++;
    if (signalled > 1) {
      log.warn("second signal: exiting now", { signal: sig });
      process.exit(130);
    }
    log.info("stopping: no more input is read; open windows are kept, not closed", { signal: sig });
    runtime.stop();
  };
  if (signals) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
  try {
    const cpu0 = process.cpuUsage();
    const result = await runtime.run();
    const cpu = process.cpuUsage(cpu0);
    if (showProgress && process.stderr.isTTY) process.stderr.write("\n");
    const meta = runtime.nodes.get("meta")?.impl;
    const report: TopologyReport = meta && (meta as EmbeddedMetaStore).edges ? buildReport(meta as EmbeddedMetaStore) : emptyReport();
    return { runtime, result, report, cpuS: (cpu.user + cpu.system) / 1e6 };
  } finally {
    clearInterval(progress);
    if (signals) {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    }
  }
}


