/**
 * What the fold hands to sinks at each flush: additive deltas keyed by minute. A store adds rows
 * with the same key; nothing here is a running total. Minutes are epoch milliseconds of the
 * minute's start.
 */
import type { HistogramData } from "./histogram.js";

export type EdgeType = "rpc" | "messaging" | "database" | "virtual";
export const EDGE_TYPES: readonly EdgeType[] = ["rpc", "messaging", "database", "virtual"];
export const T_RPC = 0;
export const T_MESSAGING = 1;
export const T_DATABASE = 2;
export const T_VIRTUAL = 3;

/** What every view of an edge counts (the fold's deltas, the report, the replay's truth). */
export interface EdgeCounts {
  client: string;
  server: string;
  type: EdgeType;
  /** Every call once, however many halves were seen. */
  calls: number;
  /** Calls whose client (or producer) half was seen. */
  clientCalls: number;
  /** Calls whose server (or consumer) half was seen. */
  serverCalls: number;
  /** Calls with both halves (rpc, messaging). */
  paired: number;
  /** Calls where either half failed. */
  failed: number;
  failedClient: number;
  failedServer: number;
}

export interface EdgeDelta extends EdgeCounts {
  minute: number;
  /** Messaging calls whose consumer started before its producer ended (lag clamped to 0). */
  negativeLag: number;
  clientLatency: HistogramData | null;
  serverLatency: HistogramData | null;
  /** Messaging queue lag: consumer start - producer end. */
  lag: HistogramData | null;
}

export interface ServiceDelta {
  minute: number;
  service: string;
  spans: number;
  /** SERVER and CONSUMER spans. */
  serverCalls: number;
  /** Failed SERVER and CONSUMER spans (error rate = failures / serverCalls). */
  failures: number;
  /** Spans of any kind marked failed. */
  errorSpans: number;
  orphanSpans: number;
  unpairedClient: number;
  unpairedServer: number;
  duplicateSpans: number;
  lateSpans: number;
  /** Assembled traces this service took part in, counted at the trace's first minute. */
  traces: number;
  connectedTraces: number;
  /** Duration of SERVER and CONSUMER spans. */
  latency: HistogramData | null;
}

export interface OperationDelta {
  minute: number;
  service: string;
  operation: string;
  spans: number;
  serverCalls: number;
  failures: number;
  errorSpans: number;
  /** Duration of every span of the operation. */
  latency: HistogramData | null;
}

export interface TraceDelta {
  minute: number;
  traces: number;
  connected: number;
  /** Assembled because they stayed open past traceMaxOpenMs. */
  cut: number;
  /** Assembled early because the partition hit maxPendingSpans. */
  evicted: number;
}

export interface FoldDeltas {
  edges: EdgeDelta[];
  services: ServiceDelta[];
  operations: OperationDelta[];
  traces: TraceDelta[];
}

export function emptyDeltas(): FoldDeltas {
  return { edges: [], services: [], operations: [], traces: [] };
}
