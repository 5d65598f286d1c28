/**
 * The Kafka broker restarted mid-stream, with a real broker of this test's own (scripts/services.sh
 * on other ports and another state folder, so the shared broker keeps serving the other tests):
 * consumption resumes after the broker is back, and MySQL's totals equal the truth exactly.
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
import { committedMessages, createTopic, databaseUrl, sendTraces, serverConnection, sleep, waitFor } from "./support/stream.js";

const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "tracefold.mjs");
const base = new URL(serviceEnv("MYSQL_URL"));
const tag = `${process.pid}_${Date.now() % 100000}`;
const topic = `restart_${tag}`;
const db = `tracefold_restart_${tag}`;
const url = databaseUrl(base, db);
const state = mkdtempSync(join(tmpdir(), "tracefold-broker-"));
const port = 24_000 + 4 * (process.pid % 200);
const brokers = `127.0.0.1:${port}`;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: [brokers], logLevel: 0, retry: { retries: 10 } });
const gen = new ReplayGenerator({ seed: 8080, services: 12, partitions: 1, tracesPerSecond: 200, brokenTraceRate: 0.03 }, new Interner());
let sent = 0;
let admin: mysql.Connection;

/** The private broker: `up` or `down` through the project's own script. */
function privateKafka(action: "up" | "down"): void {
  const r = spawnSync("bash", [join(ROOT, "scripts", "services.sh"), action, "kafka"], {
    cwd: ROOT, encoding: "utf8", timeout: 240_000,
    env: {
      ...process.env, TRACEFOLD_STATE_DIR: state, KAFKA_BROKERS: "",
      TRACEFOLD_KAFKA_PORT: String(port), TRACEFOLD_KAFKA_CONTROLLER_PORT: String(port + 1),
      TRACEFOLD_KAFKA_SASL_PORT: String(port + 2), TRACEFOLD_KAFKA_TLS_PORT: String(port + 3),
    },
  });
  expect(r.status, r.stderr).toBe(0);
}

const send = async (spans: number) => void (sent += await sendTraces(kafka, topic, gen, spans));
const committed = () => committedMessages(admin, db, topic);

beforeAll(async () => {
  privateKafka("up");
  admin = await serverConnection(base);
  await admin.query(`CREATE DATABASE ${db}`);
  await createTopic(kafka, topic, 3);
});
afterAll(async () => {
  privateKafka("down");
  rmSync(state, { recursive: true, force: true });
  await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
});

describe("Kafka broker restarted mid-stream (a private real broker)", () => {
  it("consumption resumes after the broker is back; totals exact", async () => {
    await send(8_000);
    const args = (bounded: boolean) => [
      BIN, "run", "--log-format", "json",
      "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`, "--set", `source.kafka.groupId=g-${topic}`,
      "--set", `source.kafka.bounded=${bounded}`, "--set", "source.kafka.sessionTimeoutMs=6000", "--set", "runtime.workers=2",
      "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${url}`, "--set", "sinks.traces=blackhole",
      "--set", "runtime.checkpointIntervalMs=300", "--set", "fold.idleTimeoutMs=600000",
    ];
    const child: ChildProcess = spawn(process.execPath, args(false), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stderr!.on("data", (d) => (log += d));
    child.stdout!.on("data", (d) => (log += d));
    try {
      await waitFor("everything sent so far committed", async () => (await committed()) === sent, 90_000);
      privateKafka("down");
      await sleep(5_000);
      expect(child.exitCode, log).toBeNull();
      privateKafka("up");
      await send(8_000);
      await waitFor("everything sent after the restart committed", async () => (await committed()) === sent, 180_000);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on("exit", r)));
    }
    expect(child.exitCode, log).toBe(0);
    const r = spawnSync(process.execPath, args(true), { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(spawnSync(process.execPath, [BIN, "topology", "--mysql-url", url, "--json"], { cwd: ROOT, encoding: "utf8" }).stdout);
    expect(checkAgainstTruth(report, gen.truth).differences).toEqual([]);
  }, 480_000); // the waits above: up to 90 s + 2 broker restarts + 180 s + a bounded run
});
