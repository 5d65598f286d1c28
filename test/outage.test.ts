/**
 * MySQL stopped for tens of seconds mid-stream, with a real MariaDB of this test's own (started
 * and stopped by scripts/services.sh on another port and state folder, so the shared one keeps
 * serving the other tests): lag grows, /readyz flips to 503 while /livez stays 200, nothing is
 * dropped, and after MySQL returns everything is written and the totals equal the truth.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import { Interner } from "../pipeline/intern.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { checkAgainstTruth } from "../pipeline/truth-check.js";
import { serviceEnv } from "./support/services.js";
import { deleteTopics } from "./support/cleanup.js";
import { sendTraces, sleep, waitFor } from "./support/stream.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "tracefold.mjs");
const brokers = serviceEnv("KAFKA_BROKERS");
const tag = `${process.pid}_${Date.now() % 100000}`;
const topic = `outage_${tag}`;
const state = mkdtempSync(join(tmpdir(), "tracefold-outage-"));
const port = 23_400 + (process.pid % 500);
const url = `mysql://tracefold:tracefold@127.0.0.1:${port}/tracefold`;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 0 });
const gen = new ReplayGenerator({ seed: 5150, services: 12, partitions: 1, tracesPerSecond: 200, brokenTraceRate: 0.03 }, new Interner());
let sent = 0;

/** The private MariaDB: `up` or `down` through the project's own script. */
function privateMysql(action: "up" | "down"): void {
  const r = spawnSync("bash", [join(ROOT, "scripts", "services.sh"), action, "mysql"], {
    cwd: ROOT, encoding: "utf8", timeout: 180_000,
    env: { ...process.env, TRACEFOLD_STATE_DIR: state, TRACEFOLD_MYSQL_PORT: String(port), MYSQL_URL: "" },
  });
  expect(r.status, r.stderr).toBe(0);
}

const send = async (spans: number) => void (sent += await sendTraces(kafka, topic, gen, spans));

async function committed(): Promise<number> {
  const c = await mysql.createConnection(url).catch(() => null);
  if (!c) return -1;
  try {
    const [rows] = await c.query("SELECT COALESCE(SUM(next_offset), 0) AS n FROM consumed_offsets WHERE topic = ?", [topic]).catch(() => [[{ n: 0 }]]);
    return Number((rows as Array<{ n: number }>)[0].n);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  privateMysql("up");
  const a = kafka.admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
  await a.disconnect();
});
afterAll(async () => {
  privateMysql("down");
  rmSync(state, { recursive: true, force: true });
  await deleteTopics(brokers, [topic]);
});

describe("MySQL outage mid-stream (a private real MariaDB stopped and started)", () => {
  it("lag grows, readiness flips and liveness does not; afterwards everything is written, totals exact", async () => {
    await send(8_000);
    const args = (bounded: boolean) => [
      BIN, "run", "--log-format", "json",
      "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`, "--set", `source.kafka.groupId=g-${topic}`,
      "--set", `source.kafka.bounded=${bounded}`, "--set", "source.kafka.sessionTimeoutMs=6000", "--set", "runtime.workers=1",
      "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${url}`, "--set", "sinks.traces=blackhole",
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
      const lag = async () => [...(await get("/metrics")).text.matchAll(/^tracefold_kafka_partition_lag\{[^}]*\} (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);

      await waitFor("the first checkpoint of everything sent", async () => (await committed()) === sent, 90_000);
      await waitFor("readiness", async () => (await get("/readyz")).status === 200, 30_000);
      expect((await get("/livez")).status).toBe(200);
      expect((await get("/metrics")).text).toMatch(/^tracefold_fold_spans_in_total [1-9]\d*$/m);

      // MySQL goes away for tens of seconds while input keeps arriving
      privateMysql("down");
      const down = Date.now();
      await send(8_000);
      await waitFor("readiness to flip", async () => (await get("/readyz")).status === 503, 30_000);
      const notReady = await get("/readyz");
      expect(notReady.text).toMatch(/meta: unreachable/);
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
      const rss = Number(/^tracefold_process_rss_bytes (\d+)$/m.exec((await get("/metrics")).text)?.[1]);
      expect(rss).toBeGreaterThan(0);
      expect(rss).toBeLessThan(1024 ** 3);
      expect(Number(/^tracefold_kafka_queued_batches (\d+)$/m.exec((await get("/metrics")).text)?.[1])).toBeLessThanOrEqual(3);

      // MySQL returns with its data: everything is written
      privateMysql("up");
      await waitFor("readiness after the outage", async () => (await get("/readyz")).status === 200, 60_000);
      await waitFor("every message committed", async () => (await committed()) === sent, 90_000);
      expect(log).toContain("mysql unreachable or busy; retrying");
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
  });
});
