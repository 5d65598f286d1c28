/**
 * Exact recovery at the fold level: stop anywhere, snapshot every partition, restore into a fresh
 * fold with a fresh interner (other intern ids), continue: the deltas emitted before plus those
 * after add up to exactly what one uninterrupted fold emits, and to the generator's truth.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { Interner } from "../pipeline/intern.js";
import { SpanBatch } from "../pipeline/span-batch.js";
import { Fold } from "../operators/fold/fold.js";
import { incrementOf, restorePartition, snapshotPartition, type IncrementInfo } from "../operators/fold/snapshot.js";
import { FoldOperator } from "../operators/fold/fold-operator.js";
import type { Checkpoint } from "../pipeline/contracts.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import { buildReport } from "../operators/fold/report.js";
import { checkAgainstTruth } from "../pipeline/truth-check.js";

function batches(seed: number, spans: number) {
  const interner = new Interner();
  const gen = new ReplayGenerator({ seed, services: 20, partitions: 3, tracesPerSecond: 400, batchSize: 500, brokenTraceRate: 0.03, duplicateRate: 0.01 }, interner);
  const out: SpanBatch[] = [];
  gen.generate(spans, (b) => out.push(b.clone()));
  return { out, truth: gen.truth, interner };
}

/** Re-homes a batch into another interner (a new process sees the same names, other ids). */
function rehome(b: SpanBatch, to: Interner): SpanBatch {
  const c = b.clone();
  const r = new SpanBatch(to, Math.max(1, c.length));
  for (let i = 0; i < c.length; i++) r.copyRowFrom(c, i);
  r.partition = c.partition;
  for (const col of ["service", "name", "peer", "addr", "dbSystem", "dbNamespace", "msgDest", "route"] as const)
    for (let i = 0; i < r.length; i++) r[col][i] = r[col][i] === 0 ? 0 : to.internString(b.interner.name(c[col][i]));
  return r;
}

describe("fold snapshots", () => {
  for (const cut of [0.13, 0.5, 0.91]) {
    it(`stop at ${Math.round(cut * 100)}% of the input, restore elsewhere, continue: totals exact`, () => {
      const { out, truth, interner } = batches(5, 120_000);
      const whole = new EmbeddedMetaStore();
      const straight = new Fold(interner);
      for (const b of out) straight.processBatch(b);
      straight.finish();
      void whole.write(straight.drain());

      const split = new EmbeddedMetaStore();
      const first = new Fold(interner);
      const k = Math.floor(out.length * cut);
      for (const b of out.slice(0, k)) first.processBatch(b);
      void split.write(first.drain()); // what was emitted before the stop is stored with the checkpoint
      const blobs = first.partitions.map((P) => snapshotPartition(first, P.partition));

      const interner2 = new Interner();
      interner2.internString("a-name-that-shifts-every-id");
      const second = new Fold(interner2);
      for (const blob of blobs) restorePartition(second, blob);
      for (const b of out.slice(k)) second.processBatch(rehome(b, interner2));
      second.finish();
      void split.write(second.drain());

      expect(buildReport(split)).toEqual(buildReport(whole));
      expect(checkAgainstTruth(buildReport(split), truth).differences).toEqual([]);
      expect(blobs.reduce((n, b) => n + b.length, 0)).toBeGreaterThan(1000);
    });
  }
});

/**
 * Incremental checkpoints (snapshot.ts): a chain of increments restores to exactly the state it
 * was taken from, at every checkpoint, while traces assemble, ids are freed and reused, and old
 * entries are written again.
 */
const SMALL_WINDOWS = { outOfOrdernessMs: 500, traceGapMs: 1500, assemblyWindowMs: 800, assembledMemoryMs: 3000 };

