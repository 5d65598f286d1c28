/**
 * A worker thread: one LocalRuntime (its chained operators and, with Kafka, its own consumer-group
 * member(s)), driven by the main thread (pipeline/process.ts):
 *
 *   main -> worker  { type: "stop" }                          graceful: checkpoint, leave the group
 *   worker -> main  { type: "opened" }                         sinks and operators open, a replay
 *                                                              pre-encoded: waiting for the go
 *                   { type: "status", metrics, ready, ... }   every statusIntervalMs
 *                   { type: "ran" }                            the runtime's run() returned
 *                   { type: "done", result, outcome }          the runtime ended (then the thread exits);
 *                                                              outcome: a replay worker's aggregates
 *                                                              and truth (pipeline/replay-workers.ts)
 *
 * An uncaught error ends the thread with a non-zero exit code; the main thread restarts it, and
 * the new member restores from the last checkpoint (the rebalance rolls the others back too).
 */
// before anything loads kafkajs: its read_committed filter lets aborted records through
import "../sources/kafka/kafkajs-patch.js";
import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "./config.js";
import { consoleLogger, type Logger } from "./contracts.js";
import { assembleRuntime, prepareSources } from "./assemble.js";
import { replayOutcome } from "./replay-workers.js";

export interface WorkerData {
  cfg: Config;
  workerIndex: number;
  workers: number;
  /** How many times this worker index was started before (0: first). */
  incarnation: number;
  statusIntervalMs: number;
}

export interface WorkerStatus {
  type: "status";
  workerIndex: number;
  metrics: Record<string, number>;
  ready: boolean;
  reasons: string[];
}

function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  return {
    info: (m, f) => log.info(m, { ...fields, ...f }),
    warn: (m, f) => log.warn(m, { ...fields, ...f }),
    error: (m, f) => log.error(m, { ...fields, ...f }),
  };
}

async function main(): Promise<void> {
  const data = workerData as WorkerData;
  const { cfg, workerIndex, workers } = data;
  const log = withFields(consoleLogger(cfg["log.format"] === "json"), { worker: workerIndex });
  // fault injection (tests): the first incarnation of every worker dies at its Nth batch
  const crashAt = data.incarnation === 0 ? (cfg["debug.crashWorkerAfterBatches"] as number) : 0;
  // the process's members join the group together (one rebalance, not one per worker): sinks
  // open first, then every worker waits for the main thread's go
  let go!: () => void;
  let goAt = 0;
  const started = new Promise<void>((r) => (go = r));
  const beforeSources = async () => {
    // a replay encodes its input before the go: not in the measured window
    await prepareSources(runtime, log, { workerIndex, workers });
    parentPort!.postMessage({ type: "opened", workerIndex });
    await started;
    goAt = Date.now();
  };
  const runtime = await assembleRuntime(cfg, log, { workerIndex, workers, crashAtBatch: crashAt, beforeSources });
  const status = async () => {
    const h = await runtime.health();
    const msg: WorkerStatus = { type: "status", workerIndex, metrics: runtime.metrics(), ready: h.ready, reasons: h.reasons };
    parentPort!.postMessage(msg);
  };
  const timer = setInterval(() => status().catch((err) => log.warn("status report failed", { error: String(err) })), data.statusIntervalMs);
  parentPort!.on("message", (m: { type: string }) => {
    if (m.type === "stop") {
      go();
      runtime.stop();
    } else if (m.type === "go") go();
  });
  try {
    const result = await runtime.run();
    // the end of the measured window (before the last status and the outcome are built and sent)
    parentPort!.postMessage({ type: "ran", workerIndex });
    await status().catch(() => {});
    const outcome = cfg["source.type"] === "replay" ? replayOutcome(runtime, workerIndex) : undefined;
    if (outcome) log.info("replay worker done", { spans: outcome.metrics.fold_spans_in, ms: Date.now() - goAt });
    parentPort!.postMessage({ type: "done", workerIndex, result, outcome });
  } finally {
    clearInterval(timer);
  }
}

main().then(
  // handles a client library leaves behind (timers, sockets) must not keep the thread alive; but
  // exit only once the main thread has the last status (a message posted right before exit can
  // be lost), or after a second
  () => {
    const exit = () => process.exit(0);
    parentPort!.on("message", (m: { type: string }) => m.type === "exit" && exit());
    setTimeout(exit, 1000).unref();
  },
  (err) => {
  // an error that ends the runtime ends the thread: the main thread sees the exit code
    process.stderr.write(`worker ${(workerData as WorkerData).workerIndex}: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
