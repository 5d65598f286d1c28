/**
 * Seeded randomness and the trace-id partition hash for the replay generator.
 *
 * `Rng` is xoshiro128** (Blackman and Vigna), seeded through splitmix32 so that neighbouring seeds
 * give unrelated streams. It is 32-bit integer arithmetic only (Math.imul), so a seed produces the
 * same sequence on every platform and Node version; nothing here allocates after construction.
 */

function splitmix32(state: Uint32Array): number {
  state[0] = (state[0] + 0x9e3779b9) >>> 0;
  let z = state[0];
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private readonly s = new Uint32Array(4);
  /** Second normal deviate of the last Box-Muller pair (NaN when none is cached). */
  private spare = NaN;

  /** `seed` is any number; its low 32 bits and `stream` select the sequence. */
  constructor(seed: number, stream = 0) {
    const sm = new Uint32Array(1);
    sm[0] = (seed >>> 0) ^ Math.imul(stream + 1, 0x632be5ab);
    // mix the high bits of a large seed in as well
    sm[0] ^= Math.floor(seed / 4294967296) >>> 0;
    for (let k = 0; k < 4; k++) this.s[k] = splitmix32(sm);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1; // never the all-zero state
  }

  /** Uniform uint32. */
  u32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal deviate (Box-Muller, pairs cached). */
  normal(): number {
    const cached = this.spare;
    if (cached === cached) {
      this.spare = NaN;
      return cached;
    }
    let u = this.next();
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Lognormal deviate with the given median and sigma (of the underlying normal). */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** An element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Fisher-Yates shuffle in place (construction only). */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), the hash of the Java client's
 * default partitioner: partition = (murmur2(keyBytes) & 0x7fffffff) % partitions. Returns the
 * signed 32-bit hash, as Java does.
 */
export function murmur2(data: Uint8Array, start = 0, length = data.length - start): number {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = start + i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const tail = start + (length & ~3);
  const rest = length & 3;
  if (rest > 0) {
    if (rest === 3) h ^= data[tail + 2] << 16;
    if (rest >= 2) h ^= data[tail + 1] << 8;
    h ^= data[tail];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

const hexKey = new Uint8Array(32);
const HEX = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]; // "0-9a-f"

/**
 * The partition a Kafka producer keyed by the lower-case hex trace id (as tracefold's own producer
 * and the OTel Collector's `partition_traces_by_id` do) would choose with the default partitioner.
 * Builds the 32 hex bytes in a shared scratch buffer: no string, no allocation.
 */
export function partitionOfTrace(tid: Uint32Array, at: number, partitions: number): number {
  for (let w = 0; w < 4; w++) {
    const v = tid[at + w];
    for (let d = 0; d < 8; d++) hexKey[w * 8 + d] = HEX[(v >>> (28 - d * 4)) & 15];
  }
  return (murmur2(hexKey, 0, 32) & 0x7fffffff) % partitions;
}
