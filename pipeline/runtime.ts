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
 * (SIGTERM) stops pulling and does NOT finish: windows stay open for the checkpoint of a later
 * issue, only what was already emitted is flushed.
 *
 * Parallelism > 1 is carried by the description for the multi-worker runtime; this runtime runs
 * one instance of each node and says so.
 */
import type { Collector, DeadLetter, Logger, Operator, RuntimeContext, Sink, Source } from "./contracts.js";
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
  private pendingWrites: Promise<void>[] = [];
  private stopping = false;
  private lastTick = 0;
  deadLetters = 0;
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
      workerIndex: 0,
      workers: 1,
      log: this.log,
      now: this.now,
      deadLetter: (l) => {
        this.deadLetters++;
        this.deadLettersByCode.set(l.code, (this.deadLettersByCode.get(l.code) ?? 0) + 1);
        opts.onDeadLetter?.(l);
        // awaited before the next checkpoint commits offsets past the message
        if (opts.deadLetters) this.pendingWrites.push(opts.deadLetters.write(l));
      },
    };
    for (const s of description.sources) this.nodes.set(s.name, { spec: s, kind: "source", impl: registry.createSource(s) });
    for (const o of description.operators) this.nodes.set(o.name, { spec: o, kind: "operator", impl: registry.createOperator(o) });
    for (const k of description.sinks) this.nodes.set(k.name, { spec: k, kind: "sink", impl: registry.createSink(k) });
    for (const n of this.nodes.values()) {
      if (n.spec.parallelism > 1) this.log.warn("parallelism > 1 runs as one instance in the in-process runtime", { node: n.spec.name, parallelism: n.spec.parallelism });
      for (const input of n.spec.inputs) {
        const list = this.consumers.get(input) ?? [];
        list.push(n);
        this.consumers.set(input, list);
      }
    }
    for (const name of this.nodes.keys()) this.collectors.set(name, { emit: (item) => this.deliver(name, item) });
    // a source that tells assignments gets them restored from the sink that keeps checkpoints
    const keeper = [...this.nodes.values()].find((n) => n.kind === "sink" && n.impl.loadCheckpoint)?.impl as Sink | undefined;
    for (const n of this.nodes.values()) {
      if (n.kind !== "source" || !n.impl.onAssigned) continue;
      n.impl.onAssigned(async (topic, assigned, revoked) => {
        for (const o of this.operators()) o.release?.(revoked);
        const saved = keeper ? await keeper.loadCheckpoint!(topic, assigned) : [];
        const states = saved.filter((x) => x.state !== null).map((x) => ({ partition: x.partition, state: x.state! }));
        for (const o of this.operators()) o.restore?.(states);
        this.log.info("partitions assigned", { topic, assigned, revoked, resumedFrom: Object.fromEntries(saved.map((x) => [x.partition, x.nextOffset])) });
        return new Map(saved.map((x) => [x.partition, x.nextOffset]));
      });
    }
  }

  private operators(): Operator[] {
    return [...this.nodes.values()].filter((n) => n.kind === "operator").map((n) => n.impl as Operator);
  }

  checkpoints = 0;
  lastCheckpointMs = 0;
  private lastCheckpointAt = 0;

  /**
   * A checkpoint, between batches: sinks flush (trace details durable), stateful operators emit
   * their deltas with the input positions and their pending state as one item, the sinks store
   * it (MySQL: one transaction), and only then are the positions committed to the source.
   */
  async checkpoint(): Promise<void> {
    // one at a time: the timer and the pump may both ask
    const run = this.checkpointChain.then(() => this.checkpointNow());
    this.checkpointChain = run.catch(() => {});
    return run;
  }

  private checkpointChain: Promise<void> = Promise.resolve();

  private async checkpointNow(): Promise<void> {
    const sources = [...this.nodes.values()].filter((n) => n.kind === "source").map((n) => n.impl as Source);
    if (!sources.some((s) => s.positions)) return;
    const t0 = this.now();
    await this.drainWrites();
    for (const n of this.nodes.values()) if (n.kind === "sink") await n.impl.flush();
    const positions = sources.flatMap((s) => s.positions?.() ?? []);
    for (const n of this.nodes.values()) if (n.kind === "operator" && n.impl.checkpoint) n.impl.checkpoint(this.collectors.get(n.spec.name)!, positions);
    await this.drainWrites();
    for (const n of this.nodes.values()) if (n.kind === "sink") await n.impl.flush();
    for (const s of sources) await s.commit?.(positions.filter((p) => (s.positions?.() ?? []).some((q) => q.topic === p.topic && q.partition === p.partition)));
    this.checkpoints++;
    this.lastCheckpointMs = this.now() - t0;
    this.lastCheckpointAt = this.now();
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
      else if (c.kind === "sink") this.pendingWrites.push(c.impl.write(item));
    }
  }

  private async drainWrites(): Promise<void> {
    while (this.pendingWrites.length > 0) {
      const w = this.pendingWrites;
      this.pendingWrites = [];
      await Promise.all(w);
    }
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
    for (const n of byKind("source")) await (n.impl as Source).open(this.ctx);
    this.lastTick = this.now();
    this.lastCheckpointAt = this.now();
    // ticks also run while a source waits for input (idle watermarks, flushes)
    const timer = setInterval(() => {
      this.tick();
      // an idle source still gets its checkpoints (pending deltas, offsets, state)
      if (!this.stopping && this.now() - this.lastCheckpointAt >= (this.opts.checkpointIntervalMs ?? 10_000)) {
        this.lastCheckpointAt = this.now();
        this.checkpoint().catch((err) => this.log.error("checkpoint failed", { error: String(err) }));
      }
    }, this.opts.tickMs ?? 250);
    timer.unref();
    try {
      await Promise.all(byKind("source").map((n) => this.pump(n.spec.name, n.impl as Source)));
      if (!this.stopping) {
        for (const n of byKind("operator")) (n.impl as Operator).finish(this.collectors.get(n.spec.name)!);
      }
      await this.drainWrites();
      // end of input or a stop: the last checkpoint (on a stop it carries the open windows)
      await this.checkpoint();
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
      this.batches++;
      this.deliver(name, batch);
      this.tick();
      await this.drainWrites();
      if (this.now() - this.lastCheckpointAt >= (this.opts.checkpointIntervalMs ?? 10_000)) {
        this.lastCheckpointAt = this.now();
        await this.checkpoint();
      }
    }
  }

  /** Every node's metrics, merged (names are already prefixed by component). */
  metrics(): Record<string, number> {
    const out: Record<string, number> = { runtime_batches: this.batches, runtime_dead_letters: this.deadLetters, runtime_checkpoints: this.checkpoints, runtime_last_checkpoint_ms: this.lastCheckpointMs };
    for (const n of this.nodes.values()) Object.assign(out, n.impl.metrics?.() ?? {});
    return out;
  }
}
