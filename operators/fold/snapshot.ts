/**
 * Checkpoints of the fold's state, per input partition: its watermark, pending traces, spans and
 * call halves, assembled-trace memory and timers, plus the names its intern ids stand for and the
 * operation / virtual-node budgets. A checkpoint restores into another process (other intern ids:
 * they are remapped by name).
 *
 * Shutdown and partition revocation save these instead of closing windows (DESIGN 4), so the next
 * owner resumes exactly; together with the deltas already emitted and the offsets, stored in one
 * transaction, that is what makes aggregates exactly-once.
 *
 * **Incremental.** Each checkpoint writes one *increment* per partition: the entries of the four
 * tables (traces, spans, calls, assembled) changed since the previous increment (HashIndex DIRTY
 * marks), plus every entry whose latest write is `chain` or more increments old (so no entry's
 * latest value stays in an old increment for long). The small parts (scalars, names, budgets, the
 * trace timers, the assembled ring) are complete in every increment; the call timers are rebuilt
 * on restore from the calls' deadlines. `keepFrom` is the oldest increment still holding some
 * entry's latest value: the increments keepFrom..seq are the checkpoint, and a store drops the
 * rest. The first increment of a partition (new state, restored state, or after a checkpoint that
 * was not stored) is complete: keepFrom = itself. A restore applies the chain in order and rebuilds
 * the hash tables and free lists from the entries' LIVE flags.
 *
 * At steady state an entry is written when it is created, when it changes, when it is removed,
 * and again only if it outlives `chain` increments: an increment is about what changed since
 * the previous one (new spans and the entries they touch), where a complete snapshot writes all
 * pending state every time.
 *
 *   increment = u32 MAGIC | u32 headerLength | f64 seq | f64 keepFrom | header JSON | arrays
 *               (each array 8-byte aligned, in header order)
 *   chain     = increment(keepFrom) increment(keepFrom + 1) ... increment(seq), concatenated
 *
 * Version 1 (one complete blob per partition, `u32 headerLength | header JSON | arrays`) is still
 * read.
 */
import type { Fold } from "./fold.js";
import { DIRTY, LIVE, type HashIndex } from "./hash-index.js";
import { PartitionState } from "./partition-state.js";
import type { TimerHeap } from "./timer-heap.js";

const MAGIC = 0x32534654; // "TFS2", little-endian
const PREFIX = 24;
type Typed = Uint8Array | Uint32Array | Int32Array | Float64Array;
const CTORS = { Uint8Array, Uint32Array, Int32Array, Float64Array } as const;
type CtorName = keyof typeof CTORS;

const INDEXES = ["traces", "spans", "calls", "assembled"] as const;
type IndexName = (typeof INDEXES)[number];
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

/** Per table in an increment: its high-water mark, and how many entries it writes (ids listed). */
interface TablePart {
  next: number;
  written: number;
}

interface Header {
  version: 2;
  partition: number;
  scalars: Record<string, number>;
  names: string[];
  operationBudget: Array<[string, string]>;
  virtualBudget: Array<[string, string]>;
  tables: Record<IndexName, TablePart>;
  arrays: Array<{ name: string; type: CtorName; length: number }>;
}

/** What one increment wrote (for metrics). */
export interface IncrementInfo {
  seq: number;
  keepFrom: number;
  complete: boolean;
  /** Table entries written. */
  entries: number;
  bytes: number;
}

/** seq and keepFrom of an increment (from its fixed prefix), or null for a version-1 blob. */
export function incrementOf(blob: Uint8Array): { seq: number; keepFrom: number } | null {
  if (blob.byteLength < PREFIX) return null;
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) return null;
  return { seq: dv.getFloat64(8, true), keepFrom: dv.getFloat64(16, true) };
}

const strideOf = (column: string) => (column === "sPid" ? 2 : 1);

/**
 * The partition's next increment. `chain`: an entry whose latest write is this many increments old
 * is written again (1: every increment is complete). Clears the DIRTY marks: if the increment is
 * not stored, the caller must set `snapFull` on the partition (FoldOperator.checkpointStored does).
 */
