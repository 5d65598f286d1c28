/**
 * The multi-worker process (Kafka input): the main thread coordinates, N worker threads
 * (pipeline/worker.ts) each run the chained job with their own consumer-group member(s), so the
 * topic's partitions spread over the workers of every pod. Replay input with runtime.workers > 1
 * runs here too (pipeline/replay-workers.ts): each worker replays its share of the partitions; a
 * replay worker that dies is not restarted (its share would be counted twice), the run fails.
 *
 * The main thread: serves /metrics (every worker's counters merged), /livez and /readyz; restarts
 * a worker that died (backoff doubling to 30 s; its replacement restores from the last
 * checkpoint); on SIGTERM/SIGINT asks every worker to drain (stop fetching, checkpoint the pending
 * state without closing a window, flush, commit, leave the group) within runtime.drainTimeoutMs,
 * and exits at once on a second signal.
 */
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { Kafka } from "kafkajs";
import { replayWorkerCount, section, workerCount, type Config } from "./config.js";
import type { Logger } from "./contracts.js";
import { TracefoldError } from "./errors.js";
import { closeServer, onStopSignals, serveHealth } from "./lifecycle.js";
import type { HealthSource } from "./http.js";
import { isGauge } from "./metrics.js";
import type { WorkerData, WorkerStatus } from "./worker.js";
import { connectionFromSettings, kafkajsConfig } from "../sources/kafka/config.js";

export interface ProcessResult {
  /** Every worker ended by itself (bounded input) or drained after a signal. */
  stopped: boolean;
  elapsedMs: number;
  metrics: Record<string, number>;
  exitCode: number;
  /** (Set by runProcess; other process runners leave these out.) From the go (every worker opened: sinks, operators, a replay's pre-encoding) to the last worker's run() returning. */
  windowMs?: number;
  /** CPU seconds (user + sys, every thread of the process) in that window. */
  windowCpuS?: number;
  /** What each worker handed back when its runtime ended (pipeline/worker.ts `outcome`), by worker index. */
  outcomes?: unknown[];
}

interface Slot {
  index: number;
  worker: Worker | null;
  incarnation: number;
  status: WorkerStatus | null;
  done: boolean;
  /** Its sinks and operators are open; waiting for the go to join the group. */
  opened: boolean;
  backoffMs: number;
  /** Its runtime's run() returned (the end of the measured window once every worker's has). */
  ran?: boolean;
  outcome?: unknown;
}


