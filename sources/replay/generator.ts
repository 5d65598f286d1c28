/**
 * ReplayGenerator: seeded, realistic microservice traffic written straight into SpanBatch rows,
 * with the exact ground truth (truth.ts) of what the fold must compute from it.
 *
 * Usage:
 *
 *     const interner = new Interner();
 *     const gen = new ReplayGenerator({ seed: 7, services: 40, partitions: 4 }, interner);
 *     gen.generate(1_000_000, (batch) => fold.processBatch(batch)); // batch.partition is set
 *     gen.truth.edges; gen.truth.services; gen.truth.connectivityRate();
 *
 * Stream model (what a caller can rely on):
 * - Each trace goes to one partition, the one Kafka's default partitioner picks for the lower-case
 *   hex trace id as key (`partitionOfTrace`). A batch holds rows of its `partition` only.
 * - A trace is generated and written at once, children before parents (reverse generation order),
 *   then its duplicates (if any) right after it. A batch is emitted as soon as it holds `batchSize`
 *   rows, so a trace may continue in the next batch of the same partition; `generate` flushes the
 *   partly filled batches (in partition order) before it returns. The batch object is reused after
 *   `emit` returns: copy what you keep.
 * - Event time: trace k starts at startUs + floor(k * 1e6 / tracesPerSecond); every trace ends
 *   within 20 s of its start, so with a 30 s out-of-orderness allowance no span is ever late.
 * - `generate` may be called again: it continues the same stream; `truth` is cumulative.
 *
 * The per-span loop writes typed arrays only: names and attributes are intern ids fixed when the
 * graph is built, ids come from the seeded PRNG, the truth is typed-array counters.
 */
import type { Interner } from "../../pipeline/intern.js";
import {
  F_ERROR,
  F_HAS_PARENT,
  KIND_CLIENT,
  KIND_CONSUMER,
  KIND_INTERNAL,
  KIND_PRODUCER,
  KIND_SERVER,
  SpanBatch,
} from "../../pipeline/span-batch.js";
import { Rng, partitionOfTrace } from "./rng.js";
import {
  buildServiceGraph,
  CALL_DATABASE,
  CALL_EXTERNAL,
  CALL_MESSAGING,
  CALL_RPC,
  type ServiceGraph,
} from "./service-graph.js";
import { ReplayTruth, S_DUPLICATES, S_ERRORS, S_ORPHANS, S_SERVER_SPANS, S_SPANS, S_UNPAIRED_CLIENT, S_UNPAIRED_SERVER } from "./truth.js";

export interface ReplayOptions {
  /** PRNG seed: the same seed (and options) gives the same rows and truth. */
  seed: number;
  /** Instrumented services in the graph. Default 40. */
  services?: number;
  /** Input partitions the traces are spread over. Default 4. */
  partitions?: number;
  /** Rows per emitted batch. Default 4096. */
  batchSize?: number;
  /** Traces per second of event time. Default 20000. */
  tracesPerSecond?: number;
  /** Event-time origin in us since the epoch. Default 2026-01-01T00:00:00Z. */
  startUs?: number;
  /** Scale of every error probability (1: about 1% of calls fail). Default 1. */
  errorRate?: number;
  /**
   * Share of traces from which one non-root span that has children is dropped (so the trace is
   * really broken: its children become orphans). Default 0.005.
   */
  brokenTraceRate?: number;
  /** Probability that an emitted span is emitted a second time, identically. Default 0. */
  duplicateRate?: number;
  /** Maximum server/consumer levels in a trace (the root is level 1). Default 6. */
  maxDepth?: number;
  /** Cap on spans per trace (bounds trace duration below 20 s). Default 256, at most 300. */
  maxSpansPerTrace?: number;
  /** Keep per-minute truth as well. Default true. */
  truthByMinute?: boolean;
}

export const DEFAULT_START_US = Date.UTC(2026, 0, 1) * 1000;