export function snapshotPartition(fold: Fold, partition: number, chain = 1, info?: IncrementInfo): Uint8Array {
  const P = fold.partition(partition);
  const seq = P.snapSeq + 1;
  const complete = P.snapFull || chain <= 1;
  const aged = complete ? seq : seq - Math.floor(chain); // written at or before this: write again

  const arrays: Array<{ name: string; type: CtorName; length: number; fill: (dst: Typed) => void }> = [];
  const tables = {} as Record<IndexName, TablePart>;
  let entries = 0;
  let keepFrom = seq;
  for (const ix of INDEXES) {
    const index = P[ix] as HashIndex;
    const next = index.highWater;
    const flags = index.flags;
    const written = index.written;
    const scratch = new Int32Array(next);
    // a complete increment of a mostly live table copies its columns whole (dead entries too);
    // otherwise dead entries are left out: a restore starts from empty columns, where an entry
    // no increment of the chain mentions is dead. So a dead entry is written once, by the
    // increment after its removal (for a chain that still holds it live), and it neither ages nor
    // holds keepFrom back. Its generation is not restored: restore drops the stale timers.
    const whole = complete && index.size >= 0.75 * next;
    let n = 0;
    for (let e = 0; e < next; e++) {
      const f = flags[e];
      if ((f & LIVE) === 0 && !whole && (complete || (f & DIRTY) === 0)) {
        flags[e] = 0;
        continue;
      }
      if ((f & DIRTY) !== 0 || written[e] <= aged) {
        flags[e] = f & LIVE;
        written[e] = seq;
        scratch[n++] = e;
      } else if (written[e] < keepFrom) keepFrom = written[e];
    }
    const ids = scratch.subarray(0, n);
    tables[ix] = { next, written: n };
    entries += n;
    arrays.push({ name: `${ix}.ids`, type: "Int32Array", length: n, fill: (dst) => dst.set(ids) });
    const perEntry: Array<[string, Typed, number]> = [
      ["keys", index.keys, index.words],
      ["hashes", index.hashes, 1],
      ["flags", flags, 1],
      ...COLUMNS[ix].map((c) => [c, (P as unknown as Cols)[c], strideOf(c)] as [string, Typed, number]),
    ];
    // every entry written (a complete increment): the ids are 0..n-1, so the columns copy whole
    const all = n === next;
    for (const [name, src, stride] of perEntry)
      arrays.push({ name: `${ix}.${name}`, type: src.constructor.name as CtorName, length: n * stride, fill: (dst) => (all ? dst.set(src.subarray(0, n * stride)) : gather(dst, src, ids, stride)) });
  }
  const tt = P.traceTimers;
  arrays.push({ name: "traceTimers.deadline", type: "Float64Array", length: tt.size, fill: (dst) => dst.set(tt.deadline.subarray(0, tt.size)) });
  arrays.push({ name: "traceTimers.entry", type: "Int32Array", length: tt.size, fill: (dst) => dst.set(tt.entry.subarray(0, tt.size)) });
  arrays.push({ name: "traceTimers.gen", type: "Int32Array", length: tt.size, fill: (dst) => dst.set(tt.gen.subarray(0, tt.size)) });
  arrays.push({
    name: "aRing",
    type: "Int32Array",
    length: P.aLen,
    fill: (dst) => {
      for (let k = 0; k < P.aLen; k++) dst[k] = P.aRing[(P.aHead + k) % P.aRing.length];
    },
  });

  const scalars: Record<string, number> = {};
  for (const k of SCALARS) scalars[k] = P[k];
  const names: string[] = [];
  for (let id = 0; id < fold.interner.size; id++) names.push(fold.interner.name(id));
  const pairs = (b: Fold["operationBudget"]) => b.pairs().map(([o, n]) => [fold.interner.name(o), fold.interner.name(n)] as [string, string]);
  const header: Header = {
    version: 2,
    partition,
    scalars,
    names,
    operationBudget: pairs(fold.operationBudget),
    virtualBudget: pairs(fold.virtualBudget),
    tables,
    arrays: arrays.map(({ name, type, length }) => ({ name, type, length })),
  };
  // JSON cannot carry Infinity: encode non-finite scalars as strings
  const headerBytes = new TextEncoder().encode(JSON.stringify(header, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)));
  let size = align8(PREFIX + headerBytes.length);
  for (const a of arrays) size += align8(a.length * CTORS[a.type].BYTES_PER_ELEMENT);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, headerBytes.length, true);
  dv.setFloat64(8, seq, true);
  dv.setFloat64(16, keepFrom, true);
  out.set(headerBytes, PREFIX);
  let at = align8(PREFIX + headerBytes.length);
  for (const a of arrays) {
    const C = CTORS[a.type];
    a.fill(new C(out.buffer, at, a.length) as Typed);
    at += align8(a.length * C.BYTES_PER_ELEMENT);
  }
  P.snapSeq = seq;
  P.snapFull = false;
  if (info) Object.assign(info, { seq, keepFrom, complete, entries, bytes: size });
  return out;
}