function workerFile(): string {
  // dist/pipeline/worker.js next to this file; from the TypeScript sources (tests), the build's
  const here = fileURLToPath(new URL("./worker.js", import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL("../dist/pipeline/worker.js", import.meta.url));
}

export interface ProcessOptions {
  /** Serve /metrics, /livez, /readyz (default: on http.listen). */
  http?: boolean;
  /** Hands out this process's health (another stage in the same process serves it). */
  onHealth?: (h: HealthSource) => void;
  /** Another stage's health, served together with this one's. */
  alsoServe?: () => HealthSource | null;
}

export async function runProcess(cfg: Config, log: Logger, opts: ProcessOptions = {}): Promise<ProcessResult> {
  const t0 = Date.now();
  const kafka = cfg["source.type"] === "kafka";
  let workers = kafka ? workerCount(cfg) : replayWorkerCount(cfg);
  const perWorker = kafka ? (cfg["runtime.consumersPerWorker"] as number) : 1;
  const partitions = !kafka ? (cfg["source.replay.partitions"] as number) : await topicPartitions(cfg).catch((err) => {
    if (err instanceof TracefoldError) throw err;
    log.warn("could not read the topic's partition count", { error: String(err) });
    return 0;
  });
  if (kafka && partitions > 0 && partitions < workers * perWorker) {
    if (cfg["source.kafka.bounded"]) {
      // a member without partitions would wait forever for the end of a bounded input
      workers = Math.max(1, Math.floor(partitions / perWorker));
      log.warn("bounded input: fewer partitions than consumer-group members; using fewer workers", { partitions, workers, consumersPerWorker: perWorker });
    } else log.warn("fewer partitions than consumer-group members in this process: some members stay idle", { partitions, members: workers * perWorker, cores: availableParallelism() });
  }
  if (kafka) log.info("starting workers", { workers, consumersPerWorker: perWorker, partitions, topic: cfg["source.kafka.topic"], group: cfg["source.kafka.groupId"] });
  else log.info("starting workers", { workers, source: cfg["source.type"], partitions, share: "partition p on worker p % workers" });

  const slots: Slot[] = Array.from({ length: workers }, (_, index) => ({ index, worker: null, incarnation: 0, status: null, done: false, opened: false, backoffMs: cfg["runtime.workerRestartBackoffMs"] as number }));
  const retired: Record<string, number> = {};
  let restarts = 0;
  let initialJoinDone = false;
  let stopping = false;
  let exitCode = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  // the measured window: from the go to the last worker's run() returning
  const measured = new RunWindow();

  const merged = (): Record<string, number> => {
    const out: Record<string, number> = { ...retired };
    for (const s of slots) for (const [k, v] of Object.entries(s.status?.metrics ?? {})) out[k] = k.startsWith("runtime_last") ? Math.max(out[k] ?? 0, v) : (out[k] ?? 0) + v;
    const mem = process.memoryUsage();
    out.process_workers = slots.filter((s) => s.worker !== null).length;
    out.process_workers_started = slots.length;
    out.process_worker_restarts = restarts;
    out.process_ready = readiness().ready ? 1 : 0;
    out.process_rss_bytes = mem.rss;
    out.process_heap_used_bytes = mem.heapUsed;
    return out;
  };
  const readiness = (): { ready: boolean; reasons: string[] } => {
    if (stopping) return { ready: false, reasons: ["draining after a signal"] };
    const reasons: string[] = [];
    for (const s of slots) {
      if (s.done) continue;
      if (!s.worker) reasons.push(`worker ${s.index}: restarting`);
      else if (!s.status) reasons.push(`worker ${s.index}: starting`);
      else if (!s.status.ready) reasons.push(...s.status.reasons.map((r) => `worker ${s.index}: ${r}`));
    }
    return { ready: reasons.length === 0, reasons };
  };

  const statusIntervalMs = Math.min(1000, cfg["runtime.tickMs"] as number * 4);
  const start = (slot: Slot) => {
    const data: WorkerData = { cfg, workerIndex: slot.index, workers, incarnation: slot.incarnation, statusIntervalMs };
    const w = new Worker(workerFile(), { workerData: data });
    slot.worker = w;
    slot.status = null;
    slot.opened = false;
    w.on("message", (m: WorkerStatus | { type: "done" } | { type: "opened" } | { type: "ran" }) => {
      if (m.type === "status") slot.status = m;
      else if (m.type === "opened") {
        slot.opened = true;
        // at start every worker joins at once; a restarted one goes alone
        if (initialJoinDone) w.postMessage({ type: "go" });
        else if (slots.every((s) => s.opened)) {
          initialJoinDone = true;
          measured.start();
          for (const s of slots) s.worker?.postMessage({ type: "go" });
        }
      }
      else if (m.type === "ran") {
        slot.ran = true;
        if (slots.every((s) => s.ran)) {
          measured.end();
        }
      }
      else if (m.type === "done") {
        slot.done = true;
        slot.outcome = (m as { outcome?: unknown }).outcome;
        w.postMessage({ type: "exit" });
      }
    });
    w.on("error", (err) => log.error("worker failed", { worker: slot.index, error: err.stack ?? String(err) }));
    w.on("exit", (code) => {
      slot.worker = null;
      // what this incarnation counted stays in the totals, so they never go backwards
      for (const [k, v] of Object.entries(slot.status?.metrics ?? {})) if (!isGauge(k)) retired[k] = (retired[k] ?? 0) + v;
      slot.status = null;
      if (slot.done || stopping) {
        slot.done = true;
        if (code !== 0) exitCode = 1;
        if (slots.every((s) => s.done)) finish();
        return;
      }
      if (!kafka) {
        // a replay worker starts its share from the beginning: a restart would count it twice
        log.error("replay worker died; the run fails (replay workers are not restarted)", { worker: slot.index, exitCode: code });
        exitCode = 1;
        slot.done = true;
        stopping = true;
        for (const s of slots) s.worker?.postMessage({ type: "stop" });
        if (slots.every((s) => s.done)) finish();
        return;
      }
      restarts++;
      slot.incarnation++;
      const delay = slot.backoffMs;
      slot.backoffMs = Math.min(30_000, Math.max(100, slot.backoffMs * 2));
      log.error("worker died; restarting it (its partitions resume from the last checkpoint)", { worker: slot.index, exitCode: code, restartInMs: delay, restarts });
      setTimeout(() => {
        if (!stopping) start(slot);
        else {
          slot.done = true;
          if (slots.every((s) => s.done)) finish();
        }
      }, delay); // not unref'd: with the other workers done, this timer is what keeps the process alive until the restart
    });
  };

  opts.onHealth?.({ metrics: merged, readiness });
  const served: HealthSource = {
    metrics: () => ({ ...(opts.alsoServe?.()?.metrics() ?? {}), ...merged() }),
    readiness: () => {
      const a = readiness();
      const b = opts.alsoServe?.()?.readiness() ?? { ready: true, reasons: [] };
      return { ready: a.ready && b.ready, reasons: [...a.reasons, ...b.reasons] };
    },
  };
  const server = opts.http === false ? null : await serveHealth(cfg, log, served);
  const uninstall = onStopSignals(
    cfg,
    log,
    () => {
      stopping = true;
      for (const s of slots) s.worker?.postMessage({ type: "stop" });
      if (slots.every((s) => s.done || !s.worker)) {
        for (const s of slots) s.done = true;
        finish();
      }
    },
    () => {
      // their partitions resume from the last checkpoint
      exitCode = 1;
      for (const s of slots) void s.worker?.terminate();
    },
  );
  for (const s of slots) start(s);
  try {
    await finished;
  } finally {
    uninstall();
    await closeServer(server);
  }
  return { stopped: stopping, elapsedMs: Date.now() - t0, metrics: merged(), exitCode, ...measured.result(), outcomes: slots.map((s) => s.outcome) };
}

/**
 * A run's measured window: wall time and CPU (user + sys, every thread of the process) from
 * start() to end(); a window never ended closes at result(), one never started is 0.
 */
export class RunWindow {
  private startAt = 0;
  private cpuAtStart = process.cpuUsage();
  private endAt = 0;
  private cpuAtEnd = this.cpuAtStart;

  start(): void {
    this.startAt = Date.now();
    this.cpuAtStart = process.cpuUsage();
  }

  end(): void {
    this.endAt = Date.now();
    this.cpuAtEnd = process.cpuUsage();
  }

  result(): { windowMs: number; windowCpuS: number } {
    if (!this.startAt) return { windowMs: 0, windowCpuS: 0 };
    const end = this.endAt || Date.now();
    const cpu = this.endAt ? this.cpuAtEnd : process.cpuUsage();
    return { windowMs: end - this.startAt, windowCpuS: (cpu.user + cpu.system - this.cpuAtStart.user - this.cpuAtStart.system) / 1e6 };
  }
}

/** The input topic's partition count; TF_CONFIG_INVALID when the topic does not exist. */
export async function topicPartitions(cfg: Config): Promise<number> {
  const k = section(cfg, "source.kafka");
  const kafka = new Kafka(kafkajsConfig(connectionFromSettings(k)));
  const admin = kafka.admin();
  await admin.connect();
  try {
    const md = await admin.fetchTopicMetadata({ topics: [k.topic as string] });
    return md.topics[0]?.partitions.length ?? 0;
  } catch (err) {
    if (/does not host this topic-partition|UNKNOWN_TOPIC/i.test(String(err)))
      throw new TracefoldError("TF_CONFIG_INVALID", `topic "${k.topic}" does not exist on ${(k.brokers as string[]).join(",")} (tracefold does not create its input topic)`, "kafka");
    throw err;
  } finally {
    await admin.disconnect();
  }
}
