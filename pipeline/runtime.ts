/**
 * The in-process runtime: runs a TopologyDescription in this thread, batch by batch.
 *
 * Each source is pulled; a pulled batch is pushed synchronously through the operator chains and
 * handed to the sinks, and the next batch is pulled only after every sink write of this one
 * resolved: a slow sink slows the source, nothing queues without bound. Processing-time timers
 * (flushes, idle watermarks) tick between batches and while sources wait.
 *
 * Lifecycle: sinks open first, then operators, then sources; at end of input operators finish
 * (windows close, deltas emitted) and sinks flush; then everything closes in reverse. stop()
 * (SIGTERM) stops pulling and does NOT finish: a last checkpoint saves the open windows.
 *
 * Checkpoints (sources with offsets) and rollbacks to the last checkpoint (every rebalance, every
 * fenced checkpoint) are serialized here; docs/ARCHITECTURE.md "The guarantee". In the
 * multi-worker process each worker thread runs one LocalRuntime (pipeline/worker.ts), one
 * instance of each node.
 */
import type { Collector, DeadLetter, Logger, MessageBatch, Operator, Position, RuntimeContext, Sink, Source } from "./contracts.js";
import { TracefoldError } from "./errors.js";
import { silentLogger } from "./contracts.js";
import { Interner } from "./intern.js";
import type { Registry } from "./registry.js";
import type { NodeSpec, TopologyDescription } from "./topology.js";

export interface RuntimeOptions {
  interner?: Interner;
  log?: Logger;
  now?: () => number;
  /** Processing time between timer ticks. */
  tickMs?: number;
  /** Called for each dead letter (after it is counted). */
  onDeadLetter?: (l: DeadLetter) => void;
  /** Processing time between checkpoints, for sources with offsets. */
  checkpointIntervalMs?: number;
  /** Where dead letters are written (e.g. a Kafka topic); awaited like any sink write. */
  deadLetters?: Sink;
  /** Awaited after sinks and operators opened, before the sources (e.g. a start barrier). */
  beforeSources?: () => Promise<void>;
  /** Fault injection (tests): throw while processing this batch (0: never). */
  crashAtBatch?: number;
  /** Fold state budget in bytes (0: none): see enforceMemoryBudget(). */
  memoryBudgetBytes?: number;
  /** This runtime's worker thread and their count in the process. */
  workerIndex?: number;
  workers?: number;
}

export interface RunResult {
  batches: number;
  deadLetters: number;
  stopped: boolean;
  elapsedMs: number;
  metrics: Record<string, number>;
}

type Node = { spec: NodeSpec; kind: "source"; impl: Source } | { spec: NodeSpec; kind: "operator"; impl: Operator } | { spec: NodeSpec; kind: "sink"; impl: Sink };

export class LocalRuntime {
  readonly interner: Interner;
  readonly nodes = new Map<string, Node>();
  private readonly consumers = new Map<string, Node[]>();
  private readonly collectors = new Map<string, Collector>();
  private readonly ctx: RuntimeContext;
  private readonly log: Logger;
  private readonly now: () => number;
  /** Sink writes not settled yet: every drainWrites() waits for all of them, whoever started it. */
  private readonly pendingWrites = new Set<Promise<void>>();
  /** A write failed: no checkpoint may commit past it until a rollback (or the run ends). */
  private writeError: unknown = null;
  private stopping = false;
  private lastTick = 0;
  deadLetters = 0;
  /** Dead letters met again after a rollback and not written twice. */
  deadLettersRepeated = 0;
  /** Highest offset per partition whose dead letter is written. */
  private readonly deadLettered = new Map<number, number>();
  staleBatches = 0;
  deadLettersByCode = new Map<string, number>();
  batches = 0;

