/**
 * Checkpoints of the fold's state, one self-contained blob per input partition: its watermark,
 * pending traces, spans and call halves, assembled-trace memory and timers, byte for byte from the
 * typed arrays, plus the names its intern ids stand for and the operation / virtual-node budgets.
 * A blob restores into another process (other intern ids: they are remapped by name).
 *
 * Shutdown and partition revocation save these instead of closing windows (DESIGN 4), so the next
 * owner resumes exactly; together with the deltas already emitted and the offsets, stored in one
 * transaction, that is what makes aggregates exactly-once.
 *
 *   blob = u32 headerLength | header JSON | arrays (each 8-byte aligned, in header order)
 */
import type { Fold } from "./fold.js";
import type { HashIndex } from "./hash-index.js";
import { PartitionState } from "./partition-state.js";
import type { TimerHeap } from "./timer-heap.js";

const VERSION = 1;
type Typed = Uint8Array | Uint32Array | Int32Array | Float64Array;
const CTORS = { Uint8Array, Uint32Array, Int32Array, Float64Array } as const;

interface Header {
  version: number;
  partition: number;
  scalars: Record<string, number>;
  /** Intern names, by the old id, of every name the state refers to. */
  names: string[];
  /** Budget pairs [owner name, admitted name]. */
  operationBudget: Array<[string, string]>;
  virtualBudget: Array<[string, string]>;
  arrays: Array<{ name: string; type: keyof typeof CTORS; length: number }>;
}

const INDEXES = ["traces", "spans", "calls", "assembled"] as const;
const TIMERS = ["callTimers", "traceTimers"] as const;
const COLUMNS = {
  traces: ["tFirst", "tLast", "tCount", "tMinStart", "tLastEnd", "tGen"],
  spans: ["sNext", "sPid", "sFlags", "sKind", "sState", "sService", "sOp", "sPeer", "sAddr", "sMsgDest", "sStart", "sDur", "sCall", "sNextHalf"],
  calls: ["cClient", "cServers", "cPaired", "cDeadline", "cGen"],
  assembled: ["aExpire"],
} as const;
/** Columns holding intern ids (remapped on restore). */
const NAME_COLUMNS = ["sService", "sOp", "sPeer", "sAddr", "sMsgDest"] as const;
const SCALARS = ["maxEndUs", "watermarkUs", "lastInputMs", "nextDeadlineUs"] as const;

type Cols = Record<string, Typed>;

export function snapshotPartition(fold: Fold, partition: number): Uint8Array {
  const P = fold.partition(partition);
  const arrays: Array<[string, Typed]> = [];
  for (const ix of INDEXES) {
    const st = (P[ix] as HashIndex).exportState();
    arrays.push([`${ix}.keys`, st.keys], [`${ix}.hashes`, st.hashes], [`${ix}.table`, st.table], [`${ix}.free`, st.free]);
    const per = (name: string) => (name === "sPid" ? 2 : 1);
    for (const c of COLUMNS[ix]) arrays.push([c, (P as unknown as Cols)[c].slice(0, st.next * per(c))]);
  }
  for (const t of TIMERS) {
    const st = (P[t] as TimerHeap).exportState();
    arrays.push([`${t}.deadline`, st.deadline], [`${t}.entry`, st.entry], [`${t}.gen`, st.gen]);
  }
  const ring = new Int32Array(P.aLen);
  for (let k = 0; k < P.aLen; k++) ring[k] = P.aRing[(P.aHead + k) % P.aRing.length];
  arrays.push(["aRing", ring]);
  const scalars: Record<string, number> = {};
  for (const k of SCALARS) scalars[k] = P[k];
  for (const ix of INDEXES) {
    const st = (P[ix] as HashIndex).exportState();
    scalars[`${ix}.next`] = st.next;
    scalars[`${ix}.size`] = st.size;
  }
  const names: string[] = [];
  for (let id = 0; id < fold.interner.size; id++) names.push(fold.interner.name(id));
  const pairs = (b: Fold["operationBudget"]) => b.pairs().map(([o, n]) => [fold.interner.name(o), fold.interner.name(n)] as [string, string]);
  const header: Header = {
    version: VERSION,
    partition,
    scalars: Object.fromEntries(Object.entries(scalars).map(([k, v]) => [k, v])),
    names,
    operationBudget: pairs(fold.operationBudget),
    virtualBudget: pairs(fold.virtualBudget),
    arrays: arrays.map(([name, a]) => ({ name, type: a.constructor.name as keyof typeof CTORS, length: a.length })),
  };
  // JSON cannot carry Infinity: encode non-finite scalars as strings
  const headerBytes = new TextEncoder().encode(JSON.stringify(header, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)));
  let size = align8(4 + headerBytes.length);
  for (const [, a] of arrays) size += align8(a.byteLength);
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, headerBytes.length, true);
  out.set(headerBytes, 4);
  let at = align8(4 + headerBytes.length);
  for (const [, a] of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += align8(a.byteLength);
  }
  return out;
}

/** Restores a partition's state into `fold` (replacing whatever that partition held). */
export function restorePartition(fold: Fold, blob: Uint8Array): number {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const hlen = dv.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(blob.subarray(4, 4 + hlen)), (_k, v) =>
    v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v,
  ) as Header;
  if (header.version !== VERSION) throw new Error(`fold snapshot version ${header.version} is not supported (expected ${VERSION})`);
  const arrays = new Map<string, Typed>();
  let at = align8(4 + hlen);
  for (const a of header.arrays) {
    const C = CTORS[a.type];
    const bytes = a.length * C.BYTES_PER_ELEMENT;
    const copy = new Uint8Array(bytes);
    copy.set(blob.subarray(at, at + bytes));
    arrays.set(a.name, new C(copy.buffer) as Typed);
    at += align8(bytes);
  }
  const P = fold.replacePartition(header.partition, new PartitionState(header.partition));
  for (const ix of INDEXES) {
    (P[ix] as HashIndex).importState({
      keys: arrays.get(`${ix}.keys`) as Uint32Array,
      hashes: arrays.get(`${ix}.hashes`) as Int32Array,
      table: arrays.get(`${ix}.table`) as Int32Array,
      free: arrays.get(`${ix}.free`) as Int32Array,
      next: header.scalars[`${ix}.next`],
      size: header.scalars[`${ix}.size`],
    });
    for (const c of COLUMNS[ix]) (P as unknown as Cols)[c].set(arrays.get(c)!);
  }
  for (const t of TIMERS)
    (P[t] as TimerHeap).importState({ deadline: arrays.get(`${t}.deadline`) as Float64Array, entry: arrays.get(`${t}.entry`) as Int32Array, gen: arrays.get(`${t}.gen`) as Int32Array });
  const ring = arrays.get("aRing") as Int32Array;
  P.aRing.set(ring);
  P.aHead = 0;
  P.aLen = ring.length;
  for (const k of SCALARS) P[k] = header.scalars[k];
  // names: old id -> this process's id
  const map = new Int32Array(header.names.length);
  for (let id = 0; id < header.names.length; id++) map[id] = fold.interner.internString(header.names[id]);
  const next = header.scalars["spans.next"];
  for (const c of NAME_COLUMNS) {
    const col = (P as unknown as Cols)[c] as Int32Array;
    for (let e = 0; e < next; e++) col[e] = map[col[e]];
  }
  for (const [o, n] of header.operationBudget) fold.operationBudget.admit(fold.interner.internString(o), fold.interner.internString(n));
  for (const [o, n] of header.virtualBudget) fold.virtualBudget.admit(fold.interner.internString(o), fold.interner.internString(n));
  return header.partition;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