/** The partition's state in a form independent of hash-table layout and intern ids. */
function canonical(fold: Fold, p: number) {
  const P = fold.partition(p);
  const name = (id: number) => fold.interner.name(id);
  const tables: Record<string, unknown[]> = {};
  const cols = {
    traces: ["tFirst", "tLast", "tCount", "tMinStart", "tLastEnd"],
    spans: ["sNext", "sFlags", "sKind", "sState", "sStart", "sDur", "sCall", "sNextHalf"],
    calls: ["cClient", "cServers", "cPaired", "cDeadline"],
    assembled: ["aExpire"],
  } as const;
  for (const ix of ["traces", "spans", "calls", "assembled"] as const) {
    const index = P[ix];
    const rows: unknown[] = [];
    for (let e = 0; e < index.highWater; e++) {
      const gen = ix === "traces" ? P.tGen[e] : ix === "calls" ? P.cGen[e] : 0;
      if ((index.flags[e] & 1) === 0) {
        // a freed id's generation is not carried (a restore drops the stale timers that name it)
        rows.push([e, "free"]);
        continue;
      }
      const row: unknown[] = [e, Array.from(index.keys.subarray(e * index.words, (e + 1) * index.words)), index.hashes[e], gen];
      for (const c of cols[ix]) row.push((P as unknown as Record<string, ArrayLike<number>>)[c][e]);
      if (ix === "spans") row.push(P.sPid[2 * e], P.sPid[2 * e + 1], name(P.sService[e]), name(P.sOp[e]), name(P.sPeer[e]), name(P.sAddr[e]), name(P.sMsgDest[e]));
      rows.push(row);
    }
    tables[ix] = rows;
  }
  // the timers of live traces, as a set (a restore leaves the stale ones out, so the heap's shape
  // may differ; the continuation test below checks that they fire as the originals would)
  const heap = (h: typeof P.traceTimers) => {
    const live: Array<[number, number, number]> = [];
    for (let k = 0; k < h.size; k++) if ((P.traces.flags[h.entry[k]] & 1) !== 0 && P.tGen[h.entry[k]] === h.gen[k]) live.push([h.deadline[k], h.entry[k], h.gen[k]]);
    return live.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  };
  const ring: number[] = [];
  for (let k = 0; k < P.aLen; k++) ring.push(P.aRing[(P.aHead + k) % P.aRing.length]);
  return {
    tables,
    sizes: [P.traces.size, P.spans.size, P.calls.size, P.assembled.size],
    // call timers are rebuilt on restore (one per open call, at its deadline): the calls' rows
    // above carry them; the continuation test below checks that they fire as the originals would
    traceTimers: heap(P.traceTimers),
    ring,
    scalars: [P.maxEndUs, P.watermarkUs, P.lastInputMs],
  };
}

/** What a store does with increments: append, and drop those before the newest one's keepFrom. */
class ChainStore {
  readonly chains = new Map<number, Uint8Array[]>();
  put(partition: number, blob: Uint8Array): void {
    const inc = incrementOf(blob)!;
    const kept = (this.chains.get(partition) ?? []).filter((b) => incrementOf(b)!.seq >= inc.keepFrom && incrementOf(b)!.seq < inc.seq);
    kept.push(blob);
    this.chains.set(partition, kept);
  }
  bytes(partition: number): Uint8Array {
    const list = this.chains.get(partition)!;
    const out = new Uint8Array(list.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of list) {
      out.set(b, at);
      at += b.length;
    }
    return out;
  }
}

