/**
 * One runtime from the configuration: the job's topology, the dead-letter topic (Kafka input),
 * the runtime options. Used by the in-process run (replay, file) and by every worker thread.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";
import type { Config } from "./config.js";
import { section } from "./config.js";
import type { Logger, Sink } from "./contracts.js";
import { Interner } from "./intern.js";
import { buildJob } from "./job.js";
import { registry } from "./registry.js";
import { LocalRuntime } from "./runtime.js";
import { ReplaySource } from "../sources/replay/source.js";

export interface AssembleOptions {
  workerIndex?: number;
  workers?: number;
  crashAtBatch?: number;
  beforeSources?: () => Promise<void>;
}

export async function assembleRuntime(cfg: Config, log: Logger, opts: AssembleOptions = {}): Promise<LocalRuntime> {
  const description = buildJob(cfg);
  let deadLetters: Sink | undefined;
  if (cfg["source.type"] === "kafka" && cfg["source.kafka.deadLetterTopic"] !== "") {
    const { KafkaDeadLetters } = await import("../sources/kafka/dead-letter.js");
    const k = section(cfg, "source.kafka");
    const { connectionFromSettings } = await import("../sources/kafka/config.js");
    deadLetters = new KafkaDeadLetters({ ...connectionFromSettings(k), deadLetterTopic: k.deadLetterTopic as string, sourceTopic: k.topic as string });
  }
  return new LocalRuntime(description, registry, {
    deadLetters,
    interner: new Interner(),
    log,
    tickMs: cfg["runtime.tickMs"] as number,
    checkpointIntervalMs: cfg["runtime.checkpointIntervalMs"] as number,
    memoryBudgetBytes: memoryBudgetBytes(cfg, opts.workers ?? 1),
    workerIndex: opts.workerIndex ?? 0,
    workers: opts.workers ?? 1,
    crashAtBatch: opts.crashAtBatch,
    beforeSources: opts.beforeSources,
    onDeadLetter: (l) => log.warn(l.reason, { code: l.code, origin: l.origin, partition: l.partition, offset: l.offset }),
  });
}

/** runtime.memoryBudgetMb per worker, or auto: half the container's memory limit (cgroup v2/v1) or the machine's, shared by the workers. */
export function memoryBudgetBytes(cfg: Config, workers: number): number {
  const mb = cfg["runtime.memoryBudgetMb"] as number;
  if (mb > 0) return mb * 1024 * 1024;
  let limit = totalmem();
  for (const f of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const v = Number(readFileSync(f, "utf8").trim());
      if (Number.isFinite(v) && v > 0 && v < limit) limit = v;
    } catch {
      // not in a cgroup with a limit
    }
  }
  return Math.floor(limit / 2 / Math.max(1, workers));
}

/**
 * What a source does before the measured run: the encoded replay generates and encodes its whole
 * input here (logged with its duration), so the run's "N spans in S s" and its CPU time cover
 * decode + fold only. Other sources open with the runtime, as before.
 */
export async function prepareSources(runtime: LocalRuntime, log: Logger, opts: AssembleOptions = {}): Promise<void> {
  const n = runtime.nodes.get("replay");
  if (n?.kind === "source" && n.impl instanceof ReplaySource) await n.impl.prepare(runtime.interner, opts.workerIndex ?? 0, opts.workers ?? 1, log);
}
