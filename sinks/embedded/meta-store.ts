/**
 * Embedded metadata store: what the MySQL sink keeps (DESIGN 6), in memory: services, operations,
 * per-minute edges (histograms sparse), per-minute service stats and connectivity, per-minute
 * trace counts, and consumed offsets. Writes add deltas to rows with the same key, exactly as the
 * MySQL upserts will.
 */
import type { Checkpoint, RuntimeContext, Sink } from "../../pipeline/contracts.js";
import type { EdgeDelta, FoldDeltas, OperationDelta, ServiceDelta, TraceDelta } from "../../operators/fold/deltas.js";
import { emptyHistogram, mergeHistogram, type HistogramData } from "../../operators/fold/histogram.js";

export class EmbeddedMetaStore implements Sink {
  readonly services = new Map<string, { firstMinute: number }>();
  readonly operations = new Map<string, Set<string>>();
  readonly edges = new Map<string, EdgeDelta>();
  readonly serviceStats = new Map<string, ServiceDelta>();
  readonly operationStats = new Map<string, OperationDelta>();
  readonly traceStats = new Map<number, TraceDelta>();
  readonly offsets = new Map<string, number>();
  writes = 0;

  async open(_ctx: RuntimeContext): Promise<void> {}

  async write(batch: unknown): Promise<void> {
    const c = batch as Checkpoint;
    if (c.kind === "checkpoint") {
      for (const o of c.offsets) this.commitOffset(o.topic, o.partition, o.nextOffset);
      return this.write(c.deltas);
    }
    const d = batch as FoldDeltas;
    this.writes++;
    for (const e of d.edges) {
      const k = `${e.minute}|${e.client}|${e.server}|${e.type}`;
      const row = this.edges.get(k);
      if (row === undefined) this.edges.set(k, cloneEdge(e));
      else addEdge(row, e);
      for (const svc of [e.client, e.server]) if (!this.services.has(svc) && e.type !== "virtual" && e.type !== "database") this.services.set(svc, { firstMinute: e.minute });
    }
    for (const s of d.services) {
      if (!this.services.has(s.service)) this.services.set(s.service, { firstMinute: s.minute });
      const k = `${s.minute}|${s.service}`;
      const row = this.serviceStats.get(k);
      if (row === undefined) this.serviceStats.set(k, { ...s, latency: copyHist(s.latency) });
      else addCounters(row, s, ["spans", "serverCalls", "failures", "errorSpans", "orphanSpans", "unpairedClient", "unpairedServer", "duplicateSpans", "lateSpans", "traces", "connectedTraces"], ["latency"]);
    }
    for (const o of d.operations) {
      let ops = this.operations.get(o.service);
      if (ops === undefined) this.operations.set(o.service, (ops = new Set()));
      ops.add(o.operation);
      const k = `${o.minute}|${o.service}|${o.operation}`;
      const row = this.operationStats.get(k);
      if (row === undefined) this.operationStats.set(k, { ...o, latency: copyHist(o.latency) });
      else addCounters(row, o, ["spans", "serverCalls", "failures", "errorSpans"], ["latency"]);
    }
    for (const t of d.traces) {
      const row = this.traceStats.get(t.minute);
      if (row === undefined) this.traceStats.set(t.minute, { ...t });
      else addCounters(row, t, ["traces", "connected", "cut", "evicted"], []);
    }
  }

  /** Records a partition's consumed offset (the MySQL sink writes it in the deltas' transaction). */
  commitOffset(source: string, partition: number, offset: number): void {
    this.offsets.set(`${source}/${partition}`, offset);
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  async healthcheck(): Promise<boolean> {
    return true;
  }

  metrics(): Record<string, number> {
    return { meta_store_writes: this.writes, meta_store_edge_rows: this.edges.size, meta_store_services: this.services.size };
  }
}

function copyHist(h: HistogramData | null): HistogramData | null {
  return h === null ? null : mergeHistogram(emptyHistogram(), h);
}

function cloneEdge(e: EdgeDelta): EdgeDelta {
  return { ...e, clientLatency: copyHist(e.clientLatency), serverLatency: copyHist(e.serverLatency), lag: copyHist(e.lag) };
}

export function addEdge(row: EdgeDelta, e: EdgeDelta): void {
  addCounters(row, e, ["calls", "clientCalls", "serverCalls", "paired", "failed", "failedClient", "failedServer", "negativeLag"], ["clientLatency", "serverLatency", "lag"]);
}

function addCounters<T>(row: T, d: T, counters: Array<keyof T>, hists: Array<keyof T>): void {
  const r = row as Record<keyof T, unknown>;
  const x = d as Record<keyof T, unknown>;
  for (const c of counters) (r[c] as number) += x[c] as number;
  for (const h of hists) {
    const add = x[h] as HistogramData | null;
    if (add === null) continue;
    r[h] = r[h] === null ? copyHist(add) : mergeHistogram(r[h] as HistogramData, add);
  }
}