/** Caps that keep a whole trace under 20 s: <= 300 spans x (40 ms work + 20 ms lag + 1.5 ms net). */
const MAX_SELF_US = 40_000;
const MAX_LAG_US = 20_000;
const MAX_NET_US = 500;

export class ReplayGenerator {
  readonly graph: ServiceGraph;
  readonly truth: ReplayTruth;
  readonly partitions: number;
  readonly batchSize: number;
  readonly tracesPerSecond: number;
  readonly startUs: number;
  readonly brokenTraceRate: number;
  readonly duplicateRate: number;
  readonly maxDepth: number;
  readonly maxSpansPerTrace: number;

  private readonly rng: Rng;
  private readonly batches: SpanBatch[];
  private traceIndex = 0;
  private pendingBreaks = 0;

  // the trace being built, one entry per span in generation (pre-)order: a parent precedes its children
  private n = 0;
  private readonly tid = new Uint32Array(4);
  private readonly sid: Uint32Array;
  private readonly kind: Uint8Array;
  private readonly err: Uint8Array;
  private readonly svc: Int32Array;
  private readonly parent: Int32Array;
  private readonly partner: Int32Array; // client <-> server half, producer <-> consumer
  private readonly site: Int32Array; // call site of a CLIENT/PRODUCER, operation of a SERVER/CONSUMER
  private readonly children: Int32Array;
  private readonly nameId: Int32Array;
  private readonly start: Float64Array;
  private readonly dur: Float64Array;
  private lastCallsFailed = false;

  constructor(opts: ReplayOptions, interner: Interner) {
    this.partitions = Math.max(1, Math.floor(opts.partitions ?? 4));
    this.batchSize = Math.max(1, Math.floor(opts.batchSize ?? 4096));
    this.tracesPerSecond = opts.tracesPerSecond ?? 20000;
    this.startUs = opts.startUs ?? DEFAULT_START_US;
    this.brokenTraceRate = opts.brokenTraceRate ?? 0.005;
    this.duplicateRate = opts.duplicateRate ?? 0;
    this.maxDepth = Math.max(1, Math.floor(opts.maxDepth ?? 6));
    this.maxSpansPerTrace = Math.min(300, Math.max(2, Math.floor(opts.maxSpansPerTrace ?? 256)));
    this.graph = buildServiceGraph({ seed: opts.seed, services: opts.services, maxDepth: this.maxDepth, errorRate: opts.errorRate }, interner);
    this.truth = new ReplayTruth(this.graph.slots, this.graph.services, opts.truthByMinute ?? true);
    this.rng = new Rng(opts.seed, 2);
    this.batches = [];
    for (let p = 0; p < this.partitions; p++) {
      const b = new SpanBatch(interner, this.batchSize);
      b.reset(p);
      this.batches.push(b);
    }
    const m = this.maxSpansPerTrace;
    this.sid = new Uint32Array(m * 2);
    this.kind = new Uint8Array(m);
    this.err = new Uint8Array(m);
    this.svc = new Int32Array(m);
    this.parent = new Int32Array(m);
    this.partner = new Int32Array(m);
    this.site = new Int32Array(m);
    this.children = new Int32Array(m);
    this.nameId = new Int32Array(m);
    this.start = new Float64Array(m);
    this.dur = new Float64Array(m);
  }

  /**
   * Generates whole traces until at least `maxSpans` rows were emitted by this call (the last trace
   * may overshoot by less than one trace), flushes every partly filled batch, and returns the rows
   * emitted by this call.
   */
  generate(maxSpans: number, emit: (batch: SpanBatch) => void): number {
    const before = this.truth.spans;
    while (this.truth.spans - before < maxSpans) this.nextTrace(emit);
    this.flush(emit);
    return this.truth.spans - before;
  }

  /** Generates exactly `traces` traces, then flushes; returns the rows emitted. */
  generateTraces(traces: number, emit: (batch: SpanBatch) => void): number {
    const before = this.truth.spans;
    for (let k = 0; k < traces; k++) this.nextTrace(emit);
    this.flush(emit);
    return this.truth.spans - before;
  }

