/**
 * The fold (DESIGN 3): spans -> service-topology edges, failures, latency histograms, per-service
 * and per-operation stats and trace connectivity, bucketed by event-time minute against
 * per-partition watermarks.
 *
 * Hot path: processBatch() walks the batch's columns; per span it does a few hash-index probes and
 * typed-array writes, no allocation. Timers fire when a partition's watermark passes the nearest
 * deadline, checked per span, so results do not depend on how input was cut into batches.
 *
 * Call halves: CLIENT/PRODUCER under (trace, span id); SERVER/CONSUMER under (trace, parent id),
 * a Zipkin shared server under (trace, span id), a linked CONSUMER under its link. A call is
 * counted the moment both halves are present; a half still alone when the watermark passes its
 * end + assemblyWindow becomes a virtual/messaging edge (client) or an unpaired server half.
 */
import { OTHER_ID, type Interner } from "../../pipeline/intern.js";
import {
  F_ERROR, F_HAS_LINK, F_HAS_PARENT, F_NO_DURATION, F_NO_START, F_SHARED,
  KIND_CLIENT, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, type SpanBatch,
} from "../../pipeline/span-batch.js";
import { DEFAULT_FOLD_CONFIG, type FoldConfig } from "./config.js";
import { FoldAggregates, S_CONNECTED, S_DUPS, S_ORPHANS, S_TRACES, S_UNPAIRED_S, TR_CONNECTED, TR_CUT, TR_EVICTED, TR_TRACES, US_PER_MINUTE } from "./fold-aggregates.js";
import { PartitionState } from "./partition-state.js";
import { DIRTY } from "./hash-index.js";

// span state bits (PartitionState.sState)
const ST_STATS_DEFERRED = 1; // no timestamp: service stats recorded at assembly with the trace's minute

export class Fold extends FoldAggregates {
  private seenStamp = new Int32Array(1024);
  private stamp = 0;
  /** Largest number of pending spans seen after a batch, and the state's size then. */
  peakPendingSpans = 0;
  peakStateBytes = 0;
  /** Idle watermark advances made by the clock, for the checkpoint so a replay repeats them. */
  readonly watermarkLog: Array<{ partition: number; watermarkUs: number }> = [];

  constructor(interner: Interner, config: Partial<FoldConfig> = {}) {
    super(interner, { ...DEFAULT_FOLD_CONFIG, ...config });
    this.edgesOnly = this.config.aggregates === "edges";
  }

  /** fold.aggregates=edges: only what the edge tables need. */
  private readonly edgesOnly: boolean;

  partition(p: number): PartitionState {
    let s = this.parts[p];
    if (s === undefined) {
      s = new PartitionState(p);
      this.parts[p] = s;
    }
    return s;
  }

  /** Installs restored state for a partition (snapshot.ts) and returns it. */
  replacePartition(p: number, state: PartitionState): PartitionState {
    this.parts[p] = state;
    return state;
  }

  get partitions(): PartitionState[] {
    return this.parts.filter((p) => p !== undefined);
  }

  // ---------------------------------------------------------------------------------- hot path

