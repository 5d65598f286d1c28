/**
 * The memory budget (runtime.memoryBudgetMb) with the real Kafka, MariaDB and HBase: over the
 * budget a worker pauses the partitions holding the most state (their input waits in Kafka) and
 * takes turns, and the MySQL totals stay exact with no eviction; only a partition that alone
 * exceeds the budget loses state, assembled early and counted.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Scenario, cleanupScenarios } from "./support/scenario.js";

afterAll(cleanupScenarios);

describe("memory budget (real services)", () => {
  it("over the budget: partitions paused and resumed in turns, totals exact, nothing evicted", async () => {
    const s = new Scenario("membudget", 41, 4);
    await s.create();
    await s.send(24_000);
    // every span stays pending until the end (idle advance off, the traffic spans seconds of
    // event time): ~5 MB of fold state against a budget of 2 MB
    const log = await s.finishExact(1, ["--set", "runtime.memoryBudgetMb=2"]);
    expect(log).toContain("over the memory budget: partition paused");
    expect(log).not.toContain("alone exceeds the memory budget");
  });

  it("one partition alone over the budget: its oldest traces are assembled early and counted", async () => {
    // two partitions of ~2.6 MB of state each against 1 MB
    const s = new Scenario("membudget1", 42, 2);
    await s.create();
    await s.send(24_000);
    const r = s.finish(1, ["--set", "runtime.memoryBudgetMb=1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("one partition alone exceeds the memory budget");
    const evicted = [...r.stderr.matchAll(/"evictedTraces":(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(evicted).toBeGreaterThan(0);
    // a trace arrives whole in one message here, so assembling it early loses nothing: the
    // totals still equal the truth (with spans of a trace spread over messages, a late part
    // would be counted as late instead)
    expect(s.differences()).toEqual([]);
  });
});
