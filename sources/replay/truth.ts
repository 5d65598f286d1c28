/**
 * Ground truth of a replay: what a correct fold (DESIGN.md section 3) must report for the spans the
 * generator emitted. It is counted by construction while each trace is generated, never by
 * re-running a fold. Counters live in typed arrays indexed by the graph's edge slots and services
 * (the hot loop only adds numbers); the Maps are built when read.
 */
import type { EdgeCounts } from "../../operators/fold/deltas.js";
import type { EdgeSlot, EdgeType, GraphService } from "./service-graph.js";

/** An edge's counts over what the generator emitted, with duration and lag sums. */
export interface TruthEdge extends EdgeCounts {
  /** Client-observed duration (us) over the `clientCalls` client halves: sum and max. */
  clientDurationSumUs: number;
  clientDurationMaxUs: number;
  /** Server-observed duration (us) over the `serverCalls` server halves: sum and max. */
  serverDurationSumUs: number;
  serverDurationMaxUs: number;
  /** Messaging lag (consumer start - producer end, always > 0 here) over paired messaging calls. */
  lagCount: number;
  lagSumUs: number;
  lagMaxUs: number;
}

export interface TruthService {
  /** Distinct spans emitted (duplicates excluded), of every kind. */
  spans: number;
  /** Spans whose parent id is set but whose parent was never emitted. */
  orphanSpans: number;
  /** CLIENT/PRODUCER halves with no server/consumer half emitted (database calls excluded). */
  unpairedClient: number;
  /** SERVER/CONSUMER halves with a parent id whose client/producer half was never emitted. */
  unpairedServer: number;
  /** Re-emitted copies of spans of this service. */
  duplicateSpans: number;
  /** Distinct spans with F_ERROR. */
  errorSpans: number;
  /** Distinct SERVER and CONSUMER spans (roots included). */
  serverSpans: number;
}

// edge counter layout (per slot)
export const E_CALLS = 0;
export const E_CLIENT_CALLS = 1;
export const E_SERVER_CALLS = 2;
export const E_PAIRED = 3;
export const E_FAILED = 4;
export const E_FAILED_CLIENT = 5;
export const E_FAILED_SERVER = 6;
export const E_CLIENT_SUM = 7;
export const E_CLIENT_MAX = 8;
export const E_SERVER_SUM = 9;
export const E_SERVER_MAX = 10;
export const E_LAG_COUNT = 11;
export const E_LAG_SUM = 12;
export const E_LAG_MAX = 13;
const EF = 14;

// service counter layout (per service)
export const S_SPANS = 0;
export const S_ORPHANS = 1;
export const S_UNPAIRED_CLIENT = 2;
export const S_UNPAIRED_SERVER = 3;
export const S_DUPLICATES = 4;
export const S_ERRORS = 5;
export const S_SERVER_SPANS = 6;
const SF = 7;

const MINUTE_US = 60e6;

export class ReplayTruth {
  /** Rows emitted, duplicates included. */
  spans = 0;
  /** Traces generated (each emitted at least its root). */
  traces = 0;
  /** Traces with nothing dropped: exactly one root and every parent present. */
  connectedTraces = 0;
  /** Traces from which one non-root span (with children) was dropped. */
  brokenTraces = 0;
  /** Spans generated but never emitted (one per broken trace). */
  droppedSpans = 0;
  /** Re-emitted copies (total over services). */
  duplicateSpans = 0;
  /** Smallest and largest span start and end seen (us), and the longest trace (first start to last end). */
  minStartUs = Infinity;
  maxEndUs = -Infinity;
  maxTraceDurationUs = 0;

  private readonly edgeCounters: Float64Array;
  private readonly serviceCounters: Float64Array;
  private readonly edgeMinutes = new MinuteArrays(() => this.slots.length * EF);
  private readonly serviceMinutes = new MinuteArrays(() => this.serviceList.length * SF);

  constructor(
    private readonly slots: readonly EdgeSlot[],
    private readonly serviceList: readonly GraphService[],
    /** Keep per-minute counters as well (minute = floor(startUs / 60e6)). */
    readonly byMinute = true,
  ) {
    this.edgeCounters = new Float64Array(slots.length * EF);
    this.serviceCounters = new Float64Array(serviceList.length * SF);
  }

  /** connected / assembled traces (1 when nothing was generated). */
  connectivityRate(): number {
    return this.traces === 0 ? 1 : this.connectedTraces / this.traces;
  }

  /** Edges with at least one call, keyed `${client}|${server}|${type}`. */
  get edges(): Map<string, TruthEdge> {
    return this.edgeMap(this.edgeCounters);
  }

  /** Services with at least one emitted span, keyed by service name. */
  get services(): Map<string, TruthService> {
    return this.serviceMap(this.serviceCounters);
  }

  /** Per minute (floor(start of the client half, else the server half, in us / 60e6)). */
  edgesByMinute(): Map<number, Map<string, TruthEdge>> {
    const out = new Map<number, Map<string, TruthEdge>>();
    for (const m of [...this.edgeMinutes.byMinute.keys()].sort((a, b) => a - b)) out.set(m, this.edgeMap(this.edgeMinutes.byMinute.get(m)!));
    return out;
  }