  /**
   * Folds rows [from, to) of a batch into the state of `partition` (the input partition, or
   * after a keyBy shuffle the key group).
   */
  processBatch(b: SpanBatch, nowMs = 0, from = 0, to = b.length, partition = b.partition): void {
    const P = this.partition(partition);
    P.lastInputMs = nowMs;
    const c = this.config;
    const ooo = c.outOfOrdernessMs * 1000;
    const lateness = c.allowedLatenessMs * 1000;
    this.counters.spansIn += to - from;
    // the trace of the previous span: a message's spans come grouped by trace (an SDK batch per
    // resource, the Collector's exporter one trace per message), so most spans skip the probe.
    // Valid while its generation stands (assembly or eviction bumps it).
    let lastT = -1;
    let lastGen = 0;
    let l0 = 0;
    let l1 = 0;
    let l2 = 0;
    let l3 = 0;
    for (let i = from; i < to; i++) {
      const flags = b.flags[i];
      const noStart = (flags & F_NO_START) !== 0;
      const start = b.startUs[i];
      const end = start + b.durUs[i];
      if (!noStart) {
        if (end - ooo > P.watermarkUs) P.watermarkUs = end - ooo;
        if (end > P.maxEndUs) P.maxEndUs = end;
        if (P.watermarkUs >= P.nextDeadlineUs) this.fireTimers(P);
        if (end < P.watermarkUs - lateness) {
          this.late(b, i);
          continue;
        }
      }
      // the trace
      const t4 = i * 4;
      const w0 = b.tid[t4];
      const w1 = b.tid[t4 + 1];
      const w2 = b.tid[t4 + 2];
      const w3 = b.tid[t4 + 3];
      let t: number;
      if (lastT >= 0 && w0 === l0 && w1 === l1 && w2 === l2 && w3 === l3 && P.tGen[lastT] === lastGen) t = lastT;
      else {
        t = this.openTrace(P, w0, w1, w2, w3);
        if (t < 0) {
          this.late(b, i); // its trace was assembled already
          continue;
        }
        lastT = t;
        lastGen = P.tGen[t];
        l0 = w0;
        l1 = w1;
        l2 = w2;
        l3 = w3;
      }
      // duplicates: (trace, span id, kind) seen before, until the trace is assembled
      const sk = P.spans.key;
      sk[0] = t;
      sk[1] = b.sid[i * 2];
      sk[2] = b.sid[i * 2 + 1];
      sk[3] = b.kind[i];
      if (P.spans.find() >= 0) {
        this.counters.duplicateSpans++;
        const m = noStart ? this.traceMinute(P, t) : Math.floor(start / US_PER_MINUTE);
        if (m >= 0) this.services.cols[S_DUPS][this.services.at(m, b.service[i])]++;
        else this.counters.spansWithoutTimestamp++;
        continue;
      }
      if (P.tCount[t] >= c.maxSpansPerTrace) {
        this.counters.spansOverTraceLimit++;
        continue;
      }
      const s = P.spans.insertAfterMiss();
      this.storeSpan(P, b, i, s, t);
      // trace bookkeeping
      const isNew = P.tCount[t] === 0;
      P.tCount[t]++;
      if (!noStart && start < P.tMinStart[t]) P.tMinStart[t] = start;
      // a span without a timestamp keeps its trace open until the partition's event time is known
      const effEnd = noStart ? P.maxEndUs : end;
      const hadNoEnd = P.tLastEnd[t] === -Infinity;
      if (effEnd > P.tLastEnd[t]) P.tLastEnd[t] = effEnd;
      P.traces.flags[t] |= DIRTY; // count, first/last span, times (incremental checkpoints)
      if (isNew || (hadNoEnd && P.tLastEnd[t] > -Infinity)) this.scheduleTrace(P, t);
      // stats
      if (this.edgesOnly) {
        // fold.aggregates=edges: no service or operation stats
      } else if (noStart) P.sState[s] = ST_STATS_DEFERRED;
      else this.spanStats(P, s, Math.floor(start / US_PER_MINUTE));
      // the call this span is a half of
      this.routeHalf(P, b, i, s);
    }
    const pending = this.pendingSpans;
    if (pending > this.peakPendingSpans) {
      this.peakPendingSpans = pending;
      this.peakStateBytes = this.stateBytes;
    }
  }

  /** The pending trace with this id, opened if new; -1 when it was assembled already (late). */
  private openTrace(P: PartitionState, w0: number, w1: number, w2: number, w3: number): number {
    const tk = P.traces.key;
    tk[0] = w0;
    tk[1] = w1;
    tk[2] = w2;
    tk[3] = w3;
    let t = P.traces.find();
    if (t >= 0) return t;
    const ak = P.assembled.key;
    ak[0] = w0;
    ak[1] = w1;
    ak[2] = w2;
    ak[3] = w3;
    if (P.assembled.find() >= 0) return -1;
    if (P.spans.size >= this.config.maxPendingSpans) {
      this.evictOldest(P);
      tk[0] = w0; // eviction probes with the same key buffer
      tk[1] = w1;
      tk[2] = w2;
      tk[3] = w3;
    }
    t = P.traces.insert();
    P.tFirst[t] = -1;
    P.tLast[t] = -1;
    P.tCount[t] = 0;
    P.tMinStart[t] = Infinity;
    P.tLastEnd[t] = -Infinity;
    P.tGen[t]++;
    return t;
  }

