/**
 * Embedded trace store: what the HBase sink keeps (DESIGN 6), in memory: trace details by trace
 * id, each span a 64-byte compact record in the trace's growing buffer, plus the index of entry
 * spans (roots and server spans) for search by service, time, duration and error.
 *
 * Bounded: at most `maxTraces` traces, least recently written evicted first (lru-cache), every
 * eviction counted. Written before any shuffle: it needs no co-location with the fold.
 *
 *   record (64 B): sid u32x2 | pid u32x2 | start f64 | dur f64 | kind u8 | flags u8 | pad u16 |
 *                  service, name, peer, addr, dbSystem, dbNamespace, msgDest: i32 each
 */
import { LRUCache } from "lru-cache";
import type { RuntimeContext, Sink } from "../../pipeline/contracts.js";
import type { Interner } from "../../pipeline/intern.js";
import { F_ERROR, F_HAS_PARENT, KIND_SERVER, spanIdHex, traceIdHex, type SpanBatch } from "../../pipeline/span-batch.js";

const RECORD = 64;
// one scratch record: a span is encoded here and copied, so writing allocates nothing per span
const scratch = new ArrayBuffer(RECORD);
const dv = new DataView(scratch);
const scratchBytes = new Uint8Array(scratch);

interface TraceEntry {
  tid: Uint32Array;
  bytes: Uint8Array;
  length: number;
}

export interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  kind: number;
  error: boolean;
  service: string;
  name: string;
  startUs: number;
  durationUs: number;
  peer: string | null;
}

export interface IndexedEntry {
  traceId: string;
  service: string;
  startUs: number;
  durationUs: number;
  error: boolean;
}

export interface TraceStoreConfig {
  /** Traces kept; older ones are evicted (counted). */
  maxTraces?: number;
}

export class EmbeddedTraceStore implements Sink {
  private interner!: Interner;
  private readonly traces: LRUCache<number, TraceEntry>;
  /** Entry-span index: per service, (start, duration, error, trace key) rows. */
  private readonly index = new Map<number, { start: number[]; dur: number[]; err: number[]; key: number[] }>();
  spansWritten = 0;
  tracesEvicted = 0;

  constructor(readonly config: TraceStoreConfig = {}) {
    this.traces = new LRUCache<number, TraceEntry>({
      max: config.maxTraces ?? 200_000,
      dispose: (_v, _k, reason) => {
        if (reason === "evict") this.tracesEvicted++;
      },
    });
  }

  async open(ctx: RuntimeContext): Promise<void> {
    this.interner = ctx.interner;
  }

  async write(batch: unknown): Promise<void> {
    const b = batch as SpanBatch;
    this.interner ??= b.interner;
    for (let i = 0; i < b.length; i++) {
      // 53-bit key from the low words of the trace id; the full id is confirmed on read
      const key = (b.tid[i * 4 + 2] & 0x1fffff) * 4294967296 + b.tid[i * 4 + 3];
      let e = this.traces.get(key);
      if (e === undefined || !sameTid(e.tid, b.tid, i * 4)) {
        e = { tid: b.tid.slice(i * 4, i * 4 + 4), bytes: new Uint8Array(RECORD * 4), length: 0 };
        this.traces.set(key, e);
      }
      if (e.length + RECORD > e.bytes.length) {
        const nb = new Uint8Array(e.bytes.length * 2);
        nb.set(e.bytes);
        e.bytes = nb;
      }
      dv.setUint32(0, b.sid[i * 2]);
      dv.setUint32(4, b.sid[i * 2 + 1]);
      dv.setUint32(8, b.pid[i * 2]);
      dv.setUint32(12, b.pid[i * 2 + 1]);
      dv.setFloat64(16, b.startUs[i]);
      dv.setFloat64(24, b.durUs[i]);
      dv.setUint8(32, b.kind[i]);
      dv.setUint8(33, b.flags[i]);
      dv.setInt32(36, b.service[i]);
      dv.setInt32(40, b.name[i]);
      dv.setInt32(44, b.peer[i]);
      dv.setInt32(48, b.addr[i]);
      dv.setInt32(52, b.dbSystem[i]);
      dv.setInt32(56, b.dbNamespace[i]);
      dv.setInt32(60, b.msgDest[i]);
      e.bytes.set(scratchBytes, e.length);
      e.length += RECORD;
      if ((b.flags[i] & F_HAS_PARENT) === 0 || b.kind[i] === KIND_SERVER) {
        let ix = this.index.get(b.service[i]);
        if (ix === undefined) this.index.set(b.service[i], (ix = { start: [], dur: [], err: [], key: [] }));
        ix.start.push(b.startUs[i]);
        ix.dur.push(b.durUs[i]);
        ix.err.push(b.flags[i] & F_ERROR);
        ix.key.push(key);
      }
      this.spansWritten++;
    }
  }

