/**
 * Stop tracefold with SIGTERM mid-stream and start it again: it resumes from the offsets and the
 * pending fold state saved in MySQL with the deltas they produced; nothing is lost and nothing is
 * counted twice (MySQL's totals equal the generator's truth exactly).
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kafka, type Message } from "kafkajs";
import mysql from "mysql2/promise";
import { Interner } from "../pipeline/intern.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { traceMessages } from "../sources/kafka/replay-to-kafka.js";
import { checkAgainstTruth } from "../pipeline/truth-check.js";
import { serviceEnv } from "./support/services.js";
import { tempDir } from "./support/tmp.js";
import { committedMessages, createTopic, databaseUrl, serverConnection } from "./support/stream.js";

const ROOT = join(import.meta.dirname, "..");
const brokers = serviceEnv("KAFKA_BROKERS");
const base = new URL(serviceEnv("MYSQL_URL"));
const tag = `${process.pid}_${Date.now() % 100000}`;
const db = `tracefold_resume_${tag}`;
const topic = `resume_${tag}`;
const url = databaseUrl(base, db);
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 0 });
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await serverConnection(base);
  await admin.query(`CREATE DATABASE ${db}`);
  await createTopic(kafka, topic, 3);
});
afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
});

async function send(messages: Message[]): Promise<void> {
  const p = kafka.producer();
  await p.connect();
  for (let i = 0; i < messages.length; i += 500) await p.send({ topic, messages: messages.slice(i, i + 500) });
  await p.disconnect();
}

const committed = () => committedMessages(admin, db, topic);

const runArgs = (bounded: boolean) => [
  join(ROOT, "bin", "tracefold.mjs"), "run", "--log-format", "json",
  "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`, "--set", `source.kafka.groupId=g-${topic}`,
  "--set", `source.kafka.bounded=${bounded}`, "--set", "source.kafka.sessionTimeoutMs=6000",
  "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${url}`, "--set", "sinks.traces=blackhole",
  "--set", "runtime.checkpointIntervalMs=300", "--set", "fold.idleTimeoutMs=600000",
];

describe("SIGTERM mid-stream, then restart (real Kafka, real MariaDB)", () => {
  it("resumes from the committed offsets with its saved pending state: MySQL totals equal the truth", async () => {
    const interner = new Interner();
    const gen = new ReplayGenerator({ seed: 77, services: 12, partitions: 1, tracesPerSecond: 200, brokenTraceRate: 0.03 }, interner);
    const first: Message[] = [];
    const second: Message[] = [];
    gen.generate(20_000, (b) => first.push(...traceMessages(b)));
    gen.generate(20_000, (b) => second.push(...traceMessages(b)));
    await send(first);

    // run 1: consume the first half, then SIGTERM while its windows are still open
    const child = spawn(process.execPath, runArgs(false), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const deadline = Date.now() + 90_000;
    while ((await committed()) < first.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
    expect(await committed()).toBe(first.length);
    child.kill("SIGTERM");
    const code = await new Promise<number | null>((r) => child.on("exit", r));
    expect(code, stderr).toBe(0);
    expect(stderr).toContain("stopping");
    // the stop saved pending state: windows were not closed
    const [saved] = await admin.query(`SELECT COUNT(*) AS n FROM (SELECT DISTINCT kafka_partition FROM ${db}.fold_checkpoint_chunks) c`);
    expect(Number((saved as Array<{ n: number }>)[0].n)).toBeGreaterThan(0);

    // run 2: the rest of the stream, bounded, resuming from what run 1 saved
    await send(second);
    const r = spawnSync(process.execPath, runArgs(true), { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("restored pending fold state");

    const report = JSON.parse(spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "topology", "--mysql-url", url, "--json"], { cwd: ROOT, encoding: "utf8" }).stdout);
    expect(checkAgainstTruth(report, gen.truth).differences).toEqual([]);
    expect(await committed()).toBe(first.length + second.length);
  });
});

describe("tracefold replay --to kafka", () => {
  it("streams the generator into a topic at a rate; folding the topic gives the same seed's truth", async () => {
    const t = `${topic}_replay`;
    await createTopic(kafka, t, 2);
    const tf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    const r = tf(["replay", "--to", "kafka", "--brokers", brokers, "--topic", t, "--rate", "20000", "--spans", "30000", "--seed", "9", "--services", "10"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/replayed 3\d{4} spans in \d+ messages/);
    await admin.query(`CREATE DATABASE ${db}_replay`);
    const target = url.replace(`/${db}`, `/${db}_replay`);
    const run = tf(["run", "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${t}`, "--set", `source.kafka.groupId=g-${t}`,
      "--set", "source.kafka.bounded=true", "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${target}`, "--set", "sinks.traces=blackhole"]);
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(tf(["topology", "--mysql-url", target, "--json"]).stdout);
    // the same generator, seed and count, rebuilt here
    const gen = new ReplayGenerator({ seed: 9, services: 10, partitions: 1, tracesPerSecond: 500 }, new Interner());
    let n = 0;
    const chunk = 2000; // replay --rate 20000 generates in chunks of rate/10
    while (n < 30_000) n += gen.generate(Math.min(chunk, 30_000 - n), () => {});
    expect(checkAgainstTruth(report, gen.truth).differences).toEqual([]);
    await admin.query(`DROP DATABASE IF EXISTS ${db}_replay`);
  });

  it("without a rate, sends in requests the broker accepts (20k spans of 300 services are ~3 MB, over message.max.bytes)", async () => {
    const t = `${topic}_replay_big`;
    await createTopic(kafka, t, 1);
    const tf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    const r = tf(["replay", "--to", "kafka", "--brokers", brokers, "--topic", t, "--spans", "40000", "--seed", "9", "--services", "300"]);
    expect(r.status, r.stderr).toBe(0);
    const m = /replayed (\d+) spans in (\d+) messages/.exec(r.stdout);
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(40_000);
    const ka = kafka.admin();
    await ka.connect();
    const offsets = await ka.fetchTopicOffsets(t);
    await ka.disconnect();
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(Number(m?.[2])); // every message is in the topic
  });

  it("produce sends in requests the broker accepts: 600 trace messages of ~3 kB to one partition (500 per request were over 1 MB)", async () => {
    const t = `${topic}_produce_big`;
    await createTopic(kafka, t, 1);
    // a Zipkin v2 file of 600 traces x 20 spans with long names: ~3 kB per trace message once re-encoded as OTLP
    const spans: object[] = [];
    const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");
    for (let tr = 0; tr < 600; tr++)
      for (let i = 0; i < 20; i++)
        spans.push({
          traceId: hex(tr + 1, 32), id: hex(tr * 100 + i + 1, 16), ...(i ? { parentId: hex(tr * 100 + 1, 16) } : {}),
          name: `operation-${i}-${"x".repeat(100)}`, kind: i ? "CLIENT" : "SERVER", timestamp: 1_700_000_000_000_000 + tr * 1000 + i, duration: 500,
          localEndpoint: { serviceName: `service-${i % 5}-${"y".repeat(40)}` },
        });
    const dir = tempDir("produce-big");
    const file = join(dir, "big.json");
    writeFileSync(file, JSON.stringify(spans));
    const r = spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "produce", "--brokers", brokers, "--topic", t, "--format", "zipkin_json", "--shape", "trace", file], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("produced 600 messages (12000 spans, 0 malformed");
    const ka = kafka.admin();
    await ka.connect();
    const offsets = await ka.fetchTopicOffsets(t);
    await ka.disconnect();
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(600);
  });

  it("a missing topic is an error that names the fix, and is not created; --partitions N creates it (replay and produce)", async () => {
    const tf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    const topics = async () => {
      const ka = kafka.admin();
      await ka.connect();
      try {
        return await ka.listTopics();
      } finally {
        await ka.disconnect();
      }
    };
    const t = `${topic}_missing`;
    const replay = ["replay", "--to", "kafka", "--brokers", brokers, "--topic", t, "--spans", "2000", "--seed", "9", "--services", "10"];
    const r = tf(replay);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`topic "${t}" does not exist on ${brokers}: pass --partitions N`);
    expect(r.stderr).not.toContain("KafkaJS"); // no stack trace from the client
    const file = join(ROOT, "test", "fixtures", "corpus", "zipkin-lens", "skew.json");
    const p = tf(["produce", "--brokers", brokers, "--topic", t, "--format", "zipkin_json", file]);
    expect(p.status).toBe(2);
    expect(p.stderr).toContain(`topic "${t}" does not exist`);
    expect(await topics()).not.toContain(t);

    const c = tf([...replay, "--partitions", "3"]);
    expect(c.status, c.stderr).toBe(0);
    expect(c.stderr).toContain(`created topic ${t} with 3 partitions`);
    const ka = kafka.admin();
    await ka.connect();
    const offsets = await ka.fetchTopicOffsets(t);
    await ka.disconnect();
    expect(offsets.length).toBe(3);
    const sent = Number(/replayed \d+ spans in (\d+) messages/.exec(c.stdout)?.[1]);
    expect(offsets.reduce((n, o) => n + Number(o.high), 0)).toBe(sent);
    // an existing topic: --partitions changes nothing, produce appends
    const again = tf(["produce", "--brokers", brokers, "--topic", t, "--format", "zipkin_json", "--partitions", "5", file]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("created topic");
    const ka2 = kafka.admin();
    await ka2.connect();
    const after = await ka2.fetchTopicOffsets(t);
    await ka2.disconnect();
    expect(after.length).toBe(3);
    expect(after.reduce((n, o) => n + Number(o.high), 0)).toBeGreaterThan(sent);
  });
});