  constructor(
    readonly description: TopologyDescription,
    registry: Registry,
    readonly opts: RuntimeOptions = {},
  ) {
    this.interner = opts.interner ?? new Interner();
    this.log = opts.log ?? silentLogger;
    this.now = opts.now ?? (() => Date.now());
    this.ctx = {
      interner: this.interner,
      workerIndex: opts.workerIndex ?? 0,
      workers: opts.workers ?? 1,
      log: this.log,
      now: this.now,
      deadLetter: (l) => {
        // read again after a rollback: it is already in the dead-letter topic (messages of a
        // partition are processed in offset order, so every letter below the highest one written
        // was written)
        if (l.offset <= (this.deadLettered.get(l.partition) ?? -1)) {
          this.deadLettersRepeated++;
          return;
        }
        this.deadLetters++;
        this.deadLettersByCode.set(l.code, (this.deadLettersByCode.get(l.code) ?? 0) + 1);
        opts.onDeadLetter?.(l);
        // awaited before the next checkpoint commits offsets past the message
        if (opts.deadLetters)
          this.track(opts.deadLetters.write(l).then(() => void this.deadLettered.set(l.partition, Math.max(l.offset, this.deadLettered.get(l.partition) ?? -1))));
        else this.deadLettered.set(l.partition, Math.max(l.offset, this.deadLettered.get(l.partition) ?? -1));
      },
    };
    for (const s of description.sources) this.nodes.set(s.name, { spec: s, kind: "source", impl: registry.createSource(s) });
    for (const o of description.operators) this.nodes.set(o.name, { spec: o, kind: "operator", impl: registry.createOperator(o) });
    for (const k of description.sinks) this.nodes.set(k.name, { spec: k, kind: "sink", impl: registry.createSink(k) });
    for (const n of this.nodes.values()) {
      if (n.spec.parallelism > (opts.workers ?? 1)) this.log.warn("parallelism > workers: one instance per worker runs", { node: n.spec.name, parallelism: n.spec.parallelism });
      for (const input of n.spec.inputs) {
        const list = this.consumers.get(input) ?? [];
        list.push(n);
        this.consumers.set(input, list);
      }
    }
    for (const name of this.nodes.keys()) this.collectors.set(name, { emit: (item) => this.deliver(name, item) });
    // a rebalance rolls everything back to the last checkpoint (see rollback())
    this.keeper = [...this.nodes.values()].find((n) => n.kind === "sink" && n.impl.loadCheckpoint)?.impl as Sink | undefined;
    for (const n of this.nodes.values()) {
      if (n.kind !== "source" || !n.impl.onAssigned) continue;
      n.impl.onAssigned((change) => {
        this.rollback(`rebalance: ${change.topic} assigned [${change.assigned.join(",")}] revoked [${change.revoked.join(",")}]`).catch((err) => {
          this.log.error("restoring the checkpointed state failed; the partitions stay paused", { error: String(err) });
          this.fatal = err as Error;
          this.stop();
        });
      });
      // a rebalance starts: checkpoint now, so the rollback after it loses nothing current
      n.impl.onRevoking?.(async () => {
        if (this.stopping) return;
        await this.checkpoint().catch((err) => this.log.warn("the checkpoint before a rebalance failed; the rollback resumes from the previous one", { error: String(err) }));
      });
    }
  }

  private readonly keeper: Sink | undefined;
  /** An error that ends the run (e.g. the checkpoint store unreachable while restoring). */
  private fatal: Error | null = null;
  rollbacks = 0;
  /** Messages of partitions this member kept, read again after rollbacks. */
  rereadMessages = 0;

  /**
   * Rollback to the last checkpoint (Flink's recovery, per member): hold every source, forget
   * all operator state and every delta not yet checkpointed, restore the checkpointed state of
   * the partitions assigned now, and rewind the sources to the checkpointed offsets. Taken on
   * every rebalance (kafkajs tells no revocation before it happens, and the aggregates of all
   * partitions share one delta table) and when a checkpoint was fenced (another member owns a
   * partition now). Serialized with checkpoints.
   */
  rollback(reason: string): Promise<void> {
    for (const s of this.sources()) s.hold?.();
    const run = this.checkpointChain.then(() => this.rollbackNow(reason));
    this.checkpointChain = run.catch(() => {});
    return run;
  }

