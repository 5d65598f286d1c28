/**
 * HBase trace storage: row keys, qualifiers, the compact span encoding and the entry-span index
 * (DESIGN 6), plus the flat row/cell model the two gateway clients (thrift2.ts, rest.ts) encode.
 *
 * Traces table, one column family (`d`):
 *
 *   row       = salt (1 B: a hash of the 16 trace-id bytes mod saltBuckets) + trace id (16 B)
 *   layout "chunk" (default, measured faster, see docs/DECISIONS.md): one cell per (trace, write)
 *     qualifier = first span id (8) + its kind (1) + FNV-1a of the uncompressed body (4) = 13 B
 *     value     = hdr (1) + LZ4 block of: string table + the spans of that trace in that batch
 *   layout "span": one cell per span
 *     qualifier = span id (8) + kind (1) = 9 B (a Zipkin shared pair: one id, two kinds, two cells)
 *     value     = hdr (1) + span record with its names inline (LZ4 only when that is smaller)
 *   A cell is a pure function of the spans it holds, so writing a batch again writes the same cells.
 *   Readers accept both layouts in one row and keep one span per (span id, kind).
 *
 * Index table, family `d`, one row per entry span (no parent, or SERVER kind), one cell `i`:
 *
 *   row   = salt (1 B, as the trace) + u16 name length + service (UTF-8) + (2^53-1 - floor(startUs))
 *           as u64 BE (newest first) + trace id (16) + span id (8)
 *   value = error (1 B: 0/1) + floor(durUs) as u64 BE + kind (1) + flags (1) + durUs (tagged
 *           varint: exact) + operation name (varint length + UTF-8); the start is the key's
 *           (whole microseconds, as every decoder produces)
 *   The first 9 value bytes make the duration and error filters plain byte comparisons that the
 *   region server evaluates (ValueFilter), so a scan reads only matching rows.
 *
 * Names are stored as UTF-8 text: intern ids belong to one worker and mean nothing elsewhere.
 * Encoding allocates nothing per span: records go through a scratch buffer into a reused arena;
 * the chunk layout allocates one LZ4 output per trace.
 */
import { TraceByteBudget } from "./trace-budget.js";
import { compressSync, uncompressSync } from "lz4-napi";
import { TracefoldError } from "../../pipeline/errors.js";
import type { Interner } from "../../pipeline/intern.js";
import { F_ERROR, F_HAS_LINK, F_HAS_PARENT, F_NO_DURATION, F_NO_START, F_SHARED, KIND_SERVER, type SpanBatch } from "../../pipeline/span-batch.js";
import type { StoredSpan } from "../embedded/trace-store.js";

export const DEFAULT_SALT_BUCKETS = 16;
export const ROW_KEY_BYTES = 17;
export const SPAN_QUALIFIER_BYTES = 9;
export const CHUNK_QUALIFIER_BYTES = 13;
export const INDEX_QUALIFIER = new Uint8Array([0x69]); // "i"
/** Largest start a row key can order: 2^53 - 1 us. */
export const INV_BASE = 9007199254740991;

/** Value header: low nibble = format, bit 7 = LZ4 block (lz4_flex "prepend size": u32 LE + block). */
const FMT_SPAN = 1;
const FMT_CHUNK = 2;
const HDR_LZ4 = 0x80;

export type CellLayout = "chunk" | "span";

// ---------------------------------------------------------------------------------------------
// Errors shared by the clients

/** An HBase call failed. `retriable` (code TF_SINK_TRANSIENT) means: the same call may succeed. */
export class HBaseError extends TracefoldError {
  constructor(
    message: string,
    retriable: boolean,
    readonly kind = "",
  ) {
    super(retriable ? "TF_SINK_TRANSIENT" : "TF_SINK_FATAL", message, "hbase", retriable);
    this.name = "HBaseError";
  }
}

/** Messages of HBase exceptions that a later attempt can get past (region moves, startup, load). */
const TRANSIENT_HBASE =
  /NotServingRegion|RegionMoved|RegionOpening|RegionTooBusy|RegionServerStopped|ServerNotRunningYet|PleaseHold|CallQueueTooBig|CallDroppedException|RetryImmediately|MultiActionResultTooLarge|ConnectException|ConnectionClosing|ConnectionClosed|CallTimeoutException|SocketTimeout|TimeoutIOException|NoServerForRegion|RegionOfflineException|ServerTooBusy|Connection reset|Broken pipe/i;

export function isTransientHBaseMessage(msg: string): boolean {
  return TRANSIENT_HBASE.test(msg);
}

export function isRetriable(err: unknown): boolean {
  return (err as { retriable?: boolean })?.retriable === true;
}

// ---------------------------------------------------------------------------------------------
// The flat row/cell model (what a put request carries)

export interface HBaseCell {
  family: Uint8Array;
  qualifier: Uint8Array;
  value: Uint8Array;
  timestamp: number;
}

export interface HBaseRow {
  row: Uint8Array;
  cells: HBaseCell[];
}

/** A put in object form (for tests and small writes); the sink uses MutationList. */
export interface Put {
  row: Uint8Array;
  cells: Array<{ family: Uint8Array | string; qualifier: Uint8Array | string; value: Uint8Array | string }>;
}

