/**
 * The `fold` operator: SpanBatch in, FoldDeltas out. Deltas leave every `flushIntervalMs` of
 * processing time (the checkpoint cadence) and at end of input, after every window closed.
 */
import type { Checkpoint, Collector, Operator, Position, RuntimeContext } from "../../pipeline/contracts.js";
import { restorePartition, snapshotPartition, type IncrementInfo } from "./snapshot.js";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import type { FoldConfig } from "./config.js";
import { Fold } from "./fold.js";
import { DEFAULT_FOLD_CONFIG } from "./config.js";
import { isGauge } from "../../pipeline/metrics.js";

export interface FoldOperatorConfig extends Partial<FoldConfig> {
  /** Processing time between delta flushes to the sinks. */
  flushIntervalMs?: number;
  /**
   * false: deltas leave only with checkpoints (with the offsets and pending state they belong
   * to), never on their own: what a source with offsets needs for exactly-once aggregates.
   */
  emitOnTimer?: boolean;
  /**
   * Incremental checkpoints (snapshot.ts): a checkpoint writes what changed since the previous
   * one, and an entry unchanged for this many checkpoints again, so a restore reads at most this
   * many increments. 1: every checkpoint is complete. 0 (default): 1.5 x the event-time horizon
   * of a trace (outOfOrdernessMs + traceGapMs) over the observed checkpoint interval, 2..64.
   */
  checkpointChain?: number;
}

export class FoldOperator implements Operator {
  fold!: Fold;
  private ctx!: RuntimeContext;
  private lastFlushMs = 0;

  constructor(readonly config: FoldOperatorConfig = {}) {}

  open(ctx: RuntimeContext): void {
    if (this.fold) return;
    this.ctx = ctx;
    const { flushIntervalMs: _ignored, emitOnTimer: _emit, checkpointChain: _chain, ...foldConfig } = this.config;
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
    // the previous increments were never reported stored: this one starts a new chain
    if (this.unconfirmed) for (const P of this.fold.partitions) P.snapFull = true;
    const chain = this.chainLength();
    const t0 = performance.now();
    const info = {} as IncrementInfo;
    const states = this.fold.partitions.map((P) => {
      const state = snapshotPartition(this.fold, P.partition, chain, info);
      if (info.complete) this.snapshotsComplete++;
      else this.snapshotsIncremental++;
      this.snapshotEntries += info.entries;
      this.snapshotBytes += info.bytes;
      return { partition: P.partition, state };
    });
    this.lastCheckpointBytes = states.reduce((n, s) => n + s.state.byteLength, 0);
    this.unconfirmed = true;
    const t1 = performance.now();
    const item: Checkpoint = { kind: "checkpoint", deltas: this.fold.drain(), offsets: positions, states };
    this.lastSnapshotMs = t1 - t0;
    this.lastDrainMs = performance.now() - t1;
    if (this.lastSnapshotMs > this.peakSnapshotMs) this.peakSnapshotMs = this.lastSnapshotMs;
    out.emit(item);
  }

  /**
   * The runtime's word on the last checkpoint: stored (its increments extend the chains in the
   * store) or not (the next increment of every partition is complete, since the store does not
   * hold the one that was lost).
   */
  checkpointStored(ok: boolean): void {
    this.unconfirmed = false;
    if (!ok && this.fold) for (const P of this.fold.partitions) P.snapFull = true;
  }

  /** The chain length for this checkpoint (config, or derived from the interval since the last). */
  private chainLength(): number {
    const now = this.ctx.now();
    const interval = now - this.lastSnapshotAt;
    this.lastSnapshotAt = now;
    const configured = this.config.checkpointChain ?? 0;
    if (configured > 0) return configured;
    if (interval <= 0 || interval === now) return 8;
    const horizonMs = (this.config.outOfOrdernessMs ?? DEFAULT_FOLD_CONFIG.outOfOrdernessMs) + (this.config.traceGapMs ?? DEFAULT_FOLD_CONFIG.traceGapMs);
    return Math.max(2, Math.min(64, Math.ceil((1.5 * horizonMs) / interval)));
  }

  private lastSnapshotAt = 0;
  private unconfirmed = false;
  private snapshotsComplete = 0;
  private snapshotsIncremental = 0;
  private snapshotEntries = 0;
  private snapshotBytes = 0;
  private lastCheckpointBytes = 0;
  private lastSnapshotMs = 0;
  private peakSnapshotMs = 0;
  private lastDrainMs = 0;

  restore(states: Array<{ partition: number; state: Uint8Array }>): void {
    this.unconfirmed = false;
    for (const s of states) restorePartition(this.fold, s.state);
    if (states.length > 0) this.ctx.log.info("restored pending fold state", { partitions: states.map((s) => s.partition), pendingSpans: this.fold.pendingSpans });
  }

  reset(): void {
    // what was folded since the last checkpoint is discarded here and read again
    this.spansReprocessed += this.fold.counters.spansIn - this.spansAtCheckpoint;
    this.spansAtCheckpoint = 0;
    // counters stay monotonic across rollbacks (re-read spans count again: work done)
    for (const [k, v] of Object.entries(this.current())) if (!isGauge(k)) this.carried[k] = (this.carried[k] ?? 0) + v;
    const { flushIntervalMs: _ignored, emitOnTimer: _emit, checkpointChain: _chain, ...foldConfig } = this.config;
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
    out.fold_checkpoint_increments_complete = this.snapshotsComplete;
    out.fold_checkpoint_increments_partial = this.snapshotsIncremental;
    out.fold_checkpoint_entries_written = this.snapshotEntries;
    out.fold_checkpoint_bytes_written = this.snapshotBytes;
    out.fold_checkpoint_last_bytes = this.lastCheckpointBytes;
    // the checkpoint's sync phase, split: the increments, and the deltas since the last checkpoint
    out.fold_checkpoint_last_snapshot_ms = Math.round(this.lastSnapshotMs);
    out.fold_checkpoint_peak_snapshot_ms = Math.round(this.peakSnapshotMs);
    out.fold_checkpoint_last_drain_ms = Math.round(this.lastDrainMs);
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
