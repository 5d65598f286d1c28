/**
 * Faults a real part can give, with the real Kafka, MariaDB and HBase: the whole process killed
 * with SIGKILL at seeded random points, a worker thread dying, and a second process joining and
 * leaving the consumer group mid-stream. After each, MySQL's totals equal the generator's truth
 * exactly (no loss, no double count) and HBase holds every span.
 *
 * The kill points come from a seed printed by the test; TRACEFOLD_FAULT_SEED=N replays a run.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import { Interner } from "../pipeline/intern.js";
import { traceIdHex } from "../pipeline/span-batch.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { checkAgainstTruth } from "../pipeline/truth-check.js";
import { HBaseSink } from "../sinks/hbase/sink.js";
import { Rng } from "../sources/replay/rng.js";
import { serviceEnv } from "./support/services.js";
import { deleteTopics, dropHBaseTables } from "./support/cleanup.js";
import { committedMessages, createTopic, databaseUrl, sendTraces, serverConnection, sleep } from "./support/stream.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "tracefold.mjs");
const brokers = serviceEnv("KAFKA_BROKERS");
const hbaseThrift = serviceEnv("HBASE_THRIFT");
const base = new URL(serviceEnv("MYSQL_URL"));
const tag = `${process.pid}_${Date.now() % 100000}`;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 0 });
let admin: mysql.Connection;
const cleanup: string[] = [];
const topics: string[] = [];

beforeAll(async () => {
  admin = await serverConnection(base);
});
afterAll(async () => {
  for (const db of cleanup) await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
  await dropHBaseTables(hbaseThrift, topics.flatMap((t) => [`t_${t}`, `i_${t}`]));
  await deleteTopics(brokers, topics);
});

/** One scenario's topic, database, HBase tables, generator and the spans per trace it sent. */
class Scenario {
  readonly topic: string;
  readonly db: string;
  readonly url: string;
  readonly gen: ReplayGenerator;
  readonly spansPerTrace = new Map<string, number>();
  sent = 0;

  constructor(name: string, seed: number, readonly partitions: number) {
    this.topic = `${name}_${tag}`;
    this.db = `tracefold_${name}_${tag}`;
    this.url = databaseUrl(base, this.db);
    this.gen = new ReplayGenerator({ seed, services: 12, partitions: 1, tracesPerSecond: 200, brokenTraceRate: 0.03 }, new Interner());
  }

  async create(): Promise<void> {
    await admin.query(`CREATE DATABASE ${this.db}`);
    cleanup.push(this.db);
    topics.push(this.topic);
    await createTopic(kafka, this.topic, this.partitions);
  }

  /** Generates and sends `spans` more spans, one message per trace keyed by trace id. */
  async send(spans: number): Promise<void> {
    this.sent += await sendTraces(kafka, this.topic, this.gen, spans, (b) => {
      for (let i = 0; i < b.length; i++) {
        const k = traceIdHex(b.tid, i * 4);
        this.spansPerTrace.set(k, (this.spansPerTrace.get(k) ?? 0) + 1);
      }
    });
  }

  args(opts: { bounded: boolean; workers: number; extra?: string[] }): string[] {
    return [
      BIN, "run", "--log-format", "json",
      "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${this.topic}`, "--set", `source.kafka.groupId=g-${this.topic}`,
      "--set", `source.kafka.bounded=${opts.bounded}`, "--set", "source.kafka.sessionTimeoutMs=6000",
      "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${this.url}`,
      "--set", "sinks.traces=hbase", "--set", `sinks.hbase.thrift=${hbaseThrift}`, "--set", `sinks.hbase.table=t_${this.topic}`, "--set", `sinks.hbase.indexTable=i_${this.topic}`, "--set", "sinks.hbase.saltBuckets=4",
      "--set", "runtime.checkpointIntervalMs=300", "--set", "fold.idleTimeoutMs=600000", "--set", `runtime.workers=${opts.workers}`,
      ...(opts.extra ?? []),
    ];
  }

  start(workers: number, extra: string[] = []): { child: ChildProcess; log: () => string } {
    const child = spawn(process.execPath, this.args({ bounded: false, workers, extra }), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stderr!.on("data", (d) => (log += d));
    child.stdout!.on("data", (d) => (log += d));
    return { child, log: () => log };
  }

  /** A bounded run to the end of the topic: closes every window, so MySQL holds the totals. */
  finish(workers: number, extra: string[] = []): { status: number | null; stderr: string } {
    const r = spawnSync(process.execPath, this.args({ bounded: true, workers, extra }), { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
    return { status: r.status, stderr: r.stderr };
  }

  committed(): Promise<number> {
    return committedMessages(admin, this.db, this.topic);
  }

  async waitCommitted(atLeast: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let n = await this.committed();
    while (n < atLeast && Date.now() < deadline) {
      await sleep(200);
      n = await this.committed();
    }
    return n;
  }

  /** MySQL's topology against the generator's truth: the differences (none when exact). */
  differences(): string[] {
    const out = spawnSync(process.execPath, [BIN, "topology", "--mysql-url", this.url, "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(out.status, out.stderr).toBe(0);
    return checkAgainstTruth(JSON.parse(out.stdout), this.gen.truth).differences;
  }

  /** Traces whose span count in HBase differs from what was sent ("id: stored/sent"). */
  async hbaseMissing(): Promise<string[]> {
    const sink = new HBaseSink({ client: "thrift2", thrift: hbaseThrift, table: `t_${this.topic}`, indexTable: `i_${this.topic}`, saltBuckets: 4, createTables: false } as never);
    await sink.open();
    const bad: string[] = [];
    try {
      for (const [id, n] of this.spansPerTrace) {
        const stored = (await sink.getTrace(id)).length;
        if (stored !== n) bad.push(`${id}: ${stored}/${n}`);
      }
    } finally {
      await sink.close();
    }
    return bad;
  }
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.on("exit", (code) => r(code))));

describe("faults with the real services: totals stay exact", () => {
  it("kill -9 of the whole process at seeded random points, then restart", async () => {
    const seed = Number(process.env.TRACEFOLD_FAULT_SEED ?? Date.now() % 1_000_000);
    console.log(`kill -9 points from seed ${seed} (replay with TRACEFOLD_FAULT_SEED=${seed})`);
    const rng = new Rng(seed);
    const s = new Scenario("kill9", 1234, 4);
    await s.create();
    await s.send(12_000);
    for (let round = 0; round < 3; round++) {
      const run = s.start(2);
      // a random point in the stream: after some progress, plus a random delay
      const before = await s.committed();
      await s.waitCommitted(before + 1, 60_000);
      await sleep(200 + rng.int(2500));
      run.child.kill("SIGKILL");
      await exited(run.child);
      // more input arrives while no member runs
      await s.send(6_000);
    }
    const r = s.finish(2);
    expect(r.status, r.stderr).toBe(0);
    expect(await s.committed()).toBe(s.sent);
    expect(s.differences()).toEqual([]);
    expect(await s.hbaseMissing()).toEqual([]);
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
