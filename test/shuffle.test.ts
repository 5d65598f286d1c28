/**
 * A topic NOT keyed by trace id (one span per message, keyed by span id: a trace's spans land in
 * different partitions), folded through the keyBy(traceId) shuffle, with the real Kafka, MariaDB
 * and HBase: MySQL's topology equals the generator's truth exactly, as a keyed topic's does, and
 * HBase holds every span.
 *
 * - one process, thread shuffle (2 workers), exchange batches plain and LZ4-compressed;
 * - the same after a worker thread dies mid-stream, and after kill -9 of the process.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Scenario, cleanupScenarios, exited } from "./support/scenario.js";
import { sleep } from "./support/stream.js";

afterAll(cleanupScenarios);

describe("keyBy(traceId) shuffle for a topic not keyed by trace id (real services)", () => {
  it("thread shuffle, 2 workers, exchange lz4: topology equals the truth, HBase holds every span", async () => {
    const s = new Scenario("shuf_lz4", 31, 4, "span");
    await s.create();
    await s.send(12_000);
    const log = await s.finishExact(2, ["--set", "runtime.exchangeCompression=lz4", "--set", "runtime.keyGroups=16"]);
    expect(log).toContain("starting the shuffled job");
  });

  it("thread shuffle, 2 workers, one credit per channel, no sink wait: no deadlock, topology equals the truth", async () => {
    // trace details to a blackhole: stage 1 never yields on a sink, so each worker queues data
    // for the other while holding the other's data unfolded; a credit queued behind that data
    // once deadlocked both (found by the benchmark)
    const s = new Scenario("shuf_credit", 36, 4);
    await s.create();
    await s.send(60_000);
    const r = s.finish(2, ["--set", "source.kafka.keyedByTraceId=false", "--set", "runtime.exchangeCredits=1", "--set", "sinks.traces=blackhole"]);
    expect(r.status, r.stderr).toBe(0);
    expect(await s.committed()).toBe(s.sent);
    expect(s.differences()).toEqual([]);
  });

  it("control: the same kind of topic folded as if keyed (no shuffle) does not match the truth", async () => {
    const s = new Scenario("shuf_control", 31, 4, "span");
    await s.create();
    await s.send(12_000);
    const r = s.finish(2, ["--set", "source.kafka.keyedByTraceId=true"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("starting the shuffled job");
    // a trace's spans sit in several partitions: calls lose a half, traces break apart
    expect(s.differences().length).toBeGreaterThan(0);
  });

  it("a worker dies mid-stream: the process rolls back to the last checkpoint; totals exact", async () => {
    const s = new Scenario("shuf_death", 32, 4, "span");
    await s.create();
    await s.send(16_000);
    const r = s.finish(2, ["--set", "debug.crashWorkerAfterBatches=1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/injected fault: worker \d dies at input batch 1/);
    expect(r.stderr).toContain("worker died; restarting it");
    expect(await s.committed()).toBe(s.sent);
    expect(s.differences()).toEqual([]);
  });

  it("kill -9 mid-stream, then a restart: totals exact", async () => {
    const s = new Scenario("shuf_kill", 33, 4, "span");
    await s.create();
    await s.send(16_000);
    await s.killMidStream(2, 700);
    await s.send(6_000);
    await s.finishExact(2);
  });

  it("one process, repartition topic, bounded: the same topology", async () => {
    const s = new Scenario("shuf_topic1", 35, 4, "span");
    await s.create();
    s.topics.push(`${s.topic}.tracefold-rekeyed`);
    await s.send(10_000);
    const r = s.finish(1, ["--set", "runtime.shuffle=topic"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("created the repartition topic");
    expect(s.differences()).toEqual([]);
    expect(await s.hbaseMissing()).toEqual([]);
  });

  it("two processes, repartition topic, SIGTERM and kill -9 mid-stream: totals exact", async () => {
    const s = new Scenario("shuf_topic", 34, 4, "span");
    await s.create();
    s.topics.push(`${s.topic}.tracefold-rekeyed`);
    const topicMode = ["--set", "runtime.shuffle=topic"];
    await s.send(10_000);
    const a = s.start(1, topicMode);
    const b = s.start(1, topicMode);
    // stage 2 checkpoints offsets of the repartition topic: progress
    await s.waitFor("the fold stage checkpointed", async () => (await s.committedOf(`${s.topic}.tracefold-rekeyed`)) > 0, 90_000);
    await s.send(6_000);
    b.child.kill("SIGTERM");
    expect(await exited(b.child), b.log()).toBe(0);
    await s.send(6_000);
    await sleep(1500);
    a.child.kill("SIGKILL");
    await exited(a.child);
    const r = s.finish(1, topicMode);
    expect(r.status, r.stderr).toBe(0);
    expect(a.log() + b.log()).toContain("created the repartition topic");
    // exact, duplicate counters included: the aborted transactions of the members that were
    // stopped or killed are invisible to the fold (sources/kafka/kafkajs-patch.ts), and no
    // checkpoint commits the offsets of a batch it did not write (pipeline/runtime.ts inHand)
    expect(s.differences()).toEqual([]);
    expect(await s.hbaseMissing()).toEqual([]);
  }, 300_000);
});
