/**
 * The `fold` operator: SpanBatch in, FoldDeltas out. Deltas leave every `flushIntervalMs` of
 * processing time (the checkpoint cadence) and at end of input, after every window closed.
 */
import type { Checkpoint, Collector, Operator, Position, RuntimeContext } from "../../pipeline/contracts.js";
import { restorePartition, snapshotPartition } from "./snapshot.js";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import type { FoldConfig } from "./config.js";
import { Fold } from "./fold.js";
import { isGauge } from "../../pipeline/metrics.js";

export interface FoldOperatorConfig extends Partial<FoldConfig> {
  /** Processing time between delta flushes to the sinks. */
  flushIntervalMs?: number;
  /**
   * false: deltas leave only with checkpoints (with the offsets and pending state they belong
   * to), never on their own: what a source with offsets needs for exactly-once aggregates.
   */
  emitOnTimer?: boolean;
}

export class FoldOperator implements Operator {
  fold!: Fold;
  private ctx!: RuntimeContext;
  private lastFlushMs = 0;

  constructor(readonly config: FoldOperatorConfig = {}) {}

  open(ctx: RuntimeContext): void {
    if (this.fold) return;
    this.ctx = ctx;
    const { flushIntervalMs: _ignored, emitOnTimer: _emit, ...foldConfig } = this.config;
    this.fold = new Fold(ctx.interner, foldConfig);
    this.lastFlushMs = ctx.now();
  }

  processBatch(batch: unknown, _out: Collector): void {
    this.fold.processBatch(batch as SpanBatch, this.ctx.now());
  }

  onTimer(nowMs: number, out: Collector): void {
    this.fold.onProcessingTime(nowMs);
    if (this.config.emitOnTimer !== false && nowMs - this.lastFlushMs >= (this.config.flushIntervalMs ?? 10_000)) {
      this.lastFlushMs = nowMs;
      out.emit(this.fold.drain());
    }
  }

  finish(out: Collector): void {
    this.fold.finish();
    if (this.config.emitOnTimer !== false) out.emit(this.fold.drain());
  }

  checkpoint(out: Collector, positions: Position[]): void {
    this.spansAtCheckpoint = this.fold.counters.spansIn;
    const states = this.fold.partitions.map((P) => ({ partition: P.partition, state: snapshotPartition(this.fold, P.partition) }));
    const item: Checkpoint = { kind: "checkpoint", deltas: this.fold.drain(), offsets: positions, states };
    out.emit(item);
  }

  restore(states: Array<{ partition: number; state: Uint8Array }>): void {
    for (const s of states) restorePartition(this.fold, s.state);
    if (states.length > 0) this.ctx.log.info("restored pending fold state", { partitions: states.map((s) => s.partition), pendingSpans: this.fold.pendingSpans });
  }

  reset(): void {
    // what was folded since the last checkpoint is discarded here and read again
    this.spansReprocessed += this.fold.counters.spansIn - this.spansAtCheckpoint;
    this.spansAtCheckpoint = 0;
    // counters stay monotonic across rollbacks (re-read spans count again: work done)
    for (const [k, v] of Object.entries(this.current())) if (!isGauge(k)) this.carried[k] = (this.carried[k] ?? 0) + v;
    const { flushIntervalMs: _ignored, emitOnTimer: _emit, ...foldConfig } = this.config;
    this.fold = new Fold(this.ctx.interner, foldConfig);
    this.resets++;
  }

  /** Pending spans per partition, and the state's bytes per pending span (the memory budget's measure). */
  memoryUse(): { perSpan: number; partitions: Array<{ partition: number; spans: number }> } {
    const pending = this.fold.pendingSpans;
    return {
      perSpan: pending > 0 ? Math.max(64, this.fold.stateBytes / pending) : 0,
      partitions: this.fold.partitions.map((P) => ({ partition: P.partition, spans: P.spans.size })),
    };
  }

  /** A partition paused (or resumed) by the memory budget. */
  hold(partition: number, held: boolean): void {
    const P = this.fold.partition(partition);
    P.held = held;
    if (!held) P.lastInputMs = this.ctx.now();
  }

  evictDownTo(partition: number, spans: number): number {
    return this.fold.evictDownTo(partition, spans);
  }

  resets = 0;
  /** Spans folded, then discarded by a rollback and read again (counted twice in fold_spans_in). */
  spansReprocessed = 0;
  private spansAtCheckpoint = 0;

  close(): void {}

  private readonly carried: Record<string, number> = {};

  metrics(): Record<string, number> {
    if (!this.fold) return {}; // not opened yet
    const out = this.current();
    for (const [k, v] of Object.entries(this.carried)) out[k] = (out[k] ?? 0) + v;
    out.fold_resets = this.resets;
    out.fold_spans_reprocessed = this.spansReprocessed;
    out.interner_names_over_budget = this.ctx.interner.overflowed;
    return out;
  }

  private current(): Record<string, number> {
    const f = this.fold;
    const c = f.counters;
    const pending = f.pendingSpans;
    return {
      fold_spans_in: c.spansIn,
      fold_pending_spans: pending,
      fold_state_bytes: f.stateBytes,
      fold_bytes_per_pending_span: pending > 0 ? Math.round(f.stateBytes / pending) : 0,
      fold_peak_pending_spans: f.peakPendingSpans,
      fold_peak_state_bytes: f.peakStateBytes,
      fold_late_spans: c.lateSpans,
      fold_duplicate_spans: c.duplicateSpans,
      fold_spans_over_trace_limit: c.spansOverTraceLimit,
      fold_spans_without_timestamp: c.spansWithoutTimestamp,
      fold_calls_without_timestamp: c.callsWithoutTimestamp,
      fold_traces_assembled: c.tracesAssembled,
      fold_traces_cut: c.tracesCut,
      fold_traces_evicted: c.tracesEvicted,
      fold_memory_evictions: c.memoryEvictions,
      fold_conflicting_halves: c.conflictingHalves,
      fold_negative_lag: c.negativeLag,
      fold_operations_over_budget: c.operationsOverBudget,
      fold_virtual_nodes_over_budget: c.virtualNodesOverBudget,
      fold_idle_watermark_advances: c.idleAdvances,
    };
  }
}