describe("incremental fold checkpoints", () => {
  const chain = 4;

  it("the chain restores to the live state at every checkpoint (ids freed and reused, old entries written again)", () => {
    const { out, interner } = batches(11, 150_000);
    const fold = new Fold(interner, SMALL_WINDOWS);
    const store = new ChainStore();
    const per = Math.ceil(out.length / 24);
    let checkpoints = 0;
    let partial = 0;
    const chainLengths = new Set<number>();
    for (let k = 0; k < out.length; k += per) {
      for (const b of out.slice(k, k + per)) fold.processBatch(b);
      for (const P of fold.partitions) {
        const info = {} as IncrementInfo;
        store.put(P.partition, snapshotPartition(fold, P.partition, chain, info));
        if (!info.complete) partial++;
        chainLengths.add(store.chains.get(P.partition)!.length);
      }
      checkpoints++;
      // restore every partition's chain into a fresh fold with other intern ids
      const interner2 = new Interner();
      interner2.internString("shifts-every-id");
      const other = new Fold(interner2, SMALL_WINDOWS);
      for (const P of fold.partitions) restorePartition(other, store.bytes(P.partition));
      for (const P of fold.partitions) expect(canonical(other, P.partition)).toEqual(canonical(fold, P.partition));
    }
    expect(checkpoints).toBeGreaterThanOrEqual(20);
    expect(partial).toBeGreaterThan(checkpoints); // most increments were partial, on every partition
    expect(Math.max(...chainLengths)).toBeLessThanOrEqual(chain);
    expect(Math.max(...chainLengths)).toBe(chain); // old entries kept the chain at its longest
    expect(fold.counters.tracesAssembled).toBeGreaterThan(1000); // entries were freed and reused
  });

  it("a run continued from a chain at any checkpoint gives exactly the uninterrupted totals", () => {
    const { out, truth, interner } = batches(12, 120_000);
    const whole = new EmbeddedMetaStore();
    const straight = new Fold(interner, SMALL_WINDOWS);
    for (const b of out) straight.processBatch(b);
    straight.finish();
    void whole.write(straight.drain());

    const per = Math.ceil(out.length / 10);
    for (const stopAfter of [3, 7]) {
      const split = new EmbeddedMetaStore();
      const first = new Fold(interner, SMALL_WINDOWS);
      const store = new ChainStore();
      let k = 0;
      for (let c = 0; c < stopAfter; c++, k += per) {
        for (const b of out.slice(k, k + per)) first.processBatch(b);
        void split.write(first.drain()); // the deltas go with their checkpoint
        for (const P of first.partitions) store.put(P.partition, snapshotPartition(first, P.partition, chain));
      }
      const interner2 = new Interner();
      interner2.internString("shifts-every-id");
      const second = new Fold(interner2, SMALL_WINDOWS);
      for (const P of first.partitions) restorePartition(second, store.bytes(P.partition));
      for (const b of out.slice(k)) second.processBatch(rehome(b, interner2));
      second.finish();
      void split.write(second.drain());
      expect(buildReport(split)).toEqual(buildReport(whole));
      expect(checkAgainstTruth(buildReport(split), truth).differences).toEqual([]);
    }
  });

  it("at steady state an increment is a fraction of the whole state", () => {
    const { out, interner } = batches(13, 150_000);
    const fold = new Fold(interner, SMALL_WINDOWS);
    // 100 checkpoints: each covers ~1/16 of the pending state's event-time horizon
    const per = Math.ceil(out.length / 100);
    const sizes: Array<{ complete: boolean; bytes: number; entries: number }> = [];
    for (let k = 0; k < out.length; k += per) {
      for (const b of out.slice(k, k + per)) fold.processBatch(b);
      const P = fold.partitions[0];
      const info = {} as IncrementInfo;
      snapshotPartition(fold, P.partition, 8, info);
      sizes.push({ complete: info.complete, bytes: info.bytes, entries: info.entries });
    }
    const whole = {} as IncrementInfo;
    const P = fold.partitions[0];
    P.snapFull = true;
    snapshotPartition(fold, P.partition, 8, whole);
    expect(whole.complete).toBe(true);
    const late = sizes.slice(-8);
    expect(late.every((s) => !s.complete)).toBe(true);
    // each late increment: what changed since the last (new spans and the entries they touched),
    // entries older than 8 increments, and the trace timers (complete in every increment)
    for (const s of late) expect(s.bytes).toBeLessThan(0.5 * whole.bytes);
    for (const s of late) expect(s.entries).toBeLessThan(0.4 * whole.entries);
  });

  it("a complete increment leaves dead entries out (a bounded run's last checkpoint, after every trace closed)", () => {
    const { out, interner } = batches(15, 60_000);
    const fold = new Fold(interner); // the default windows: every trace pending until the end
    for (const b of out) fold.processBatch(b);
    fold.finish(); // every trace assembled: the tables' high-water marks stay, their entries are dead
    let highWater = 0;
    let live = 0;
    const store = new ChainStore();
    for (const P of fold.partitions) {
      highWater += P.traces.highWater + P.spans.highWater + P.calls.highWater;
      live += P.traces.size + P.spans.size + P.calls.size + P.assembled.size;
      P.snapFull = true;
      const info = {} as IncrementInfo;
      store.put(P.partition, snapshotPartition(fold, P.partition, 8, info));
      expect(info.complete).toBe(true);
    }
    expect(highWater).toBeGreaterThan(60_000);
    expect(live).toBeLessThan(0.2 * highWater);
    let bytes = 0;
    const other = new Fold(new Interner());
    for (const P of fold.partitions) {
      bytes += store.bytes(P.partition).byteLength;
      restorePartition(other, store.bytes(P.partition));
      expect(canonical(other, P.partition)).toEqual(canonical(fold, P.partition));
    }
    // the live entries and the small parts, not ~100 bytes for every entry ever used
    expect(bytes).toBeLessThan(10 * highWater);
  });

  it("a version-1 snapshot (written before incremental checkpoints) restores and continues exactly", () => {
    // test/fixtures/fold-snapshot-v1.make.mjs: the first half of this replay, folded and
    // snapshotted by the version before 25d9ee1
    const raw = gunzipSync(readFileSync(new URL("./fixtures/fold-snapshot-v1.bin.gz", import.meta.url)));
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const [count, cut, total] = [dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true)];
    const blobs: Uint8Array[] = [];
    for (let at = 12, k = 0; k < count; k++) {
      const n = dv.getUint32(at, true);
      blobs.push(raw.subarray(at + 4, at + 4 + n));
      at += 4 + n;
    }
    expect(blobs.every((b) => incrementOf(b) === null)).toBe(true); // version 1, no increment prefix

    const interner = new Interner();
    const gen = new ReplayGenerator({ seed: 16, services: 20, partitions: 3, tracesPerSecond: 400, batchSize: 500, brokenTraceRate: 0.03, duplicateRate: 0.01 }, interner);
    const out: SpanBatch[] = [];
    gen.generate(8000, (b) => out.push(b.clone()));
    expect(out.length).toBe(total);
    const whole = new EmbeddedMetaStore();
    const straight = new Fold(interner, SMALL_WINDOWS);
    for (const b of out) straight.processBatch(b);
    straight.finish();
    void whole.write(straight.drain());

    // before the upgrade: the first half's deltas were stored with those snapshots
    const split = new EmbeddedMetaStore();
    const before = new Fold(interner, SMALL_WINDOWS);
    for (const b of out.slice(0, cut)) before.processBatch(b);
    void split.write(before.drain());
    expect(before.pendingSpans).toBeGreaterThan(1000);
    // after: the new version restores them (other intern ids), continues, and checkpoints again
    const interner2 = new Interner();
    interner2.internString("shifts-every-id");
    const after = new Fold(interner2, SMALL_WINDOWS);
    for (const blob of blobs) restorePartition(after, blob);
    for (const P of before.partitions) expect(canonical(after, P.partition)).toEqual(canonical(before, P.partition));
    for (const P of after.partitions) expect(() => snapshotPartition(after, P.partition, 8)).not.toThrow();
    for (const b of out.slice(cut)) after.processBatch(rehome(b, interner2));
    after.finish();
    void split.write(after.drain());
    expect(buildReport(split)).toEqual(buildReport(whole));
    expect(checkAgainstTruth(buildReport(split), gen.truth).differences).toEqual([]);
  });

  it("a checkpoint reported not stored makes the next increment complete", () => {
    const { out, interner } = batches(14, 30_000);
    const op = new FoldOperator({ ...SMALL_WINDOWS, checkpointChain: 4 });
    op.open({ interner, now: () => 0, log: { info() {}, warn() {}, error() {}, debug() {} } } as never);
    const taken: Array<{ seq: number; keepFrom: number }> = [];
    const take = () =>
      op.checkpoint({ emit: (x) => taken.push(...(x as Checkpoint).states.filter((s) => s.partition === 0).map((s) => incrementOf(s.state)!)) }, []);
    const third = Math.ceil(out.length / 6);
    for (let k = 0, c = 0; k < out.length; k += third, c++) {
      for (const b of out.slice(k, k + third)) op.processBatch(b, { emit() {} });
      take();
      op.checkpointStored(c !== 2); // the third checkpoint is lost
    }
    expect(taken.map((t) => t.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(taken[0].keepFrom).toBe(1); // the first is complete
    expect(taken[1].keepFrom).toBe(1);
    expect(taken[2].keepFrom).toBe(1);
    expect(taken[3].keepFrom).toBe(4); // after the lost one: complete again
    expect(taken[4].keepFrom).toBe(4);
    // and one never confirmed at all counts as lost
    for (const b of out.slice(0, 10)) op.processBatch(b, { emit() {} });
    take();
    take();
    expect(taken[7].keepFrom).toBe(taken[7].seq);
  });

  it("a chain with a missing increment is refused with a clear error", () => {
    const { out, interner } = batches(15, 40_000);
    const fold = new Fold(interner, SMALL_WINDOWS);
    const blobs: Uint8Array[] = [];
    const per = Math.ceil(out.length / 4);
    for (let k = 0; k < out.length; k += per) {
      for (const b of out.slice(k, k + per)) fold.processBatch(b);
      blobs.push(snapshotPartition(fold, 0, 8));
    }
    const gap = new ChainStore();
    for (const b of [blobs[0], blobs[1], blobs[3]]) gap.chains.set(0, [...(gap.chains.get(0) ?? []), b]);
    expect(() => restorePartition(new Fold(new Interner(), SMALL_WINDOWS), gap.bytes(0))).toThrow(/chain is incomplete/);
  });
});
