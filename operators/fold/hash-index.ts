/**
 * HashIndex: an open-addressing (linear probing) index from fixed-width uint32 keys to dense entry
 * ids, with backward-shift deletion (no tombstones, so probe chains never rot).
 *
 * The fold's state tables are this index plus typed-array columns indexed by entry id: no Map, no
 * object per entry. Keys are K words; the hash covers the first `hashWords` words, so a lookup
 * by a key prefix (e.g. (trace, span id) whatever the kind) walks the same probe chain.
 * Callers write the key into `key` (a scratch array) and then call find/insert.
 *
 *   table: [ .. e+1 .. 0 .. ]  (power of two, load <= 1/2)       keys: [e0 words][e1 words]...
 *   free ids: a stack, so ids are reused and columns stay dense
 */
export class HashIndex {
  readonly key: Uint32Array;
  keys: Uint32Array;
  hashes: Int32Array;
  private table: Int32Array;
  private mask: number;
  private free: Int32Array;
  private freeTop = 0;
  private next = 0; // high-water mark of entry ids
  size = 0;
  capacity: number;
  /** Called with the new capacity when entry ids may reach past the old one: grow your columns. */
  onGrow: (capacity: number) => void = () => {};

  constructor(
    readonly words: number,
    readonly hashWords = words,
    capacity = 1024,
  ) {
    this.key = new Uint32Array(words);
    this.capacity = capacity;
    this.keys = new Uint32Array(capacity * words);
    this.hashes = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    let t = 16;
    while (t < capacity * 2) t *= 2;
    this.table = new Int32Array(t);
    this.mask = t - 1;
  }

  /** Bytes held by the index (not counting the caller's columns). */
  get bytesHeld(): number {
    return this.keys.byteLength + this.hashes.byteLength + this.table.byteLength + this.free.byteLength;
  }