  /** Emits the partly filled batches, in partition order. */
  flush(emit: (batch: SpanBatch) => void): void {
    for (const b of this.batches) {
      if (b.length === 0) continue;
      emit(b);
      b.reset(b.partition);
    }
  }

  /** Event time of the next trace's root start. */
  get nextTraceStartUs(): number {
    return this.startUs + Math.floor((this.traceIndex * 1e6) / this.tracesPerSecond);
  }

  private nextTrace(emit: (batch: SpanBatch) => void): void {
    const rng = this.rng;
    const g = this.graph;
    const t0 = this.nextTraceStartUs;
    this.traceIndex++;
    do {
      this.tid[0] = rng.u32();
      this.tid[1] = rng.u32();
      this.tid[2] = rng.u32();
      this.tid[3] = rng.u32();
    } while ((this.tid[0] | this.tid[1] | this.tid[2] | this.tid[3]) === 0);

    // build
    this.n = 0;
    const entry = g.entryOperations[rng.int(g.entryOperations.length)];
    this.serve(entry, KIND_SERVER, -1, t0, 0, g.operations[entry].errorProb);

    // break: drop one non-root span that has children, so the trace really is disconnected
    // (a trace with no such span passes its turn to the next one that has one, so the long-run
    // share of broken traces is brokenTraceRate)
    let drop = -1;
    if (rng.next() < this.brokenTraceRate) this.pendingBreaks++;
    if (this.pendingBreaks > 0) {
      let candidates = 0;
      for (let i = 1; i < this.n; i++) if (this.children[i] > 0) candidates++;
      if (candidates > 0) {
        let k = rng.int(candidates);
        for (let i = 1; i < this.n; i++) {
          if (this.children[i] > 0 && k-- === 0) {
            drop = i;
            this.pendingBreaks--;
            break;
          }
        }
      }
    }

    this.account(drop, t0);

    // write: children before parents, then the duplicates
    const batch = this.batches[partitionOfTrace(this.tid, 0, this.partitions)];
    for (let i = this.n - 1; i >= 0; i--) if (i !== drop) this.writeRow(batch, i, emit);
    if (this.duplicateRate > 0) {
      for (let i = this.n - 1; i >= 0; i--) {
        if (i === drop || rng.next() >= this.duplicateRate) continue;
        this.writeRow(batch, i, emit);
        this.truth.duplicateSpans++;
        this.truth.recordService(this.svc[i], S_DUPLICATES, this.start[i]);
      }
    }
  }

  /** Adds the trace to the truth, by DESIGN.md section 3, from the spans that will be emitted. */
  private account(drop: number, t0: number): void {
    const truth = this.truth;
    const g = this.graph;
    truth.traces++;
    if (drop < 0) truth.connectedTraces++;
    else {
      truth.brokenTraces++;
      truth.droppedSpans++;
    }
    let traceEnd = t0;
    for (let i = 0; i < this.n; i++) {
      if (i === drop) continue;
      const s = this.svc[i];
      const st = this.start[i];
      const end = st + this.dur[i];
      if (st < truth.minStartUs) truth.minStartUs = st;
      if (end > traceEnd) traceEnd = end;
      const failed = this.err[i] === 1;
      truth.recordService(s, S_SPANS, st);
      if (failed) truth.recordService(s, S_ERRORS, st);
      const p = this.parent[i];
      if (p >= 0 && p === drop) truth.recordService(s, S_ORPHANS, st);
      const k = this.kind[i];
      if (k === KIND_SERVER || k === KIND_CONSUMER) {
        truth.recordService(s, S_SERVER_SPANS, st);
        if (p < 0) {
          // a root SERVER: a call from the virtual client `user`, not an unpaired half
          truth.recordCall(g.operations[this.site[i]].rootSlot, st, -1, false, this.dur[i], failed, -1);
        } else if (this.partner[i] === drop) {
          truth.recordService(s, S_UNPAIRED_SERVER, st); // no edge
        } // else: counted with its client half
      } else if (k === KIND_CLIENT || k === KIND_PRODUCER) {
        const c = g.callSites[this.site[i]];
        const q = this.partner[i];
        if (c.kind === CALL_DATABASE) {
          truth.recordCall(c.pairedSlot, st, this.dur[i], failed, -1, false, -1);
        } else if (q >= 0 && q !== drop) {
          const lag = k === KIND_PRODUCER ? this.start[q] - end : -1;
          truth.recordCall(c.pairedSlot, st, this.dur[i], failed, this.dur[q], this.err[q] === 1, lag);
        } else {
          truth.recordCall(c.unpairedSlot, st, this.dur[i], failed, -1, false, -1);
          truth.recordService(s, S_UNPAIRED_CLIENT, st);
        }
      }
    }
    if (traceEnd > truth.maxEndUs) truth.maxEndUs = traceEnd;
    if (traceEnd - t0 > truth.maxTraceDurationUs) truth.maxTraceDurationUs = traceEnd - t0;
  }

