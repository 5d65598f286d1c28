/**
 * The topology report: edges, services and connectivity summed over all minutes of a store. This
 * is what `tracefold fold --json` prints and what `run` summarises and checks against the truth.
 */
import type { EmbeddedMetaStore } from "../../sinks/embedded/meta-store.js";
import { addEdge } from "../../sinks/embedded/meta-store.js";
import type { EdgeCounts, EdgeDelta } from "./deltas.js";
import { emptyHistogram, mergeHistogram, percentile, type HistogramData } from "./histogram.js";

export interface LatencySummary {
  count: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export interface ReportEdge extends EdgeCounts {
  clientLatency: LatencySummary;
  serverLatency: LatencySummary;
  lag?: LatencySummary;
}

export interface ReportService {
  name: string;
  spans: number;
  serverCalls: number;
  failures: number;
  orphanSpans: number;
  unpairedClient: number;
  unpairedServer: number;
  duplicateSpans: number;
  lateSpans: number;
  traces: number;
  connectedTraces: number;
  connectivityRate: number | null;
  operations: number;
}

export interface TopologyReport {
  spans: number;
  traces: number;
  edges: ReportEdge[];
  services: ReportService[];
  connectivity: { traces: number; connected: number; rate: number | null; orphanSpans: number; duplicateSpans: number; lateSpans: number; cut: number; evicted: number };
  counters?: Record<string, number>;
}

export function latencySummary(h: HistogramData | null): LatencySummary {
  if (h === null || h.count === 0) return { count: 0, p50Ms: null, p99Ms: null, maxMs: null };
  const ms = (us: number) => Math.round(us) / 1000;
  return { count: h.count, p50Ms: ms(percentile(h, 0.5)), p99Ms: ms(percentile(h, 0.99)), maxMs: ms(h.max) };
}

export function buildReport(store: EmbeddedMetaStore): TopologyReport {
  const edges = new Map<string, EdgeDelta>();
  for (const e of store.edges.values()) {
    const k = `${e.client}|${e.server}|${e.type}`;
    const row = edges.get(k);
    if (row === undefined)
      edges.set(k, { ...e, minute: 0, clientLatency: copy(e.clientLatency), serverLatency: copy(e.serverLatency), lag: copy(e.lag) });
    else addEdge(row, e);
  }
  const svc = new Map<string, ReportService>();
  let spans = 0;
  let orphanSpans = 0;
  let duplicateSpans = 0;
  let lateSpans = 0;
  for (const s of store.serviceStats.values()) {
    let r = svc.get(s.service);
    if (r === undefined) {
      r = { name: s.service, spans: 0, serverCalls: 0, failures: 0, orphanSpans: 0, unpairedClient: 0, unpairedServer: 0, duplicateSpans: 0, lateSpans: 0, traces: 0, connectedTraces: 0, connectivityRate: null, operations: store.operations.get(s.service)?.size ?? 0 };
      svc.set(s.service, r);
    }
    r.spans += s.spans;
    r.serverCalls += s.serverCalls;
    r.failures += s.failures;
    r.orphanSpans += s.orphanSpans;
    r.unpairedClient += s.unpairedClient;
    r.unpairedServer += s.unpairedServer;
    r.duplicateSpans += s.duplicateSpans;
    r.lateSpans += s.lateSpans;
    r.traces += s.traces;
    r.connectedTraces += s.connectedTraces;
    spans += s.spans;
    orphanSpans += s.orphanSpans;
    duplicateSpans += s.duplicateSpans;
    lateSpans += s.lateSpans;
  }
  for (const r of svc.values()) r.connectivityRate = r.traces > 0 ? round4(r.connectedTraces / r.traces) : null;
  let traces = 0;
  let connected = 0;
  let cut = 0;
  let evicted = 0;
  for (const t of store.traceStats.values()) {
    traces += t.traces;
    connected += t.connected;
    cut += t.cut;
    evicted += t.evicted;
  }
  const edgeList: ReportEdge[] = [...edges.values()]
    .sort((a, b) => a.client.localeCompare(b.client) || a.server.localeCompare(b.server) || a.type.localeCompare(b.type))
    .map((e) => ({
      client: e.client,
      server: e.server,
      type: e.type,
      calls: e.calls,
      clientCalls: e.clientCalls,
      serverCalls: e.serverCalls,
      paired: e.paired,
      failed: e.failed,
      failedClient: e.failedClient,
      failedServer: e.failedServer,
      clientLatency: latencySummary(e.clientLatency),
      serverLatency: latencySummary(e.serverLatency),
      ...(e.type === "messaging" ? { lag: latencySummary(e.lag) } : {}),
    }));
  return {
    spans: spans + duplicateSpans,
    traces,
    edges: edgeList,
    services: [...svc.values()].sort((a, b) => a.name.localeCompare(b.name)),
    connectivity: { traces, connected, rate: traces > 0 ? round4(connected / traces) : null, orphanSpans, duplicateSpans, lateSpans, cut, evicted },
  };
}

function copy(h: HistogramData | null): HistogramData | null {
  return h === null ? null : mergeHistogram(emptyHistogram(), h);
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

/** A readable table of the report (the CLI's default output). */
export function formatReport(r: TopologyReport): string {
  const lines: string[] = [];
  const pct = (x: number | null) => (x === null ? "-" : (x * 100).toFixed(2) + "%");
  const ms = (x: number | null) => (x === null ? "-" : x.toFixed(1));
  lines.push(`spans ${r.spans}  traces ${r.traces}  connected ${r.connectivity.connected} (${pct(r.connectivity.rate)})  orphan spans ${r.connectivity.orphanSpans}  duplicates ${r.connectivity.duplicateSpans}  late ${r.connectivity.lateSpans}`);
  lines.push("");
  const head = ["client", "server", "type", "calls", "paired", "failed", "fail%", "client p50/p99 ms", "server p50/p99 ms"];
  const rows = r.edges.map((e) => [
    e.client, e.server, e.type, String(e.calls), String(e.paired), String(e.failed),
    e.calls ? ((100 * e.failed) / e.calls).toFixed(2) : "-",
    `${ms(e.clientLatency.p50Ms)}/${ms(e.clientLatency.p99Ms)}`,
    `${ms(e.serverLatency.p50Ms)}/${ms(e.serverLatency.p99Ms)}`,
  ]);
  lines.push(...table(head, rows));
  lines.push("");
  const shead = ["service", "spans", "traces", "connected", "orphans", "unpaired client", "unpaired server", "duplicates", "late"];
  const srows = r.services.map((s) => [s.name, String(s.spans), String(s.traces), pct(s.connectivityRate), String(s.orphanSpans), String(s.unpairedClient), String(s.unpairedServer), String(s.duplicateSpans), String(s.lateSpans)]);
  lines.push(...table(shead, srows));
  return lines.join("\n");
}

function table(head: string[], rows: string[][]): string[] {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [fmt(head), w.map((x) => "-".repeat(x)).join("  "), ...rows.map(fmt)];
}