  private async rollbackNow(reason: string): Promise<void> {
    for (const s of this.sources()) s.hold?.();
    // where each partition was: what the rollback makes this member read again
    const was = new Map<string, number>(this.sources().flatMap((s) => (s.positions?.() ?? []).map((p) => [`${p.topic}/${p.partition}`, p.nextOffset] as const)));
    await this.drainWrites().catch((err) => this.log.warn("a write before the rollback failed; it is redone", { error: String(err) }));
    for (const o of this.operators()) o.reset?.();
    for (const n of this.nodes.values()) if (n.kind === "sink") await n.impl.reset?.();
    // what failed is read and written again from the checkpoint
    this.writeError = null;
    // the restored state is measured afresh
    const paused = [...this.memoryPaused];
    this.memoryPaused.clear();
    for (const s of this.sources()) s.resumePartitions?.(paused);
    const resumedFrom: Record<string, number> = {};
    const states: Array<{ partition: number; state: Uint8Array }> = [];
    const rewinds: Array<[Source, Map<number, number>]> = [];
    for (const s of this.sources()) {
      const a = s.assignment?.();
      if (!a) continue;
      const saved = this.keeper && a.partitions.length > 0 ? await this.keeper.loadCheckpoint!(a.topic, a.partitions) : [];
      for (const x of saved) {
        if (x.state !== null) states.push({ partition: x.partition, state: x.state });
        resumedFrom[`${a.topic}/${x.partition}`] = x.nextOffset;
      }
      rewinds.push([s, new Map(saved.map((x) => [x.partition, x.nextOffset]))]);
    }
    for (const o of this.operators()) o.restore?.(states);
    for (const [s, offsets] of rewinds) s.rewind?.(offsets);
    this.rollbacks++;
    let reread = 0;
    for (const [k, from] of Object.entries(resumedFrom)) reread += Math.max(0, (was.get(k) ?? from) - from);
    this.rereadMessages += reread;
    this.log.info("rolled back to the last checkpoint", { reason, resumedFrom, rereadMessages: reread, restoredStates: states.length });
  }

  private sources(): Source[] {
    return [...this.nodes.values()].filter((n) => n.kind === "source").map((n) => n.impl as Source);
  }

  private operators(): Operator[] {
    return [...this.nodes.values()].filter((n) => n.kind === "operator").map((n) => n.impl as Operator);
  }

  checkpoints = 0;
  fenced = 0;
  lastCheckpointMs = 0;
  lastCheckpointPhasesMs = [0, 0, 0];
  private lastCheckpointAt = 0;

  /**
   * A checkpoint, between batches: sinks flush (trace details durable), stateful operators emit
   * their deltas with the input positions and their pending state as one item, the sinks store
   * it (MySQL: one transaction), and only then are the positions committed to the source.
   */
  async checkpoint(): Promise<boolean> {
    // one at a time: the timer and the pump may both ask
    const run = this.checkpointChain.then(() => this.checkpointNow());
    this.checkpointChain = run.then(() => {}, () => {});
    return run;
  }

  private checkpointChain: Promise<void> = Promise.resolve();

  /** true: stored and committed (or nothing to store); false: skipped or fenced (rolled back). */
  private async checkpointNow(): Promise<boolean> {
    const sources = this.sources();
    if (!sources.some((s) => s.positions)) return true;
    const t0 = this.now();
    await this.drainWrites();
    for (const n of this.nodes.values()) if (n.kind === "sink") await n.impl.flush();
    // a rebalance is pending: its rollback discards this state anyway, and the positions no
    // longer match the deltas (revoked partitions)
    if (sources.some((s) => s.holding)) return false;
    const positions = sources.flatMap((s) => this.deliveredPositions(s));
    const t1 = this.now();
    for (const n of this.nodes.values()) if (n.kind === "operator" && n.impl.checkpoint) n.impl.checkpoint(this.collectors.get(n.spec.name)!, positions);
    const t2 = this.now();
    try {
      await this.drainWrites();
      for (const n of this.nodes.values()) if (n.kind === "sink") await n.impl.flush();
      for (const n of this.nodes.values()) if (n.kind === "sink") await n.impl.commitPositions?.(positions);
      for (const o of this.operators()) o.checkpointStored?.(true);
    } catch (err) {
      // incremental state: what this checkpoint emitted may not be stored, so the next is complete
      for (const o of this.operators()) o.checkpointStored?.(false);
      if ((err as TracefoldError).code !== "TF_FENCED") throw err;
      // another member claimed one of these partitions since we restored it: nothing of this
      // checkpoint was stored; start over from the last one that was
      this.fenced++;
      this.log.warn("checkpoint fenced: a partition has a newer owner; rolling back", { error: (err as Error).message });
      for (const s of sources) s.hold?.();
      await this.rollbackNow("fenced checkpoint");
      return false;
    }
    // a sink that commits the positions in its own transaction: a second, plain commit could
    // land after a later transaction's and move the group's offsets back
    const bySink = [...this.nodes.values()].some((n) => n.kind === "sink" && n.impl.commitPositions);
    for (const s of sources) await s.commit?.(positions.filter((p) => (s.positions?.() ?? []).some((q) => q.topic === p.topic && q.partition === p.partition)), bySink);
    this.checkpoints++;
    this.lastCheckpointMs = this.now() - t0;
    // Flink's split: before (sinks flushed), sync (the operators' snapshot and deltas), the rest
    // (the stores' transaction and the offset commit)
    this.lastCheckpointPhasesMs = [t1 - t0, t2 - t1, this.now() - t2];
    this.lastCheckpointAt = this.now();
    return true;
  }

