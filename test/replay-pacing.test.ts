/**
 * The paced replay (source.replay.rate): the in-process replay offered at a target rate, as issue 5
 * asks ("replayed at a target rate up to 3,000,000 spans/s, either in-process or into Kafka").
 * A batch goes out when it is due, so a run takes at least spans / rate; the summary says whether
 * the pipeline kept up. Through the CLI, as users run it.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pacingVerdict } from "../pipeline/run-summary.js";

const ROOT = join(import.meta.dirname, "..");
const SPANS = 60_000;
const tf = (sets: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "run", "--spans", String(SPANS), "--seed", "3", "--services", "25", "--no-progress", ...sets.flatMap((s) => ["--set", s])], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
const seconds = (stdout: string) => Number(/^\d+ spans in ([\d.]+) s/m.exec(stdout)?.[1] ?? NaN);

describe("paced replay (source.replay.rate)", () => {
  it("hands the spans on at the offered rate, not faster, and says it kept up", () => {
    const r = tf(["source.replay.rate=40000"]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    // the last batch (at most 4096 spans) is due after ~(60,000 - 4,096) / 40,000 = 1.4 s
    expect(seconds(r.stdout)).toBeGreaterThanOrEqual(1.3);
    expect(r.stdout).toMatch(/^paced replay: offered 40\.0k spans\/s and kept up \(at most [\d.k]+ spans, [\d.]+ s behind its schedule\)$/m);
    expect(r.stdout).toMatch(/truth check: PASS/);
  });

  it("over 2 worker threads with pre-encoded messages: each paces its share, the total is the offered rate", () => {
    const r = tf(["source.replay.rate=40000", "source.replay.encoded=trace", "runtime.workers=2", "sinks.traces=blackhole"]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/over 2 workers/);
    // each worker offers its 2 of the 4 partitions at 20k spans/s: ~30k spans, the last batch due after ~1.3 s
    expect(seconds(r.stdout)).toBeGreaterThanOrEqual(1.0);
    expect(r.stdout).toMatch(/^paced replay: offered 40\.0k spans\/s and kept up/m);
    expect(r.stdout).toMatch(/truth check: PASS/);
  });

  it("an unpaced run (the default, rate 0) prints no pacing line", () => {
    const r = tf([]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/paced replay/);
  });

  it("a rate no pipeline reaches is reported as not kept up, with how far behind", () => {
    const r = tf(["source.replay.rate=1000000000"]);
    expect(r.status).toBe(0); // the folded result is still exact
    expect(r.stdout).toMatch(/^paced replay: offered 1000\.00M spans\/s and did NOT keep up: [\d.kM]+ spans, [\d.]+ s behind its schedule at the end/m);
    expect(r.stdout).toMatch(/truth check: PASS/);
  });

  it("a negative rate is a configuration error", () => {
    const r = tf(["source.replay.rate=-5"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr + r.stdout).toMatch(/source\.replay\.rate/);
  });

  it("the verdict: 5% of the spans (or two batches per worker) behind the schedule is still keeping up", () => {
    expect(pacingVerdict(1_000_000, 50_000, 80_000, 1_000_000, 8192)).toMatch(/kept up \(at most 80\.0k spans, 0\.08 s behind/);
    expect(pacingVerdict(1_000_000, 50_001, 50_001, 1_000_000, 8192)).toMatch(/did NOT keep up: 50\.0k spans, 0\.05 s behind its schedule at the end/);
    expect(pacingVerdict(10_000, 16_384, 16_384, 100_000, 8192)).toMatch(/kept up/); // two batches, more than 5%
    expect(pacingVerdict(10_000, 16_385, 16_385, 100_000, 8192)).toMatch(/did NOT keep up/);
  });
});
