/**
 * The benchmark's warm compute ceiling row (bench/harness/scenarios.ts runWarmCeiling): the
 * micro-benchmark's e2e run in N threads at once (node dist/bench/micro.js --threads=N), each
 * thread checking its fold's calls against the generator's truth, and the row built from their
 * output. Small inputs: this checks that the row measures what it says, not how fast it is.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runWarmCeiling } from "../bench/harness/scenarios.js";

const ROOT = join(import.meta.dirname, "..");

describe("warm compute ceiling (micro e2e in threads)", () => {
  it("2 threads at once: each folds its own spans, calls equal the truth, the rate is the sum of theirs", async () => {
    const r = await runWarmCeiling(ROOT, 2, 25, 20_000, 1);
    expect(r.error, r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    // each thread generates and folds its own ~20k spans (whole traces: a few more)
    expect(r.spans).toBeGreaterThanOrEqual(40_000);
    expect(r.spans).toBeLessThan(41_000);
    expect(r.correctness).toMatch(/^calls = truth in every thread; the first \(cold\) round: [\d.]+ M \+ [\d.]+ M spans\/s$/);
    expect(r.topology).toBe("1 process, 2 threads at once");
    expect(r.spansPerS).toBeGreaterThan(0);
    expect(r.seconds * r.spansPerS).toBeCloseTo(r.spans, 0);
    expect(Number.isNaN(r.cpuSPerMSpans)).toBe(true); // not measured, shown as "-"
  });

  it("a micro run that fails is a failed row, not a rate", async () => {
    // --services=0 is refused by the micro-benchmark (exit 2, the reason on stderr)
    const r = await runWarmCeiling(ROOT, 1, 0, 1_000, 1);
    expect(r.ok).toBe(false);
    expect(r.spansPerS).toBe(0);
    expect(r.error).toMatch(/^exit 2: micro: --services must be a positive integer, got "0"/);
  });
});