  private storeSpan(P: PartitionState, b: SpanBatch, i: number, s: number, t: number): void {
    // append: a trace's spans stay in arrival order, so "first N" budgets follow arrival
    P.sNext[s] = -1;
    if (P.tFirst[t] < 0) P.tFirst[t] = s;
    else {
      const tail = P.tLast[t];
      P.sNext[tail] = s;
      P.spans.flags[tail] |= DIRTY;
    }
    P.tLast[t] = s;
    P.sPid[s * 2] = b.pid[i * 2];
    P.sPid[s * 2 + 1] = b.pid[i * 2 + 1];
    P.sFlags[s] = b.flags[i];
    P.sKind[s] = b.kind[i];
    P.sState[s] = 0;
    const svc = b.service[i];
    P.sService[s] = svc;
    if (this.edgesOnly) P.sOp[s] = 0; // operations feed only the operation stats
    else {
      const op = b.route[i] !== 0 ? b.route[i] : b.name[i];
      const admitted = this.operationBudget.admit(svc, op);
      if (admitted === OTHER_ID && op !== OTHER_ID) this.counters.operationsOverBudget++;
      P.sOp[s] = admitted;
    }
    P.sPeer[s] = b.peer[i];
    P.sAddr[s] = b.addr[i];
    P.sMsgDest[s] = b.msgDest[i];
    P.sStart[s] = b.startUs[i];
    P.sDur[s] = b.durUs[i];
    P.sCall[s] = -1;
    P.sNextHalf[s] = -1;
  }

  private routeHalf(P: PartitionState, b: SpanBatch, i: number, s: number): void {
    const kind = b.kind[i];
    const flags = b.flags[i];
    const ck = P.calls.key;
    if (kind === KIND_CLIENT || kind === KIND_PRODUCER) {
      if (kind === KIND_CLIENT && (b.dbSystem[i] !== 0 || b.dbNamespace[i] !== 0)) {
        this.databaseCall(P, b, i, s);
        return;
      }
      copy4(ck, b.tid, i * 4);
      ck[4] = b.sid[i * 2];
      ck[5] = b.sid[i * 2 + 1];
      this.half(P, s, true);
    } else if (kind === KIND_SERVER || kind === KIND_CONSUMER) {
      if (kind === KIND_SERVER && (flags & F_SHARED) !== 0) {
        copy4(ck, b.tid, i * 4);
        ck[4] = b.sid[i * 2];
        ck[5] = b.sid[i * 2 + 1];
      } else if (kind === KIND_CONSUMER && (flags & F_HAS_LINK) !== 0) {
        copy4(ck, b.lnkTid, i * 4);
        ck[4] = b.lnkSid[i * 2];
        ck[5] = b.lnkSid[i * 2 + 1];
      } else if ((flags & F_HAS_PARENT) !== 0) {
        copy4(ck, b.tid, i * 4);
        ck[4] = b.pid[i * 2];
        ck[5] = b.pid[i * 2 + 1];
      } else {
        this.rootServer(P, s);
        return;
      }
      this.half(P, s, false);
    }
  }