export interface TableSpec {
  /** "name" or "namespace:name". */
  table: string;
  family: string;
  ttlSeconds: number;
  maxVersions?: number;
  /** Region boundaries to pre-split at (thrift2 only: REST cannot pre-split). */
  splitKeys?: Uint8Array[];
}

/** A value filter: each row holds one cell; ANDs and ORs of byte comparisons on its value. */
export type ValueFilter =
  | { all: ValueFilter[] }
  | { any: ValueFilter[] }
  | { ge: Uint8Array }
  | { prefix: Uint8Array };

export interface ScanSpec {
  startRow: Uint8Array;
  /** Exclusive. */
  stopRow: Uint8Array;
  /** Rows to return at most. */
  limit: number;
  filter?: ValueFilter;
}

/** A put request encoded for one client, kept for retries. */
export interface EncodedPuts {
  table: string;
  rows: number;
  cells: number;
  /** Spans the request carries (0 for index rows). */
  spans: number;
  /** Row + qualifier + value bytes (what HBase stores, before its own per-cell overhead). */
  dataBytes: number;
  body: Uint8Array | string;
}

export interface HBaseClient {
  readonly protocol: "thrift2" | "rest";
  tableExists(table: string): Promise<boolean>;
  /** Creates the table; an existing table is not an error. */
  createTable(spec: TableSpec): Promise<void>;
  encodePuts(table: string, list: MutationList, fromRow: number, toRow: number): EncodedPuts;
  sendPuts(p: EncodedPuts): Promise<void>;
  putMultiple(table: string, puts: Put[]): Promise<void>;
  /** The latest version of every cell of a row; null when the row does not exist. */
  getRow(table: string, row: Uint8Array): Promise<HBaseRow | null>;
  scan(table: string, spec: ScanSpec): Promise<HBaseRow[]>;
  /** Drops a table (tests and benchmarks). */
  deleteTable(table: string): Promise<void>;
  healthcheck(): Promise<boolean>;
  close(): Promise<void>;
}

const te = new TextEncoder();
const td = new TextDecoder();

export function toBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === "string" ? te.encode(v) : v;
}

/** Splits "ns:name" (default namespace when there is no colon). */
export function splitTableName(table: string): { ns: string | null; name: string } {
  const i = table.indexOf(":");
  return i < 0 ? { ns: null, name: table } : { ns: table.slice(0, i), name: table.slice(i + 1) };
}

/** A growing byte buffer with the few writers the encodings need. */
export class ByteBuf {
  buf: Uint8Array;
  pos = 0;
  private dv: DataView;

