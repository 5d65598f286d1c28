/**
 * A sink's server stopped for tens of seconds mid-stream, with real parts of this test's own so
 * the shared ones keep serving the other tests: a private MariaDB (scripts/services.sh on another
 * port and state folder), and an extra HBase Thrift2 gateway of the local HBase
 * (`scripts/services.sh gateway up PORT`). Each time: lag grows, /readyz flips to 503 with the
 * reason while /livez stays 200, memory stays flat, nothing is dropped; after the server returns
 * everything is written and MySQL's totals equal the truth (and HBase holds every span).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import { Interner } from "../pipeline/intern.js";
import { traceIdHex } from "../pipeline/span-batch.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { checkAgainstTruth } from "../pipeline/truth-check.js";
import { HBaseSink } from "../sinks/hbase/sink.js";
import { serviceEnv } from "./support/services.js";
import { deleteTopics, dropHBaseTables } from "./support/cleanup.js";
import { createTopic, sendTraces, sleep, waitFor } from "./support/stream.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "tracefold.mjs");
const SERVICES = join(ROOT, "scripts", "services.sh");
const brokers = serviceEnv("KAFKA_BROKERS");
const hbaseThrift = serviceEnv("HBASE_THRIFT");
const tag = `${process.pid}_${Date.now() % 100000}`;
const state = mkdtempSync(join(tmpdir(), "tracefold-outage-"));
const mysqlPort = 23_400 + (process.pid % 500);
const gatewayPort = 23_900 + (process.pid % 500);
const server = `mysql://tracefold:tracefold@127.0.0.1:${mysqlPort}`;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 0 });
const topics: string[] = [];

/** The private MariaDB: `up` or `down` through the project's own script. */
function privateMysql(action: "up" | "down"): void {
  const r = spawnSync("bash", [SERVICES, action, "mysql"], {
    cwd: ROOT, encoding: "utf8", timeout: 180_000,
    env: { ...process.env, TRACEFOLD_STATE_DIR: state, TRACEFOLD_MYSQL_PORT: String(mysqlPort), MYSQL_URL: "" },
  });
  expect(r.status, r.stderr).toBe(0);
}

