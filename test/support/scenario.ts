/**
 * A streaming scenario against the real services: its own topic, database and HBase tables, the
 * generator whose truth the MySQL totals are checked against, and the tracefold runs over them.
 * Registered resources are removed by cleanupScenarios() (afterAll).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";
import { Kafka } from "kafkajs";
import type mysql from "mysql2/promise";
import { Interner } from "../../pipeline/intern.js";
import { traceIdHex } from "../../pipeline/span-batch.js";
import { ReplayGenerator } from "../../sources/replay/generator.js";
import { checkAgainstTruth } from "../../pipeline/truth-check.js";
import { HBaseSink } from "../../sinks/hbase/sink.js";
import { serviceEnv } from "./services.js";
import { deleteTopics, dropHBaseTables } from "./cleanup.js";
import { committedMessages, createTopic, databaseUrl, sendTraces, serverConnection, sleep, waitFor } from "./stream.js";

const ROOT = join(import.meta.dirname, "..", "..");
export const BIN = join(ROOT, "bin", "tracefold.mjs");
const brokers = serviceEnv("KAFKA_BROKERS");
const hbaseThrift = serviceEnv("HBASE_THRIFT");
const base = new URL(serviceEnv("MYSQL_URL"));
const tag = `${process.pid}_${Date.now() % 100000}`;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 0 });
let admin: mysql.Connection | null = null;
const cleanup: string[] = [];
const topics: string[] = [];

async function server(): Promise<mysql.Connection> {
  admin ??= await serverConnection(base);
  return admin;
}

/** Drops every database, HBase table and topic the scenarios of this file made. */
export async function cleanupScenarios(): Promise<void> {
  if (process.env.TRACEFOLD_KEEP_TEST_DATA) return;
  for (const db of cleanup) await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
  admin = null;
  await dropHBaseTables(hbaseThrift, topics.flatMap((t) => [`t_${t}`, `i_${t}`]));
  await deleteTopics(brokers, topics);
}

export const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.on("exit", (code) => r(code))));

/** One scenario's topic, database, HBase tables, generator and the spans per trace it sent. */
export class Scenario {
  readonly topic: string;
  readonly db: string;
  readonly url: string;
  readonly gen: ReplayGenerator;
  readonly spansPerTrace = new Map<string, number>();
  sent = 0;

  /** shape "span": one span per message keyed by span id (a topic not keyed by trace id). */
  constructor(name: string, seed: number, readonly partitions: number, readonly shape: "trace" | "span" = "trace") {
    this.topic = `${name}_${tag}`;
    this.db = `tracefold_${name}_${tag}`;
    this.url = databaseUrl(base, this.db);
    this.gen = new ReplayGenerator({ seed, services: 12, partitions: 1, tracesPerSecond: 200, brokenTraceRate: 0.03 }, new Interner());
  }

  async create(): Promise<void> {
    await (await server()).query(`CREATE DATABASE ${this.db}`);
    cleanup.push(this.db);
    topics.push(this.topic);
    await createTopic(kafka, this.topic, this.partitions);
  }

  /** Generates and sends `spans` more spans in this scenario's message shape. */
  async send(spans: number): Promise<void> {
    this.sent += await sendTraces(kafka, this.topic, this.gen, spans, (b) => {
      for (let i = 0; i < b.length; i++) {
        const k = traceIdHex(b.tid, i * 4);
        this.spansPerTrace.set(k, (this.spansPerTrace.get(k) ?? 0) + 1);
      }
    }, this.shape);
  }

  args(opts: { bounded: boolean; workers: number; extra?: string[] }): string[] {
    return [
      BIN, "run", "--log-format", "json",
      "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${this.topic}`, "--set", `source.kafka.groupId=g-${this.topic}`,
      "--set", `source.kafka.bounded=${opts.bounded}`, "--set", "source.kafka.sessionTimeoutMs=6000", "--set", `source.kafka.keyedByTraceId=${this.shape === "trace"}`,
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

  /** Starts a run, kills it with SIGKILL once it made progress plus `delayMs`, and waits for it. */
  async killMidStream(workers: number, delayMs: number): Promise<void> {
    const run = this.start(workers);
    const before = await this.committed();
    const got = await this.waitCommitted(before + 1, 60_000);
    expect(got, run.log()).toBeGreaterThan(before);
    await sleep(delayMs);
    run.child.kill("SIGKILL");
    await exited(run.child);
  }

  /** The bounded run to the end, then every check: offsets, MySQL totals, HBase. */
  async finishExact(workers: number, extra: string[] = []): Promise<string> {
    const r = this.finish(workers, extra);
    expect(r.status, r.stderr).toBe(0);
    expect(await this.committed(), r.stderr).toBe(this.sent);
    expect(this.differences()).toEqual([]);
    expect(await this.hbaseMissing()).toEqual([]);
    return r.stderr;
  }

  /** A bounded run to the end of the topic: closes every window, so MySQL holds the totals. */
  finish(workers: number, extra: string[] = []): { status: number | null; stderr: string } {
    const r = spawnSync(process.execPath, this.args({ bounded: true, workers, extra }), { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    return { status: r.status, stderr: r.stderr };
  }

  /** Topics to delete afterwards (besides this scenario's own). */
  get topics(): string[] {
    return topics;
  }

  async committedOf(topic: string): Promise<number> {
    return committedMessages(await server(), this.db, topic);
  }

  async waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    return waitFor(what, ok, timeoutMs);
  }

  async committed(): Promise<number> {
    return committedMessages(await server(), this.db, this.topic);
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

