/**
 * Exact recovery at the fold level: stop anywhere, snapshot every partition, restore into a fresh
 * fold with a fresh interner (other intern ids), continue: the deltas emitted before plus those
 * after add up to exactly what one uninterrupted fold emits, and to the generator's truth.
 */
import { describe, expect, it } from "vitest";
import { Interner } from "../pipeline/intern.js";
import { SpanBatch } from "../pipeline/span-batch.js";
import { Fold } from "../operators/fold/fold.js";
import { restorePartition, snapshotPartition } from "../operators/fold/snapshot.js";
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
