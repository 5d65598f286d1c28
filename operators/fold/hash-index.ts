/**
 * HashIndex: an open-addressing (linear probing) index from fixed-width uint32 keys to dense entry
 * ids, with backward-shift deletion (no tombstones, so probe chains never rot).
 *
 * The fold's state tables are this index plus typed-array columns indexed by entry id: no Map, no
 * object per entry. Keys are K words; the hash covers the first `hashWords` words, so a lookup
 * by a key prefix (e.g. (trace, span id) whatever the kind) walks the same probe chain.
 * Callers write the key into `key` (a scratch array) and then call find/insert.
 *
 *   table: [hash, e+1][hash, e+1][0, 0]...  (power-of-two slots, load <= 1/2)
 *          the hash sits beside the id, so a probe reads one cache line and touches the keys
 *          only when the full hash matches
 *   keys:  [e0 words][e1 words]...           free ids: a stack, so ids are reused, columns dense
 *   flags: per entry, LIVE | DIRTY           DIRTY: changed since the last incremental checkpoint
 *
 * Incremental checkpoints (snapshot.ts) write only the entries marked DIRTY (and old ones): an
 * insert or a removal marks its entry here; a caller that changes a column of an existing entry
 * marks it with `flags[e] |= DIRTY`. `written` keeps, per entry, the increment that last wrote it.
 * The table and the free stack are not checkpointed: rebuild()
 * derives them from the LIVE flags and the hashes.
 */
export const LIVE = 1;
export const DIRTY = 2;

export interface HashIndexState {
  keys: Uint32Array;
  hashes: Int32Array;
  table: Int32Array;
  free: Int32Array;
  next: number;
  size: number;
}

