/**
 * Kafka in, MySQL out, with the real services: spans serialized by the OpenTelemetry SDK (and in
 * Zipkin v2 JSON and span_log) are produced to a topic keyed by trace id, consumed by `tracefold
 * run` as a consumer group in bounded mode, and the topology read back with `tracefold topology`
 * equals `tracefold fold` over the same file. Malformed messages are reported with their
 * topic/partition/offset and do not stop the rest.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import { buildSdkTrace } from "./support/sdk-trace.js";
import { serviceEnv } from "./support/services.js";
import { deleteTopics, dropHBaseTables } from "./support/cleanup.js";

const ROOT = join(import.meta.dirname, "..");
const brokers = serviceEnv("KAFKA_BROKERS");
const mysqlBase = new URL(serviceEnv("MYSQL_URL"));
const run = `${process.pid}_${Date.now() % 100000}`;
const db = `tracefold_kafka_${run}`;
const mysqlUrl = (() => {
  const u = new URL(mysqlBase.toString());
  u.pathname = `/${db}`;
  return u.toString();
})();
const dir = mkdtempSync(join(tmpdir(), "tf-kafka-"));
const tf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
let admin: mysql.Connection;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 1 });

beforeAll(async () => {
  admin = await mysql.createConnection({ host: mysqlBase.hostname, port: Number(mysqlBase.port), user: decodeURIComponent(mysqlBase.username), password: decodeURIComponent(mysqlBase.password) });
  await admin.query(`CREATE DATABASE ${db}`);
});
afterAll(async () => {
  for (const suffix of ["", "_otlp_proto", "_zipkin_json", "_span_log"]) await admin?.query(`DROP DATABASE IF EXISTS ${db}${suffix}`);
  await admin?.end();
  await dropHBaseTables(hbaseThrift, created.flatMap((t) => [`t_${t}`, `i_${t}`]));
  await deleteTopics(brokers, created.flatMap((t) => [t, `${t}_dlq`]));
});

async function createTopic(topic: string, partitions: number): Promise<void> {
  const a = kafka.admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  await a.disconnect();
}

async function sendRaw(topic: string, value: Uint8Array): Promise<void> {
  const p = kafka.producer();
  await p.connect();
  await p.send({ topic, messages: [{ key: "00000000000000000000000000000bad", value: Buffer.from(value) }] });
  await p.disconnect();
}

const hbaseThrift = serviceEnv("HBASE_THRIFT");
const created: string[] = [];

function consume(topic: string, format: string, database: string) {
  return tf(["run", "--set", "source.type=kafka", "--set", `source.kafka.deadLetterTopic=${topic}_dlq`, "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`, "--set", `source.kafka.format=${format}`,
    "--set", `source.kafka.groupId=g-${topic}`, "--set", "source.kafka.bounded=true", "--set", "source.kafka.sessionTimeoutMs=6000",
    "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${database}`,
    "--set", "sinks.traces=hbase", "--set", `sinks.hbase.thrift=${hbaseThrift}`, "--set", `sinks.hbase.table=t_${topic}`, "--set", `sinks.hbase.indexTable=i_${topic}`,
    "--set", "sinks.hbase.saltBuckets=4", "--log-format", "json"]);
}

describe("Kafka -> tracefold -> MySQL (real broker, real MariaDB)", () => {
  for (const [format, shape] of [["otlp_proto", "trace"], ["zipkin_json", "batch"], ["span_log", "span"]] as const) {
    it(`${format} (${shape} per message): MySQL's topology equals fold over the same file`, async () => {
      const fx = await buildSdkTrace();
      const file = join(dir, `trace.${format}`);
      writeFileSync(file, fx[format]);
      const topic = `spans_${format}_${run}`;
      created.push(topic);
      await createTopic(topic, 3);
      await createTopic(`${topic}_dlq`, 1);
      const p = tf(["produce", "--brokers", brokers, "--topic", topic, "--format", format, "--shape", shape, file]);
      expect(p.stderr).toBe("");
      expect(p.stdout).toMatch(/produced \d+ messages \(13 spans/);
      await sendRaw(topic, new TextEncoder().encode(format === "otlp_proto" ? "\u0008\u00ff" : "{ not json"));

      await admin.query(`CREATE DATABASE ${db}_${format}`);
      const database = mysqlUrl.replace(`/${db}`, `/${db}_${format}`);
      const r = consume(topic, format, database);
      expect(r.status, r.stderr).toBe(0);
      // the malformed message is reported with topic/partition/offset, and the rest went on
      expect(r.stderr).toMatch(new RegExp(`${format}: malformed message in ${topic}/\\d+@\\d+ at byte \\d+`));
      expect(r.stdout).toMatch(/dead letters 1,/);
      // ... and sits in the dead-letter topic, unchanged, with where it came from and why
      const dlq = kafka.consumer({ groupId: `dlq-${topic}` });
      await dlq.connect();
      await dlq.subscribe({ topic: `${topic}_dlq`, fromBeginning: true });
      const letter = await new Promise<{ value: Buffer | null; headers: Record<string, unknown> }>((resolve) => void dlq.run({ eachMessage: async ({ message }) => resolve(message as never) }));
      await dlq.disconnect();
      const h = Object.fromEntries(Object.entries(letter.headers).map(([k, v]) => [k, String(v)]));
      expect(h["tracefold.source.topic"]).toBe(topic);
      expect(Number(h["tracefold.source.offset"])).toBeGreaterThanOrEqual(0);
      expect(h["tracefold.error.code"]).toBe("TF_DECODE_MALFORMED");
      expect(h["tracefold.error.reason"]).toContain(`${format}: malformed message in ${topic}/`);
      expect(letter.value!.length).toBeGreaterThan(0);

      const fromMysql = JSON.parse(tf(["topology", "--mysql-url", database, "--json"]).stdout);
      const fromFold = JSON.parse(tf(["fold", file, "--format", format, "--json"]).stdout);
      expect(fromMysql.edges.length).toBeGreaterThan(5);
      expect(fromMysql.edges).toEqual(fromFold.edges);
      expect(fromMysql.services).toEqual(fromFold.services);
      expect(fromMysql.connectivity).toEqual(fromFold.connectivity);

      // HBase holds every span of the trace, readable by id
      const tr = tf(["trace", fx.expected.traceId, "--hbase-thrift", hbaseThrift, "--set", `sinks.hbase.table=t_${topic}`, "--set", `sinks.hbase.indexTable=i_${topic}`, "--json"]);
      expect(tr.status, tr.stderr).toBe(0);
      const spans = JSON.parse(tr.stdout) as Array<{ spanId: string; service: string; error: boolean }>;
      expect(spans).toHaveLength(13);
      expect(new Set(spans.map((x) => x.service))).toEqual(new Set(["frontend", "checkout", "inventory", "payments"]));
      expect(spans.filter((x) => x.error)).toHaveLength(1);
      const tree = tf(["trace", fx.expected.traceId, "--hbase-thrift", hbaseThrift, "--set", `sinks.hbase.table=t_${topic}`, "--set", `sinks.hbase.indexTable=i_${topic}`]);
      expect(tree.stdout).toMatch(/^trace [0-9a-f]{32}: 13 spans/);
      expect(tree.stdout).toContain("ERROR");
    });
  }
});
