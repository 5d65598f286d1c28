/**
 * AggTable: per-key delta counters and histograms in typed arrays, keyed by up to 4 uint32 words
 * (e.g. minute, client, server, type). The fold adds into these on the hot path; at each flush the
 * rows are read out for the sinks and the table is cleared (DESIGN 6: every worker writes the
 * deltas it saw at each checkpoint, the store adds them up).
 */
import { HashIndex, growI32 } from "./hash-index.js";
import { HistogramPool, type HistogramData } from "./histogram.js";

const CACHE_SLOTS = 1024;
const CACHE_SHIFT = 32 - 10;

export class AggTable {
  readonly index: HashIndex;
  cols: Float64Array[];
  hists: Int32Array[];

  constructor(
    readonly keyWords: number,
    readonly counterNames: readonly string[],
    readonly histNames: readonly string[],
    readonly pool: HistogramPool,
    capacity = 256,
  ) {
    this.index = new HashIndex(keyWords, keyWords, capacity);
    this.cols = counterNames.map(() => new Float64Array(capacity));
    this.hists = histNames.map(() => new Int32Array(capacity).fill(-1));
    this.index.onGrow = (n) => {
      this.cols = this.cols.map((c) => {
        const d = new Float64Array(n);
        d.set(c);
        return d;
      });
      this.hists = this.hists.map((h) => growI32(h, n, -1));
    };
  }

  get size(): number {
    return this.index.size;
  }

  // A direct-mapped cache in front of the index: the same few (minute, service, ...) keys repeat
  // span after span, and a cache hit costs one multiply and four compares instead of a probe.
  private readonly cacheKeys = new Uint32Array(CACHE_SLOTS * 4);
  private readonly cacheEntry = new Int32Array(CACHE_SLOTS);
  private readonly cacheGen = new Int32Array(CACHE_SLOTS);
  private gen = 1;

  /** Entry for the key (k0..k3; unused words 0), created zeroed on first use. */
  at(k0: number, k1 = 0, k2 = 0, k3 = 0): number {
    const c = (Math.imul(Math.imul(Math.imul(k0, 0x9e3779b1) ^ k1, 0x85ebca77) ^ k2, 0xc2b2ae3d) ^ k3) >>> CACHE_SHIFT;
    const ck = this.cacheKeys;
    if (this.cacheGen[c] === this.gen && ck[4 * c] === k0 && ck[4 * c + 1] === k1 && ck[4 * c + 2] === k2 && ck[4 * c + 3] === k3) return this.cacheEntry[c];
    const e = this.lookup(k0, k1, k2, k3);
    ck[4 * c] = k0;
    ck[4 * c + 1] = k1;
    ck[4 * c + 2] = k2;
    ck[4 * c + 3] = k3;
    this.cacheEntry[c] = e;
    this.cacheGen[c] = this.gen;
    return e;
  }

  private lookup(k0: number, k1: number, k2: number, k3: number): number {
    const key = this.index.key;
    key[0] = k0;
    if (this.keyWords > 1) key[1] = k1;
    if (this.keyWords > 2) key[2] = k2;
    if (this.keyWords > 3) key[3] = k3;
    const e = this.index.upsert();
    if (this.index.inserted) {
      for (let c = 0; c < this.cols.length; c++) this.cols[c][e] = 0;
      for (let h = 0; h < this.hists.length; h++) this.hists[h][e] = -1;
    }
    return e;
  }

  /** Records `us` into histogram column `h` of entry `e`, allocating the histogram on first use. */
  record(e: number, h: number, us: number): void {
    let id = this.hists[h][e];
    if (id < 0) {
      id = this.pool.alloc();
      this.hists[h][e] = id;
    }
    this.pool.record(id, us);
  }

  /** Every entry through `fn` (output path, not per span): read it with key(), counter(), hist(). */
  map<T>(fn: (e: number) => T): T[] {
    const out: T[] = [];
    this.index.forEach((e) => {
      out.push(fn(e));
    });
    return out;
  }

  /** Word w of entry e's key. */
  key(e: number, w: number): number {
    return this.index.keys[e * this.keyWords + w];
  }

  counter(e: number, c: number): number {
    return this.cols[c][e];
  }

  /** Histogram column h of entry e, as sparse data; null when nothing was recorded. */
  hist(e: number, h: number): HistogramData | null {
    const id = this.hists[h][e];
    return id >= 0 ? this.pool.toData(id) : null;
  }

  clear(): void {
    this.index.clear();
    this.gen++; // every cached entry id is stale now
  }

  get bytesHeld(): number {
    return this.index.bytesHeld + this.index.capacity * (8 * this.cols.length + 4 * this.hists.length);
  }
}
