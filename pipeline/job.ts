/**
 * The main job as a topology, from the configuration:
 *
 *   replay ------------------------------> fold --> meta (topology, stats, connectivity)
 *      \-----------------------------------------> traces (trace details by trace id)
 *   file, kafka, replay (encoded) --> decode --> fold --> meta
 *                                        \--------------> traces
 *
 * Trace details are written before the fold (and before any later shuffle): idempotent, they
 * need no co-location.
 */
import { replayWorkerCount, section, workerCount, type Config } from "./config.js";
import { TopologyBuilder, type TopologyDescription } from "./topology.js";
import { registry } from "./registry.js";

export function buildJob(cfg: Config): TopologyDescription {
  const b = new TopologyBuilder("tracefold");
  // file input runs in one thread; Kafka input in one runtime per worker thread; replay in one
  // thread unless runtime.workers asks for more (pipeline/replay-workers.ts)
  const workers = cfg["source.type"] === "kafka" ? workerCount(cfg) : cfg["source.type"] === "replay" ? replayWorkerCount(cfg) : 1;
  let spans: string;
  if (cfg["source.type"] === "kafka") {
    const k = section(cfg, "source.kafka");
    const { format, deadLetterTopic: _dlq, ...kafka } = k;
    b.source("kafka", "kafka", dropEmpty(kafka));
    b.operator("decode", "decode", { format, maxMessageBytes: cfg["decode.maxMessageBytes"] }, { inputs: ["kafka"], parallelism: workers });
    spans = "decode";
  } else if (cfg["source.type"] === "file") {
    b.source("file", "file", { paths: cfg["source.file.paths"], format: cfg["source.file.format"], keyedByTraceId: true });
    b.operator("decode", "decode", { format: cfg["source.file.format"], maxMessageBytes: cfg["decode.maxMessageBytes"] }, { inputs: ["file"], parallelism: workers });
    spans = "decode";
  } else {
    const replay = section(cfg, "source.replay");
    b.source("replay", "replay", { ...replay, keyedByTraceId: true });
    if (replay.encoded !== "none") {
      // pre-encoded OTLP messages: the Kafka job's chain, minus Kafka
      b.operator("decode", "decode", { format: "otlp_proto", maxMessageBytes: cfg["decode.maxMessageBytes"] }, { inputs: ["replay"], parallelism: workers });
      spans = "decode";
    } else spans = "replay";
  }
  if (cfg["runtime.stage"] === "repartition") {
    // runtime.shuffle=topic, stage 1: trace details to HBase, compact records re-keyed by trace
    // id into the repartition topic (pipeline/repartition.ts), no fold here
    const k = section(cfg, "source.kafka");
    const { format: _f, deadLetterTopic: _d, topic, groupId, keyedByTraceId: _k, ...conn } = k;
    b.sink("repartition", "repartition", {
      ...dropEmpty(conn),
      topic: cfg["runtime.repartitionTopic"],
      partitions: cfg["runtime.repartitionPartitions"],
      sourceTopic: topic,
      groupId,
      compression: "lz4",
    }, { inputs: [spans] });
    addTraces(b, cfg, spans);
    return b.build(registry.types);
  }
  // with offsets to commit, deltas leave only inside checkpoints (exactly-once aggregates)
  const foldCfg = { ...section(cfg, "fold"), ...(cfg["source.type"] === "kafka" ? { emitOnTimer: false } : {}) };
  b.operator("fold", "fold", foldCfg, { inputs: [spans], parallelism: workers, key: "traceId" });
  addTraces(b, cfg, spans);
  const meta = cfg["sinks.meta"] as string;
  b.sink("meta", meta === "embedded" ? "embedded_meta" : meta, meta === "mysql" ? dropEmpty(section(cfg, "sinks.mysql")) : {}, { inputs: ["fold"] });
  return b.build(registry.types);
}

/** The trace-details sink, fed before any shuffle. */
function addTraces(b: TopologyBuilder, cfg: Config, spans: string): void {
  const traces = cfg["sinks.traces"] as string;
  b.sink(
    "traces",
    traces === "embedded" ? "embedded_traces" : traces,
    traces === "hbase" ? dropEmpty(section(cfg, "sinks.hbase")) : traces === "embedded" ? { maxTraces: cfg["sinks.traceStore.maxTraces"] } : {},
    { inputs: [spans] },
  );
}

/** Unset optional settings ("" or []) are left out of a component's config. */
function dropEmpty(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== "" && !(Array.isArray(v) && v.length === 0)));
}