  /** Files span s as a half of the call keyed by P.calls.key. */
  private half(P: PartitionState, s: number, isClient: boolean): void {
    const c = P.calls.upsert();
    P.calls.flags[c] |= DIRTY;
    const deadline = P.sStart[s] + P.sDur[s] + this.config.assemblyWindowMs * 1000;
    if (P.calls.inserted) {
      P.cClient[c] = -1;
      P.cServers[c] = -1;
      P.cPaired[c] = 0;
      // a half without a timestamp waits from the partition's event-time front (or for its trace)
      P.cDeadline[c] = (P.sFlags[s] & F_NO_START) === 0 ? deadline : P.maxEndUs === -Infinity ? Infinity : P.maxEndUs + this.config.assemblyWindowMs * 1000;
      P.cGen[c]++;
      P.callTimers.push(P.cDeadline[c], c, P.cGen[c]);
      if (P.cDeadline[c] < P.nextDeadlineUs) P.nextDeadlineUs = P.cDeadline[c];
    } else if ((P.sFlags[s] & F_NO_START) === 0 && deadline > P.cDeadline[c]) {
      P.cDeadline[c] = deadline; // the timer re-arms itself when it pops early
    }
    if (isClient) {
      if (P.cClient[c] >= 0) {
        this.counters.conflictingHalves++;
        this.loneClient(P, s);
        return;
      }
      P.cClient[c] = s;
      P.sCall[s] = c;
      for (let v = P.cServers[c]; v >= 0; v = P.sNextHalf[v]) {
        this.paired(P, s, v);
        P.sCall[v] = -1;
        P.spans.flags[v] |= DIRTY;
        P.cPaired[c]++;
      }
      P.cServers[c] = -1;
    } else if (P.cClient[c] >= 0) {
      this.paired(P, P.cClient[c], s);
      P.cPaired[c]++;
    } else {
      P.sNextHalf[s] = P.cServers[c];
      P.cServers[c] = s;
      P.sCall[s] = c;
    }
  }

  // ----------------------------------------------------------------------------------- timers

  private scheduleTrace(P: PartitionState, t: number): void {
    const d = this.traceDeadline(P, t);
    P.traceTimers.push(d, t, P.tGen[t]);
    if (d < P.nextDeadlineUs) P.nextDeadlineUs = d;
  }

  private traceDeadline(P: PartitionState, t: number): number {
    const c = this.config;
    const gap = P.tLastEnd[t] === -Infinity ? Infinity : P.tLastEnd[t] + c.traceGapMs * 1000;
    const ms = P.tMinStart[t];
    const cut = ms === Infinity ? Infinity : ms + c.traceMaxOpenMs * 1000;
    return gap < cut ? gap : cut;
  }

  /** Fires every timer whose deadline the partition's watermark has passed. */
  private fireTimers(P: PartitionState): void {
    const wm = P.watermarkUs;
    const ct = P.callTimers;
    while (ct.size > 0 && ct.top <= wm) {
      const c = ct.topEntry;
      const g = ct.topGen;
      ct.pop();
      if (P.cGen[c] !== g) continue; // resolved already, id maybe reused
      if (P.cDeadline[c] > wm) ct.push(P.cDeadline[c], c, g);
      else this.resolveCall(P, c);
    }
    const tt = P.traceTimers;
    while (tt.size > 0 && tt.top <= wm) {
      const t = tt.topEntry;
      const g = tt.topGen;
      tt.pop();
      if (P.tGen[t] !== g) continue;
      const d = this.traceDeadline(P, t);
      if (d > wm) tt.push(d, t, g);
      else this.assemble(P, t, 0);
    }
    P.expireAssembled(wm);
    P.nextDeadlineUs = Math.min(ct.top, tt.top, P.nextAssembledExpiry);
  }

  /** Closes a call: its lone client becomes a virtual/messaging edge, lone servers are unpaired. */
  private resolveCall(P: PartitionState, c: number): void {
    const cs = P.cClient[c];
    if (cs >= 0) {
      P.sCall[cs] = -1;
      P.spans.flags[cs] |= DIRTY;
      if (P.cPaired[c] === 0) this.loneClient(P, cs);
    }
    for (let v = P.cServers[c]; v >= 0; v = P.sNextHalf[v]) {
      P.sCall[v] = -1;
      P.spans.flags[v] |= DIRTY;
      // a server half without a parent whose client never showed up is a root after all: a Zipkin
      // shared root span (yelp.json's `routing`), or a linked consumer whose producer is elsewhere
      if ((P.sFlags[v] & F_HAS_PARENT) === 0) this.rootServer(P, v);
      else this.connectivity(P, v, S_UNPAIRED_S);
    }
    P.cGen[c]++;
    P.calls.remove(c);
  }