export class HashIndex {
  readonly key: Uint32Array;
  keys: Uint32Array;
  /** Hash of each entry (to find its slot on removal). */
  hashes: Int32Array;
  /** LIVE | DIRTY per entry (see above). */
  flags: Uint8Array;
  /** Per entry: the incremental checkpoint that last wrote it (snapshot.ts). */
  written: Int32Array;
  private table: Int32Array;
  private slots: number;
  private mask: number;
  private free: Int32Array;
  private freeTop = 0;
  private next = 0; // high-water mark of entry ids
  // where the last full-key miss ended: insertAfterMiss() reuses it instead of probing again
  private missSlot = -1;
  private missHash = 0;
  size = 0;
  capacity: number;
  /** Set by upsert(): whether the entry was just created. */
  inserted = false;
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
    this.flags = new Uint8Array(capacity);
    this.written = new Int32Array(capacity);
    this.free = new Int32Array(capacity);
    let t = 16;
    while (t < capacity * 2) t *= 2;
    this.slots = t;
    this.table = new Int32Array(2 * t);
    this.mask = t - 1;
  }

  /** Bytes held by the index (not counting the caller's columns). */
  get bytesHeld(): number {
    return this.keys.byteLength + this.hashes.byteLength + this.flags.byteLength + this.written.byteLength + this.table.byteLength + this.free.byteLength;
  }

  /** High-water mark of entry ids: every entry ever used is below it. */
  get highWater(): number {
    return this.next;
  }

  private hashKey(): number {
    const k = this.key;
    const n = this.hashWords;
    let h = Math.imul(0x9e3779b9 ^ k[0], 0x85ebca6b);
    h ^= h >>> 13;
    for (let i = 1; i < n; i++) {
      h = Math.imul(h ^ k[i], 0x85ebca6b);
      h ^= h >>> 13;
    }
    h = Math.imul(h ^ (h >>> 16), 0xc2b2ae35);
    return (h ^ (h >>> 16)) | 0;
  }

  private equalsEntry(e: number, n: number): boolean {
    const base = e * this.words;
    const k = this.key;
    const keys = this.keys;
    for (let i = 0; i < n; i++) if (keys[base + i] !== k[i]) return false;
    return true;
  }

  /** Copies the scratch key into entry e (a loop: TypedArray.set costs more for 1-6 words). */
  private storeKey(e: number): void {
    const base = e * this.words;
    const keys = this.keys;
    const k = this.key;
    for (let i = 0; i < this.words; i++) keys[base + i] = k[i];
  }

  /** Entry id for `key`, or -1. */
  find(): number {
    return this.findPrefix(this.words);
  }

  /** First entry whose first `n` key words equal key[0..n) (n >= hashWords), or -1. */
  findPrefix(n: number): number {
    const h = this.hashKey();
    const table = this.table;
    const mask = this.mask;
    let slot = h & mask;
    for (;;) {
      const v = table[2 * slot + 1];
      if (v === 0) {
        this.missSlot = n === this.words ? slot : -1;
        this.missHash = h;
        return -1;
      }
      if (table[2 * slot] === h && this.equalsEntry(v - 1, n)) return v - 1;
      slot = (slot + 1) & mask;
    }
  }

  /** Inserts `key` (which must be absent) and returns its new entry id. */
  insert(): number {
    if (this.size + 1 > this.slots >>> 1) this.rehash(this.slots * 2);
    const h = this.hashKey();
    let slot = h & this.mask;
    while (this.table[2 * slot + 1] !== 0) slot = (slot + 1) & this.mask;
    return this.place(slot, h);
  }

  /**
   * Inserts `key` right after find() missed it, with the key and the index unchanged since: the
   * probe position of the miss is reused (one hash and one probe per new entry instead of two).
   */
  insertAfterMiss(): number {
    const slot = this.missSlot;
    this.missSlot = -1;
    if (slot < 0 || this.size + 1 > this.slots >>> 1 || this.table[2 * slot + 1] !== 0) return this.insert();
    return this.place(slot, this.missHash);
  }

  private place(slot: number, h: number): number {
    let e: number;
    if (this.freeTop > 0) e = this.free[--this.freeTop];
    else {
      if (this.next === this.capacity) this.growEntries(this.capacity * 2);
      e = this.next++;
    }
    this.storeKey(e);
    this.hashes[e] = h;
    this.flags[e] = LIVE | DIRTY;
    this.table[2 * slot] = h;
    this.table[2 * slot + 1] = e + 1;
    this.size++;
    return e;
  }

  /** Finds `key` or inserts it; sets `inserted`. */
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
    const table = this.table;
    const mask = this.mask;
    let slot = this.hashes[e] & mask;
    while (table[2 * slot + 1] !== e + 1) {
      if (table[2 * slot + 1] === 0) throw new Error(`HashIndex.remove: entry ${e} not indexed`);
      slot = (slot + 1) & mask;
    }
    // backward-shift deletion: pull later members of the probe run into the hole
    let hole = slot;
    let j = slot;
    for (;;) {
      j = (j + 1) & mask;
      const v = table[2 * j + 1];
      if (v === 0) break;
      const home = table[2 * j] & mask;
      // the entry at j stays unless the hole lies cyclically between its home and j
      const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!stays) {
        table[2 * hole] = table[2 * j];
        table[2 * hole + 1] = v;
        hole = j;
      }
    }
    table[2 * hole] = 0;
    table[2 * hole + 1] = 0;
    this.missSlot = -1;
    this.free[this.freeTop++] = e;
    this.flags[e] = DIRTY;
    this.size--;
  }

  /** Forgets every entry (keeps the allocated memory). */
  clear(): void {
    this.missSlot = -1;
    this.table.fill(0);
    this.flags.fill(0);
    this.freeTop = 0;
    this.next = 0;
    this.size = 0;
  }

  /** Calls fn(e) for every live entry (order unspecified). Not for the hot path. */
  forEach(fn: (e: number) => void): void {
    for (let slot = 0; slot < this.slots; slot++) {
      const v = this.table[2 * slot + 1];
      if (v !== 0) fn(v - 1);
    }
  }

  /** Replaces this index's content with a version-1 checkpoint's (same words; capacity grows to fit). */
  importState(st: HashIndexState): void {
    if (st.next > this.capacity) {
      let n = this.capacity;
      while (n < st.next) n *= 2;
      this.growEntries(n);
    }
    this.keys.fill(0);
    this.keys.set(st.keys);
    this.hashes.set(st.hashes);
    this.free.set(st.free);
    this.freeTop = st.free.length;
    this.next = st.next;
    this.size = st.size;
    this.slots = st.table.length >>> 1;
    this.mask = this.slots - 1;
    this.table = st.table.slice();
    this.missSlot = -1;
    this.flags.fill(0);
    for (let slot = 0; slot < this.slots; slot++) {
      const v = this.table[2 * slot + 1];
      if (v !== 0) this.flags[v - 1] = LIVE;
    }
  }

  /** Makes room for entry ids below `n` (a restore writes entries by id). */
  reserve(n: number): void {
    if (n <= this.capacity) return;
    let c = this.capacity;
    while (c < n) c *= 2;
    this.growEntries(c);
  }

  /**
   * After a restore wrote keys, hashes and flags of the entries below `next` by id: derives the
   * table, the free stack and the size from them, and clears every DIRTY mark.
   */
  rebuild(next: number): void {
    this.reserve(next);
    const flags = this.flags;
    this.next = next;
    this.freeTop = 0;
    this.size = 0;
    for (let e = next - 1; e >= 0; e--) {
      flags[e] &= LIVE;
      if (flags[e] === 0) this.free[this.freeTop++] = e;
      else this.size++;
    }
    flags.fill(0, next);
    let t = 16;
    while (t < this.capacity * 2 || this.size + 1 > t >>> 1) t *= 2;
    this.slots = t;
    this.mask = t - 1;
    const table = new Int32Array(2 * t);
    for (let e = 0; e < next; e++) {
      if (flags[e] === 0) continue;
      const h = this.hashes[e];
      let slot = h & this.mask;
      while (table[2 * slot + 1] !== 0) slot = (slot + 1) & this.mask;
      table[2 * slot] = h;
      table[2 * slot + 1] = e + 1;
    }
    this.table = table;
    this.missSlot = -1;
  }

  private growEntries(n: number): void {
    const keys = new Uint32Array(n * this.words);
    keys.set(this.keys);
    this.keys = keys;
    const hashes = new Int32Array(n);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const flags = new Uint8Array(n);
    flags.set(this.flags);
    this.flags = flags;
    const written = new Int32Array(n);
    written.set(this.written);
    this.written = written;
    const free = new Int32Array(n);
    free.set(this.free);
    this.free = free;
    this.capacity = n;
    this.onGrow(n);
  }

  private rehash(slots: number): void {
    const table = new Int32Array(2 * slots);
    const mask = slots - 1;
    for (let s = 0; s < this.slots; s++) {
      const v = this.table[2 * s + 1];
      if (v === 0) continue;
      const h = this.table[2 * s];
      let slot = h & mask;
      while (table[2 * slot + 1] !== 0) slot = (slot + 1) & mask;
      table[2 * slot] = h;
      table[2 * slot + 1] = v;
    }
    this.table = table;
    this.mask = mask;
    this.slots = slots;
    this.missSlot = -1;
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
