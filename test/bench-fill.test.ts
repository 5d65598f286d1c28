/**
 * bench/harness/fill.ts against the real broker: it creates the topic and writes the benchmark's
 * replay into it, every message once, keyed by trace id; a second fill of the same topic is refused.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Kafka } from "kafkajs";
import { deleteTopics } from "./support/cleanup.js";
import { serviceEnv } from "./support/services.js";
import { tempDir } from "./support/tmp.js";

const ROOT = join(import.meta.dirname, "..");
const brokers = serviceEnv("KAFKA_BROKERS");
const topic = `bench_fill_${process.pid}_${Date.now() % 100000}`;
const cache = tempDir("tracefold-fill-cache-");
const fill = (...args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "dist", "bench", "harness", "fill.js"), "--brokers", brokers, "--topic", topic, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, XDG_CACHE_HOME: cache }, // the replay cache, not the user's
  });

afterAll(() => deleteTopics(brokers, [topic]));

describe("bench fill", () => {
  it("writes the replay's messages into a new topic, each once, and refuses to fill it twice", async () => {
    const r = fill("--spans", "6000", "--services", "20", "--shape", "trace", "--partitions", "3");
    expect(r.status, r.stderr).toBe(0);
    const m = /filled \S+: (\d+) spans in (\d+) trace-shaped messages/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const messages = Number(m![2]);
    expect(Number(m![1])).toBeGreaterThanOrEqual(6000);
    expect(messages).toBeGreaterThan(10);

    const admin = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 0 }).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets).toHaveLength(3);
      expect(offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0)).toBe(messages);
    } finally {
      await admin.disconnect();
    }

    const again = fill("--spans", "6000", "--services", "20", "--shape", "trace", "--partitions", "3");
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(`fill: topic "${topic}" exists already`);
  });

  it("explains a bad flag", () => {
    const r = fill("--spans", "many");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/fill: --spans must be a positive integer, got "many"/);
  });
});
