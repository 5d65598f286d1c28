/**
 * Kafka details with the real broker: the SASL listener (PLAIN and SCRAM, the password read from
 * a file), and record batches compressed with gzip, Snappy and LZ4, all read by tracefold.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CompressionTypes, Kafka } from "kafkajs";
import { KafkaSource } from "../sources/kafka/source.js";
import { kafkajsConfig } from "../sources/kafka/config.js";
import { keyedMessages } from "../sources/kafka/produce.js";
import { Interner } from "../pipeline/intern.js";
import { silentLogger, type MessageBatch } from "../pipeline/contracts.js";
import { buildSdkTrace } from "./support/sdk-trace.js";
import { serviceEnv } from "./support/services.js";

const ROOT = join(import.meta.dirname, "..");
const brokers = serviceEnv("KAFKA_BROKERS");
const tag = `${process.pid}_${Date.now() % 100000}`;
const dir = mkdtempSync(join(tmpdir(), "tf-sec-"));

async function createTopic(b: string, topic: string, extra = {}): Promise<void> {
  const a = new Kafka({ ...kafkajsConfig({ brokers: b, ...extra }) }).admin();
  await a.connect();
  await a.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  await a.disconnect();
}

async function drain(source: KafkaSource, want: number): Promise<number> {
  let got = 0;
  while (got < want) {
    const b = (await source.next()) as MessageBatch | null;
    if (!b) break;
    got += b.messages.length;
  }
  return got;
}

describe("Kafka security and compression (real broker)", () => {
  for (const mechanism of ["plain", "scram-sha-256", "scram-sha-512"] as const) {
    it(`reads through the SASL listener with ${mechanism}, the password from a file`, async () => {
      const sasl = serviceEnv("KAFKA_SASL_BROKERS");
      const pwFile = join(dir, "kafka-password");
      writeFileSync(pwFile, serviceEnv("KAFKA_SASL_PASSWORD") + "\n");
      const auth = { saslMechanism: mechanism, saslUsername: serviceEnv("KAFKA_SASL_USER"), saslPasswordFile: pwFile };
      const topic = `sasl_${mechanism.replace(/-/g, "_")}_${tag}`;
      await createTopic(sasl, topic, auth);
      const p = new Kafka(kafkajsConfig({ brokers: sasl, ...auth })).producer();
      await p.connect();
      await p.send({ topic, messages: [{ key: "k", value: "hello" }, { key: "k2", value: "world" }] });
      await p.disconnect();
      const source = new KafkaSource({ brokers: sasl, topic, groupId: `g-${topic}`, ...auth, sessionTimeoutMs: 6000 });
      await source.open({ interner: new Interner(), workerIndex: 0, workers: 1, log: silentLogger, now: Date.now, deadLetter: () => {} });
      expect(await drain(source, 2)).toBe(2);
      await source.close();
    });
  }

  it("rejects a wrong SASL password with a clear error", async () => {
    const source = new KafkaSource({ brokers: serviceEnv("KAFKA_SASL_BROKERS"), topic: "nope", groupId: "g-nope", saslMechanism: "scram-sha-512", saslUsername: "tracefold", saslPassword: "wrong", sessionTimeoutMs: 6000 });
    await expect(source.open({ interner: new Interner(), workerIndex: 0, workers: 1, log: silentLogger, now: Date.now, deadLetter: () => {} })).rejects.toThrow(/SASL|authentication/i);
    await source.close().catch(() => {});
  });

  it("folds record batches compressed with gzip, Snappy and LZ4 like uncompressed ones", async () => {
    const fx = await buildSdkTrace();
    const file = join(dir, "trace.bin");
    writeFileSync(file, fx.otlp_proto);
    const { messages } = await keyedMessages("otlp_proto", [file], "span");
    const reports: string[] = [];
    for (const [name, compression] of [["none", CompressionTypes.None], ["gzip", CompressionTypes.GZIP], ["snappy", CompressionTypes.Snappy], ["lz4", CompressionTypes.LZ4]] as const) {
      const topic = `codec_${name}_${tag}`;
      await createTopic(brokers, topic);
      const p = new Kafka(kafkajsConfig({ brokers })).producer();
      await p.connect();
      await p.send({ topic, messages, compression });
      await p.disconnect();
      const r = spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "run", "--set", "source.type=kafka", "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`,
        "--set", `source.kafka.groupId=g-${topic}`, "--set", "source.kafka.bounded=true", "--set", "sinks.traces=blackhole"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/13 spans in/);
      reports.push(r.stdout.split(/\n\d+ spans in/)[0]); // the topology tables, without the timing line
    }
    expect(new Set(reports).size).toBe(1);
    expect(reports[0]).toContain("checkout");
  });
});
