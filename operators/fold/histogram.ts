/**
 * Log-scale latency histograms: mergeable by adding bucket counts, so any percentile over any set
 * of minutes, pods or workers comes from adding rows.
 *
 * Values are microseconds. Bucket 0 is the zero bucket (v < 1 us). Bucket k >= 1 holds
 * (G^(k-2), G^(k-1)] with G = (1 + A) / (1 - A), A = 0.02; its representative value
 * 2 G^(k-1) / (G + 1) is within A relative error of every value in the bucket (the DDSketch bound).
 * A percentile is the nearest-rank value's bucket representative, clamped to [min, max], so it is
 * within 2% of the exact nearest-rank value (test/histogram.test.ts checks it). 641 buckets reach
 * G^639 us (~36 h); larger values land in the last bucket (still clamped by max).
 *
 * HistogramPool keeps many histograms in one Uint32Array (2.5 KiB each), allocated on demand.
 */
export const RELATIVE_ACCURACY = 0.02;
export const GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY);
export const BUCKETS = 641;

/** Upper edge of bucket k (k >= 1): G^(k-1). Bucket k holds (UPPER[k-1], UPPER[k]]. */
const UPPER = new Float64Array(BUCKETS + 1);
for (let k = 1; k <= BUCKETS; k++) UPPER[k] = Math.pow(GAMMA, k - 1);
const MAX_EXACT = UPPER[BUCKETS - 1];

// bucketOf without a logarithm: the float's exponent and top 8 mantissa bits pick a cell (0.4%
// wide, so at most one bucket edge (4% apart) falls inside it); one compare settles that edge.
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0; // little-endian: high word is [1]
const OCTAVES = Math.ceil(Math.log2(MAX_EXACT)) + 1;
const CELL = new Uint16Array(OCTAVES * 256);
{
  let k = 1;
  for (let c = 0; c < CELL.length; c++) {
    const lower = Math.pow(2, c >>> 8) * (1 + (c & 255) / 256);
    while (k < BUCKETS - 1 && UPPER[k] < lower) k++;
    CELL[c] = k;
  }
}

export function bucketOf(us: number): number {
  if (!(us >= 1)) return 0; // also NaN -> zero bucket
  if (us > MAX_EXACT) return BUCKETS - 1;
  F64[0] = us;
  const hi = U32[HI];
  const k = CELL[(((hi >>> 20) - 1023) << 8) | ((hi >>> 12) & 255)];
  return us > UPPER[k] ? k + 1 : k;
}

export function bucketValue(k: number): number {
  if (k === 0) return 0;
  return (2 * Math.pow(GAMMA, k - 1)) / (GAMMA + 1);
}

/** A sparse, serialisable histogram: what sinks store and reports merge. */
export interface HistogramData {
  count: number;
  sum: number;
  min: number;
  max: number;
  /** [bucket, count] pairs, ascending by bucket. */
  buckets: Array<[number, number]>;
}

export function emptyHistogram(): HistogramData {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, buckets: [] };
}

/** Adds `b` into `a` (both sparse); returns `a`. */
export function mergeHistogram(a: HistogramData, b: HistogramData): HistogramData {
  if (b.count === 0) return a;
  a.count += b.count;
  a.sum += b.sum;
  if (b.min < a.min) a.min = b.min;
  if (b.max > a.max) a.max = b.max;
  const out: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  while (i < a.buckets.length || j < b.buckets.length) {
    const x = a.buckets[i];
    const y = b.buckets[j];
    if (y === undefined || (x !== undefined && x[0] < y[0])) {
      out.push(x);
      i++;
    } else if (x === undefined || y[0] < x[0]) {
      out.push([y[0], y[1]]);
      j++;
    } else {
      out.push([x[0], x[1] + y[1]]);
      i++;
      j++;
    }
  }
  a.buckets = out;
  return a;
}

/** Nearest-rank percentile (q in [0,1]) in microseconds; NaN for an empty histogram. */
export function percentile(h: HistogramData, q: number): number {
  if (h.count === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (const [k, c] of h.buckets) {
    seen += c;
    if (seen >= rank) return clamp(bucketValue(k), h.min, h.max);
  }
  return h.max;
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

export class HistogramPool {
  counts: Uint32Array;
  count: Float64Array;
  sum: Float64Array;
  min: Float64Array;
  max: Float64Array;
  private used = 0;
  capacity: number;

  constructor(capacity = 64) {
    this.capacity = capacity;
    this.counts = new Uint32Array(capacity * BUCKETS);
    this.count = new Float64Array(capacity);
    this.sum = new Float64Array(capacity);
    this.min = new Float64Array(capacity);
    this.max = new Float64Array(capacity);
  }

  get size(): number {
    return this.used;
  }

  get bytesHeld(): number {
    return this.counts.byteLength + this.capacity * 32;
  }

  /** A new empty histogram id. */
  alloc(): number {
    if (this.used === this.capacity) this.grow(this.capacity * 2);
    const h = this.used++;
    this.count[h] = 0;
    this.sum[h] = 0;
    this.min[h] = Infinity;
    this.max[h] = -Infinity;
    return h;
  }

  record(h: number, us: number): void {
    this.counts[h * BUCKETS + bucketOf(us)]++;
    this.count[h]++;
    this.sum[h] += us;
    if (us < this.min[h]) this.min[h] = us;
    if (us > this.max[h]) this.max[h] = us;
  }

  /** Sparse copy of histogram h (output path). */
  toData(h: number): HistogramData {
    const buckets: Array<[number, number]> = [];
    const base = h * BUCKETS;
    if (this.counts[base] !== 0) buckets.push([0, this.counts[base]]);
    // bucketOf is monotonic: the values seen lie in [bucketOf(min), bucketOf(max)] (plus bucket
    // 0, where NaN goes without touching min or max), a few dozen of the 641 buckets
    this.span(h);
    for (let k = this.lo, hi = this.hi; k <= hi; k++) {
      const c = this.counts[base + k];
      if (c !== 0) buckets.push([k, c]);
    }
    return { count: this.count[h], sum: this.sum[h], min: this.min[h], max: this.max[h], buckets };
  }

  /** Frees every histogram (zeroes only the buckets they used). */
  clear(): void {
    for (let h = 0; h < this.used; h++) {
      const base = h * BUCKETS;
      this.counts[base] = 0;
      this.span(h);
      if (this.hi >= this.lo) this.counts.fill(0, base + this.lo, base + this.hi + 1);
    }
    this.used = 0;
  }

  /** Sets [lo, hi]: the buckets from 1 up that histogram h can have counts in, [bucketOf(min), bucketOf(max)]. */
  private span(h: number): void {
    if (this.count[h] === 0 || !(this.max[h] >= 1)) {
      this.lo = 1;
      this.hi = 0;
      return;
    }
    this.lo = Math.max(1, bucketOf(this.min[h]));
    this.hi = bucketOf(this.max[h]);
  }

  private lo = 1;
  private hi = 0;

  private grow(n: number): void {
    const c = new Uint32Array(n * BUCKETS);
    c.set(this.counts);
    this.counts = c;
    for (const k of ["count", "sum", "min", "max"] as const) {
      const a = new Float64Array(n);
      a.set(this[k]);
      this[k] = a;
    }
    this.capacity = n;
  }
}