  /**
   * Assembles trace t: resolves its open calls, finds roots and orphans, counts the trace
   * (connected or not) for itself and each service in it, and forgets its spans.
   * `why`: 0 = its timer (gap or maximum open time), 1 = evicted for memory, 2 = end of input.
   */
  private assemble(P: PartitionState, t: number, why: number): void {
    const c = this.config;
    for (let s = P.tFirst[t]; s >= 0; s = P.sNext[s]) if (P.sCall[s] >= 0) this.resolveCall(P, P.sCall[s]);
    if (this.edgesOnly) {
      this.counters.tracesAssembled++;
      if (this.config.linkParentChild) this.linkParentChild(P, t);
      this.forget(P, t);
      return;
    }
    const tm = this.traceMinute(P, t);
    const sk = P.spans.key;
    let roots = 0;
    let orphans = 0;
    const stamp = ++this.stamp;
    if (this.seenStamp.length < this.interner.size) {
      const a = new Int32Array(Math.max(this.interner.size, this.seenStamp.length * 2));
      a.set(this.seenStamp);
      this.seenStamp = a;
    }
    for (let s = P.tFirst[t]; s >= 0; s = P.sNext[s]) {
      const svc = P.sService[s];
      this.seenStamp[svc] = stamp;
      if ((P.sState[s] & ST_STATS_DEFERRED) !== 0) {
        if (tm >= 0) this.spanStats(P, s, tm);
        else this.counters.spansWithoutTimestamp++;
      }
      const f = P.sFlags[s];
      if ((f & F_HAS_PARENT) === 0) {
        // a Zipkin shared server half is no second root when its client half is here
        if ((f & F_SHARED) !== 0) {
          sk[0] = t;
          sk[1] = P.spans.keys[s * 4 + 1];
          sk[2] = P.spans.keys[s * 4 + 2];
          sk[3] = KIND_CLIENT;
          if (P.spans.find() >= 0) continue;
        }
        roots++;
      } else {
        sk[0] = t;
        sk[1] = P.sPid[s * 2];
        sk[2] = P.sPid[s * 2 + 1];
        if (P.spans.findPrefix(3) < 0) {
          orphans++;
          this.connectivity(P, s, S_ORPHANS);
        }
      }
    }
    const connected = roots === 1 && orphans === 0 ? 1 : 0;
    const cut = why === 0 && P.tLastEnd[t] + c.traceGapMs * 1000 > this.traceDeadline(P, t) ? 1 : 0;
    if (tm >= 0) {
      const te = this.traceStats.at(tm);
      this.traceStats.cols[TR_TRACES][te]++;
      this.traceStats.cols[TR_CONNECTED][te] += connected;
      this.traceStats.cols[TR_CUT][te] += cut;
      this.traceStats.cols[TR_EVICTED][te] += why === 1 ? 1 : 0;
    }
    this.counters.tracesAssembled++;
    this.counters.tracesCut += cut;
    if (why === 1) this.counters.tracesEvicted++;
    // per service: each service in the trace once
    for (let s = P.tFirst[t]; s >= 0; s = P.sNext[s]) {
      const svc = P.sService[s];
      if (this.seenStamp[svc] !== stamp || tm < 0) continue;
      this.seenStamp[svc] = 0;
      const e = this.services.at(tm, svc);
      this.services.cols[S_TRACES][e]++;
      this.services.cols[S_CONNECTED][e] += connected;
    }
    if (c.linkParentChild) this.linkParentChild(P, t);
    this.forget(P, t);
  }

  /** Forgets the trace's spans and the trace, and remembers its id so stragglers count as late. */
  private forget(P: PartitionState, t: number): void {
    const c = this.config;
    for (let s = P.tFirst[t]; s >= 0; ) {
      const next = P.sNext[s];
      P.spans.remove(s);
      s = next;
    }
    const ak = P.assembled.key;
    const base = t * 4;
    ak[0] = P.traces.keys[base];
    ak[1] = P.traces.keys[base + 1];
    ak[2] = P.traces.keys[base + 2];
    ak[3] = P.traces.keys[base + 3];
    P.rememberAssembled(P.watermarkUs + c.assembledMemoryMs * 1000);
    P.tGen[t]++;
    P.traces.remove(t);
  }

