import { describe, expect, it } from "vitest";
import { BUCKETS, HistogramPool, RELATIVE_ACCURACY, bucketOf, bucketValue, emptyHistogram, mergeHistogram, percentile } from "../operators/fold/histogram.js";

/** Seeded lognormal sampler (Box-Muller over a small LCG), values in microseconds. */
function lognormal(seed: number, medianUs: number, sigma: number, n: number): number[] {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(medianUs * Math.exp(sigma * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u())));
  return out;
}

function exactNearestRank(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
}

describe("log-scale histogram", () => {
  it("reports every percentile within 2% relative error of the exact nearest-rank value", () => {
    const pool = new HistogramPool(1);
    for (const [seed, median, sigma] of [[1, 2_000, 1], [2, 150, 2.5], [3, 40_000, 0.3], [4, 3, 3]] as const) {
      pool.clear();
      const h = pool.alloc();
      const values = lognormal(seed, median, sigma, 50_000).map((v) => Math.max(1, v));
      for (const v of values) pool.record(h, v);
      const data = pool.toData(h);
      let worst = 0;
      for (const q of [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]) {
        const exact = exactNearestRank(values, q);
        const err = Math.abs(percentile(data, q) - exact) / exact;
        worst = Math.max(worst, err);
      }
      expect(worst).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-9);
    }
  });

  it("puts every value within its bucket's 2% representative", () => {
    for (let v = 1; v < 1e11; v *= 1.013) {
      const k = bucketOf(v);
      expect(k).toBeGreaterThan(0);
      expect(k).toBeLessThan(BUCKETS);
      expect(Math.abs(bucketValue(k) - v) / v).toBeLessThanOrEqual(RELATIVE_ACCURACY + 1e-9);
    }
  });

  it("has a zero bucket and clamps percentiles to [min, max]", () => {
    const pool = new HistogramPool(1);
    const h = pool.alloc();
    pool.record(h, 0);
    pool.record(h, 0.4);
    const d = pool.toData(h);
    expect(d.buckets).toEqual([[0, 2]]);
    expect(percentile(d, 0.5)).toBe(0);
    // the zero bucket holds everything below 1 us and reports it as 0 (clamped up to min)
    expect(percentile(d, 1)).toBe(0);
    const single = pool.alloc();
    pool.record(single, 1234.5);
    // one value: min = max, so every percentile is exactly that value, not its bucket's midpoint
    expect(percentile(pool.toData(single), 0.5)).toBe(1234.5);
    expect(percentile(pool.toData(single), 0.99)).toBe(1234.5);
    const one = pool.toData(pool.alloc());
    expect(Number.isNaN(percentile(one, 0.5))).toBe(true);
  });

  it("a cleared pool starts from empty buckets; NaN and sub-microsecond values stay in the zero bucket", () => {
    const pool = new HistogramPool(2);
    const a = pool.alloc();
    const b = pool.alloc();
    for (const us of [0.5, 3, 250, 9_000, 4e6, 1e12]) pool.record(a, us);
    pool.record(b, NaN);
    pool.record(b, 40);
    const before = pool.toData(a);
    expect(before.buckets.map(([k]) => k)).toEqual([0, bucketOf(3), bucketOf(250), bucketOf(9_000), bucketOf(4e6), BUCKETS - 1]);
    expect(pool.toData(b).buckets).toEqual([[0, 1], [bucketOf(40), 1]]);
    pool.clear();
    // the same ids again: nothing of the first use is left in any bucket
    const c = pool.alloc();
    const d = pool.alloc();
    expect([c, d]).toEqual([a, b]);
    pool.record(c, 100);
    expect(pool.toData(c)).toEqual({ count: 1, sum: 100, min: 100, max: 100, buckets: [[bucketOf(100), 1]] });
    expect(pool.toData(d).buckets).toEqual([]);
    for (let k = 0; k < 2 * BUCKETS; k++) if (k !== bucketOf(100)) expect(pool.counts[k]).toBe(0);
  });

  it("merges by adding buckets: the merge of two halves equals the whole", () => {
    const pool = new HistogramPool(4);
    const [a, b, all] = [pool.alloc(), pool.alloc(), pool.alloc()];
    const values = lognormal(9, 5_000, 1.2, 10_000);
    values.forEach((v, i) => {
      pool.record(i % 2 ? a : b, v);
      pool.record(all, v);
    });
    const merged = mergeHistogram(mergeHistogram(emptyHistogram(), pool.toData(a)), pool.toData(b));
    const whole = pool.toData(all);
    expect(merged.buckets).toEqual(whole.buckets);
    expect(merged.count).toBe(whole.count);
    expect(merged.min).toBe(whole.min);
    expect(merged.max).toBe(whole.max);
    expect(merged.sum).toBeCloseTo(whole.sum, 3);
  });
});
