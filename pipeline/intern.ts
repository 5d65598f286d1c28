/**
 * Interner: maps names (service, operation, peer, ...) to small integer ids.
 *
 * The OTLP protobuf decoder interns straight from the UTF-8 bytes of the message: a name already
 * seen costs a hash and a byte compare, never a string. A string is built once per distinct name,
 * on first sight. Id 0 is reserved for "absent" so typed-array columns can use 0 as null.
 *
 * Layout: every distinct name's bytes live in one growing arena; an open-addressing table (linear
 * probing, power-of-two capacity) maps hash (FNV-1a, hashBytes) -> id. Capacity is bounded by `maxNames`; past it
 * new names intern to OVERFLOW_ID (`__other__`) and `overflowed` counts them.
 */
const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

export const NONE_ID = 0;
/** Id of `__other__`, the name that absorbs everything past a budget. */
export const OTHER_ID = 1;
export const OTHER_NAME = "__other__";

export class Interner {
  private arena: Uint8Array;
  private arenaLen = 0;
  private offsets: Int32Array;
  private lengths: Int32Array;
  private hashes: Int32Array;
  private table: Int32Array; // id + 1, 0 = empty
  private mask: number;
  private names: (string | undefined)[] = [];
  private count = 0;
  /** Names refused because the table reached `maxNames` (they intern to `__other__`). */
  overflowed = 0;

  constructor(readonly maxNames = 1 << 20) {
    this.arena = new Uint8Array(1 << 16);
    this.offsets = new Int32Array(1024);
    this.lengths = new Int32Array(1024);
    this.hashes = new Int32Array(1024);
    this.table = new Int32Array(2048);
    this.mask = this.table.length - 1;
    this.internString(""); // id 0: absent
    this.internString(OTHER_NAME); // id 1
  }

  get size(): number {
    return this.count;
  }

  /** Interns bytes[start, end) (UTF-8). Allocates nothing when the name is known. */
  internBytes(bytes: Uint8Array, start: number, end: number): number {
    const len = end - start;
    if (len === 0) return NONE_ID;
    const h = hashBytes(bytes, start, end);
    let slot = h & this.mask;
    for (;;) {
      const e = this.table[slot];
      if (e === 0) break;
      const id = e - 1;
      if (this.hashes[id] === h && this.lengths[id] === len && this.equalsArena(id, bytes, start, len)) return id;
      slot = (slot + 1) & this.mask;
    }
    return this.insert(bytes, start, len, h, slot);
  }

  /** Interns a JS string (used by the JSON decoders and by configuration). */
  internString(s: string): number {
    if (s.length === 0 && this.count > 0) return NONE_ID;
    const bytes = textEncoder.encode(s);
    return this.internBytes0(bytes);
  }

  private internBytes0(bytes: Uint8Array): number {
    if (bytes.length === 0 && this.count === 0) {
      // the reserved empty name
      this.names[0] = "";
      this.offsets[0] = 0;
      this.lengths[0] = 0;
      this.count = 1;
      return 0;
    }
    return this.internBytes(bytes, 0, bytes.length);
  }

  /** The name for an id; built lazily from the arena and cached. */
  name(id: number): string {
    const cached = this.names[id];
    if (cached !== undefined) return cached;
    if (id < 0 || id >= this.count) throw new RangeError(`intern id ${id} out of range`);
    const off = this.offsets[id];
    const s = textDecoder.decode(this.arena.subarray(off, off + this.lengths[id]));
    this.names[id] = s;
    return s;
  }

  /** The UTF-8 bytes of a name, as a view into the arena (valid until the next insert). */
  bytesOf(id: number): Uint8Array {
    if (id < 0 || id >= this.count) throw new RangeError(`intern id ${id} out of range`);
    const off = this.offsets[id];
    return this.arena.subarray(off, off + this.lengths[id]);
  }

  /** Looks a string up without inserting it; -1 when unknown. */
  lookup(s: string): number {
    if (s.length === 0) return NONE_ID;
    const bytes = textEncoder.encode(s);
    const h = hashBytes(bytes, 0, bytes.length);
    let slot = h & this.mask;
    for (;;) {
      const e = this.table[slot];
      if (e === 0) return -1;
      const id = e - 1;
      if (this.hashes[id] === h && this.lengths[id] === bytes.length && this.equalsArena(id, bytes, 0, bytes.length)) return id;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Bytes held by the interner's tables. */
  get bytesHeld(): number {
    return this.arena.byteLength + this.offsets.byteLength * 3 + this.table.byteLength;
  }

  private equalsArena(id: number, bytes: Uint8Array, start: number, len: number): boolean {
    const off = this.offsets[id];
    const a = this.arena;
    for (let i = 0; i < len; i++) if (a[off + i] !== bytes[start + i]) return false;
    return true;
  }

  private insert(bytes: Uint8Array, start: number, len: number, h: number, slot: number): number {
    if (this.count >= this.maxNames) {
      this.overflowed++;
      return OTHER_ID;
    }
    const id = this.count++;
    if (id >= this.offsets.length) {
      const n = this.offsets.length * 2;
      this.offsets = grow32(this.offsets, n);
      this.lengths = grow32(this.lengths, n);
      this.hashes = grow32(this.hashes, n);
    }
    if (this.arenaLen + len > this.arena.length) {
      let n = this.arena.length * 2;
      while (n < this.arenaLen + len) n *= 2;
      const a = new Uint8Array(n);
      a.set(this.arena.subarray(0, this.arenaLen));
      this.arena = a;
    }
    this.arena.set(bytes.subarray(start, start + len), this.arenaLen);
    this.offsets[id] = this.arenaLen;
    this.lengths[id] = len;
    this.hashes[id] = h;
    this.arenaLen += len;
    this.table[slot] = id + 1;
    if (this.count * 2 > this.table.length) this.rehash();
    return id;
  }

  private rehash(): void {
    const table = new Int32Array(this.table.length * 2);
    const mask = table.length - 1;
    for (let id = 1; id < this.count; id++) {
      if (this.lengths[id] === 0) continue;
      let slot = this.hashes[id] & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = id + 1;
    }
    this.table = table;
    this.mask = mask;
  }
}

function grow32(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n);
  b.set(a);
  return b;
}

/**
 * FNV-1a of bytes[start, end), a byte a step. A murmur3-style hash taking 4 bytes a step was
 * tried (2026-11-23) and made the protobuf decoder 5-8% slower: the names are short, and
 * assembling each word costs more than the multiplies it saves.
 */
export function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  return h | 0;
}
