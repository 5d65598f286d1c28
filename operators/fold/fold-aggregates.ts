/**
 * The fold's outputs: per-minute aggregate tables (edges, services, operations, traces) and the
 * rules that turn call halves into edges (paired, one-sided: database, virtual, lone producer,
 * user -> root), with their budgets and counters. `Fold` (fold.ts) adds the state and the hot path.
 */
import { OTHER_ID, type Interner } from "../../pipeline/intern.js";
import { F_ERROR, F_NO_DURATION, F_NO_START, KIND_CONSUMER, KIND_PRODUCER, KIND_SERVER, type SpanBatch } from "../../pipeline/span-batch.js";
import { AggTable } from "./agg-table.js";
import type { FoldConfig } from "./config.js";
import { FoldCounters } from "./counters.js";
import { EDGE_TYPES, T_DATABASE, T_MESSAGING, T_RPC, T_VIRTUAL, type FoldDeltas } from "./deltas.js";
import { HistogramPool } from "./histogram.js";
import { NameBudget } from "./name-budget.js";
import type { PartitionState } from "./partition-state.js";

export const US_PER_MINUTE = 60_000_000;

// Edge table columns
export const E_CALLS = 0, E_CLIENT = 1, E_SERVER = 2, E_PAIRED = 3, E_FAILED = 4, E_FAILED_C = 5, E_FAILED_S = 6, E_NEG_LAG = 7;
export const EH_CLIENT = 0, EH_SERVER = 1, EH_LAG = 2;
// Service table columns
export const S_SPANS = 0, S_SERVER_CALLS = 1, S_FAILURES = 2, S_ERRORS = 3, S_ORPHANS = 4, S_UNPAIRED_C = 5, S_UNPAIRED_S = 6;
export const S_DUPS = 7, S_LATE = 8, S_TRACES = 9, S_CONNECTED = 10;
// Operation table columns
export const O_SPANS = 0, O_SERVER_CALLS = 1, O_FAILURES = 2, O_ERRORS = 3;
// Trace table columns
export const TR_TRACES = 0, TR_CONNECTED = 1, TR_CUT = 2, TR_EVICTED = 3;

export abstract class FoldAggregates {
  readonly config: FoldConfig;
  readonly counters = new FoldCounters();
  protected readonly parts: PartitionState[] = [];
  protected readonly pool = new HistogramPool(256);
  readonly edges = new AggTable(4, ["calls", "clientCalls", "serverCalls", "paired", "failed", "failedClient", "failedServer", "negativeLag"], ["clientLatency", "serverLatency", "lag"], this.pool);
  readonly services = new AggTable(2, ["spans", "serverCalls", "failures", "errorSpans", "orphanSpans", "unpairedClient", "unpairedServer", "duplicateSpans", "lateSpans", "traces", "connectedTraces"], ["latency"], this.pool);
  readonly operations = new AggTable(3, ["spans", "serverCalls", "failures", "errorSpans"], ["latency"], this.pool);
  readonly traceStats = new AggTable(1, ["traces", "connected", "cut", "evicted"], [], this.pool);
  readonly operationBudget: NameBudget;
  readonly virtualBudget: NameBudget;
  protected readonly USER: number;
  protected readonly UNKNOWN: number;

  constructor(
    readonly interner: Interner,
    config: FoldConfig,
  ) {
    this.config = config;
    this.operationBudget = new NameBudget(config.operationBudget);
    this.virtualBudget = new NameBudget(config.virtualNodeBudget);
    this.USER = interner.internString("user");
    this.UNKNOWN = interner.internString("unknown");
  }

  protected spanStats(P: PartitionState, s: number, minute: number): void {
    const svc = P.sService[s];
    const kind = P.sKind[s];
    const err = (P.sFlags[s] & F_ERROR) !== 0 ? 1 : 0;
    const hasDur = (P.sFlags[s] & F_NO_DURATION) === 0;
    const isServer = kind === KIND_SERVER || kind === KIND_CONSUMER;
    const st = this.services;
    const e = st.at(minute, svc);
    st.cols[S_SPANS][e]++;
    st.cols[S_ERRORS][e] += err;
    if (isServer) {
      st.cols[S_SERVER_CALLS][e]++;
      st.cols[S_FAILURES][e] += err;
      if (hasDur) st.record(e, 0, P.sDur[s]);
    }
    const ot = this.operations;
    const o = ot.at(minute, svc, P.sOp[s]);
    ot.cols[O_SPANS][o]++;
    ot.cols[O_ERRORS][o] += err;
    if (isServer) {
      ot.cols[O_SERVER_CALLS][o]++;
      ot.cols[O_FAILURES][o] += err;
    }
    if (hasDur) ot.record(o, 0, P.sDur[s]);
  }

