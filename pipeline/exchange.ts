/**
 * The keyBy(traceId) hand-off: rows of a SpanBatch (the compact fold record) routed to the worker
 * that owns their trace, as one binary batch per destination (DESIGN 4, "Shuffle").
 *
 * Ownership: a trace's key group is a hash of its id modulo `keyGroups` (fixed for the life of a
 * deployment, like Flink's max parallelism); key group g belongs to worker g % workers. The fold
 * keeps its state per key group, so a checkpoint restores into any number of workers.
 *
 * Wire format of one batch (little-endian, 8-byte aligned sections; one ArrayBuffer, transferred
 * between threads, or one Kafka message value on the repartition topic):
 *
 *   header   u32 magic "TFX1" | u32 rows | u32 segments | u32 names | u32 nameBytes | u32 flags
 *   segments segments x (u32 keyGroup, u32 firstRow, u32 rowCount)   rows are sorted by key group
 *   names    names x (i32 senderId, u32 length), then the UTF-8 bytes, padded to 8
 *   columns  startUs f64[n] | durUs f64[n] | tid u32[4n] | sid u32[2n] | pid u32[2n] |
 *            lnkTid u32[4n] | lnkSid u32[2n] | service, name, peer, addr, dbSystem, dbNamespace,
 *            msgDest, route i32[n] each | kind u8[n] | flags u8[n]
 *
 * Names are intern ids of the sender; a name travels once per channel (the writer remembers what
 * it sent; the reader maps sender ids to its own). A batch written with `standalone` carries every
 * name it uses (the repartition topic, where any consumer may read any message).
 *
 * A row is 106 bytes plus names; LZ4 (block, lz4-napi) is optional per channel.
 */
import { compressSync, uncompressSync } from "lz4-napi";
import type { Interner } from "./intern.js";
import { SpanBatch } from "./span-batch.js";

const MAGIC = 0x31584654; // "TFX1" little-endian
const HEADER = 24;
export const FLAG_STANDALONE = 1;
const NAME_COLS = ["service", "name", "peer", "addr", "dbSystem", "dbNamespace", "msgDest", "route"] as const;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("tracefold's exchange format needs a little-endian machine");

/** The key group of row i: a mix of the trace id's low words (random in every id scheme). */
export function keyGroupOf(b: SpanBatch, i: number, keyGroups: number): number {
  const t = i * 4;
  const h = Math.imul(b.tid[t + 2] ^ Math.imul(b.tid[t + 3], 0x9e3779b1), 0x85ebca6b) ^ b.tid[t + 1];
  return ((h ^ (h >>> 15)) >>> 0) % keyGroups;
}

const align8 = (n: number) => (n + 7) & ~7;

/**
 * Splits batches by destination: `route(batch)` orders the rows by (owner, key group) in reused
 * arrays; then `encode(w)` writes the rows owned by worker w. Allocates per batch only the output
 * buffers.
 */
export class ExchangeRouter {
  /** Row indices, grouped by owner then key group. */
  order = new Int32Array(4096);
  private kg = new Uint16Array(4096);
  /** Per key group: rows in this batch, then (after route) first position in `order`. */
  private readonly count: Int32Array;
  private readonly first: Int32Array;
  /** Key groups in owner order: w, w + N, w + 2N, ... for w = 0..N-1. */
  private readonly sequence: Int32Array;
  private readonly writers: ExchangeWriter[];
  private batch: SpanBatch | null = null;

  constructor(
    interner: Interner,
    readonly keyGroups: number,
    readonly workers: number,
  ) {
    if (keyGroups < workers) throw new Error(`keyGroups (${keyGroups}) must be at least the worker count (${workers})`);
    if (keyGroups > 65535) throw new Error("keyGroups must be at most 65535");
    this.count = new Int32Array(keyGroups);
    this.first = new Int32Array(keyGroups);
    this.sequence = new Int32Array(keyGroups);
    let k = 0;
    for (let w = 0; w < workers; w++) for (let g = w; g < keyGroups; g += workers) this.sequence[k++] = g;
    this.writers = Array.from({ length: workers }, () => new ExchangeWriter(interner));
  }

  route(b: SpanBatch): void {
    const n = b.length;
    if (this.order.length < n) {
      this.order = new Int32Array(n * 2);
      this.kg = new Uint16Array(n * 2);
    }
    this.count.fill(0);
    for (let i = 0; i < n; i++) {
      const g = keyGroupOf(b, i, this.keyGroups);
      this.kg[i] = g;
      this.count[g]++;
    }
    let pos = 0;
    for (let k = 0; k < this.keyGroups; k++) {
      const g = this.sequence[k];
      this.first[g] = pos;
      pos += this.count[g];
    }
    // stable placement; `first` ends at each group's end, restored below
    for (let i = 0; i < n; i++) this.order[this.first[this.kg[i]]++] = i;
    for (let g = 0; g < this.keyGroups; g++) this.first[g] -= this.count[g];
    this.batch = b;
  }

