/**
 * The main job as a topology, from the configuration:
 *
 *   replay ------------------------------> fold --> meta (topology, stats, connectivity)
 *      \-----------------------------------------> traces (trace details by trace id)
 *   file --> decode ---------------------> fold --> meta
 *               \----------------------------------> traces
 *
 * Trace details are written before the fold (and before any later shuffle): idempotent, they
 * need no co-location.
 */
import { section, type Config } from "./config.js";
import { TopologyBuilder, type TopologyDescription } from "./topology.js";
import { registry } from "./registry.js";

export function buildJob(cfg: Config): TopologyDescription {
  const b = new TopologyBuilder("tracefold");
  const workers = cfg["runtime.workers"] as number;
  let spans: string;
  if (cfg["source.type"] === "file") {
    b.source("file", "file", { paths: cfg["source.file.paths"], format: cfg["source.file.format"], keyedByTraceId: true });
    b.operator("decode", "decode", { format: cfg["source.file.format"] }, { inputs: ["file"], parallelism: workers });
    spans = "decode";
  } else {
    b.source("replay", "replay", { ...section(cfg, "source.replay"), keyedByTraceId: true });
    spans = "replay";
  }
  b.operator("fold", "fold", section(cfg, "fold"), { inputs: [spans], parallelism: workers, key: "traceId" });
  b.sink("traces", cfg["sinks.traces"] === "embedded" ? "embedded_traces" : "blackhole", { maxTraces: cfg["sinks.traceStore.maxTraces"] }, { inputs: [spans] });
  b.sink("meta", cfg["sinks.meta"] === "embedded" ? "embedded_meta" : "blackhole", {}, { inputs: ["fold"] });
  return b.build(registry.types);
}
