/**
 * A binary min-heap of (deadline, entry, generation) in typed arrays: the fold's event-time timers.
 * Timers are lazy: a deadline that moved later is re-pushed when popped, and an entry whose
 * generation changed (freed or reused) is discarded, so no timer is ever searched for or removed.
 */
export class TimerHeap {
  deadline: Float64Array;
  entry: Int32Array;
  gen: Int32Array;
  size = 0;

  constructor(capacity = 1024) {
    this.deadline = new Float64Array(capacity);
    this.entry = new Int32Array(capacity);
    this.gen = new Int32Array(capacity);
  }

  get top(): number {
    return this.size > 0 ? this.deadline[0] : Infinity;
  }

  get bytesHeld(): number {
    return this.deadline.length * 16;
  }

  push(deadline: number, entry: number, gen: number): void {
    if (this.size === this.deadline.length) this.grow();
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.deadline[parent] <= deadline) break;
      this.deadline[i] = this.deadline[parent];
      this.entry[i] = this.entry[parent];
      this.gen[i] = this.gen[parent];
      i = parent;
    }
    this.deadline[i] = deadline;
    this.entry[i] = entry;
    this.gen[i] = gen;
  }

  /** Removes the top; read topEntry/topGen/top before calling. */
  pop(): void {
    const n = --this.size;
    if (n === 0) return;
    const d = this.deadline[n];
    const e = this.entry[n];
    const g = this.gen[n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.deadline[c + 1] < this.deadline[c]) c++;
      if (this.deadline[c] >= d) break;
      this.deadline[i] = this.deadline[c];
      this.entry[i] = this.entry[c];
      this.gen[i] = this.gen[c];
      i = c;
    }
    this.deadline[i] = d;
    this.entry[i] = e;
    this.gen[i] = g;
  }

  get topEntry(): number {
    return this.entry[0];
  }
  get topGen(): number {
    return this.gen[0];
  }

  clear(): void {
    this.size = 0;
  }

  exportState(): { deadline: Float64Array; entry: Int32Array; gen: Int32Array } {
    return { deadline: this.deadline.slice(0, this.size), entry: this.entry.slice(0, this.size), gen: this.gen.slice(0, this.size) };
  }

  importState(st: { deadline: Float64Array; entry: Int32Array; gen: Int32Array }): void {
    this.size = 0;
    while (this.deadline.length < st.deadline.length) this.grow();
    this.deadline.set(st.deadline);
    this.entry.set(st.entry);
    this.gen.set(st.gen);
    this.size = st.deadline.length;
  }

  private grow(): void {
    const n = this.deadline.length * 2;
    const d = new Float64Array(n);
    d.set(this.deadline);
    const e = new Int32Array(n);
    e.set(this.entry);
    const g = new Int32Array(n);
    g.set(this.gen);
    this.deadline = d;
    this.entry = e;
    this.gen = g;
  }
}
