/**
 * SpanBatch: the compact fold record, column by column.
 *
 * Every decoder appends rows here and every operator reads them; no per-span object exists on the
 * hot path. Ids stay numbers: a 128-bit trace id is four uint32 words (big-endian order of its 16
 * bytes), a 64-bit span id two words. Names are intern ids (see intern.ts; 0 = absent). Times are
 * microseconds since the epoch in a float64, which is exact up to 2^53 us (year 2255): nanosecond
 * timestamps do not fit a double, microseconds do.
 *
 * A batch belongs to one input partition (Kafka hands batches per partition; the fold keeps its
 * state per partition). Rows are ~100 bytes; the batch grows by doubling and is reused via reset().
 */
import type { Interner } from "./intern.js";

/** OTLP wire numbers for span kind (not the JS API's enum, which differs). */
export const KIND_UNSPECIFIED = 0;
export const KIND_INTERNAL = 1;
export const KIND_SERVER = 2;
export const KIND_CLIENT = 3;
export const KIND_PRODUCER = 4;
export const KIND_CONSUMER = 5;

/** Row flags. */
export const F_ERROR = 1; // the half failed by its instrumentation's own marker
export const F_HAS_PARENT = 2; // parent span id is set (pid words are meaningful)
export const F_SHARED = 4; // Zipkin shared span: the server half reuses the client's span id
export const F_HAS_LINK = 8; // first span link (lnkTid/lnkSid) is set
export const F_NO_START = 16; // no timestamp in the input
export const F_NO_DURATION = 32; // no duration in the input

export class SpanBatch {
  /** Input partition the rows came from. */
  partition = 0;
  /** Source offsets of the first and last message decoded into this batch (-1: unknown). */
  firstOffset = -1;
  lastOffset = -1;
  length = 0;
  capacity: number;
  tid: Uint32Array;
  sid: Uint32Array;
  pid: Uint32Array;
  lnkTid: Uint32Array;
  lnkSid: Uint32Array;
  startUs: Float64Array;
  durUs: Float64Array;
  kind: Uint8Array;
  flags: Uint8Array;
  /** Intern ids. */
  service: Int32Array;
  name: Int32Array;
  /** peer.service / service.peer.name / Zipkin remoteEndpoint.serviceName */
  peer: Int32Array;
  /** server.address (or the older net.peer.name) */
  addr: Int32Array;
  /** db.system.name / db.system */
  dbSystem: Int32Array;
  /** db.namespace / db.name */
  dbNamespace: Int32Array;
  /** messaging.destination.name / messaging.destination */
  msgDest: Int32Array;
  /** http.route */
  route: Int32Array;

  constructor(
    readonly interner: Interner,
    capacity = 1024,
  ) {
    this.capacity = capacity;
    this.tid = new Uint32Array(capacity * 4);
    this.sid = new Uint32Array(capacity * 2);
    this.pid = new Uint32Array(capacity * 2);
    this.lnkTid = new Uint32Array(capacity * 4);
    this.lnkSid = new Uint32Array(capacity * 2);
    this.startUs = new Float64Array(capacity);
    this.durUs = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.service = new Int32Array(capacity);
    this.name = new Int32Array(capacity);
    this.peer = new Int32Array(capacity);
    this.addr = new Int32Array(capacity);
    this.dbSystem = new Int32Array(capacity);
    this.dbNamespace = new Int32Array(capacity);
    this.msgDest = new Int32Array(capacity);
    this.route = new Int32Array(capacity);
  }

  reset(partition = 0): void {
    this.partition = partition;
    this.firstOffset = this.lastOffset = -1;
    this.length = 0;
  }

  /**
   * Appends a zeroed row and returns its index. Decoders fill the columns in place.
   */
  append(): number {
    if (this.length === this.capacity) this.grow(this.capacity * 2);
    const i = this.length++;
    const t = i * 4;
    this.tid[t] = this.tid[t + 1] = this.tid[t + 2] = this.tid[t + 3] = 0;
    this.lnkTid[t] = this.lnkTid[t + 1] = this.lnkTid[t + 2] = this.lnkTid[t + 3] = 0;
    const s = i * 2;
    this.sid[s] = this.sid[s + 1] = this.pid[s] = this.pid[s + 1] = 0;
    this.lnkSid[s] = this.lnkSid[s + 1] = 0;
    this.startUs[i] = 0;
    this.durUs[i] = 0;
    this.kind[i] = 0;
    this.flags[i] = 0;
    this.service[i] = this.name[i] = this.peer[i] = this.addr[i] = 0;
    this.dbSystem[i] = this.dbNamespace[i] = this.msgDest[i] = this.route[i] = 0;
    return i;
  }

