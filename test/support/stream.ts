/**
 * What the streaming integration tests share: a database URL on the test server, sending
 * generated traffic to a topic (one OTLP request per trace, keyed by trace id), the sum of the
 * offsets checkpointed in MySQL, and polling with a deadline.
 */
import type { Kafka, Message } from "kafkajs";
import mysqlClient from "mysql2/promise";
import type mysql from "mysql2/promise";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import type { ReplayGenerator } from "../../sources/replay/generator.js";
import { traceMessages } from "../../sources/kafka/replay-to-kafka.js";
import { encodeOtlp } from "../../sources/replay/otlp-encode.js";

/** The server's URL with another database. */
export function databaseUrl(server: URL | string, database: string): string {
  const u = new URL(server.toString());
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Generates `spans` more spans and sends them; returns the number of messages sent. `span`: one
 * span per message keyed by its span id, so a trace's spans land in different partitions (a
 * topic not keyed by trace id).
 */
export async function sendTraces(kafka: Kafka, topic: string, gen: ReplayGenerator, spans: number, onBatch?: (b: SpanBatch) => void, shape: "trace" | "span" = "trace"): Promise<number> {
  const messages: Message[] = [];
  gen.generate(spans, (b) => {
    onBatch?.(b);
    if (shape === "trace") messages.push(...traceMessages(b));
    else for (let i = 0; i < b.length; i++) messages.push({ key: `${b.sid[i * 2].toString(16)}-${b.sid[i * 2 + 1].toString(16)}`, value: Buffer.from(encodeOtlp(b, [i])) });
  });
  const p = kafka.producer();
  await p.connect();
  for (let i = 0; i < messages.length; i += 500) await p.send({ topic, messages: messages.slice(i, i + 500) });
  await p.disconnect();
  return messages.length;
}

/** Sum of the next offsets stored with checkpoints for a topic: the messages durably consumed. */
export async function committedMessages(conn: mysql.Connection, database: string, topic: string): Promise<number> {
  const [rows] = await conn.query(`SELECT COALESCE(SUM(next_offset), 0) AS n FROM ${database}.consumed_offsets WHERE topic = ?`, [topic]).catch(() => [[{ n: 0 }]]);
  return Number((rows as Array<{ n: number }>)[0].n);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** A connection to the server of a mysql:// URL, no database selected (to create and drop them). */
export function serverConnection(server: URL): Promise<mysql.Connection> {
  return mysqlClient.createConnection({ host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) });
}

/** Creates a topic and waits for its leaders. */
export async function createTopic(kafka: Kafka, topic: string, partitions: number): Promise<void> {
  const a = kafka.admin();
  await a.connect();
  try {
    await a.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await a.disconnect();
  }
}
