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
    const out: FoldDeltas = {
      edges: this.edges.rows().map((r) => ({
        minute: minute(r.key[0]),
        client: name(r.key[1]),
        server: name(r.key[2]),
        type: EDGE_TYPES[r.key[3]],
        calls: r.counters[E_CALLS],
        clientCalls: r.counters[E_CLIENT],
        serverCalls: r.counters[E_SERVER],
        paired: r.counters[E_PAIRED],
        failed: r.counters[E_FAILED],
        failedClient: r.counters[E_FAILED_C],
        failedServer: r.counters[E_FAILED_S],
        negativeLag: r.counters[E_NEG_LAG],
        clientLatency: r.hists[EH_CLIENT],
        serverLatency: r.hists[EH_SERVER],
        lag: r.hists[EH_LAG],
      })),
      services: this.services.rows().map((r) => ({
        minute: minute(r.key[0]),
        service: name(r.key[1]),
        spans: r.counters[S_SPANS],
        serverCalls: r.counters[S_SERVER_CALLS],
        failures: r.counters[S_FAILURES],
        errorSpans: r.counters[S_ERRORS],
        orphanSpans: r.counters[S_ORPHANS],
        unpairedClient: r.counters[S_UNPAIRED_C],
        unpairedServer: r.counters[S_UNPAIRED_S],
        duplicateSpans: r.counters[S_DUPS],
        lateSpans: r.counters[S_LATE],
        traces: r.counters[S_TRACES],
        connectedTraces: r.counters[S_CONNECTED],
        latency: r.hists[0],
      })),
      operations: this.operations.rows().map((r) => ({
        minute: minute(r.key[0]),
        service: name(r.key[1]),
        operation: name(r.key[2]),
        spans: r.counters[O_SPANS],
        serverCalls: r.counters[O_SERVER_CALLS],
        failures: r.counters[O_FAILURES],
        errorSpans: r.counters[O_ERRORS],
        latency: r.hists[0],
      })),
      traces: this.traceStats.rows().map((r) => ({
        minute: minute(r.key[0]),
        traces: r.counters[TR_TRACES],
        connected: r.counters[TR_CONNECTED],
        cut: r.counters[TR_CUT],
        evicted: r.counters[TR_EVICTED],
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