  private hashKey(): number {
    const k = this.key;
    const n = this.hashWords;
    let h = Math.imul(0x9e3779b9 ^ k[0], 0x85ebca6b);
    h ^= h >>> 13;
    if (n > 1) {
      h = Math.imul(h ^ k[1], 0x85ebca6b);
      h ^= h >>> 13;
      if (n > 2) {
        h = Math.imul(h ^ k[2], 0x85ebca6b);
        h ^= h >>> 13;
        for (let i = 3; i < n; i++) {
          h = Math.imul(h ^ k[i], 0x85ebca6b);
          h ^= h >>> 13;
        }
      }
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
    return (h ^ (h >>> 16)) | 0;
  }

  /** Copies the scratch key into entry e (a loop: TypedArray.set costs more for 1-6 words). */
  private storeKey(e: number): void {
    const base = e * this.words;
    const keys = this.keys;
    const k = this.key;
    for (let i = 0; i < this.words; i++) keys[base + i] = k[i];
  }

  private equalsEntry(e: number, n: number): boolean {
    const base = e * this.words;
    const k = this.key;
    const keys = this.keys;
    for (let i = 0; i < n; i++) if (keys[base + i] !== k[i]) return false;
    return true;
  }

  /** Entry id for `key`, or -1. */
  find(): number {
    return this.findPrefix(this.words);
  }

  // where the last full-key miss ended: insertAfterMiss() reuses it instead of probing again
  private missSlot = -1;
  private missHash = 0;

  /** First entry whose first `n` key words equal key[0..n) (n >= hashWords), or -1. */
  findPrefix(n: number): number {
    const h = this.hashKey();
    let slot = h & this.mask;
    for (;;) {
      const v = this.table[slot];
      if (v === 0) {
        this.missSlot = n === this.words ? slot : -1;
        this.missHash = h;
        return -1;
      }
      const e = v - 1;
      if (this.hashes[e] === h && this.equalsEntry(e, n)) return e;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Inserts `key` (which must be absent) and returns its new entry id. */
  insert(): number {
    if (this.size + 1 > this.table.length >>> 1) this.rehash(this.table.length * 2);
    let e: number;
    if (this.freeTop > 0) e = this.free[--this.freeTop];
    else {
      if (this.next === this.capacity) this.growEntries(this.capacity * 2);
      e = this.next++;
    }
    const h = this.hashKey();
    this.storeKey(e);
    this.hashes[e] = h;
    let slot = h & this.mask;
    while (this.table[slot] !== 0) slot = (slot + 1) & this.mask;
    this.table[slot] = e + 1;
    this.size++;
    return e;
  }

  /**
   * Inserts `key` right after find() missed it, with the key and the index unchanged since: the
   * probe position of the miss is reused (one hash and one probe per new entry instead of two).
   */
  insertAfterMiss(): number {
    const slot = this.missSlot;
    this.missSlot = -1;
    if (slot < 0 || this.size + 1 > this.table.length >>> 1 || this.table[slot] !== 0) return this.insert();
    let e: number;
    if (this.freeTop > 0) e = this.free[--this.freeTop];
    else {
      if (this.next === this.capacity) this.growEntries(this.capacity * 2);
      e = this.next++;
    }
    this.storeKey(e);
    this.hashes[e] = this.missHash;
    this.table[slot] = e + 1;
    this.size++;
    return e;
  }

  /** Finds `key` or inserts it; sets `inserted`. */
  inserted = false;
  upsert(): number {
    const e = this.find();
    if (e >= 0) {
      this.inserted = false;
      return e;
    }
    this.inserted = true;
    return this.insertAfterMiss();
  }

  /** Removes entry `e` (its id becomes free for reuse). */
  remove(e: number): void {
    const h = this.hashes[e];
    let slot = h & this.mask;
    while (this.table[slot] !== e + 1) {
      if (this.table[slot] === 0) throw new Error(`HashIndex.remove: entry ${e} not indexed`);
      slot = (slot + 1) & this.mask;
    }
    // backward-shift deletion
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & this.mask;
      const v = this.table[j];
      if (v === 0) break;
      const home = this.hashes[v - 1] & this.mask;
      // can entry at j move into hole? yes if home is not cyclically in (hole, j]
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        this.table[hole] = v;
        hole = j;
      }
    }
    this.table[hole] = 0;
    this.missSlot = -1;
    this.free[this.freeTop++] = e;
    this.size--;
  }

  /** Forgets every entry (keeps the allocated memory). */
  clear(): void {
    this.missSlot = -1;
    this.table.fill(0);
    this.freeTop = 0;
    this.next = 0;
    this.size = 0;
  }

  /** Calls fn(e) for every live entry (order unspecified). Not for the hot path. */
  forEach(fn: (e: number) => void): void {
    for (let s = 0; s < this.table.length; s++) {
      const v = this.table[s];
      if (v !== 0) fn(v - 1);
    }
  }

  private growEntries(n: number): void {
    const keys = new Uint32Array(n * this.words);
    keys.set(this.keys);
    this.keys = keys;
    const hashes = new Int32Array(n);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const free = new Int32Array(n);
    free.set(this.free);
    this.free = free;
    this.capacity = n;
    this.onGrow(n);
  }

  private rehash(n: number): void {
    const table = new Int32Array(n);
    const mask = n - 1;
    for (let s = 0; s < this.table.length; s++) {
      const v = this.table[s];
      if (v === 0) continue;
      let slot = this.hashes[v - 1] & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = v;
    }
    this.table = table;
    this.mask = mask;
  }
}

export function growI32(a: Int32Array, n: number, fill = 0) {
  const b = new Int32Array(n);
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  return b;
}
export function growU32(a: Uint32Array, n: number) {
  const b = new Uint32Array(n);
  b.set(a);
  return b;
}
export function growF64(a: Float64Array, n: number) {
  const b = new Float64Array(n);
  b.set(a);
  return b;
}
export function growU8(a: Uint8Array, n: number) {
  const b = new Uint8Array(n);
  b.set(a);
  return b;
}