  /** Drops rows from `length` on (used to roll back a message that failed to decode). */
  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }

  /** A compact copy (capacity = length) that owns its memory. */
  clone(): SpanBatch {
    const n = Math.max(1, this.length);
    const c = new SpanBatch(this.interner, n);
    c.partition = this.partition;
    c.length = this.length;
    const cols = ["tid", "sid", "pid", "lnkTid", "lnkSid", "startUs", "durUs", "kind", "flags", "service", "name", "peer", "addr", "dbSystem", "dbNamespace", "msgDest", "route"] as const;
    for (const k of cols) {
      const per = k === "tid" || k === "lnkTid" ? 4 : k === "sid" || k === "pid" || k === "lnkSid" ? 2 : 1;
      (c[k] as Uint32Array).set((this[k] as Uint32Array).subarray(0, this.length * per));
    }
    return c;
  }

  /** Copies row `i` of `src` to the end of this batch (same interner required). */
  copyRowFrom(src: SpanBatch, i: number): number {
    const j = this.append();
    this.tid.set(src.tid.subarray(i * 4, i * 4 + 4), j * 4);
    this.lnkTid.set(src.lnkTid.subarray(i * 4, i * 4 + 4), j * 4);
    this.sid[j * 2] = src.sid[i * 2];
    this.sid[j * 2 + 1] = src.sid[i * 2 + 1];
    this.pid[j * 2] = src.pid[i * 2];
    this.pid[j * 2 + 1] = src.pid[i * 2 + 1];
    this.lnkSid[j * 2] = src.lnkSid[i * 2];
    this.lnkSid[j * 2 + 1] = src.lnkSid[i * 2 + 1];
    this.startUs[j] = src.startUs[i];
    this.durUs[j] = src.durUs[i];
    this.kind[j] = src.kind[i];
    this.flags[j] = src.flags[i];
    this.service[j] = src.service[i];
    this.name[j] = src.name[i];
    this.peer[j] = src.peer[i];
    this.addr[j] = src.addr[i];
    this.dbSystem[j] = src.dbSystem[i];
    this.dbNamespace[j] = src.dbNamespace[i];
    this.msgDest[j] = src.msgDest[i];
    this.route[j] = src.route[i];
    return j;
  }

  /** Makes room for n rows (keeps the rows held). */
  ensureCapacity(n: number): void {
    if (n > this.capacity) this.grow(Math.max(n, this.capacity * 2));
  }

  private grow(n: number): void {
    this.capacity = n;
    this.tid = growU32(this.tid, n * 4);
    this.sid = growU32(this.sid, n * 2);
    this.pid = growU32(this.pid, n * 2);
    this.lnkTid = growU32(this.lnkTid, n * 4);
    this.lnkSid = growU32(this.lnkSid, n * 2);
    this.startUs = growF64(this.startUs, n);
    this.durUs = growF64(this.durUs, n);
    this.kind = growU8(this.kind, n);
    this.flags = growU8(this.flags, n);
    this.service = growI32(this.service, n);
    this.name = growI32(this.name, n);
    this.peer = growI32(this.peer, n);
    this.addr = growI32(this.addr, n);
    this.dbSystem = growI32(this.dbSystem, n);
    this.dbNamespace = growI32(this.dbNamespace, n);
    this.msgDest = growI32(this.msgDest, n);
    this.route = growI32(this.route, n);
  }
}

function growU32(a: Uint32Array, n: number): Uint32Array {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}
function growI32(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}
function growF64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}
function growU8(a: Uint8Array, n: number): Uint8Array {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}

/** Lower-case hex of a trace id (output only: never on the hot path). */
export function traceIdHex(words: Uint32Array, at: number): string {
  let s = "";
  for (let k = 0; k < 4; k++) s += words[at + k].toString(16).padStart(8, "0");
  return s;
}

/** Lower-case hex of a span id (output only). */
export function spanIdHex(words: Uint32Array, at: number): string {
  return words[at].toString(16).padStart(8, "0") + words[at + 1].toString(16).padStart(8, "0");
}

/**
 * Parses hex into `n` big-endian uint32 words at out[at..]. Shorter ids are left-padded with zeros
 * (a 64-bit Zipkin/Jaeger trace id becomes the low half of the 128-bit id, as Zipkin does).
 * Returns false when the text is not hex or too long.
 */
export function parseHexWords(hex: string, out: Uint32Array, at: number, n: number): boolean {
  const len = hex.length;
  if (len === 0 || len > n * 8) return false;
  for (let k = 0; k < n; k++) out[at + k] = 0;
  // walk from the right, 8 hex digits per word
  let word = n - 1;
  let end = len;
  while (end > 0) {
    const start = end > 8 ? end - 8 : 0;
    let v = 0;
    for (let i = start; i < end; i++) {
      const c = hex.charCodeAt(i);
      let d: number;
      if (c >= 48 && c <= 57) d = c - 48;
      else if (c >= 97 && c <= 102) d = c - 87;
      else if (c >= 65 && c <= 70) d = c - 55;
      else return false;
      v = v * 16 + d;
    }
    out[at + word] = v >>> 0;
    word--;
    end = start;
  }
  return true;
}

/** Reads `n` big-endian words from bytes[start..start+len), left-padding short ids with zeros. */
export function bytesToWords(bytes: Uint8Array, start: number, len: number, out: Uint32Array, at: number, n: number): boolean {
  if (len > n * 4) return false;
  for (let k = 0; k < n; k++) out[at + k] = 0;
  const pad = n * 4 - len;
  for (let i = 0; i < len; i++) {
    const pos = pad + i;
    const w = at + (pos >>> 2);
    out[w] = ((out[w] << 8) | bytes[start + i]) >>> 0;
  }
  // words that received fewer than 4 bytes because of padding are already right-aligned
  return true;
}

/** True when all `n` words at `at` are zero (an all-zero id means "absent" in OTLP). */
export function isZeroId(words: Uint32Array, at: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (words[at + k] !== 0) return false;
  return true;
}