  /** The spans of one trace, or [] (evicted or never seen). */
  getTrace(traceIdHexStr: string): StoredSpan[] {
    const words = new Uint32Array(4);
    const hex = traceIdHexStr.padStart(32, "0");
    for (let k = 0; k < 4; k++) words[k] = parseInt(hex.slice(k * 8, k * 8 + 8), 16) >>> 0;
    const key = (words[2] & 0x1fffff) * 4294967296 + words[3];
    const e = this.traces.peek(key);
    if (e === undefined || !sameTid(e.tid, words, 0)) return [];
    return this.decode(e);
  }

  /** Entry spans of a service within [fromUs, toUs) and at least minDurationUs, newest first. */
  search(service: string, q: { fromUs?: number; toUs?: number; minDurationUs?: number; errorOnly?: boolean; limit?: number } = {}): IndexedEntry[] {
    const id = this.interner.lookup(service);
    const ix = id < 0 ? undefined : this.index.get(id);
    if (!ix) return [];
    const out: IndexedEntry[] = [];
    for (let k = ix.start.length - 1; k >= 0 && out.length < (q.limit ?? 20); k--) {
      if (q.fromUs !== undefined && ix.start[k] < q.fromUs) continue;
      if (q.toUs !== undefined && ix.start[k] >= q.toUs) continue;
      if (q.minDurationUs !== undefined && ix.dur[k] < q.minDurationUs) continue;
      if (q.errorOnly && !ix.err[k]) continue;
      const e = this.traces.peek(ix.key[k]);
      if (!e) continue;
      out.push({ traceId: traceIdHex(e.tid, 0), service, startUs: ix.start[k], durationUs: ix.dur[k], error: ix.err[k] !== 0 });
    }
    return out;
  }

  get traceCount(): number {
    return this.traces.size;
  }

  private decode(e: TraceEntry): StoredSpan[] {
    const out: StoredSpan[] = [];
    const words = new Uint32Array(2);
    for (let off = 0; off < e.length; off += RECORD) {
      const dv = new DataView(e.bytes.buffer, e.bytes.byteOffset + off, RECORD);
      words[0] = dv.getUint32(0);
      words[1] = dv.getUint32(4);
      const spanId = spanIdHex(words, 0);
      const hasParent = (dv.getUint8(33) & F_HAS_PARENT) !== 0;
      words[0] = dv.getUint32(8);
      words[1] = dv.getUint32(12);
      const peer = dv.getInt32(44);
      out.push({
        traceId: traceIdHex(e.tid, 0),
        spanId,
        parentSpanId: hasParent ? spanIdHex(words, 0) : null,
        kind: dv.getUint8(32),
        error: (dv.getUint8(33) & F_ERROR) !== 0,
        service: this.interner.name(dv.getInt32(36)),
        name: this.interner.name(dv.getInt32(40)),
        startUs: dv.getFloat64(16),
        durationUs: dv.getFloat64(24),
        peer: peer ? this.interner.name(peer) : null,
      });
    }
    return out;
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  async healthcheck(): Promise<boolean> {
    return true;
  }

  metrics(): Record<string, number> {
    return { trace_store_spans_written: this.spansWritten, trace_store_traces: this.traces.size, trace_store_traces_evicted: this.tracesEvicted };
  }
}

function sameTid(a: Uint32Array, b: Uint32Array, at: number): boolean {
  return a[0] === b[at] && a[1] === b[at + 1] && a[2] === b[at + 2] && a[3] === b[at + 3];
}