function gather(dst: Typed, src: Typed, ids: Int32Array, stride: number): void {
  if (stride === 1) {
    for (let k = 0; k < ids.length; k++) dst[k] = src[ids[k]];
    return;
  }
  for (let k = 0; k < ids.length; k++) {
    const s = ids[k] * stride;
    const d = k * stride;
    for (let j = 0; j < stride; j++) dst[d + j] = src[s + j];
  }
}

function scatter(dst: Typed, src: Typed, ids: Int32Array, stride: number): void {
  if (stride === 1) {
    for (let k = 0; k < ids.length; k++) dst[ids[k]] = src[k];
    return;
  }
  for (let k = 0; k < ids.length; k++) {
    const d = ids[k] * stride;
    const s = k * stride;
    for (let j = 0; j < stride; j++) dst[d + j] = src[s + j];
  }
}

interface Parsed {
  seq: number;
  keepFrom: number;
  header: Header;
  arrays: Map<string, Typed>;
}

/** Splits a chain into its increments (views into `bytes`, copied where misaligned). */
function parseChain(bytes: Uint8Array): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset + at, bytes.byteLength - at);
    if (dv.getUint32(0, true) !== MAGIC) throw new Error(`fold checkpoint: increment ${out.length + 1} of the chain is damaged (bad magic at byte ${at})`);
    const hlen = dv.getUint32(4, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(at + PREFIX, at + PREFIX + hlen)), (_k, v) =>
      v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v,
    ) as Header;
    if (header.version !== 2) throw new Error(`fold snapshot version ${header.version} is not supported (expected 2)`);
    const arrays = new Map<string, Typed>();
    let p = at + align8(PREFIX + hlen);
    for (const a of header.arrays) {
      const C = CTORS[a.type];
      const n = a.length * C.BYTES_PER_ELEMENT;
      if (p + n > bytes.byteLength) throw new Error("fold checkpoint: the chain ends inside an increment (truncated)");
      const abs = bytes.byteOffset + p;
      arrays.set(a.name, (abs % C.BYTES_PER_ELEMENT === 0 ? new C(bytes.buffer as ArrayBuffer, abs, a.length) : new C(bytes.slice(p, p + n).buffer)) as Typed);
      p += align8(n);
    }
    out.push({ seq: dv.getFloat64(8, true), keepFrom: dv.getFloat64(16, true), header, arrays });
    at = p;
  }
  return out;
}

/**
 * Restores a partition's state into `fold` (replacing whatever that partition held) from its
 * checkpoint: a chain of increments, or a version-1 blob. Returns the partition.
 */
