/**
 * TLS with the real services: Kafka's SSL listener and MariaDB's TLS, both serving a certificate
 * for 127.0.0.1 signed by the private test CA that scripts/services.sh makes (.state/tls/ca.pem,
 * TRACEFOLD_TEST_CA_FILE). With the CA, tracefold's Kafka settings and MySQL sink connect over TLS;
 * without it (the system CAs only) the certificate is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import { KafkaSource } from "../sources/kafka/source.js";
import { kafkajsConfig } from "../sources/kafka/config.js";
import { MysqlSink } from "../sinks/mysql/sink.js";
import { MIGRATIONS } from "../sinks/mysql/schema.js";
import { Interner } from "../pipeline/intern.js";
import { silentLogger, type MessageBatch } from "../pipeline/contracts.js";
import { serviceEnv } from "./support/services.js";
import { serverConnection } from "./support/stream.js";

const tlsBrokers = serviceEnv("KAFKA_TLS_BROKERS");
const ca = serviceEnv("TRACEFOLD_TEST_CA_FILE");
const tag = `${process.pid}_${Date.now() % 100000}`;
// what a certificate that does not chain to a trusted CA looks like, from Node's TLS
const CERT_ERROR = /self[- ]signed certificate|unable to (get local issuer|verify the first) certificate|certificate verify failed/i;
const ctx = () => ({ interner: new Interner(), workerIndex: 0, workers: 1, log: silentLogger, now: Date.now, deadLetter: () => {} });

describe("Kafka over TLS (real broker, SSL listener)", () => {
  it("produces and consumes through the TLS listener with the test CA", async () => {
    const conn = { brokers: tlsBrokers, tls: true, tlsCaFile: ca };
    const topic = `tls_${tag}`;
    const kafka = new Kafka(kafkajsConfig(conn));
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const sent = ["one", "two", "three", "four"].map((v) => `${v}-${tag}`);
    const p = kafka.producer();
    await p.connect();
    await p.send({ topic, messages: sent.map((value, i) => ({ key: `k${i}`, value })) });
    await p.disconnect();

    const source = new KafkaSource({ ...conn, topic, groupId: `g-${topic}`, sessionTimeoutMs: 6000 });
    await source.open(ctx());
    const got: string[] = [];
    try {
      while (got.length < sent.length) {
        const b = (await source.next()) as MessageBatch | null;
        if (!b) break;
        for (const m of b.messages) got.push(Buffer.from(m).toString("utf8"));
      }
    } finally {
      await source.close();
    }
    expect(got.sort()).toEqual([...sent].sort());
  });

  it("refuses the broker's certificate without the test CA (system CAs only)", async () => {
    const kafka = new Kafka({ ...kafkajsConfig({ brokers: tlsBrokers, tls: true, connectionTimeoutMs: 3000 }), retry: { retries: 0 } });
    const admin = kafka.admin();
    const t0 = Date.now();
    await expect(admin.connect()).rejects.toThrow(CERT_ERROR);
    expect(Date.now() - t0).toBeLessThan(15_000);
    await admin.disconnect().catch(() => {});
  });

  it("the TLS listener speaks only TLS: a plaintext client is disconnected", async () => {
    const kafka = new Kafka({ ...kafkajsConfig({ brokers: tlsBrokers, connectionTimeoutMs: 2000 }), requestTimeout: 3000, retry: { retries: 0 } });
    const admin = kafka.admin();
    await expect(admin.connect()).rejects.toThrow(/connection/i);
    await admin.disconnect().catch(() => {});
  });
});

describe("MySQL sink over TLS (real server)", () => {
  const base = new URL(serviceEnv("MYSQL_URL"));
  const dbName = `tracefold_tls_${tag}`;
  const url = new URL(base.toString());
  url.pathname = `/${dbName}`;
  let admin: mysql.Connection;

  beforeAll(async () => {
    admin = await serverConnection(base);
    await admin.query(`CREATE DATABASE ${dbName}`);
  });
  afterAll(async () => {
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin?.end();
  });

  async function sslCipher(sink: MysqlSink): Promise<string> {
    const [rows] = await sink.pool.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
    const r = (rows as Array<{ Variable_name: string; Value: string }>)[0];
    expect(r?.Variable_name).toBe("Ssl_cipher");
    return r.Value;
  }

  it("opens and migrates with the test CA, and the session is encrypted", async () => {
    const sink = new MysqlSink({ url: url.toString(), tls: true, tlsCaFile: ca, maxAttempts: 1 });
    try {
      await sink.open();
      const [rows] = await sink.pool.query("SELECT version FROM tracefold_schema_migrations ORDER BY version");
      expect((rows as Array<{ version: number }>).map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await sslCipher(sink)).not.toBe("");
      const [v] = await sink.pool.query("SHOW SESSION STATUS LIKE 'Ssl_version'");
      expect((v as Array<{ Value: string }>)[0].Value).toMatch(/^TLSv1\.[23]$/);
    } finally {
      await sink.close();
    }
  });

  it("without tls the same query reports no cipher (the check above can fail)", async () => {
    const sink = new MysqlSink({ url: url.toString(), maxAttempts: 1 });
    try {
      await sink.open();
      expect(await sslCipher(sink)).toBe("");
    } finally {
      await sink.close();
    }
  });

  it("refuses the server's certificate with tls and no CA (system CAs only)", async () => {
    const sink = new MysqlSink({ url: url.toString(), tls: true, maxAttempts: 1 });
    try {
      await expect(sink.open()).rejects.toThrow(CERT_ERROR);
    } finally {
      await sink.close().catch(() => {});
    }
  });
});