  private writeRow(batch: SpanBatch, i: number, emit: (batch: SpanBatch) => void): void {
    if (batch.length >= this.batchSize) {
      emit(batch);
      batch.reset(batch.partition);
    }
    const r = batch.append();
    const t = r * 4;
    batch.tid[t] = this.tid[0];
    batch.tid[t + 1] = this.tid[1];
    batch.tid[t + 2] = this.tid[2];
    batch.tid[t + 3] = this.tid[3];
    batch.sid[r * 2] = this.sid[i * 2];
    batch.sid[r * 2 + 1] = this.sid[i * 2 + 1];
    let flags = this.err[i] === 1 ? F_ERROR : 0;
    const p = this.parent[i];
    if (p >= 0) {
      flags |= F_HAS_PARENT;
      batch.pid[r * 2] = this.sid[p * 2];
      batch.pid[r * 2 + 1] = this.sid[p * 2 + 1];
    }
    batch.flags[r] = flags;
    batch.startUs[r] = this.start[i];
    batch.durUs[r] = this.dur[i];
    const k = this.kind[i];
    batch.kind[r] = k;
    batch.service[r] = this.graph.services[this.svc[i]].nameId;
    batch.name[r] = this.nameId[i];
    if (k === KIND_CLIENT || k === KIND_PRODUCER) {
      const c = this.graph.callSites[this.site[i]];
      batch.peer[r] = c.peerId;
      batch.addr[r] = c.addrId;
      batch.dbSystem[r] = c.dbSystemId;
      batch.dbNamespace[r] = c.dbNamespaceId;
      batch.msgDest[r] = c.msgDestId;
    } else if (k === KIND_SERVER) {
      batch.route[r] = this.graph.operations[this.site[i]].routeId;
    } else if (k === KIND_CONSUMER) {
      batch.msgDest[r] = this.graph.callSites[this.site[this.parent[i]]].msgDestId;
    }
    this.truth.spans++;
  }

  private newSpan(kind: number, service: number, parent: number, site: number, nameId: number, start: number): number {
    const i = this.n++;
    const rng = this.rng;
    let a: number;
    let b: number;
    do {
      a = rng.u32();
      b = rng.u32();
    } while ((a | b) === 0);
    this.sid[i * 2] = a;
    this.sid[i * 2 + 1] = b;
    this.kind[i] = kind;
    this.err[i] = 0;
    this.svc[i] = service;
    this.parent[i] = parent;
    this.partner[i] = -1;
    this.site[i] = site;
    this.children[i] = 0;
    this.nameId[i] = nameId;
    this.start[i] = start;
    this.dur[i] = 1;
    if (parent >= 0) this.children[parent]++;
    return i;
  }

