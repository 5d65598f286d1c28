/**
 * Property: random service trees from the replay generator, folded, equal the generator's truth
 * exactly (calls, paired, failures by half, unpaired halves, orphans, connectivity), whatever the
 * seed, the graph size, the partitioning and the batch size.
 */
import { describe, expect, it } from "vitest";
import { Interner } from "../pipeline/intern.js";
import { Fold } from "../operators/fold/fold.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import { buildReport } from "../operators/fold/report.js";
import { checkAgainstTruth } from "../pipeline/truth-check.js";

function run(seed: number, services: number, partitions: number, batchSize: number, spans: number, extra: { duplicateRate?: number; brokenTraceRate?: number; errorRate?: number } = {}, aggregates: "all" | "edges" = "all") {
  const interner = new Interner();
  const gen = new ReplayGenerator({ seed, services, partitions, batchSize, ...extra }, interner);
  const fold = new Fold(interner, { aggregates });
  const store = new EmbeddedMetaStore();
  let batches = 0;
  gen.generate(spans, (b) => {
    fold.processBatch(b);
    if (++batches % 7 === 0) void store.write(fold.drain()); // flush at arbitrary points
  });
  fold.finish();
  void store.write(fold.drain());
  return { check: checkAgainstTruth(buildReport(store), gen.truth), truth: gen.truth, fold, report: buildReport(store) };
}

describe("fold equals the generator's truth", () => {
  const cases = [
    { seed: 1, services: 5, partitions: 1, batchSize: 64, spans: 20_000 },
    { seed: 2, services: 40, partitions: 4, batchSize: 4096, spans: 200_000 },
    { seed: 3, services: 120, partitions: 7, batchSize: 333, spans: 100_000 },
    { seed: 4, services: 2, partitions: 3, batchSize: 1, spans: 5_000 },
  ];
  for (const c of cases) {
    it(`seed ${c.seed}: ${c.services} services, ${c.partitions} partitions, batches of ${c.batchSize}`, () => {
      const { check, truth } = run(c.seed, c.services, c.partitions, c.batchSize, c.spans, { brokenTraceRate: 0.02 });
      expect(check.differences).toEqual([]);
      expect(truth.brokenTraces).toBeGreaterThan(0);
      expect(truth.edges.size).toBeGreaterThan(0);
    });
  }

  it("with duplicates and a high error rate", () => {
    const { check, truth } = run(11, 30, 4, 1000, 100_000, { duplicateRate: 0.02, errorRate: 5, brokenTraceRate: 0.05 });
    expect(check.differences).toEqual([]);
    expect(truth.duplicateSpans).toBeGreaterThan(100);
  });

  for (let seed = 100; seed < 110; seed++) {
    it(`random seed ${seed}`, () => {
      let x = seed * 2654435761;
      const rnd = (n: number) => 1 + ((x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) >>> 0) % n);
      const { check } = run(seed, 1 + rnd(60), rnd(8), rnd(3000), 30_000, { duplicateRate: (seed % 3) * 0.01, brokenTraceRate: 0.03 });
      expect(check.differences).toEqual([]);
    });
  }

  it("fold.aggregates=edges (the benchmark's like-for-like row): the same edges, no service or trace tables", () => {
    const full = run(17, 30, 3, 700, 40_000, { duplicateRate: 0.01, brokenTraceRate: 0.03 });
    const edges = run(17, 30, 3, 700, 40_000, { duplicateRate: 0.01, brokenTraceRate: 0.03 }, "edges");
    expect(full.check.differences).toEqual([]);
    expect(edges.report.edges.length).toBeGreaterThan(10);
    expect(edges.report.edges).toEqual(full.report.edges);
    // what it leaves out: every service and trace count
    expect(edges.check.differences.some((d) => d.startsWith("edge"))).toBe(false);
    expect(edges.report.connectivity.traces).toBe(0);
    expect(edges.report.services.every((s) => s.spans === 0 && s.failures === 0)).toBe(true);
  });

  it("holds little state per pending span", () => {
    const interner = new Interner();
    const gen = new ReplayGenerator({ seed: 5, services: 40, partitions: 1 }, interner);
    const fold = new Fold(interner);
    gen.generate(300_000, (b) => fold.processBatch(b));
    const pending = fold.pendingSpans;
    expect(pending).toBeGreaterThan(1000);
    const perSpan = fold.stateBytes / pending;
    console.log(`state: ${pending} pending spans, ${(fold.stateBytes / 1e6).toFixed(1)} MB, ${perSpan.toFixed(0)} bytes per pending span`);
    expect(perSpan).toBeLessThan(400);
  });
});