  constructor(capacity = 1 << 16) {
    this.buf = new Uint8Array(capacity);
    this.dv = new DataView(this.buf.buffer);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u16(v: number): void {
    this.buf[this.pos++] = v >>> 8;
    this.buf[this.pos++] = v & 255;
  }

  u32(v: number): void {
    this.dv.setUint32(this.pos, v);
    this.pos += 4;
  }

  /** Non-negative integer < 2^53 as 8 bytes big-endian. */
  u64(v: number): void {
    const hi = Math.floor(v / 4294967296);
    this.dv.setUint32(this.pos, hi);
    this.dv.setUint32(this.pos + 4, v - hi * 4294967296);
    this.pos += 8;
  }

  f64(v: number): void {
    this.dv.setFloat64(this.pos, v);
    this.pos += 8;
  }

  /** Unsigned LEB128 of a non-negative integer < 2^53. */
  varint(v: number): void {
    const b = this.buf;
    let p = this.pos;
    if (v < 0x80000000) {
      while (v >= 0x80) {
        b[p++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
    } else {
      while (v >= 0x80) {
        b[p++] = (v % 128) | 0x80;
        v = Math.floor(v / 128);
      }
    }
    b[p++] = v;
    this.pos = p;
  }

  /** A number: small integers as a zigzag varint (even), anything else as 1 + f64. */
  tagged(x: number): void {
    if (Number.isInteger(x) && x <= 1125899906842624 && x >= -1125899906842624) {
      this.varint(x >= 0 ? x * 4 : -x * 4 - 2);
    } else {
      this.buf[this.pos++] = 1;
      this.f64(x);
    }
  }

  bytes(src: Uint8Array, off: number, len: number): void {
    const b = this.buf;
    let p = this.pos;
    if (len <= 16) for (let i = 0; i < len; i++) b[p++] = src[off + i];
    else {
      b.set(src.subarray(off, off + len), p);
      p += len;
    }
    this.pos = p;
  }
}

/** Reader for the encodings above. */
export class ByteReader {
  pos: number;
  private dv: DataView;

  constructor(
    readonly buf: Uint8Array,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.pos = pos;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new HBaseError(`corrupt stored value: ${n} bytes needed at ${this.pos} of ${this.end}`, false, "decode");
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const v = this.dv.getUint32(this.pos) * 4294967296 + this.dv.getUint32(this.pos + 4);
    this.pos += 8;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.dv.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  varint(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
      if (mul > 2 ** 56) throw new HBaseError("corrupt stored value: varint too long", false, "decode");
    }
  }

  tagged(): number {
    const t = this.varint();
    if (t === 1) return this.f64();
    const z = t / 2;
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  bytes(len: number): Uint8Array {
    this.need(len);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  text(len: number): string {
    return td.decode(this.bytes(len));
  }
}

/**
 * Rows and their cells, flat: every key, qualifier and value in one arena, offsets in typed
 * arrays. Reused across writes (reset()); all cells of a list share one family.
 */
export class MutationList {
  readonly arena = new ByteBuf(1 << 16);
  rows = 0;
  cells = 0;
  spans = 0;
  rowOff: Int32Array = new Int32Array(256);
  rowLen: Int32Array = new Int32Array(256);
  rowCell0: Int32Array = new Int32Array(256);
  rowCells: Int32Array = new Int32Array(256);
  /** Spans carried by each row (for metrics). */
  rowSpans: Int32Array = new Int32Array(256);
  qOff: Int32Array = new Int32Array(1024);
  qLen: Int32Array = new Int32Array(1024);
  vOff: Int32Array = new Int32Array(1024);
  vLen: Int32Array = new Int32Array(1024);

  constructor(readonly family: Uint8Array) {}

  reset(): void {
    this.arena.pos = 0;
    this.rows = 0;
    this.cells = 0;
    this.spans = 0;
  }

  /** Starts a row whose key was just written to the arena at [keyOff, arena.pos). */
  endRowKey(keyOff: number): void {
    if (this.rows === this.rowOff.length) {
      const n = this.rows * 2;
      this.rowOff = growI32(this.rowOff, n);
      this.rowLen = growI32(this.rowLen, n);
      this.rowCell0 = growI32(this.rowCell0, n);
      this.rowCells = growI32(this.rowCells, n);
      this.rowSpans = growI32(this.rowSpans, n);
    }
    const r = this.rows++;
    this.rowOff[r] = keyOff;
    this.rowLen[r] = this.arena.pos - keyOff;
    this.rowCell0[r] = this.cells;
    this.rowCells[r] = 0;
    this.rowSpans[r] = 0;
  }

  /** Adds a cell to the last row: qualifier and value already in the arena. */
  addCell(qOff: number, qLen: number, vOff: number, vLen: number, spans: number): void {
    if (this.cells === this.qOff.length) {
      const n = this.cells * 2;
      this.qOff = growI32(this.qOff, n);
      this.qLen = growI32(this.qLen, n);
      this.vOff = growI32(this.vOff, n);
      this.vLen = growI32(this.vLen, n);
    }
    const c = this.cells++;
    this.qOff[c] = qOff;
    this.qLen[c] = qLen;
    this.vOff[c] = vOff;
    this.vLen[c] = vLen;
    this.rowCells[this.rows - 1]++;
    this.rowSpans[this.rows - 1] += spans;
    this.spans += spans;
  }

  /** Row + qualifier + value bytes of rows [from, to). */
  dataBytes(from: number, to: number): number {
    let n = 0;
    for (let r = from; r < to; r++) {
      n += this.rowLen[r];
      const c0 = this.rowCell0[r];
      for (let c = c0; c < c0 + this.rowCells[r]; c++) n += this.qLen[c] + this.vLen[c];
    }
    return n;
  }

  spansIn(from: number, to: number): number {
    let n = 0;
    for (let r = from; r < to; r++) n += this.rowSpans[r];
    return n;
  }

  /** Appends puts given as objects. */
  addPuts(puts: Put[]): void {
    const a = this.arena;
    for (const p of puts) {
      a.ensure(p.row.length);
      const k = a.pos;
      a.bytes(p.row, 0, p.row.length);
      this.endRowKey(k);
      for (const c of p.cells) {
        const q = toBytes(c.qualifier);
        const v = toBytes(c.value);
        a.ensure(q.length + v.length);
        const qo = a.pos;
        a.bytes(q, 0, q.length);
        const vo = a.pos;
        a.bytes(v, 0, v.length);
        this.addCell(qo, q.length, vo, v.length, 0);
      }
    }
  }
}

function growI32(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Keys

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Salt bucket of a trace id (four big-endian words at tid[at..]): every word counts. */
export function saltOf(tid: Uint32Array, at: number, buckets: number): number {
  const h = fmix32(tid[at] ^ fmix32(tid[at + 1] ^ fmix32(tid[at + 2] ^ fmix32(tid[at + 3] ^ 0x9e3779b9))));
  return h % buckets;
}

function writeWord(b: Uint8Array, p: number, w: number): void {
  b[p] = w >>> 24;
  b[p + 1] = (w >>> 16) & 255;
  b[p + 2] = (w >>> 8) & 255;
  b[p + 3] = w & 255;
}

/** The traces-table row key of a trace id given in hex (32 digits or fewer, left-padded). */
export function traceRowKey(traceIdHex: string, buckets: number): Uint8Array {
  const words = hexToWords(traceIdHex, 4);
  const k = new Uint8Array(ROW_KEY_BYTES);
  k[0] = saltOf(words, 0, buckets);
  for (let i = 0; i < 4; i++) writeWord(k, 1 + i * 4, words[i]);
  return k;
}

export function hexToWords(hex: string, n: number): Uint32Array {
  const h = hex.trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(h) || h.length > n * 8) throw new HBaseError(`not a ${n * 32}-bit hex id: "${hex}"`, false, "id");
  const p = h.padStart(n * 8, "0");
  const w = new Uint32Array(n);
  for (let i = 0; i < n; i++) w[i] = parseInt(p.slice(i * 8, i * 8 + 8), 16) >>> 0;
  return w;
}

function hexOf(b: Uint8Array, off: number, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) s += (b[off + i] < 16 ? "0" : "") + b[off + i].toString(16);
  return s;
}

/** Index scan bounds for one salt bucket: entries of `service` with start in [fromUs, toUs). */
export function indexScanRange(salt: number, service: string, fromUs: number, toUs: number): { startRow: Uint8Array; stopRow: Uint8Array } {
  const svc = te.encode(service);
  const len = Math.min(svc.length, 65535);
  const mk = (inv: number) => {
    const b = new ByteBuf(1 + 2 + len + 8);
    b.u8(salt);
    b.u16(len);
    b.bytes(svc, 0, len);
    b.u64(Math.min(INV_BASE + 1, Math.max(0, inv)));
    return b.buf.subarray(0, b.pos);
  };
  // start < toUs  <=>  floor(start) <= ceil(toUs) - 1 (integer starts); from: floor(fromUs), a superset
  const hi = Math.ceil(Math.min(toUs, INV_BASE + 1)) - 1;
  const lo = Math.floor(Math.max(0, fromUs));
  return { startRow: mk(INV_BASE - hi), stopRow: mk(INV_BASE - lo + 1) };
}

/** Server-side filter of index rows (duration at least minDurationUs, errors only). */
export function indexFilter(minDurationUs: number | undefined, errorOnly: boolean | undefined): ValueFilter | undefined {
  const minFloor = minDurationUs !== undefined && minDurationUs > 0 ? Math.floor(minDurationUs) : 0;
  const ge = (err: number) => {
    const b = new ByteBuf(9);
    b.u8(err);
    b.u64(Math.min(minFloor, INV_BASE));
    return b.buf.slice(0, 9);
  };
  if (errorOnly) return minFloor > 0 ? { all: [{ prefix: new Uint8Array([1]) }, { ge: ge(1) }] } : { prefix: new Uint8Array([1]) };
  if (minFloor > 0) return { any: [{ all: [{ prefix: new Uint8Array([0]) }, { ge: ge(0) }] }, { ge: ge(1) }] };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// LZ4

/** LZ4 block (lz4-napi: u32 LE uncompressed size + block) of src[off, off+len). */
export function lz4Compress(src: Uint8Array, off: number, len: number): Buffer {
  return compressSync(Buffer.from(src.buffer, src.byteOffset + off, len));
}

export function lz4Uncompress(src: Uint8Array): Uint8Array {
  return uncompressSync(src);
}

// ---------------------------------------------------------------------------------------------
// Encoding spans

/** UTF-8 bytes of interned names, built once per name. */
class NameBytes {
  private cache: (Uint8Array | undefined)[] = [];
  constructor(readonly interner: Interner) {}
  get(id: number): Uint8Array {
    const c = this.cache[id];
    if (c !== undefined) return c;
    const b = te.encode(this.interner.name(id));
    this.cache[id] = b;
    return b;
  }
}

export interface EncoderOptions {
  layout?: CellLayout;
  saltBuckets?: number;
  indexSaltBuckets?: number;
  /** LZ4 the values ("lz4", default) or not. */
  compression?: "lz4" | "none";
  /** Span layout: LZ4 a record only from this size on (and only when it gets smaller). */
  spanLz4MinBytes?: number;
  /** Chunk layout: spans per cell at most (a bigger trace takes several cells). */
  chunkMaxSpans?: number;
  /** Write index rows for entry spans. */
  index?: boolean;
  /** Cut a trace whose details pass this many bytes (span-layout record sizes); 0: no limit. */
  maxBytesPerTrace?: number;
  /** Traces the byte budget remembers per generation (trace-budget.ts). */
  budgetTraces?: number;
}

const NAME_FIELDS = 8;

/**
 * Encodes SpanBatch rows into traces-table and index-table mutations. One instance per sink;
 * every buffer is reused from batch to batch.
 */
export class TraceEncoder {
  readonly layout: CellLayout;
  readonly saltBuckets: number;
  readonly indexSaltBuckets: number;
  readonly compress: boolean;
  readonly spanLz4MinBytes: number;
  readonly chunkMaxSpans: number;
  readonly index: boolean;
  readonly budget: TraceByteBudget | null;

  /** Uncompressed / stored value bytes (for the ratio in metrics and the benchmark). */
  rawValueBytes = 0;
  storedValueBytes = 0;
  /** maxBytesPerTrace: spans not written, and traces cut (counted once, when they pass it). */
  spansOverTraceBytes = 0;
  tracesCutByBytes = 0;
  /** Row i of the batch is written (1) or cut by the byte budget (0). */
  private keep: Uint8Array = new Uint8Array(1024);

  private names: NameBytes | null = null;
  private readonly scratch = new ByteBuf(1 << 14);
  private readonly strs = new ByteBuf(1 << 12);
  // grouping rows by trace
  private group: Int32Array = new Int32Array(1024);
  private order: Int32Array = new Int32Array(1024);
  private gFirst: Int32Array = new Int32Array(1024);
  private gCount: Int32Array = new Int32Array(1024);
  private gStart: Int32Array = new Int32Array(1024);
  private gHash: Int32Array = new Int32Array(1024);
  private table: Int32Array = new Int32Array(2048);
  // chunk string table: intern id -> local index, valid when stamp[id] === serial
  private stamp: Int32Array = new Int32Array(1024);
  private local: Int32Array = new Int32Array(1024);
  private serial = 0;
  private readonly fieldIds = new Int32Array(NAME_FIELDS);

  constructor(opts: EncoderOptions = {}) {
    this.layout = opts.layout ?? "chunk";
    this.saltBuckets = opts.saltBuckets ?? DEFAULT_SALT_BUCKETS;
    this.indexSaltBuckets = opts.indexSaltBuckets ?? this.saltBuckets;
    this.compress = (opts.compression ?? "lz4") === "lz4";
    this.spanLz4MinBytes = opts.spanLz4MinBytes ?? 128;
    this.chunkMaxSpans = opts.chunkMaxSpans ?? 1024;
    this.index = opts.index ?? true;
    const limit = opts.maxBytesPerTrace ?? 0;
    this.budget = limit > 0 ? new TraceByteBudget(limit, opts.budgetTraces) : null;
    if (!(this.saltBuckets >= 1 && this.saltBuckets <= 256) || !(this.indexSaltBuckets >= 1 && this.indexSaltBuckets <= 256))
      throw new TracefoldError("TF_CONFIG_INVALID", "saltBuckets must be 1..256", "hbase");
  }

  /** Encodes the rows of `b` into `traces` and (entry spans) `index`; both are reset first. */
  encode(b: SpanBatch, traces: MutationList, index: MutationList): void {
    traces.reset();
    index.reset();
    if (this.names === null || this.names.interner !== b.interner) this.names = new NameBytes(b.interner);
    const n = b.length;
    if (n === 0) return;
    const groups = this.groupByTrace(b);
    if (this.keep.length < n) this.keep = new Uint8Array(Math.max(n, this.keep.length * 2));
    this.keep.fill(1, 0, n);
    for (let g = 0; g < groups; g++) {
      if (this.budget !== null) this.applyBudget(b, g, this.budget);
      if (this.gCount[g] === 0) continue;
      if (this.layout === "chunk") this.encodeChunks(b, g, traces);
      else this.encodeSpans(b, g, traces);
    }
    const keep = this.keep;
    if (this.index) for (let i = 0; i < n; i++) if (keep[i] === 1 && ((b.flags[i] & F_HAS_PARENT) === 0 || b.kind[i] === KIND_SERVER)) this.encodeIndexRow(b, i, index);
  }

  /** The bytes a span's record takes in the span layout, uncompressed (names inline). */
  private recordBytes(b: SpanBatch, i: number): number {
    const fl = b.flags[i];
    let bytes = 1 + 9 + 1 + 8 + 9 + 1 + (fl & F_HAS_PARENT ? 8 : 0) + (fl & F_HAS_LINK ? 24 : 0);
    const mask = this.loadFields(b, i);
    for (let f = 0; f < NAME_FIELDS; f++) if (mask & (1 << f)) bytes += this.names!.get(this.fieldIds[f]).length + 1;
    return bytes;
  }

  /**
   * maxBytesPerTrace: keeps the group's spans, in batch order, while the trace's details stay
   * within the limit; the first span past it cuts the trace (counted once), and every later span
   * of a cut trace is left out (counted). The group's row list is compacted to what is kept.
   */
  private applyBudget(b: SpanBatch, g: number, budget: TraceByteBudget): void {
    const o0 = this.gStart[g];
    const cnt = this.gCount[g];
    const slot = budget.slot(b.tid, this.order[o0] * 4);
    let used = budget.bytesAt(slot);
    const limit = budget.limit;
    let kept = 0;
    for (let k = 0; k < cnt; k++) {
      const i = this.order[o0 + k];
      if (used <= limit) {
        const sz = this.recordBytes(b, i);
        if (used + sz <= limit) {
          used += sz;
          this.order[o0 + kept++] = i;
          continue;
        }
        used = limit + 1;
        this.tracesCutByBytes++;
      }
      this.keep[i] = 0;
      this.spansOverTraceBytes++;
    }
    budget.setBytes(slot, used);
    this.gCount[g] = kept;
  }

  /** Groups rows by trace id: order[gStart[g] .. + gCount[g]] are the rows of group g, in batch order. */
  private groupByTrace(b: SpanBatch): number {
    const n = b.length;
    if (this.group.length < n) {
      const c = Math.max(n, this.group.length * 2);
      this.group = new Int32Array(c);
      this.order = new Int32Array(c);
      this.gFirst = new Int32Array(c);
      this.gCount = new Int32Array(c);
      this.gStart = new Int32Array(c);
      this.gHash = new Int32Array(c);
    }
    let cap = this.table.length;
    if (cap < n * 2) {
      while (cap < n * 2) cap *= 2;
      this.table = new Int32Array(cap);
    } else this.table.fill(0);
    const table = this.table;
    const mask = cap - 1;
    const tid = b.tid;
    let groups = 0;
    for (let i = 0; i < n; i++) {
      const t = i * 4;
      const h = fmix32(tid[t] ^ fmix32(tid[t + 1] ^ fmix32(tid[t + 2] ^ fmix32(tid[t + 3]))));
      let slot = h & mask;
      let g = -1;
      for (;;) {
        const e = table[slot];
        if (e === 0) break;
        const cand = e - 1;
        const f = this.gFirst[cand] * 4;
        if (this.gHash[cand] === (h | 0) && tid[f] === tid[t] && tid[f + 1] === tid[t + 1] && tid[f + 2] === tid[t + 2] && tid[f + 3] === tid[t + 3]) {
          g = cand;
          break;
        }
        slot = (slot + 1) & mask;
      }
      if (g < 0) {
        g = groups++;
        this.gFirst[g] = i;
        this.gCount[g] = 0;
        this.gHash[g] = h | 0;
        table[slot] = g + 1;
      }
      this.group[i] = g;
      this.gCount[g]++;
    }
    let s = 0;
    for (let g = 0; g < groups; g++) {
      this.gStart[g] = s;
      s += this.gCount[g];
      this.gCount[g] = 0;
    }
    for (let i = 0; i < n; i++) {
      const g = this.group[i];
      this.order[this.gStart[g] + this.gCount[g]++] = i;
    }
    return groups;
  }

  private writeRowKey(b: SpanBatch, i: number, list: MutationList): void {
    const a = list.arena;
    a.ensure(ROW_KEY_BYTES);
    const k = a.pos;
    a.buf[a.pos++] = saltOf(b.tid, i * 4, this.saltBuckets);
    for (let w = 0; w < 4; w++) {
      writeWord(a.buf, a.pos, b.tid[i * 4 + w]);
      a.pos += 4;
    }
    list.endRowKey(k);
  }

  private loadFields(b: SpanBatch, i: number): number {
    const f = this.fieldIds;
    f[0] = b.service[i];
    f[1] = b.name[i];
    f[2] = b.peer[i];
    f[3] = b.addr[i];
    f[4] = b.dbSystem[i];
    f[5] = b.dbNamespace[i];
    f[6] = b.msgDest[i];
    f[7] = b.route[i];
    let mask = 0;
    for (let k = 0; k < NAME_FIELDS; k++) if (f[k] > 0) mask |= 1 << k;
    return mask;
  }

  /** The parts of a record both layouts share: flags, parent, link. */
  private writeIds(s: ByteBuf, b: SpanBatch, i: number): void {
    const fl = b.flags[i];
    s.u8(fl);
    if (fl & F_HAS_PARENT) {
      s.u32(b.pid[i * 2]);
      s.u32(b.pid[i * 2 + 1]);
    }
    if (fl & F_HAS_LINK) {
      for (let w = 0; w < 4; w++) s.u32(b.lnkTid[i * 4 + w]);
      s.u32(b.lnkSid[i * 2]);
      s.u32(b.lnkSid[i * 2 + 1]);
    }
  }

  /** Span layout: one cell per span, names inline. */
  private encodeSpans(b: SpanBatch, g: number, list: MutationList): void {
    const names = this.names!;
    const a = list.arena;
    const s = this.scratch;
    const o0 = this.gStart[g];
    const cnt = this.gCount[g];
    this.writeRowKey(b, this.order[o0], list);
    for (let k = 0; k < cnt; k++) {
      const i = this.order[o0 + k];
      const mask = this.loadFields(b, i);
      let strBytes = 0;
      for (let f = 0; f < NAME_FIELDS; f++) if (mask & (1 << f)) strBytes += names.get(this.fieldIds[f]).length + 5;
      s.pos = 0;
      s.ensure(64 + strBytes);
      s.u8(FMT_SPAN);
      this.writeIds(s, b, i);
      s.f64(b.startUs[i]);
      s.tagged(b.durUs[i]);
      s.u8(mask);
      for (let f = 0; f < NAME_FIELDS; f++) {
        if ((mask & (1 << f)) === 0) continue;
        const nb = names.get(this.fieldIds[f]);
        s.varint(nb.length);
        s.bytes(nb, 0, nb.length);
      }
      // qualifier
      a.ensure(SPAN_QUALIFIER_BYTES + s.pos + 16);
      const qo = a.pos;
      writeWord(a.buf, qo, b.sid[i * 2]);
      writeWord(a.buf, qo + 4, b.sid[i * 2 + 1]);
      a.buf[qo + 8] = b.kind[i];
      a.pos += SPAN_QUALIFIER_BYTES;
      const vo = a.pos;
      this.rawValueBytes += s.pos;
      if (this.compress && s.pos >= this.spanLz4MinBytes) {
        const c = lz4Compress(s.buf, 1, s.pos - 1);
        if (c.length + 1 < s.pos) {
          a.ensure(c.length + 1);
          a.u8(FMT_SPAN | HDR_LZ4);
          a.bytes(c, 0, c.length);
        } else a.bytes(s.buf, 0, s.pos);
      } else a.bytes(s.buf, 0, s.pos);
      this.storedValueBytes += a.pos - vo;
      list.addCell(qo, SPAN_QUALIFIER_BYTES, vo, a.pos - vo, 1);
    }
  }

  /** Chunk layout: the group's spans in cells of at most chunkMaxSpans, with a string table. */
  private encodeChunks(b: SpanBatch, g: number, list: MutationList): void {
    const o0 = this.gStart[g];
    const cnt = this.gCount[g];
    this.writeRowKey(b, this.order[o0], list);
    for (let from = 0; from < cnt; from += this.chunkMaxSpans) this.encodeChunk(b, o0 + from, Math.min(this.chunkMaxSpans, cnt - from), list);
  }

  private encodeChunk(b: SpanBatch, o0: number, cnt: number, list: MutationList): void {
    const names = this.names!;
    const interner = b.interner;
    if (this.stamp.length < interner.size) {
      let c = this.stamp.length;
      while (c < interner.size) c *= 2;
      this.stamp = new Int32Array(c);
      this.local = new Int32Array(c);
      this.serial = 0;
    }
    const serial = ++this.serial;
    // pass 1: the string table
    const st = this.strs;
    st.pos = 0;
    let nStrings = 0;
    for (let k = 0; k < cnt; k++) {
      const i = this.order[o0 + k];
      const mask = this.loadFields(b, i);
      for (let f = 0; f < NAME_FIELDS; f++) {
        if ((mask & (1 << f)) === 0) continue;
        const id = this.fieldIds[f];
        if (this.stamp[id] === serial) continue;
        this.stamp[id] = serial;
        this.local[id] = nStrings++;
        const nb = names.get(id);
        st.ensure(nb.length + 5);
        st.varint(nb.length);
        st.bytes(nb, 0, nb.length);
      }
    }
    // pass 2: the body
    const s = this.scratch;
    s.pos = 0;
    s.ensure(16 + st.pos + cnt * 80);
    s.u8(FMT_CHUNK);
    s.varint(nStrings);
    s.bytes(st.buf, 0, st.pos);
    const first = this.order[o0];
    const base = b.startUs[first];
    s.f64(base);
    s.varint(cnt);
    for (let k = 0; k < cnt; k++) {
      const i = this.order[o0 + k];
      s.u32(b.sid[i * 2]);
      s.u32(b.sid[i * 2 + 1]);
      s.u8(b.kind[i]);
      this.writeIds(s, b, i);
      s.tagged(b.startUs[i] - base);
      s.tagged(b.durUs[i]);
      const mask = this.loadFields(b, i);
      s.u8(mask);
      for (let f = 0; f < NAME_FIELDS; f++) if (mask & (1 << f)) s.varint(this.local[this.fieldIds[f]]);
    }
    // qualifier: first span id + kind + hash of the body (same spans -> same cell)
    let h = 0x811c9dc5;
    const sb = s.buf;
    for (let p = 0; p < s.pos; p++) h = Math.imul(h ^ sb[p], 0x01000193);
    const a = list.arena;
    a.ensure(CHUNK_QUALIFIER_BYTES + s.pos + 32);
    const qo = a.pos;
    writeWord(a.buf, qo, b.sid[first * 2]);
    writeWord(a.buf, qo + 4, b.sid[first * 2 + 1]);
    a.buf[qo + 8] = b.kind[first];
    writeWord(a.buf, qo + 9, h >>> 0);
    a.pos += CHUNK_QUALIFIER_BYTES;
    const vo = a.pos;
    this.rawValueBytes += s.pos;
    if (this.compress) {
      const c = lz4Compress(sb, 1, s.pos - 1);
      if (c.length + 1 < s.pos) {
        a.ensure(c.length + 1);
        a.u8(FMT_CHUNK | HDR_LZ4);
        a.bytes(c, 0, c.length);
      } else a.bytes(sb, 0, s.pos);
    } else a.bytes(sb, 0, s.pos);
    this.storedValueBytes += a.pos - vo;
    list.addCell(qo, CHUNK_QUALIFIER_BYTES, vo, a.pos - vo, cnt);
  }

  private encodeIndexRow(b: SpanBatch, i: number, list: MutationList): void {
    const names = this.names!;
    const svc = names.get(b.service[i]);
    const svcLen = Math.min(svc.length, 65535);
    const op = names.get(b.name[i]);
    const a = list.arena;
    a.ensure(1 + 2 + svcLen + 8 + 16 + 8 + 1 + 40 + op.length);
    const k = a.pos;
    a.u8(saltOf(b.tid, i * 4, this.indexSaltBuckets));
    a.u16(svcLen);
    a.bytes(svc, 0, svcLen);
    const start = b.startUs[i];
    a.u64(INV_BASE - Math.min(INV_BASE, Math.max(0, Math.floor(start))));
    for (let w = 0; w < 4; w++) a.u32(b.tid[i * 4 + w]);
    a.u32(b.sid[i * 2]);
    a.u32(b.sid[i * 2 + 1]);
    list.endRowKey(k);
    const qo = a.pos;
    a.u8(INDEX_QUALIFIER[0]);
    const vo = a.pos;
    const dur = b.durUs[i];
    a.u8(b.flags[i] & F_ERROR ? 1 : 0);
    a.u64(Math.min(INV_BASE, Math.max(0, Math.floor(dur))));
    a.u8(b.kind[i]);
    a.u8(b.flags[i]);
    a.tagged(dur);
    a.varint(op.length);
    a.bytes(op, 0, op.length);
    list.addCell(qo, 1, vo, a.pos - vo, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A span read back from HBase: the embedded store's fields plus the rest of the record. */
export interface HBaseSpan extends StoredSpan {
  flags: number;
  shared: boolean;
  hasStart: boolean;
  hasDuration: boolean;
  addr: string | null;
  dbSystem: string | null;
  dbNamespace: string | null;
  msgDest: string | null;
  route: string | null;
  linkTraceId: string | null;
  linkSpanId: string | null;
}

export interface IndexEntry {
  traceId: string;
  spanId: string;
  service: string;
  name: string;
  kind: number;
  startUs: number;
  durationUs: number;
  error: boolean;
  root: boolean;
}

function valueBody(v: Uint8Array): { fmt: number; body: Uint8Array } {
  if (v.length === 0) throw new HBaseError("corrupt stored value: empty", false, "decode");
  const hdr = v[0];
  const fmt = hdr & 0x0f;
  return { fmt, body: hdr & HDR_LZ4 ? lz4Uncompress(v.subarray(1)) : v.subarray(1) };
}

function makeSpan(traceId: string, spanId: string, kind: number, r: ByteReader, start: (r: ByteReader) => number, name: (r: ByteReader) => string | null): HBaseSpan {
  const flags = r.u8();
  const parent = flags & F_HAS_PARENT ? hexOf(r.bytes(8), 0, 8) : null;
  let linkTraceId: string | null = null;
  let linkSpanId: string | null = null;
  if (flags & F_HAS_LINK) {
    linkTraceId = hexOf(r.bytes(16), 0, 16);
    linkSpanId = hexOf(r.bytes(8), 0, 8);
  }
  const startUs = start(r);
  const durationUs = r.tagged();
  const mask = r.u8();
  const f: (string | null)[] = [];
  for (let k = 0; k < NAME_FIELDS; k++) f.push(mask & (1 << k) ? name(r) : null);
  return {
    traceId,
    spanId,
    parentSpanId: parent,
    kind,
    error: (flags & F_ERROR) !== 0,
    service: f[0] ?? "",
    name: f[1] ?? "",
    startUs,
    durationUs,
    peer: f[2],
    flags,
    shared: (flags & F_SHARED) !== 0,
    hasStart: (flags & F_NO_START) === 0,
    hasDuration: (flags & F_NO_DURATION) === 0,
    addr: f[3],
    dbSystem: f[4],
    dbNamespace: f[5],
    msgDest: f[6],
    route: f[7],
    linkTraceId,
    linkSpanId,
  };
}

/** Decodes every cell of a traces-table row: one span per (span id, kind), by start time. */
export function decodeTraceRow(row: HBaseRow): HBaseSpan[] {
  if (row.row.length !== ROW_KEY_BYTES) throw new HBaseError(`not a trace row key (${row.row.length} bytes)`, false, "decode");
  const traceId = hexOf(row.row, 1, 16);
  const out = new Map<string, HBaseSpan>();
  for (const c of row.cells) {
    const q = c.qualifier;
    if (q.length === SPAN_QUALIFIER_BYTES) {
      const { fmt, body } = valueBody(c.value);
      if (fmt !== FMT_SPAN) throw new HBaseError(`span cell with format ${fmt}`, false, "decode");
      const spanId = hexOf(q, 0, 8);
      const r = new ByteReader(body);
      const s = makeSpan(traceId, spanId, q[8], r, (r) => r.f64(), (r) => r.text(r.varint()));
      out.set(spanId + q[8], s);
    } else if (q.length === CHUNK_QUALIFIER_BYTES) {
      const { fmt, body } = valueBody(c.value);
      if (fmt !== FMT_CHUNK) throw new HBaseError(`chunk cell with format ${fmt}`, false, "decode");
      const r = new ByteReader(body);
      const nStrings = r.varint();
      const strings: string[] = [];
      for (let k = 0; k < nStrings; k++) strings.push(r.text(r.varint()));
      const base = r.f64();
      const n = r.varint();
      for (let k = 0; k < n; k++) {
        const spanId = hexOf(r.bytes(8), 0, 8);
        const kind = r.u8();
        const s = makeSpan(traceId, spanId, kind, r, (r) => base + r.tagged(), (r) => {
          const ix = r.varint();
          if (ix >= strings.length) throw new HBaseError("corrupt chunk: string index out of range", false, "decode");
          return strings[ix];
        });
        out.set(spanId + kind, s);
      }
    }
  }
  return [...out.values()].sort((a, b) => a.startUs - b.startUs || (a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : a.kind - b.kind));
}

export function decodeIndexRow(row: HBaseRow): IndexEntry | null {
  const cell = row.cells.find((c) => c.qualifier.length === 1 && c.qualifier[0] === INDEX_QUALIFIER[0]);
  if (!cell) return null;
  const k = new ByteReader(row.row);
  k.u8();
  const service = k.text(k.u16());
  const startUs = INV_BASE - k.u64();
  const traceId = hexOf(k.bytes(16), 0, 16);
  const spanId = hexOf(k.bytes(8), 0, 8);
  const v = new ByteReader(cell.value);
  const error = v.u8() === 1;
  v.u64();
  const kind = v.u8();
  const flags = v.u8();
  const durationUs = v.tagged();
  const name = v.text(v.varint());
  return { traceId, spanId, service, name, kind, startUs, durationUs, error, root: (flags & F_HAS_PARENT) === 0 };
}

/** Split keys 1..buckets-1 (one region per salt bucket). */
export function saltSplitKeys(buckets: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let s = 1; s < buckets; s++) out.push(new Uint8Array([s]));
  return out;
}
