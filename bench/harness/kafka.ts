/**
 * Kafka for the benchmark: a private broker (scripts/services.sh on its own ports and state
 * folder, never the shared one), topics with capped retention, the producer that writes the
 * cached replay, and two samplers that give throughput and lag over time:
 * - /metrics of a tracefold run (spans and messages decoded, partition lag), every second;
 * - the committed offsets of a consumer group (for the peers), every second.
 */
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { Kafka, logLevel, type Admin } from "kafkajs";
import { sendChunks } from "../../sources/kafka/send-chunks.js";
import type { WireMessage } from "./replay-cache.js";

const PRIVATE_ENV = {
  TRACEFOLD_STATE_DIR: "/tmp/bench-state",
  TRACEFOLD_KAFKA_PORT: "29192",
  TRACEFOLD_KAFKA_CONTROLLER_PORT: "29193",
  TRACEFOLD_KAFKA_SASL_PORT: "29194",
  TRACEFOLD_KAFKA_TLS_PORT: "29195",
  // the worker threads of a multi-worker row join in one generation (the tests' broker uses 0:
  // there the first to join took every partition and the second's join rolled it back, so the row
  // read ~1 M spans twice). 1 s, not Kafka's default 3 s: enough for one process's workers (their
  // joins land within ms; 5 of 5 runs in one generation) and ~70 s less for the quick profile
  TRACEFOLD_KAFKA_GROUP_INITIAL_DELAY_MS: "1000",
};
export const PRIVATE_BROKERS = `127.0.0.1:${PRIVATE_ENV.TRACEFOLD_KAFKA_PORT}`;

function services(root: string, verb: "up" | "down"): void {
  const env: NodeJS.ProcessEnv = { ...process.env, ...PRIVATE_ENV };
  delete env.KAFKA_BROKERS; // else services.sh uses that broker instead of starting its own
  const r = spawnSync("bash", [join(root, "scripts", "services.sh"), verb, "kafka"], { env, encoding: "utf8" });
  if (r.status !== 0 && verb === "up") throw new Error(`services.sh up kafka failed: ${(r.stderr || r.stdout).slice(-2000)}`);
}

export function startPrivateKafka(root: string): string {
  services(root, "up");
  return PRIVATE_BROKERS;
}

export function stopPrivateKafka(root: string): void {
  services(root, "down");
  rmSync(PRIVATE_ENV.TRACEFOLD_STATE_DIR, { recursive: true, force: true });
}

export function kafka(brokers: string): Kafka {
  return new Kafka({ clientId: "tracefold-bench", brokers: brokers.split(","), logLevel: logLevel.NOTHING });
}

/** Per-partition retention for a topic that holds a replay of `bytes` once: 25% headroom, >= 256 MiB. */
export function replayRetention(bytes: number, partitions: number): number {
  return Math.max(256 << 20, Math.ceil((1.25 * bytes) / partitions));
}

/** A topic whose partitions keep at most `retentionBytes` each (segments of a quarter of that). */
export async function createTopic(admin: Admin, topic: string, partitions: number, retentionBytes: number): Promise<void> {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{
      topic,
      numPartitions: partitions,
      replicationFactor: 1,
      configEntries: [
        { name: "retention.bytes", value: String(retentionBytes) },
        { name: "segment.bytes", value: String(Math.max(16 << 20, Math.floor(retentionBytes / 4))) },
      ],
    }],
  });
}

/**
 * Writes the messages as fast as the broker takes them: requests of <= 900 kB of records, keys and
 * framing included (sendChunks: the broker's default message.max.bytes is 1 MiB per partition
 * batch), up to 8 in flight, each sender owning its own partitions so every partition keeps the
 * replay's order (two requests in flight for one partition may land in either order, which makes
 * spans late at low event-time rates).
 */
export async function produce(brokers: string, topic: string, messages: WireMessage[], onProgress: (sent: number) => void): Promise<number> {
  const producer = kafka(brokers).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const t0 = Date.now();
  let sent = 0;
  const senders = 8;
  const sender = async (k: number) => {
    const mine = messages.filter((m) => m.partition % senders === k);
    for (const part of sendChunks(mine, 900_000)) {
      await producer.send({ topic, acks: -1, messages: part.map((m) => ({ partition: m.partition, key: m.key, value: m.value })) });
      sent += part.length;
      onProgress(sent);
    }
  };
  try {
    await Promise.all(Array.from({ length: senders }, (_, k) => sender(k)));
  } finally {
    await producer.disconnect();
  }
  return (Date.now() - t0) / 1000;
}

export interface Sample {
  /** Seconds since the run started. */
  t: number;
  /** Spans processed so far (tracefold's /metrics), else null. */
  spans: number | null;
  /** Messages consumed so far (tracefold: decoded; peers: committed offsets). */
  messages: number | null;
  /** Messages behind the end of the topic. */
  lag: number | null;
}

/** A free TCP port on 127.0.0.1 (for a run's /metrics). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function metric(text: string, name: string): number | null {
  let found = false;
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== " " && line[name.length] !== "{")) continue;
    found = true;
    sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return found ? sum : null;
}

/** Samples every second until stopped; `read` returns null while nothing answers yet. */
export function sampler(read: () => Promise<Omit<Sample, "t"> | null>, onSample: (s: Sample) => void): { stop: () => Promise<Sample[]> } {
  const t0 = Date.now();
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const at = Date.now();
      const s = await read().catch(() => null);
      if (s && !stopped) {
        const x = { t: (at - t0) / 1000, ...s };
        samples.push(x);
        onSample(x);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - at))));
    }
  })();
  return { stop: async () => ((stopped = true), await loop, samples) };
}

export function metricsReader(port: number): () => Promise<Omit<Sample, "t"> | null> {
  return async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(900) });
    const text = await res.text();
    return {
      spans: metric(text, "tracefold_fold_spans_in_total") ?? metric(text, "tracefold_decode_spans_total"),
      messages: metric(text, "tracefold_decode_messages_total"),
      lag: metric(text, "tracefold_kafka_partition_lag"),
    };
  };
}

/** Committed offsets of a group against the topic's end offsets (works for any consumer that commits). */
export function groupLagReader(admin: Admin, groupId: string, topic: string): () => Promise<Omit<Sample, "t"> | null> {
  return async () => {
    const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
    const low = new Map(ends.map((p) => [p.partition, Number(p.low)]));
    let done = 0;
    let lag = 0;
    for (const p of committed[0]?.partitions ?? []) {
      const c = Number(p.offset) < 0 ? low.get(p.partition) ?? 0 : Number(p.offset);
      done += c - (low.get(p.partition) ?? 0);
      lag += Number(ends.find((e) => e.partition === p.partition)?.high ?? 0) - c;
    }
    return { spans: null, messages: done, lag };
  };
}
