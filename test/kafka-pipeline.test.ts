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
import { createTopic, databaseUrl, serverConnection } from "./support/stream.js";
import { deleteTopics, dropHBaseTables } from "./support/cleanup.js";

const ROOT = join(import.meta.dirname, "..");
const brokers = serviceEnv("KAFKA_BROKERS");
const mysqlBase = new URL(serviceEnv("MYSQL_URL"));
const run = `${process.pid}_${Date.now() % 100000}`;
const db = `tracefold_kafka_${run}`;
const mysqlUrl = databaseUrl(mysqlBase, db);
const dir = mkdtempSync(join(tmpdir(), "tf-kafka-"));
const tf = (args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
let admin: mysql.Connection;
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 1 });

beforeAll(async () => {
  admin = await serverConnection(mysqlBase);
  await admin.query(`CREATE DATABASE ${db}`);
});
afterAll(async () => {
  for (const suffix of ["", "_otlp_proto", "_zipkin_json", "_span_log"]) await admin?.query(`DROP DATABASE IF EXISTS ${db}${suffix}`);
  await admin?.end();
  await dropHBaseTables(hbaseThrift, created.flatMap((t) => [`t_${t}`, `i_${t}`]));
  await deleteTopics(brokers, created.flatMap((t) => [t, `${t}_dlq`]));
});

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
    "--set", "sinks.hbase.saltBuckets=4", "--set", "decode.maxMessageBytes=32768", "--log-format", "json"]);
}

describe("Kafka -> tracefold -> MySQL (real broker, real MariaDB)", () => {
  for (const [format, shape] of [["otlp_proto", "trace"], ["zipkin_json", "batch"], ["span_log", "span"]] as const) {
    it(`${format} (${shape} per message): MySQL's topology equals fold over the same file`, async () => {
      const fx = await buildSdkTrace();
      const file = join(dir, `trace.${format}`);
      writeFileSync(file, fx[format]);
      const topic = `spans_${format}_${run}`;
      created.push(topic);
      await createTopic(kafka, topic, 3);
      await createTopic(kafka, `${topic}_dlq`, 1);
      const p = tf(["produce", "--brokers", brokers, "--topic", topic, "--format", format, "--shape", shape, file]);
      expect(p.stderr).toBe("");
      expect(p.stdout).toMatch(/produced \d+ messages \(13 spans/);
      await sendRaw(topic, new TextEncoder().encode(format === "otlp_proto" ? "\u0008\u00ff" : "{ not json"));
      // and one over the size limit set below (decode.maxMessageBytes)
      await sendRaw(topic, new Uint8Array(40_000).fill(0x20));

      await admin.query(`CREATE DATABASE ${db}_${format}`);
      const database = mysqlUrl.replace(`/${db}`, `/${db}_${format}`);
      const r = consume(topic, format, database);
      expect(r.status, r.stderr).toBe(0);
      // the malformed message is reported with topic/partition/offset, and the rest went on
      expect(r.stderr).toMatch(new RegExp(`${format}: malformed message in ${topic}/\\d+@\\d+ at byte \\d+`));
      expect(r.stderr).toMatch(new RegExp(`message of 40000 bytes in ${topic}/\\d+@\\d+ exceeds decode.maxMessageBytes \\(32768\\)`));
      // both, at least once (a rebalance while the members join rolls back to the last checkpoint
      // and may meet a letter again in another worker: the dead-letter topic is at-least-once)
      expect(Number(/dead letters (\d+),/.exec(r.stdout)?.[1])).toBeGreaterThanOrEqual(2);
      // ... and both sit in the dead-letter topic, unchanged, with where they came from and why
      const dlq = kafka.consumer({ groupId: `dlq-${topic}` });
      await dlq.connect();
      await dlq.subscribe({ topic: `${topic}_dlq`, fromBeginning: true });
      const letters: Array<{ value: Buffer | null; headers: Record<string, unknown> }> = [];
      const codes = new Set<string>();
      await new Promise<void>((resolve) => void dlq.run({ eachMessage: async ({ message }) => {
        letters.push(message as never);
        codes.add(String(message.headers?.["tracefold.error.code"]));
        if (codes.size === 2) resolve();
      } }));
      await dlq.disconnect();
      const byCode = new Map(letters.map((l) => {
        const h = Object.fromEntries(Object.entries(l.headers).map(([k, v]) => [k, String(v)]));
        return [h["tracefold.error.code"], { h, value: l.value! }];
      }));
      expect([...byCode.keys()].sort()).toEqual(["TF_DECODE_MALFORMED", "TF_DECODE_TOO_LARGE"]);
      const bad = byCode.get("TF_DECODE_MALFORMED")!;
      expect(bad.h["tracefold.source.topic"]).toBe(topic);
      expect(Number(bad.h["tracefold.source.offset"])).toBeGreaterThanOrEqual(0);
      expect(bad.h["tracefold.error.reason"]).toContain(`${format}: malformed message in ${topic}/`);
      expect(bad.value.length).toBeGreaterThan(0);
      const big = byCode.get("TF_DECODE_TOO_LARGE")!;
      expect(big.h["tracefold.source.topic"]).toBe(topic);
      expect(Number(big.h["tracefold.source.partition"])).toBeGreaterThanOrEqual(0);
      expect(big.h["tracefold.error.reason"]).toContain("exceeds decode.maxMessageBytes (32768)");
      expect(big.value.length).toBe(40_000);

      const fromMysql = JSON.parse(tf(["topology", "--mysql-url", database, "--json"]).stdout);
      const fromFold = JSON.parse(tf(["fold", file, "--format", format, "--json"]).stdout);
      expect(fromMysql.edges.length).toBeGreaterThan(5);
      expect(fromMysql.edges).toEqual(fromFold.edges);
      expect(fromMysql.services).toEqual(fromFold.services);
      expect(fromMysql.connectivity).toEqual(fromFold.connectivity);

      // HBase holds every span of the trace, readable by id
      const tr = tf(["trace", fx.expected.traceId, "--hbase-thrift", hbaseThrift, "--set", `sinks.hbase.table=t_${topic}`, "--set", `sinks.hbase.indexTable=i_${topic}`, "--set", "sinks.hbase.saltBuckets=4", "--json"]);
      expect(tr.status, tr.stderr).toBe(0);
      const spans = JSON.parse(tr.stdout) as Array<{ spanId: string; service: string; error: boolean }>;
      expect(spans).toHaveLength(13);
      expect(new Set(spans.map((x) => x.service))).toEqual(new Set(["frontend", "checkout", "inventory", "payments"]));
      expect(spans.filter((x) => x.error)).toHaveLength(1);
      const tree = tf(["trace", fx.expected.traceId, "--hbase-thrift", hbaseThrift, "--set", `sinks.hbase.table=t_${topic}`, "--set", `sinks.hbase.indexTable=i_${topic}`, "--set", "sinks.hbase.saltBuckets=4"]);
      expect(tree.stdout).toMatch(/^trace [0-9a-f]{32}: 13 spans/);
      expect(tree.stdout).toContain("ERROR");
    });
  }
});