  /** Per minute of each span's own start (a duplicate: the copy's start, the same). */
  servicesByMinute(): Map<number, Map<string, TruthService>> {
    const out = new Map<number, Map<string, TruthService>>();
    for (const m of [...this.serviceMinutes.byMinute.keys()].sort((a, b) => a - b)) out.set(m, this.serviceMap(this.serviceMinutes.byMinute.get(m)!));
    return out;
  }

  // ---- hot-path recording (generator only): numbers in, nothing allocated but a new minute ----

  /** One call on edge `slot`; `clientDur`/`serverDur` < 0 when that half was not emitted. */
  recordCall(
    slot: number,
    startUs: number,
    clientDur: number,
    clientFailed: boolean,
    serverDur: number,
    serverFailed: boolean,
    lag: number,
  ): void {
    addCall(this.edgeCounters, slot * EF, clientDur, clientFailed, serverDur, serverFailed, lag);
    if (this.byMinute) addCall(this.edgeMinutes.at(startUs), slot * EF, clientDur, clientFailed, serverDur, serverFailed, lag);
  }

  /** Adds 1 to service counter `field` (S_*) in the span's minute. */
  recordService(service: number, field: number, startUs: number): void {
    this.serviceCounters[service * SF + field]++;
    if (this.byMinute) this.serviceMinutes.at(startUs)[service * SF + field]++;
  }

  private edgeMap(c: Float64Array): Map<string, TruthEdge> {
    const out = new Map<string, TruthEdge>();
    for (const s of this.slots) {
      const o = s.index * EF;
      if (c[o + E_CALLS] === 0) continue;
      out.set(s.key, {
        client: s.client,
        server: s.server,
        type: s.type,
        calls: c[o + E_CALLS],
        clientCalls: c[o + E_CLIENT_CALLS],
        serverCalls: c[o + E_SERVER_CALLS],
        paired: c[o + E_PAIRED],
        failed: c[o + E_FAILED],
        failedClient: c[o + E_FAILED_CLIENT],
        failedServer: c[o + E_FAILED_SERVER],
        clientDurationSumUs: c[o + E_CLIENT_SUM],
        clientDurationMaxUs: c[o + E_CLIENT_MAX],
        serverDurationSumUs: c[o + E_SERVER_SUM],
        serverDurationMaxUs: c[o + E_SERVER_MAX],
        lagCount: c[o + E_LAG_COUNT],
        lagSumUs: c[o + E_LAG_SUM],
        lagMaxUs: c[o + E_LAG_MAX],
      });
    }
    return out;
  }

  private serviceMap(c: Float64Array): Map<string, TruthService> {
    const out = new Map<string, TruthService>();
    for (const s of this.serviceList) {
      const o = s.index * SF;
      if (c[o + S_SPANS] === 0 && c[o + S_DUPLICATES] === 0) continue;
      out.set(s.name, {
        spans: c[o + S_SPANS],
        orphanSpans: c[o + S_ORPHANS],
        unpairedClient: c[o + S_UNPAIRED_CLIENT],
        unpairedServer: c[o + S_UNPAIRED_SERVER],
        duplicateSpans: c[o + S_DUPLICATES],
        errorSpans: c[o + S_ERRORS],
        serverSpans: c[o + S_SERVER_SPANS],
      });
    }
    return out;
  }
}

function addCall(
  c: Float64Array,
  o: number,
  clientDur: number,
  clientFailed: boolean,
  serverDur: number,
  serverFailed: boolean,
  lag: number,
): void {
  c[o + E_CALLS]++;
  if (clientDur >= 0) {
    c[o + E_CLIENT_CALLS]++;
    c[o + E_CLIENT_SUM] += clientDur;
    if (clientDur > c[o + E_CLIENT_MAX]) c[o + E_CLIENT_MAX] = clientDur;
    if (clientFailed) c[o + E_FAILED_CLIENT]++;
  }
  if (serverDur >= 0) {
    c[o + E_SERVER_CALLS]++;
    c[o + E_SERVER_SUM] += serverDur;
    if (serverDur > c[o + E_SERVER_MAX]) c[o + E_SERVER_MAX] = serverDur;
    if (serverFailed) c[o + E_FAILED_SERVER]++;
  }
  if (clientDur >= 0 && serverDur >= 0) c[o + E_PAIRED]++;
  if ((clientDur >= 0 && clientFailed) || (serverDur >= 0 && serverFailed)) c[o + E_FAILED]++;
  if (lag >= 0) {
    c[o + E_LAG_COUNT]++;
    c[o + E_LAG_SUM] += lag;
    if (lag > c[o + E_LAG_MAX]) c[o + E_LAG_MAX] = lag;
  }
}

/** Counter arrays per event-time minute, with the last minute's array cached (spans come in order). */
class MinuteArrays {
  readonly byMinute = new Map<number, Float64Array>();
  private lastMinute = NaN;
  private last: Float64Array | undefined;

  constructor(private readonly size: () => number) {}

  at(startUs: number): Float64Array {
    const m = Math.floor(startUs / MINUTE_US);
    if (m === this.lastMinute) return this.last!;
    let a = this.byMinute.get(m);
    if (a === undefined) {
      a = new Float64Array(this.size());
      this.byMinute.set(m, a);
    }
    this.lastMinute = m;
    this.last = a;
    return a;
  }
}