/** The extra Thrift2 gateway of the shared HBase. */
function extraGateway(action: "up" | "down"): void {
  const r = spawnSync("bash", [SERVICES, "gateway", action, String(gatewayPort)], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
}

beforeAll(() => {
  privateMysql("up");
  extraGateway("up");
});
afterAll(async () => {
  privateMysql("down");
  extraGateway("down");
  rmSync(state, { recursive: true, force: true });
  await dropHBaseTables(hbaseThrift, topics.flatMap((t) => [`t_${t}`, `i_${t}`]));
  await deleteTopics(brokers, topics);
});

interface Outage {
  name: string;
  /** Settings of the trace-details sink. */
  traces: string[];
  stop(): void;
  start(): void;
  /** What /readyz names while the server is away. */
  reason: RegExp;
  /** What the log says while tracefold waits. */
  waiting: string;
}

async function scenario(o: Outage): Promise<{ topic: string; spansPerTrace: Map<string, number> }> {
  const topic = `outage_${o.name}_${tag}`;
  topics.push(topic);
  // a database per scenario on the private server
  const url = `${server}/tracefold_outage_${o.name}`;
  const c0 = await mysql.createConnection(`${server}/tracefold`);
  await c0.query(`CREATE DATABASE IF NOT EXISTS tracefold_outage_${o.name}`);
  await c0.end();
  await createTopic(kafka, topic, 3);
  const gen = new ReplayGenerator({ seed: 5150, services: 12, partitions: 1, tracesPerSecond: 200, brokenTraceRate: 0.03 }, new Interner());
  const spansPerTrace = new Map<string, number>();
  let sent = 0;
  const send = async (spans: number) =>
    void (sent += await sendTraces(kafka, topic, gen, spans, (b) => {
      for (let i = 0; i < b.length; i++) spansPerTrace.set(traceIdHex(b.tid, i * 4), (spansPerTrace.get(traceIdHex(b.tid, i * 4)) ?? 0) + 1);
    }));
  const committed = async (): Promise<number> => {
    const c = await mysql.createConnection(url).catch(() => null);
    if (!c) return -1;
    try {
      const [rows] = await c.query("SELECT COALESCE(SUM(next_offset), 0) AS n FROM consumed_offsets WHERE topic = ?", [topic]).catch(() => [[{ n: 0 }]]);
      return Number((rows as Array<{ n: number }>)[0].n);
    } finally {
      await c.end();
    }
  };

  await send(8_000);
  const args = (bounded: boolean) => [
    BIN, "run", "--log-format", "json",
    "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`, "--set", `source.kafka.groupId=g-${topic}`,
    "--set", `source.kafka.bounded=${bounded}`, "--set", "source.kafka.sessionTimeoutMs=6000", "--set", "runtime.workers=1",
    "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${url}`, ...o.traces,
    "--set", "runtime.checkpointIntervalMs=300", "--set", "fold.idleTimeoutMs=600000", "--set", "http.listen=127.0.0.1:0",
  ];
  const child: ChildProcess = spawn(process.execPath, args(false), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d) => (log += d));
  child.stdout!.on("data", (d) => (log += d));
  try {
    await waitFor("the health endpoint", async () => /"msg":"serving \/metrics[^\n]*"address":"127\.0\.0\.1:(\d+)"/.test(log), 30_000);
    const http = `http://127.0.0.1:${/"address":"127\.0\.0\.1:(\d+)"/.exec(log)![1]}`;
    const get = async (path: string) => {
      const r = await fetch(http + path);
      return { status: r.status, text: await r.text() };
    };
    const metric = async (name: string) => Number(new RegExp(`^tracefold_${name} (\\d+)$`, "m").exec((await get("/metrics")).text)?.[1]);
    const lag = async () => [...(await get("/metrics")).text.matchAll(/^tracefold_kafka_partition_lag\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);

    await waitFor("the first checkpoint of everything sent", async () => (await committed()) === sent, 90_000);
    await waitFor("readiness", async () => (await get("/readyz")).status === 200, 30_000);
    expect((await get("/livez")).status).toBe(200);
    expect(await metric("fold_spans_in_total")).toBeGreaterThan(0);

    // the server goes away for tens of seconds while input keeps arriving
    o.stop();
    const down = Date.now();
    await send(8_000);
    await waitFor("readiness to flip", async () => (await get("/readyz")).status === 503, 30_000);
    expect((await get("/readyz")).text).toMatch(o.reason);
    expect((await get("/livez")).status).toBe(200);
    // checkpoints cannot complete, so the pipeline waits: what arrived is not committed
    await waitFor("lag to grow", async () => (await lag()) > 0, 30_000);
    while (Date.now() - down < 20_000) {
      expect((await get("/livez")).status).toBe(200);
      await sleep(1000);
    }
    expect(await lag()).toBeGreaterThan(0);
    expect(child.exitCode).toBeNull();
    // nothing buffers while the pipeline waits: the fetches stop, memory stays flat
    expect(await metric("process_rss_bytes")).toBeLessThan(1024 ** 3);
    expect(await metric("kafka_queued_batches")).toBeLessThanOrEqual(3);

    // the server returns: everything is written
    o.start();
    await waitFor("readiness after the outage", async () => (await get("/readyz")).status === 200, 60_000);
    await waitFor("every message committed", async () => (await committed()) === sent, 90_000);
    expect(log).toContain(o.waiting);
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.on("exit", r)));
  }
  expect(child.exitCode, log).toBe(0);
  // close the windows left open, then compare with the truth
  const r = spawnSync(process.execPath, args(true), { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
  expect(r.status, r.stderr).toBe(0);
  const report = JSON.parse(spawnSync(process.execPath, [BIN, "topology", "--mysql-url", url, "--json"], { cwd: ROOT, encoding: "utf8" }).stdout);
  expect(checkAgainstTruth(report, gen.truth).differences).toEqual([]);
  return { topic, spansPerTrace };
}

describe("a sink's server stopped mid-stream", () => {
  it("MySQL (a private MariaDB): lag grows, readiness flips, liveness does not; afterwards totals exact", async () => {
    await scenario({
      name: "mysql",
      traces: ["--set", "sinks.traces=blackhole"],
      stop: () => privateMysql("down"),
      start: () => privateMysql("up"),
      reason: /meta: unreachable/,
      waiting: "mysql unreachable or busy; retrying",
    });
  });

  it("the HBase gateway (an extra Thrift2 gateway): the same, and HBase holds every span", async () => {
    const tables = (t: string) => ["--set", `sinks.hbase.table=t_${t}`, "--set", `sinks.hbase.indexTable=i_${t}`];
    const topic = `outage_hbase_${tag}`;
    const { spansPerTrace } = await scenario({
      name: "hbase",
      traces: ["--set", "sinks.traces=hbase", "--set", `sinks.hbase.thrift=127.0.0.1:${gatewayPort}`, "--set", "sinks.hbase.saltBuckets=4", ...tables(topic)],
      stop: () => extraGateway("down"),
      start: () => extraGateway("up"),
      reason: /traces: unreachable/,
      waiting: "hbase call failed, retrying",
    });
    const sink = new HBaseSink({ client: "thrift2", thrift: hbaseThrift, table: `t_${topic}`, indexTable: `i_${topic}`, saltBuckets: 4, createTables: false, maxAttempts: 3 } as never);
    await sink.open();
    const missing: string[] = [];
    try {
      for (const [id, n] of spansPerTrace) {
        const stored = (await sink.getTrace(id)).length;
        if (stored !== n) missing.push(`${id}: ${stored}/${n}`);
      }
    } finally {
      await sink.close();
    }
    expect(missing).toEqual([]);
  });
});