  /** Rows of the routed batch that worker w owns. */
  rowsFor(w: number): number {
    let n = 0;
    for (let g = w; g < this.keyGroups; g += this.workers) n += this.count[g];
    return n;
  }

  /** The routed batch's rows owned by worker w, as one buffer (null: none). */
  encode(w: number, standalone = false): ArrayBuffer | null {
    const b = this.batch!;
    let start = -1;
    let rows = 0;
    const segs: number[] = [];
    for (let g = w; g < this.keyGroups; g += this.workers) {
      const c = this.count[g];
      if (c === 0) continue;
      if (start < 0) start = this.first[g];
      segs.push(g, rows, c);
      rows += c;
    }
    if (rows === 0) return null;
    return this.writers[w].write(b, this.order, start, rows, segs, standalone);
  }

  /** After a rollback: the receivers forgot the names, send them again. */
  resetChannels(): void {
    for (const w of this.writers) w.reset();
  }
}

/** One channel's writer: remembers which names the reader already has. */
export class ExchangeWriter {
  private sent = new Uint8Array(1024);
  private newIds: number[] = [];

  constructor(private readonly interner: Interner) {}

  reset(): void {
    this.sent.fill(0);
  }

  write(b: SpanBatch, order: Int32Array, start: number, n: number, segs: number[], standalone: boolean): ArrayBuffer {
    const ids = this.newIds;
    ids.length = 0;
    if (standalone) this.sent.fill(0);
    let nameBytes = 0;
    for (const col of NAME_COLS) {
      const c = b[col];
      for (let k = 0; k < n; k++) {
        const id = c[order[start + k]];
        if (id <= 1) continue; // absent and __other__ are the same everywhere
        if (id >= this.sent.length) {
          const s = new Uint8Array(Math.max(id + 1, this.sent.length * 2));
          s.set(this.sent);
          this.sent = s;
        }
        if (this.sent[id] === 0) {
          this.sent[id] = 1;
          ids.push(id);
          nameBytes += this.interner.bytesOf(id).length;
        }
      }
    }
    const segBytes = align8(segs.length * 4);
    const nameHeader = ids.length * 8;
    const namesEnd = HEADER + segBytes + align8(nameHeader + nameBytes);
    const size = namesEnd + n * (16 + 64 + 32 + 2);
    const buf = new ArrayBuffer(align8(size));
    const u32 = new Uint32Array(buf, 0, HEADER / 4);
    u32[0] = MAGIC;
    u32[1] = n;
    u32[2] = segs.length / 3;
    u32[3] = ids.length;
    u32[4] = nameBytes;
    u32[5] = standalone ? FLAG_STANDALONE : 0;
    new Uint32Array(buf, HEADER, segs.length).set(segs);
    const nh = new Int32Array(buf, HEADER + segBytes, ids.length * 2);
    const bytes = new Uint8Array(buf);
    let p = HEADER + segBytes + nameHeader;
    for (let k = 0; k < ids.length; k++) {
      const nb = this.interner.bytesOf(ids[k]);
      nh[k * 2] = ids[k];
      nh[k * 2 + 1] = nb.length;
      bytes.set(nb, p);
      p += nb.length;
    }
    let off = namesEnd;
    const f64 = (src: Float64Array) => {
      const dst = new Float64Array(buf, off, n);
      for (let k = 0; k < n; k++) dst[k] = src[order[start + k]];
      off += n * 8;
    };
    const u32w = (src: Uint32Array | Int32Array, per: number) => {
      const dst = new Uint32Array(buf, off, n * per);
      if (per === 1) for (let k = 0; k < n; k++) dst[k] = src[order[start + k]];
      else
        for (let k = 0; k < n; k++) {
          const i = order[start + k] * per;
          for (let j = 0; j < per; j++) dst[k * per + j] = src[i + j];
        }
      off += n * per * 4;
    };
    const u8 = (src: Uint8Array) => {
      const dst = new Uint8Array(buf, off, n);
      for (let k = 0; k < n; k++) dst[k] = src[order[start + k]];
      off += n;
    };
    f64(b.startUs);
    f64(b.durUs);
    u32w(b.tid, 4);
    u32w(b.sid, 2);
    u32w(b.pid, 2);
    u32w(b.lnkTid, 4);
    u32w(b.lnkSid, 2);
    for (const col of NAME_COLS) u32w(b[col], 1);
    u8(b.kind);
    u8(b.flags);
    return buf;
  }
}

