/**
 * Bytes of trace details written per trace, for `sinks.hbase.maxBytesPerTrace`: a trace whose
 * details pass the limit is cut (its later spans are not written, and counted), so one runaway
 * trace cannot grow an HBase row without bound.
 *
 * Bounded memory, no allocation per span: two generations of open-addressing tables keyed by the
 * 128-bit trace id. New traces go into the current generation; when it is half full it becomes
 * the previous one and the old previous is cleared for reuse. A trace found in the previous
 * generation moves to the current one, so an active trace is never forgotten; a trace idle for
 * about two generations' worth of new traces is, and counts from zero if it comes back (the cut
 * is a storage guard, not an aggregate: the fold's totals do not depend on it).
 */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

class Generation {
  readonly keys: Uint32Array;
  readonly bytes: Float64Array;
  readonly used: Uint8Array;
  size = 0;
  constructor(readonly capacity: number) {
    this.keys = new Uint32Array(capacity * 4);
    this.bytes = new Float64Array(capacity);
    this.used = new Uint8Array(capacity);
  }

  /** Slot of the trace, or -(free slot) - 1 when absent. */
  find(tid: Uint32Array, at: number, h: number): number {
    const mask = this.capacity - 1;
    let s = h & mask;
    for (;;) {
      if (this.used[s] === 0) return -s - 1;
      const k = s * 4;
      if (this.keys[k] === tid[at] && this.keys[k + 1] === tid[at + 1] && this.keys[k + 2] === tid[at + 2] && this.keys[k + 3] === tid[at + 3]) return s;
      s = (s + 1) & mask;
    }
  }

  put(free: number, tid: Uint32Array, at: number, bytes: number): number {
    const k = free * 4;
    this.keys[k] = tid[at];
    this.keys[k + 1] = tid[at + 1];
    this.keys[k + 2] = tid[at + 2];
    this.keys[k + 3] = tid[at + 3];
    this.bytes[free] = bytes;
    this.used[free] = 1;
    this.size++;
    return free;
  }

  clear(): void {
    this.used.fill(0);
    this.size = 0;
  }
}

export class TraceByteBudget {
  private cur: Generation;
  private prev: Generation;
  /** Traces remembered per generation before it rotates (half the table). */
  readonly perGeneration: number;
  rotations = 0;

  /** `traces`: how many traces each generation remembers (rounded up to a power of two). */
  constructor(readonly limit: number, traces = 1 << 17) {
    let cap = 16;
    while (cap < traces * 2) cap *= 2;
    this.cur = new Generation(cap);
    this.prev = new Generation(cap);
    this.perGeneration = cap >>> 1;
  }

  /**
   * The slot holding the trace's byte count in the current generation (inserted at 0, or moved
   * from the previous generation). Read and update it with bytesAt / setBytes.
   */
  slot(tid: Uint32Array, at: number): number {
    const h = fmix32(tid[at] ^ fmix32(tid[at + 1] ^ fmix32(tid[at + 2] ^ fmix32(tid[at + 3]))));
    let s = this.cur.find(tid, at, h);
    if (s >= 0) return s;
    let carried = 0;
    const p = this.prev.find(tid, at, h);
    if (p >= 0) carried = this.prev.bytes[p];
    if (this.cur.size >= this.perGeneration) {
      const old = this.prev;
      this.prev = this.cur;
      this.cur = old;
      this.cur.clear();
      this.rotations++;
      s = this.cur.find(tid, at, h);
    }
    // (an entry left behind in the previous generation is harmless: the current one is read first)
    return this.cur.put(-s - 1, tid, at, carried);
  }

  bytesAt(slot: number): number {
    return this.cur.bytes[slot];
  }

  setBytes(slot: number, bytes: number): void {
    this.cur.bytes[slot] = bytes;
  }
}
