/** Every drop, cut and budget overflow of the fold, by reason (exported to /metrics later). */
export class FoldCounters {
  spansIn = 0;
  /** Spans whose end was behind the watermark, or whose trace was already assembled. */
  lateSpans = 0;
  duplicateSpans = 0;
  /** Spans past maxSpansPerTrace, dropped. */
  spansOverTraceLimit = 0;
  /** Spans with no timestamp whose trace had none either: counted, not bucketed. */
  spansWithoutTimestamp = 0;
  /** Calls neither of whose halves had a timestamp: counted, no edge. */
  callsWithoutTimestamp = 0;
  tracesAssembled = 0;
  tracesCut = 0;
  /** Traces assembled early because the partition reached maxPendingSpans. */
  tracesEvicted = 0;
  /** Traces assembled early because one partition alone exceeded the memory budget. */
  memoryEvictions = 0;
  /** A second client half with the same call id (e.g. CLIENT and PRODUCER sharing a span id). */
  conflictingHalves = 0;
  negativeLag = 0;
  operationsOverBudget = 0;
  virtualNodesOverBudget = 0;
  /** Watermark advances made by processing time on idle partitions. */
  idleAdvances = 0;
}
