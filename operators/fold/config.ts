/** Fold settings (DESIGN 3). Times in milliseconds of event time unless named otherwise. */
export interface FoldConfig {
  /** Watermark = largest span end seen in the partition minus this. */
  outOfOrdernessMs: number;
  /** A span whose end is behind the watermark by more than this is late. */
  allowedLatenessMs: number;
  /** A call half waits until the watermark passes its end plus this. */
  assemblyWindowMs: number;
  /** A trace is assembled when the watermark passes its last span end plus this. */
  traceGapMs: number;
  /** A trace open longer than this (from its first start) is assembled anyway, counted as cut. */
  traceMaxOpenMs: number;
  /** After assembly a trace id is remembered this long, so its stragglers count as late. */
  assembledMemoryMs: number;
  /** Processing time without input after which a partition's watermark advances by the clock. */
  idleTimeoutMs: number;
  /** Distinct operations kept per service; the rest fold into __other__ (counted). */
  operationBudget: number;
  /** Distinct virtual peers kept per service; the rest fold into __other__ (counted). */
  virtualNodeBudget: number;
  /** Spans kept per trace; the rest are counted and dropped. */
  maxSpansPerTrace: number;
  /** Pending spans per partition; past it the oldest trace is assembled early (counted). */
  maxPendingSpans: number;
  /** For inputs with no span kinds: link every parent -> child across two services (Jaeger's way). */
  linkParentChild: boolean;
  /**
   * "all": edges, service and operation stats, trace connectivity. "edges": only the edges with
   * their failures and latency histograms, what the peers compute (the benchmark's like-for-like
   * row); the service, operation and trace tables stay empty.
   */
  aggregates: "all" | "edges";
}

export const DEFAULT_FOLD_CONFIG: FoldConfig = {
  outOfOrdernessMs: 30_000,
  allowedLatenessMs: 0,
  assemblyWindowMs: 10_000,
  traceGapMs: 30_000,
  traceMaxOpenMs: 600_000,
  assembledMemoryMs: 300_000,
  idleTimeoutMs: 10_000,
  operationBudget: 200,
  virtualNodeBudget: 100,
  maxSpansPerTrace: 10_000,
  maxPendingSpans: 2_000_000,
  linkParentChild: false,
  aggregates: "all",
};
