/**
 * One runtime from the configuration: the job's topology, the dead-letter topic (Kafka input),
 * the runtime options. Used by the in-process run (replay, file) and by every worker thread.
 */
import type { Config } from "./config.js";
import { section } from "./config.js";
import type { Logger, Sink } from "./contracts.js";
import { Interner } from "./intern.js";
import { buildJob } from "./job.js";
import { registry } from "./registry.js";
import { LocalRuntime } from "./runtime.js";

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
    workerIndex: opts.workerIndex ?? 0,
    workers: opts.workers ?? 1,
    crashAtBatch: opts.crashAtBatch,
    beforeSources: opts.beforeSources,
    onDeadLetter: (l) => log.warn(l.reason, { code: l.code, origin: l.origin, partition: l.partition, offset: l.offset }),
  });
}