/** One channel's reader: sender intern ids -> this thread's. */
export class ExchangeReader {
  private map = new Int32Array(1024);
  /** Key group segments of the last batch read: (keyGroup, firstRow, rowCount) triples. */
  segments: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

  constructor(private readonly interner: Interner) {}

  reset(): void {
    this.map.fill(0);
  }

  /**
   * Decodes a batch into `into`: replacing its rows (rows sorted by key group, see `segments`),
   * or with `append` after them (the segments then count from the first appended row).
   */
  read(buf: ArrayBuffer | Uint8Array, into: SpanBatch, append = false): number {
    const view = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
    // typed views need aligned offsets: copy a misaligned view (e.g. a Kafka message's Buffer)
    const bytes = view.byteOffset % 8 === 0 ? view : new Uint8Array(view);
    const base = bytes.byteOffset;
    const ab = bytes.buffer;
    const h = new Uint32Array(ab, base, HEADER / 4);
    if (h[0] !== MAGIC) throw new Error("not a tracefold exchange batch (bad magic)");
    const n = h[1];
    const nsegs = h[2];
    const nnames = h[3];
    const nameBytes = h[4];
    if ((h[5] & FLAG_STANDALONE) !== 0) this.map.fill(0);
    const segBytes = align8(nsegs * 12);
    this.segments = new Uint32Array(ab, base + HEADER, nsegs * 3);
    const nh = new Int32Array(ab, base + HEADER + segBytes, nnames * 2);
    let p = HEADER + segBytes + nnames * 8;
    for (let k = 0; k < nnames; k++) {
      const id = nh[k * 2];
      const len = nh[k * 2 + 1];
      if (id >= this.map.length) {
        const m = new Int32Array(Math.max(id + 1, this.map.length * 2));
        m.set(this.map);
        this.map = m;
      }
      this.map[id] = this.interner.internBytes(bytes, p, p + len);
      p += len;
    }
    let off = base + HEADER + segBytes + align8(nnames * 8 + nameBytes);
    if (!append) into.reset(into.partition);
    const at = into.length;
    into.ensureCapacity(at + n);
    into.length = at + n;
    const take = <T extends Float64Array | Uint32Array>(Ctor: { new (b: ArrayBufferLike, o: number, l: number): T }, count: number, bytesPer: number): T => {
      const v = new Ctor(ab, off, count);
      off += count * bytesPer;
      return v;
    };
    into.startUs.set(take(Float64Array, n, 8), at);
    into.durUs.set(take(Float64Array, n, 8), at);
    into.tid.set(take(Uint32Array, n * 4, 4), at * 4);
    into.sid.set(take(Uint32Array, n * 2, 4), at * 2);
    into.pid.set(take(Uint32Array, n * 2, 4), at * 2);
    into.lnkTid.set(take(Uint32Array, n * 4, 4), at * 4);
    into.lnkSid.set(take(Uint32Array, n * 2, 4), at * 2);
    const map = this.map;
    for (const col of NAME_COLS) {
      const src = new Int32Array(ab, off, n);
      off += n * 4;
      const dst = into[col];
      for (let k = 0; k < n; k++) {
        const id = src[k];
        dst[at + k] = id <= 1 ? id : map[id];
      }
    }
    into.kind.set(new Uint8Array(ab, off, n), at);
    off += n;
    into.flags.set(new Uint8Array(ab, off, n), at);
    return n;
  }
}

/** Rows of a batch as one standalone exchange batch (segment 0 holds them all). */
export function encodeExchangeRows(b: SpanBatch, rows: readonly number[]): ArrayBuffer {
  return new ExchangeWriter(b.interner).write(b, Int32Array.from(rows), 0, rows.length, [0, 0, rows.length], true);
}

/** LZ4 block (lz4-napi: u32 size + block) of a batch, as a transferable ArrayBuffer. */
export function compressBatch(buf: ArrayBuffer): ArrayBuffer {
  return ownBuffer(compressSync(Buffer.from(buf)));
}

export function uncompressBatch(buf: ArrayBuffer | Uint8Array): ArrayBuffer {
  return ownBuffer(uncompressSync(Buffer.isBuffer(buf) ? buf : Buffer.from(buf as ArrayBuffer)));
}

/** An ArrayBuffer holding exactly these bytes (a pooled Buffer's memory cannot be transferred). */
function ownBuffer(b: Buffer): ArrayBuffer {
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer) return b.buffer;
  const out = new ArrayBuffer(b.byteLength);
  new Uint8Array(out).set(b);
  return out;
}
