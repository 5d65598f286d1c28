/**
 * Replay input over worker threads (source.type=replay, runtime.workers=N > 1): the in-process
 * compute ceiling with more than one core, on the same process machinery as Kafka input
 * (pipeline/process.ts starts the workers, pipeline/worker.ts runs one job each).
 *
 *   main thread                                  worker i of N
 *     start N workers ------------------------->  generator: the whole stream, keeps partitions
 *                                                 p % N == i; encoded: pre-encodes them (not timed)
 *     every worker opened: go  ---------------->  [decode ->] fold -> its own sinks
 *     window = go .. last done <----------------  done { outcome: its aggregates, the truth }
 *     merge the aggregates into one store, build the report, check it against the truth
 *
 * A trace lives in one partition, so the workers' aggregates are disjoint sums: merged by adding,
 * as MySQL upserts add the deltas of several members. Every worker generated the same stream, so
 * each holds the whole truth; the main thread checks that they agree and uses worker 0's.
 */
import type { Config } from "./config.js";
import type { Logger } from "./contracts.js";
import type { LocalRuntime } from "./runtime.js";
import { runProcess, type ProcessResult } from "./process.js";
import type { TruthLike } from "./truth-check.js";
import type { FoldDeltas } from "../operators/fold/deltas.js";
import { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import type { ReplaySource } from "../sources/replay/source.js";

/** What a replay worker hands back when its runtime ended (structured-cloned to the main thread). */
export interface ReplayOutcome {
  workerIndex: number;
  /** Its embedded meta store's rows as deltas (null: sinks.meta is not embedded). */
  aggregates: FoldDeltas | null;
  /** The generator's truth over the whole stream, and the spans it generated in all. */
  truth: TruthLike & { spans: number };
  /** The worker's final metrics (gauges included, which the process's merged metrics drop at exit). */
  metrics: Record<string, number>;
  prepareMs: number;
}

/** Worker side: the outcome of a replay runtime that ended. */
export function replayOutcome(runtime: LocalRuntime, workerIndex: number): ReplayOutcome {
  const source = runtime.get<ReplaySource>("replay");
  const meta = runtime.nodes.get("meta")?.impl;
  const store = meta instanceof EmbeddedMetaStore ? meta : null;
  const t = source.generator.truth;
  return {
    workerIndex,
    aggregates: store && {
      edges: [...store.edges.values()],
      services: [...store.serviceStats.values()],
      operations: [...store.operationStats.values()],
      traces: [...store.traceStats.values()],
    },
    truth: { spans: t.spans, traces: t.traces, connectedTraces: t.connectedTraces, edges: t.edges, services: t.services },
    metrics: runtime.metrics(),
    prepareMs: source.prepareMs,
  };
}

export interface ReplayProcessResult {
  process: ProcessResult;
  /** The workers' aggregates merged (null: sinks.meta is not embedded, or a worker gave none). */
  store: EmbeddedMetaStore | null;
  truth: (TruthLike & { spans: number }) | null;
  /** Every worker's final metrics, summed (peaks: the sum of the workers' peaks). */
  metrics: Record<string, number>;
  /** The slowest worker's pre-encoding (they run in parallel before the go). */
  prepareMs: number;
  /** Problems with the outcomes themselves (a worker without one, workers disagreeing on the truth). */
  problems: string[];
}

/** Main side: runs the workers and merges what they hand back. */
export async function runReplayProcess(cfg: Config, log: Logger): Promise<ReplayProcessResult> {
  const run = await runProcess(cfg, log);
  const outcomes = (run.outcomes ?? []) as Array<ReplayOutcome | undefined>;
  const problems: string[] = [];
  const metrics: Record<string, number> = {};
  let store: EmbeddedMetaStore | null = cfg["sinks.meta"] === "embedded" ? new EmbeddedMetaStore() : null;
  let prepareMs = 0;
  const t0 = outcomes[0]?.truth;
  for (const [i, o] of outcomes.entries()) {
    if (!o) {
      problems.push(`worker ${i}: ended without an outcome`);
      store = null;
      continue;
    }
    for (const [k, v] of Object.entries(o.metrics)) metrics[k] = (metrics[k] ?? 0) + v;
    prepareMs = Math.max(prepareMs, o.prepareMs);
    if (store && o.aggregates) await store.write(o.aggregates);
    if (t0 && (o.truth.spans !== t0.spans || o.truth.traces !== t0.traces))
      problems.push(`worker ${i} generated ${o.truth.spans} spans in ${o.truth.traces} traces, worker 0 ${t0.spans} in ${t0.traces}: not the same stream`);
  }
  return { process: run, store, truth: t0 ?? null, metrics, prepareMs, problems };
}