  protected late(b: SpanBatch, i: number): void {
    this.counters.lateSpans++;
    if ((b.flags[i] & F_NO_START) !== 0) {
      this.counters.spansWithoutTimestamp++;
      return;
    }
    const e = this.services.at(Math.floor(b.startUs[i] / US_PER_MINUTE), b.service[i]);
    this.services.cols[S_SPANS][e]++;
    this.services.cols[S_LATE][e]++;
  }

  // ------------------------------------------------------------------------------ edge makers

  protected minuteOf(P: PartitionState, s: number): number {
    return (P.sFlags[s] & F_NO_START) !== 0 ? -1 : Math.floor(P.sStart[s] / US_PER_MINUTE);
  }

  protected paired(P: PartitionState, cs: number, ss: number): void {
    let m = this.minuteOf(P, cs);
    if (m < 0) m = this.minuteOf(P, ss);
    if (m < 0) {
      this.counters.callsWithoutTimestamp++;
      return;
    }
    const type = P.sKind[cs] === KIND_PRODUCER ? T_MESSAGING : T_RPC;
    const et = this.edges;
    const e = et.at(m, P.sService[cs], P.sService[ss], type);
    const fc = (P.sFlags[cs] & F_ERROR) !== 0 ? 1 : 0;
    const fs = (P.sFlags[ss] & F_ERROR) !== 0 ? 1 : 0;
    et.cols[E_CALLS][e]++;
    et.cols[E_CLIENT][e]++;
    et.cols[E_SERVER][e]++;
    et.cols[E_PAIRED][e]++;
    et.cols[E_FAILED][e] += fc | fs;
    et.cols[E_FAILED_C][e] += fc;
    et.cols[E_FAILED_S][e] += fs;
    if ((P.sFlags[cs] & F_NO_DURATION) === 0) et.record(e, EH_CLIENT, P.sDur[cs]);
    if ((P.sFlags[ss] & F_NO_DURATION) === 0) et.record(e, EH_SERVER, P.sDur[ss]);
    if (type === T_MESSAGING && ((P.sFlags[cs] | P.sFlags[ss]) & F_NO_START) === 0) {
      let lag = P.sStart[ss] - (P.sStart[cs] + P.sDur[cs]);
      if (lag < 0) {
        lag = 0;
        et.cols[E_NEG_LAG][e]++;
        this.counters.negativeLag++;
      }
      et.record(e, EH_LAG, lag);
    }
  }

  /** An edge seen from one half only (database, virtual, lone producer, user -> root). */
  protected oneSided(P: PartitionState, s: number, client: number, server: number, type: number, isClientHalf: boolean): void {
    const m = this.minuteOf(P, s);
    if (m < 0) {
      this.counters.callsWithoutTimestamp++;
      return;
    }
    const et = this.edges;
    const e = et.at(m, client, server, type);
    const f = (P.sFlags[s] & F_ERROR) !== 0 ? 1 : 0;
    et.cols[E_CALLS][e]++;
    et.cols[E_FAILED][e] += f;
    if (isClientHalf) {
      et.cols[E_CLIENT][e]++;
      et.cols[E_FAILED_C][e] += f;
    } else {
      et.cols[E_SERVER][e]++;
      et.cols[E_FAILED_S][e] += f;
    }
    if ((P.sFlags[s] & F_NO_DURATION) === 0) et.record(e, isClientHalf ? EH_CLIENT : EH_SERVER, P.sDur[s]);
  }

  protected databaseCall(P: PartitionState, b: SpanBatch, i: number, s: number): void {
    // peer.service / service.peer.name, server.address, db.namespace / db.name, db.system(.name)
    let node = b.peer[i];
    if (node === 0) node = b.addr[i];
    if (node === 0) node = b.dbNamespace[i];
    if (node === 0) node = b.dbSystem[i];
    this.oneSided(P, s, P.sService[s], this.budgetVirtual(P.sService[s], node), T_DATABASE, true);
  }

  protected rootServer(P: PartitionState, s: number): void {
    this.oneSided(P, s, this.USER, P.sService[s], T_VIRTUAL, false);
  }

