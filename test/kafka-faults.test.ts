/**
 * Faults a real part can give, with the real Kafka, MariaDB and HBase: the whole process killed
 * with SIGKILL at seeded random points, a worker thread dying, and a second process joining and
 * leaving the consumer group mid-stream. After each, MySQL's totals equal the generator's truth
 * exactly (no loss, no double count) and HBase holds every span.
 *
 * The kill points come from a seed printed by the test; TRACEFOLD_FAULT_SEED=N replays a run.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Rng } from "../sources/replay/rng.js";
import { Scenario, cleanupScenarios, exited } from "./support/scenario.js";
import { sleep } from "./support/stream.js";

afterAll(cleanupScenarios);

describe("faults with the real services: totals stay exact", () => {
  it("kill -9 of the whole process at seeded random points, then restart", async () => {
    const seed = Number(process.env.TRACEFOLD_FAULT_SEED ?? Date.now() % 1_000_000);
    console.log(`kill -9 points from seed ${seed} (replay with TRACEFOLD_FAULT_SEED=${seed})`);
    const rng = new Rng(seed);
    const s = new Scenario("kill9", 1234, 4);
    await s.create();
    await s.send(12_000);
    for (let round = 0; round < 3; round++) {
      // a random point in the stream: after some progress, plus a random delay
      await s.killMidStream(2, 200 + rng.int(2500));
      // more input arrives while no member runs
      await s.send(6_000);
    }
    await s.finishExact(2);
  });

  it("a worker thread dies (injected error): the process restarts it and the totals are exact", async () => {
    const s = new Scenario("workerdeath", 99, 4);
    await s.create();
    await s.send(20_000);
    const r = s.finish(2, ["--set", "debug.crashWorkerAfterBatches=1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/injected fault: worker \d dies at batch 1/);
    expect(r.stderr).toContain("worker died; restarting it");
    expect(await s.committed(), r.stderr).toBe(s.sent);
    expect(s.differences()).toEqual([]);
    expect(await s.hbaseMissing()).toEqual([]);
  });

  it("two processes in one group; one leaves mid-stream (SIGTERM) and comes back: totals exact", async () => {
    const s = new Scenario("twoproc", 4321, 6);
    await s.create();
    await s.send(8_000);
    const a = s.start(1);
    let b = s.start(1);
    await s.waitCommitted(1, 60_000);
    await s.send(8_000);
    await sleep(1500);
    b.child.kill("SIGTERM");
    expect(await exited(b.child), b.log()).toBe(0);
    await s.send(8_000);
    // a takes over b's partitions (and folds what arrives meanwhile) before b comes back
    const deadline = Date.now() + 60_000;
    while (!a.log().includes('"partitions":[0,1,2,3,4,5]') && Date.now() < deadline) await sleep(200);
    expect(a.log()).toContain('"partitions":[0,1,2,3,4,5]');
    b = s.start(1);
    await sleep(1500);
    await s.send(8_000);
    expect(await s.waitCommitted(s.sent, 120_000)).toBe(s.sent);
    // both saw rebalances both ways and rolled back to their checkpoints
    expect(a.log()).toMatch(/rolled back to the last checkpoint.*revoked \[\d/);
    // b's return revoked some of a's partitions: a checkpointed before rejoining (kafkajs has no
    // revocation callback; sources/kafka/kafkajs-patch.ts adds one) and resumed from there
    expect(a.log()).toMatch(/partitions about to be revoked, checkpoint before rejoining.*"completed":true/);
    a.child.kill("SIGTERM");
    b.child.kill("SIGTERM");
    expect(await exited(a.child), a.log()).toBe(0);
    expect(await exited(b.child), b.log()).toBe(0);
    // close the windows still open (saved with the last checkpoints)
    const r = s.finish(1);
    expect(r.status, r.stderr).toBe(0);
    expect(s.differences()).toEqual([]);
    expect(await s.hbaseMissing()).toEqual([]);
  });
});
