/**
 * runtime.shuffle=topic: the keyBy(traceId) re-keying across processes, through Kafka (Kafka
 * Streams' repartition topic):
 *
 *   input topic (any key) --[stage 1: consumer group <group>]--> decode -> HBase (trace details)
 *        -> compact fold records, partitioned by the hash of the trace id, LZ4 record batches
 *        -> the repartition topic, in one Kafka transaction per input partition together with
 *           the consumed offsets (sinks/repartition.ts)
 *   repartition topic (by trace) --[stage 2: consumer group <group>.fold, read_committed]-->
 *        the keyed job: fold -> MySQL, checkpoints as for any keyed topic
 *
 * Both stages are ordinary multi-worker processes (pipeline/process.ts); runtime.stage=all runs
 * both in this process (one /metrics for both), `repartition` or `fold` one of them, so the
 * stages can be deployed and scaled apart. Exactly once end to end: stage 1 by transactions
 * (a record and the offset that produced it commit together; a new owner of an input partition
 * fences the old one's producer), stage 2 by the MySQL checkpoints.
 */
import { Kafka } from "kafkajs";
import { section, type Config } from "./config.js";
import type { Logger } from "./contracts.js";
import type { HealthSource } from "./http.js";
import { runProcess, type ProcessResult } from "./process.js";
import { connectionFromSettings, kafkajsConfig } from "../sources/kafka/config.js";

/** The two stages' configurations, derived from the job's. */
export async function stageConfigs(cfg: Config, log: Logger): Promise<{ repartition: Config; fold: Config }> {
  const topic = cfg["source.kafka.topic"] as string;
  const group = cfg["source.kafka.groupId"] as string;
  const rtopic = (cfg["runtime.repartitionTopic"] as string) || `${topic}.tracefold-rekeyed`;
  const partitions = await ensureTopic(cfg, rtopic, cfg["runtime.repartitionPartitions"] as number, log);
  const common = { "runtime.repartitionTopic": rtopic, "runtime.repartitionPartitions": partitions };
  return {
    repartition: { ...cfg, ...common, "runtime.stage": "repartition" },
    fold: {
      ...cfg,
      ...common,
      "runtime.stage": "fold",
      "source.kafka.topic": rtopic,
      "source.kafka.format": "tracefold_exchange",
      "source.kafka.keyedByTraceId": true,
      "source.kafka.groupId": `${group}.fold`,
      // written by stage 1, before the re-keying
      "sinks.traces": "blackhole",
    },
  };
}

/** Creates the repartition topic when absent (partitions: the input's when 0); returns its partition count. */
async function ensureTopic(cfg: Config, rtopic: string, wanted: number, log: Logger): Promise<number> {
  const k = section(cfg, "source.kafka");
  const admin = new Kafka(kafkajsConfig(connectionFromSettings(k))).admin();
  await admin.connect();
  try {
    const existing = await admin.fetchTopicMetadata({ topics: [rtopic] }).catch(() => null);
    if (existing && existing.topics[0]?.partitions.length) return existing.topics[0].partitions.length;
    const input = await admin.fetchTopicMetadata({ topics: [k.topic as string] });
    const partitions = wanted > 0 ? wanted : input.topics[0].partitions.length;
    const created = await admin
      .createTopics({ topics: [{ topic: rtopic, numPartitions: partitions, configEntries: [{ name: "compression.type", value: "producer" }] }], waitForLeaders: true })
      .catch((err) => {
        // another member created it meanwhile
        if (/already exists/i.test(String(err))) return false;
        throw err;
      });
    if (created) log.info("created the repartition topic", { topic: rtopic, partitions });
    const md = await admin.fetchTopicMetadata({ topics: [rtopic] });
    return md.topics[0].partitions.length;
  } finally {
    await admin.disconnect();
  }
}

/** Labels every metric of a stage (the two stages share metric names). */
function labelled(h: HealthSource, stage: string): HealthSource {
  return {
    metrics: () => {
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(h.metrics())) {
        const brace = k.indexOf("{");
        out[brace < 0 ? `${k}{stage="${stage}"}` : `${k.slice(0, brace)}{stage="${stage}",${k.slice(brace + 1)}`] = v;
      }
      return out;
    },
    readiness: () => {
      const r = h.readiness();
      return { ready: r.ready, reasons: r.reasons.map((x) => `${stage}: ${x}`) };
    },
  };
}

export async function runRepartitionJob(cfg: Config, log: Logger): Promise<number> {
  const stages = await stageConfigs(cfg, log);
  const which = cfg["runtime.stage"] as string;
  const summary = (name: string, r: ProcessResult) =>
    process.stdout.write(
      `${name}: ${(r.metrics.decode_spans ?? r.metrics.fold_spans_in ?? 0) - (r.metrics.fold_spans_reprocessed ?? 0)} spans in ${(r.elapsedMs / 1000).toFixed(1)} s, ` +
        `checkpoints ${r.metrics.runtime_checkpoints ?? 0}, rollbacks ${r.metrics.runtime_rollbacks ?? 0}, dead letters ${r.metrics.runtime_dead_letters ?? 0}` +
        `${r.stopped ? " (stopped by signal)" : ""}\n`,
    );
  if (which === "repartition") {
    const r = await runProcess(stages.repartition, log);
    summary("repartition", r);
    return r.exitCode;
  }
  if (which === "fold") {
    const r = await runProcess(stages.fold, log);
    summary("fold", r);
    return r.exitCode;
  }
  if (cfg["source.kafka.bounded"]) {
    // a backfill: stage 2's end is stage 1's output, known once stage 1 ended
    const r1 = await runProcess(stages.repartition, log);
    summary("repartition", r1);
    if (r1.exitCode !== 0 || r1.stopped) return r1.exitCode;
    const r2 = await runProcess(stages.fold, log);
    summary("fold", r2);
    return r2.exitCode;
  }
  let h1: HealthSource | null = null;
  const [r1, r2] = await Promise.all([
    runProcess(stages.repartition, log, { http: false, onHealth: (h) => (h1 = labelled(h, "repartition")) }),
    runProcess(stages.fold, log, { alsoServe: () => h1 }),
  ]);
  summary("repartition", r1);
  summary("fold", r2);
  return Math.max(r1.exitCode, r2.exitCode);
}