  /** A SERVER or CONSUMER span of operation `op` and everything below it; returns its index. */
  private serve(op: number, kind: number, parent: number, start: number, depth: number, errorProb: number): number {
    const rng = this.rng;
    const o = this.graph.operations[op];
    const i = this.newSpan(kind, o.service, parent, op, o.nameId, start);
    const self = clamp(Math.round(rng.lognormal(o.medianUs, o.sigma)), 20, MAX_SELF_US);
    const pre = Math.floor(self * 0.6 * rng.next());
    let cursor = start + 1 + pre;
    let internal = -1;
    if (o.internalProb > 0 && this.n < this.maxSpansPerTrace && rng.next() < o.internalProb) {
      internal = this.newSpan(KIND_INTERNAL, o.service, i, -1, o.internalNameId, cursor);
      cursor += 1;
    }
    cursor = this.calls(o.calls, o.parallel, internal >= 0 ? internal : i, cursor, depth);
    const childFailed = this.lastCallsFailed;
    if (internal >= 0) {
      cursor += 1;
      this.dur[internal] = cursor - this.start[internal];
    }
    const end = cursor + (self - pre) + 1;
    this.dur[i] = end - start;
    if (rng.next() < errorProb || (childFailed && rng.next() < 0.3)) this.err[i] = 1;
    return i;
  }

  /** Makes the calls of one operation under span `container`, from `cursor`; returns the end of the last. */
  private calls(sites: readonly number[], parallel: boolean, container: number, from: number, depth: number): number {
    const rng = this.rng;
    const g = this.graph;
    const max = this.maxSpansPerTrace;
    let cursor = from;
    let anyFailed = false;
    for (let k = 0; k < sites.length; k++) {
      const c = g.callSites[sites[k]];
      if (rng.next() >= c.probability) continue;
      const callStart = (parallel ? from : cursor) + 1 + rng.int(200);
      let end: number;
      if (c.kind === CALL_RPC) {
        if (depth + 1 >= this.maxDepth || this.n + 2 > max) continue;
        const callee = g.services[c.target];
        const targetOp = c.targetOp >= 0 ? c.targetOp : callee.operations[rng.int(callee.operations.length)];
        const cl = this.newSpan(KIND_CLIENT, c.from, container, c.index, g.operations[targetOp].nameId, callStart);
        const sv = this.serve(targetOp, KIND_SERVER, cl, callStart + 1 + rng.int(MAX_NET_US), depth + 1, c.serverErrorProb);
        this.partner[cl] = sv;
        this.partner[sv] = cl;
        end = this.start[sv] + this.dur[sv] + 1 + rng.int(MAX_NET_US);
        this.dur[cl] = end - callStart;
        if (this.err[sv] === 1 ? rng.next() < 0.9 : rng.next() < c.clientErrorProb) this.err[cl] = 1;
        if (this.err[cl] === 1) anyFailed = true;
      } else {
        if (this.n + 1 > max) continue;
        const kind = c.kind === CALL_MESSAGING ? KIND_PRODUCER : KIND_CLIENT;
        const cl = this.newSpan(kind, c.from, container, c.index, c.nameId, callStart);
        end = callStart + clamp(Math.round(rng.lognormal(c.medianUs, c.sigma)), 20, MAX_SELF_US);
        this.dur[cl] = end - callStart;
        if (rng.next() < c.clientErrorProb) {
          this.err[cl] = 1;
          if (c.kind === CALL_DATABASE || c.kind === CALL_EXTERNAL) anyFailed = true;
        }
        if (c.kind === CALL_MESSAGING && c.target >= 0 && depth + 1 < this.maxDepth && this.n + 1 <= max) {
          // asynchronous: the consumer starts after the producer ended; the container does not wait
          const lag = 1 + clamp(Math.round(rng.lognormal(2000, 0.8)), 0, MAX_LAG_US - 1);
          const co = this.serve(c.targetOp, KIND_CONSUMER, cl, end + lag, depth + 1, c.serverErrorProb + g.operations[c.targetOp].errorProb);
          this.partner[cl] = co;
          this.partner[co] = cl;
        }
      }
      if (end > cursor) cursor = end;
    }
    this.lastCallsFailed = anyFailed;
    return cursor;
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}