  /** Jaeger-style dependencies for kind-less input: parent -> child across two services. */
  private linkParentChild(P: PartitionState, t: number): void {
    const sk = P.spans.key;
    for (let s = P.tFirst[t]; s >= 0; s = P.sNext[s]) {
      if ((P.sFlags[s] & F_HAS_PARENT) === 0 || makesCall(P.sKind[s])) continue;
      sk[0] = t;
      sk[1] = P.sPid[s * 2];
      sk[2] = P.sPid[s * 2 + 1];
      const parent = P.spans.findPrefix(3);
      if (parent < 0 || makesCall(P.sKind[parent]) || P.sService[parent] === P.sService[s]) continue;
      this.paired(P, parent, s);
    }
  }

  /** Memory budget (runtime): assembles the oldest traces of a partition until it holds at most `spans`. */
  evictDownTo(partition: number, spans: number): number {
    const P = this.partition(partition);
    let n = 0;
    while (P.spans.size > spans && P.traceTimers.size > 0) {
      const before = P.spans.size;
      this.evictOldest(P);
      if (P.spans.size < before) n++;
    }
    this.counters.memoryEvictions += n;
    return n;
  }

  private evictOldest(P: PartitionState): void {
    const tt = P.traceTimers;
    while (tt.size > 0) {
      const t = tt.topEntry;
      const g = tt.topGen;
      tt.pop();
      if (P.tGen[t] !== g) continue;
      this.assemble(P, t, 1);
      return;
    }
  }

  // ------------------------------------------------------------------------- time and output

  /**
   * Processing-time tick: a partition idle for idleTimeoutMs advances its watermark by the clock.
   * Each advance is logged (watermarkLog) so a replay from a checkpoint can repeat it.
   */
  onProcessingTime(nowMs: number): void {
    const idle = this.config.idleTimeoutMs;
    for (const P of this.partitions) {
      if (P.watermarkUs === -Infinity || P.held || nowMs - P.lastInputMs < idle) continue;
      const advanced = P.watermarkUs + (nowMs - P.lastInputMs) * 1000;
      P.lastInputMs = nowMs;
      this.counters.idleAdvances++;
      this.advanceWatermark(P.partition, advanced);
      this.watermarkLog.push({ partition: P.partition, watermarkUs: advanced });
    }
  }

  /** Moves a partition's watermark forward (idle advance, or its replay) and fires timers. */
  advanceWatermark(partition: number, watermarkUs: number): void {
    const P = this.partition(partition);
    if (watermarkUs <= P.watermarkUs) return;
    P.watermarkUs = watermarkUs;
    this.fireTimers(P);
  }

  /**
   * End of input: close every window. Assembling a trace resolves its open calls first; what is
   * left are calls keyed into traces that never arrived (a consumer linked to a producer elsewhere).
   */
  finish(): void {
    for (const P of this.partitions) {
      const traces: number[] = [];
      P.traces.forEach((t) => traces.push(t));
      for (const t of traces) this.assemble(P, t, 2);
      const calls: number[] = [];
      P.calls.forEach((c) => calls.push(c));
      for (const c of calls) this.resolveCall(P, c);
      P.callTimers.clear();
      P.traceTimers.clear();
      P.nextDeadlineUs = Infinity;
    }
  }

  /** Spans waiting in the fold's tables, over all partitions. */
  get pendingSpans(): number {
    let n = 0;
    for (const P of this.partitions) n += P.spans.size;
    return n;
  }

  /** Bytes held by the per-partition state (not the flushed aggregates). */
  get stateBytes(): number {
    let n = 0;
    for (const P of this.partitions) n += P.bytesHeld;
    return n;
  }

}

function copy4(dst: Uint32Array, src: Uint32Array, at: number): void {
  dst[0] = src[at];
  dst[1] = src[at + 1];
  dst[2] = src[at + 2];
  dst[3] = src[at + 3];
}

function makesCall(kind: number): boolean {
  return kind === KIND_CLIENT || kind === KIND_SERVER || kind === KIND_PRODUCER || kind === KIND_CONSUMER;
}