export function restorePartition(fold: Fold, bytes: Uint8Array): number {
  if (incrementOf(bytes) === null) return restoreV1(fold, bytes);
  const all = parseChain(bytes);
  const last = all[all.length - 1];
  // a store may still hold increments from before keepFrom: they are superseded
  const chain = all.filter((x) => x.seq >= last.keepFrom);
  for (let k = 0; k < chain.length; k++) {
    if (chain[k].seq !== last.keepFrom + k || chain[k].header.partition !== last.header.partition)
      throw new Error(`fold checkpoint of partition ${last.header.partition}: the chain is incomplete (increments ${chain.map((x) => x.seq).join(",")}, needs ${last.keepFrom}..${last.seq})`);
  }
  const P = fold.replacePartition(last.header.partition, new PartitionState(last.header.partition));
  for (const inc of chain) {
    for (const ix of INDEXES) {
      const index = P[ix] as HashIndex;
      index.reserve(inc.header.tables[ix].next);
      const ids = inc.arrays.get(`${ix}.ids`) as Int32Array;
      scatter(index.keys, inc.arrays.get(`${ix}.keys`)!, ids, index.words);
      scatter(index.hashes, inc.arrays.get(`${ix}.hashes`)!, ids, 1);
      scatter(index.flags, inc.arrays.get(`${ix}.flags`)!, ids, 1);
      for (const c of COLUMNS[ix]) scatter((P as unknown as Cols)[c], inc.arrays.get(`${ix}.${c}`)!, ids, strideOf(c));
    }
  }
  const h = last.header;
  for (const ix of INDEXES) (P[ix] as HashIndex).rebuild(h.tables[ix].next);
  const a = last.arrays;
  // trace timers of live traces only: a stale one (its trace assembled since) may name an entry
  // whose generation the chain does not carry (dead entries are not written)
  const td = a.get("traceTimers.deadline") as Float64Array;
  const te = a.get("traceTimers.entry") as Int32Array;
  const tg = a.get("traceTimers.gen") as Int32Array;
  for (let k = 0; k < te.length; k++) if ((P.traces.flags[te[k]] & LIVE) !== 0 && P.tGen[te[k]] === tg[k]) P.traceTimers.push(td[k], te[k], tg[k]);
  // call timers: one per open call, at its deadline (a timer that fired early would re-arm there)
  for (let c = 0; c < P.calls.highWater; c++) if ((P.calls.flags[c] & LIVE) !== 0) P.callTimers.push(P.cDeadline[c], c, P.cGen[c]);
  adopt(fold, P, h, last.arrays.get("aRing") as Int32Array, h.tables.spans.next);
  P.nextDeadlineUs = Math.min(P.callTimers.top, P.traceTimers.top, P.nextAssembledExpiry);
  P.snapSeq = last.seq;
  P.snapFull = true;
  return h.partition;
}


// ------------------------------------------------------------------------------ version 1

interface HeaderV1 {
  version: number;
  partition: number;
  scalars: Record<string, number>;
  names: string[];
  operationBudget: Array<[string, string]>;
  virtualBudget: Array<[string, string]>;
  arrays: Array<{ name: string; type: CtorName; length: number }>;
}

/** A version-1 blob (one complete snapshot, written before incremental checkpoints). */
function restoreV1(fold: Fold, blob: Uint8Array): number {
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const hlen = dv.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(blob.subarray(4, 4 + hlen)), (_k, v) =>
    v === "Infinity" ? Infinity : v === "-Infinity" ? -Infinity : v,
  ) as HeaderV1;
  if (header.version !== 1) throw new Error(`fold snapshot version ${header.version} is not supported (expected 1)`);
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
  adopt(fold, P, header, arrays.get("aRing") as Int32Array, header.scalars["spans.next"]);
  return header.partition;
}

/**
 * What both versions restore alike: the assembled ring, the scalars, the names (the writer's
 * intern ids -> this process's, in the span columns below `spanNext`) and the budgets.
 */
function adopt(fold: Fold, P: PartitionState, h: Pick<Header, "scalars" | "names" | "operationBudget" | "virtualBudget">, ring: Int32Array, spanNext: number): void {
  if (P.aRing.length < ring.length) P.aRing = new Int32Array(Math.max(ring.length, P.assembled.capacity));
  P.aRing.set(ring);
  P.aHead = 0;
  P.aLen = ring.length;
  for (const k of SCALARS) P[k] = h.scalars[k];
  const map = new Int32Array(h.names.length);
  for (let id = 0; id < h.names.length; id++) map[id] = fold.interner.internString(h.names[id]);
  for (const c of NAME_COLUMNS) {
    const col = (P as unknown as Cols)[c] as Int32Array;
    for (let e = 0; e < spanNext; e++) col[e] = map[col[e]];
  }
  for (const [o, n] of h.operationBudget) fold.operationBudget.admit(fold.interner.internString(o), fold.interner.internString(n));
  for (const [o, n] of h.virtualBudget) fold.virtualBudget.admit(fold.interner.internString(o), fold.interner.internString(n));
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