  /**
   * A batch each pump took from its source and has not delivered yet (it waits for a checkpoint
   * or a rollback to end). The source already counts it as handed over.
   */
  private readonly inHand = new Map<Source, MessageBatch>();

  /**
   * The source's positions, minus a batch taken but not yet delivered: a checkpoint must not
   * commit offsets whose messages are not in the state and deltas it stores (or, for a sink that
   * commits in its own transaction, not in that transaction); the batch goes into the next one.
   */
  private deliveredPositions(s: Source): Position[] {
    const out = s.positions?.() ?? [];
    const b = this.inHand.get(s);
    if (!b || b.offsets === undefined || b.offsets.length === 0) return out;
    return out.map((p) => (p.partition === b.partition && p.nextOffset > b.offsets[0] ? { ...p, nextOffset: b.offsets[0] } : p));
  }

  /** A node's implementation, typed by the caller (tests and the CLI read stores through this). */
  get<T>(name: string): T {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node named ${name}`);
    return n.impl as T;
  }

  private deliver(from: string, item: unknown): void {
    const list = this.consumers.get(from);
    if (!list) return;
    for (const c of list) {
      if (c.kind === "operator") c.impl.processBatch(item, this.collectors.get(c.spec.name)!);
      else if (c.kind === "sink") this.track(c.impl.write(item));
    }
  }

  private track(w: Promise<void>): void {
    const tracked = w.then(
      () => void this.pendingWrites.delete(tracked),
      (err) => {
        this.pendingWrites.delete(tracked);
        this.writeError ??= err;
        throw err;
      },
    );
    // rejections are handled by drainWrites; unobserved ones must not crash the thread
    tracked.catch(() => {});
    this.pendingWrites.add(tracked);
  }

  private async drainWrites(): Promise<void> {
    // every write settles first (a rollback must not overlap one still in flight)
    while (this.pendingWrites.size > 0) await Promise.allSettled([...this.pendingWrites]);
    if (this.writeError) throw this.writeError;
  }

  private tick(force = false): void {
    const now = this.now();
    if (!force && now - this.lastTick < (this.opts.tickMs ?? 250)) return;
    this.lastTick = now;
    for (const n of this.nodes.values()) if (n.kind === "operator" && n.impl.onTimer) n.impl.onTimer(now, this.collectors.get(n.spec.name)!);
  }

  /** Requests a graceful stop: pulling stops after the current batch; windows are not closed. */
  stop(): void {
    this.stopping = true;
    for (const n of this.nodes.values()) if (n.kind === "source") n.impl.interrupt?.();
  }

  async run(): Promise<RunResult> {
    const t0 = this.now();
    const byKind = (k: Node["kind"]) => [...this.nodes.values()].filter((n) => n.kind === k);
    await this.opts.deadLetters?.open(this.ctx);
    for (const n of byKind("sink")) await (n.impl as Sink).open(this.ctx);
    for (const n of byKind("operator")) (n.impl as Operator).open(this.ctx);
    await this.opts.beforeSources?.();
    for (const n of byKind("source")) await (n.impl as Source).open(this.ctx);
    this.lastTick = this.now();
    this.lastCheckpointAt = this.now();
    // ticks also run while a source waits for input (idle watermarks, flushes)
    const timer = setInterval(() => {
      this.tick();
      // paused partitions bring no batches: the budget is also checked on the clock
      this.enforceMemoryBudget();
      // an idle source still gets its checkpoints (pending deltas, offsets, state)
      if (!this.stopping && this.now() - this.lastCheckpointAt >= (this.opts.checkpointIntervalMs ?? 10_000)) {
        this.lastCheckpointAt = this.now();
        this.checkpoint().catch((err) => this.log.error("checkpoint failed", { error: String(err) }));
      }
    }, this.opts.tickMs ?? 250);
    timer.unref();
    try {
      await Promise.all(byKind("source").map((n) => this.pump(n.spec.name, n.impl as Source)));
      if (this.fatal) throw this.fatal;
      const rollbacksAtEnd = this.rollbacks;
      if (!this.stopping) {
        for (const n of byKind("operator")) (n.impl as Operator).finish(this.collectors.get(n.spec.name)!);
      }
      await this.drainWrites();
      // end of input or a stop: the last checkpoint (on a stop it carries the open windows)
      const stored = await this.checkpoint();
      // a rebalance at the very end (another member left) either made it impossible or rolled
      // the state back to the previous checkpoint (discarding the windows closed above): what
      // this member did since is not stored. Ending here would lose it from a bounded run;
      // failing makes the worker restart and re-read from the checkpoint, as after a crash
      if (!this.stopping && (!stored || this.rollbacks !== rollbacksAtEnd))
        throw new TracefoldError("TF_FENCED", "the input ended while a rebalance was pending: the last checkpoint could not be stored; resuming from the previous one", "runtime");
      for (const n of byKind("sink")) await (n.impl as Sink).flush();
    } finally {
      clearInterval(timer);
      for (const n of byKind("source")) await (n.impl as Source).close();
      for (const n of byKind("operator").reverse()) (n.impl as Operator).close();
      for (const n of byKind("sink")) await (n.impl as Sink).close();
      await this.opts.deadLetters?.close();
    }
    return { batches: this.batches, deadLetters: this.deadLetters, stopped: this.stopping, elapsedMs: this.now() - t0, metrics: this.metrics() };
  }

  private async pump(name: string, source: Source): Promise<void> {
    let yieldedAt = this.now();
    for (;;) {
      // sources that answer from memory resolve at once: yield to the event loop now and then so
      // timers, signals and the progress line get their turn
      if (this.now() - yieldedAt >= 20) {
        await new Promise<void>((r) => setImmediate(r));
        yieldedAt = this.now();
      }
      if (this.stopping) return;
      const batch = await source.next();
      if (batch === null) return;
      // never during a checkpoint (or rollback): its positions and what the sinks commit with
      // them (a transaction) must cover the same batches; a checkpoint running now leaves this
      // batch out of its positions (deliveredPositions)
      this.inHand.set(source, batch as MessageBatch);
      try {
        await this.checkpointChain;
      } finally {
        this.inHand.delete(source);
      }
      // handed over before a rollback: its messages are read again from the rewound offsets
      const gen = (batch as MessageBatch).generation;
      if (gen !== undefined && gen !== source.generation) {
        this.staleBatches++;
        continue;
      }
      this.batches++;
      if (this.batches === this.opts.crashAtBatch) throw new Error(`injected fault: worker ${this.ctx.workerIndex} dies at batch ${this.batches} (debug.crashWorkerAfterBatches)`);
      this.deliver(name, batch);
      this.tick();
      await this.drainWrites();
      this.enforceMemoryBudget();
      if (this.now() - this.lastCheckpointAt >= (this.opts.checkpointIntervalMs ?? 10_000)) {
        this.lastCheckpointAt = this.now();
        await this.checkpoint();
      }
    }
  }

  /** Partitions this member paused for the memory budget. */
  private readonly memoryPaused = new Set<number>();
  private lastMemoryRotation = 0;
  memoryPauses = 0;

  /**
   * The memory budget (DESIGN 5): over it, pause the partition holding the most state (its state
   * stops growing; the fold's clock does not advance its watermark; Kafka keeps its input, lag
   * grows) but never the last one still running; below 90% resume the smallest paused one. Only a
   * partition that alone exceeds the budget loses state: its oldest traces are assembled early
   * and counted (fold_memory_evictions). Totals are exact while that counter is zero.
   */
  private enforceMemoryBudget(): void {
    const budget = this.opts.memoryBudgetBytes ?? 0;
    if (budget <= 0) return;
    const fold = this.operators().find((o) => (o as { memoryUse?: unknown }).memoryUse) as unknown as
      | { memoryUse(): { perSpan: number; partitions: Array<{ partition: number; spans: number }> }; hold(p: number, h: boolean): void; evictDownTo(p: number, spans: number): number }
      | undefined;
    const source = this.sources().find((s) => s.pausePartitions);
    if (!fold || !source) return;
    const use = fold.memoryUse();
    if (use.perSpan === 0) return;
    const bytes = (spans: number) => spans * use.perSpan;
    const total = bytes(use.partitions.reduce((n, p) => n + p.spans, 0));
    const assigned = new Set(source.assignment?.().partitions ?? use.partitions.map((p) => p.partition));
    for (const p of [...this.memoryPaused]) if (!assigned.has(p)) this.memoryPaused.delete(p);
    const mine = use.partitions.filter((p) => assigned.has(p.partition)).sort((a, b) => b.spans - a.spans);
    const pause = (p: number) => {
      this.memoryPaused.add(p); // insertion order: the longest paused comes first
      this.memoryPauses++;
      fold.hold(p, true);
      source.pausePartitions!([p]);
    };
    const resume = (p: number) => {
      this.memoryPaused.delete(p);
      fold.hold(p, false);
      source.resumePartitions?.([p]);
    };
    if (total > budget) {
      const largest = mine[0];
      if (largest && bytes(largest.spans) > budget) {
        const evicted = fold.evictDownTo(largest.partition, Math.floor((0.8 * budget) / use.perSpan));
        this.log.warn("one partition alone exceeds the memory budget: its oldest traces were assembled early (counted)", { partition: largest.partition, evictedTraces: evicted, budgetBytes: budget });
        return;
      }
      const running = mine.filter((p) => !this.memoryPaused.has(p.partition));
      if (running.length > 1) {
        pause(running[0].partition);
        this.lastMemoryRotation = this.now();
        this.log.warn("over the memory budget: partition paused (its input waits in Kafka)", { partition: running[0].partition, stateBytes: Math.round(total), budgetBytes: budget });
      } else if (this.memoryPaused.size > 0 && this.now() - this.lastMemoryRotation >= 8 * (this.opts.tickMs ?? 250)) {
        // still over with one partition running: take turns, so every partition's windows get
        // their input and close
        const next = [...this.memoryPaused][0];
        resume(next);
        for (const r of running) pause(r.partition);
        this.lastMemoryRotation = this.now();
      }
      return;
    }
    if (total < 0.9 * budget && this.memoryPaused.size > 0) {
      const smallest = mine.filter((p) => this.memoryPaused.has(p.partition)).pop();
      const p = smallest?.partition ?? [...this.memoryPaused][0];
      resume(p);
      this.log.info("under the memory budget again: partition resumed", { partition: p, stateBytes: Math.round(total), budgetBytes: budget });
    }
  }

  /** Readiness: every source ready (joined its group) and every sink reachable. */
  async health(): Promise<{ ready: boolean; reasons: string[] }> {
    const reasons: string[] = [];
    for (const n of this.nodes.values()) {
      if (n.kind === "source" && n.impl.ready && !n.impl.ready()) reasons.push(`${n.spec.name}: not in the consumer group`);
      if (n.kind === "sink" && !(await n.impl.healthcheck().catch(() => false))) reasons.push(`${n.spec.name}: unreachable`);
    }
    if (this.fatal) reasons.push(`fatal: ${this.fatal.message}`);
    return { ready: reasons.length === 0, reasons };
  }

  /** Every node's metrics, merged (names are already prefixed by component). */
  metrics(): Record<string, number> {
    const out: Record<string, number> = { runtime_batches: this.batches, runtime_dead_letters: this.deadLetters, runtime_checkpoints: this.checkpoints, runtime_last_checkpoint_ms: this.lastCheckpointMs, runtime_last_checkpoint_flush_ms: this.lastCheckpointPhasesMs[0], runtime_last_checkpoint_sync_ms: this.lastCheckpointPhasesMs[1], runtime_last_checkpoint_store_ms: this.lastCheckpointPhasesMs[2], runtime_rollbacks: this.rollbacks, runtime_rollback_reread_messages: this.rereadMessages, runtime_fenced_checkpoints: this.fenced, runtime_stale_batches: this.staleBatches, runtime_dead_letters_repeated: this.deadLettersRepeated, runtime_memory_budget_bytes: this.opts.memoryBudgetBytes ?? 0, runtime_memory_paused_partitions: this.memoryPaused.size, runtime_memory_pauses: this.memoryPauses };
    for (const n of this.nodes.values()) Object.assign(out, n.impl.metrics?.() ?? {});
    return out;
  }
}