  protected loneClient(P: PartitionState, s: number): void {
    const svc = P.sService[s];
    let node: number;
    let type: number;
    if (P.sKind[s] === KIND_PRODUCER) {
      node = P.sPeer[s] !== 0 ? P.sPeer[s] : P.sMsgDest[s] !== 0 ? P.sMsgDest[s] : this.UNKNOWN;
      type = T_MESSAGING;
    } else {
      node = P.sPeer[s] !== 0 ? P.sPeer[s] : P.sAddr[s] !== 0 ? P.sAddr[s] : this.UNKNOWN;
      type = T_VIRTUAL;
    }
    this.oneSided(P, s, svc, this.budgetVirtual(svc, node), type, true);
    this.connectivity(P, s, S_UNPAIRED_C);
  }

  protected budgetVirtual(owner: number, node: number): number {
    const id = this.virtualBudget.admit(owner, node);
    if (id === OTHER_ID && node !== OTHER_ID) this.counters.virtualNodesOverBudget++;
    return id;
  }

  protected connectivity(P: PartitionState, s: number, col: number): void {
    if (this.config.aggregates === "edges") return;
    let m = this.minuteOf(P, s);
    if (m < 0) {
      // no timestamp: the trace's minute, found through the span's trace entry
      m = this.traceMinute(P, P.spans.keys[s * 4]);
      if (m < 0) {
        this.counters.spansWithoutTimestamp++;
        return;
      }
    }
    this.services.cols[col][this.services.at(m, P.sService[s])]++;
  }

  protected traceMinute(P: PartitionState, t: number): number {
    const ms = P.tMinStart[t];
    return ms === Infinity ? -1 : Math.floor(ms / US_PER_MINUTE);
  }

  /** Takes the deltas accumulated since the last drain and clears them. */
  drain(): FoldDeltas {
    const name = (id: number) => this.interner.name(id);
    const minute = (m: number) => m * 60_000;
    const et = this.edges;
    const st = this.services;
    const ot = this.operations;
    const tt = this.traceStats;
    const out: FoldDeltas = {
      edges: et.map((e) => ({
        minute: minute(et.key(e, 0)),
        client: name(et.key(e, 1)),
        server: name(et.key(e, 2)),
        type: EDGE_TYPES[et.key(e, 3)],
        calls: et.counter(e, E_CALLS),
        clientCalls: et.counter(e, E_CLIENT),
        serverCalls: et.counter(e, E_SERVER),
        paired: et.counter(e, E_PAIRED),
        failed: et.counter(e, E_FAILED),
        failedClient: et.counter(e, E_FAILED_C),
        failedServer: et.counter(e, E_FAILED_S),
        negativeLag: et.counter(e, E_NEG_LAG),
        clientLatency: et.hist(e, EH_CLIENT),
        serverLatency: et.hist(e, EH_SERVER),
        lag: et.hist(e, EH_LAG),
      })),
      services: st.map((e) => ({
        minute: minute(st.key(e, 0)),
        service: name(st.key(e, 1)),
        spans: st.counter(e, S_SPANS),
        serverCalls: st.counter(e, S_SERVER_CALLS),
        failures: st.counter(e, S_FAILURES),
        errorSpans: st.counter(e, S_ERRORS),
        orphanSpans: st.counter(e, S_ORPHANS),
        unpairedClient: st.counter(e, S_UNPAIRED_C),
        unpairedServer: st.counter(e, S_UNPAIRED_S),
        duplicateSpans: st.counter(e, S_DUPS),
        lateSpans: st.counter(e, S_LATE),
        traces: st.counter(e, S_TRACES),
        connectedTraces: st.counter(e, S_CONNECTED),
        latency: st.hist(e, 0),
      })),
      operations: ot.map((e) => ({
        minute: minute(ot.key(e, 0)),
        service: name(ot.key(e, 1)),
        operation: name(ot.key(e, 2)),
        spans: ot.counter(e, O_SPANS),
        serverCalls: ot.counter(e, O_SERVER_CALLS),
        failures: ot.counter(e, O_FAILURES),
        errorSpans: ot.counter(e, O_ERRORS),
        latency: ot.hist(e, 0),
      })),
      traces: tt.map((e) => ({
        minute: minute(tt.key(e, 0)),
        traces: tt.counter(e, TR_TRACES),
        connected: tt.counter(e, TR_CONNECTED),
        cut: tt.counter(e, TR_CUT),
        evicted: tt.counter(e, TR_EVICTED),
      })),
    };
    this.edges.clear();
    this.services.clear();
    this.operations.clear();
    this.traceStats.clear();
    this.pool.clear();
    return out;
  }
}
