/**
 * `tracefold replay --to kafka`: streams the replay generator into a topic, one OTLP
 * ExportTraceServiceRequest per trace keyed by its lower-case hex trace id (as the Collector's
 * Kafka exporter does with partition_traces_by_id), at a target rate of spans per second, for a
 * number of spans or a duration. The same seed and options give the same traffic, so the truth
 * can be rebuilt anywhere.
 */
import { Kafka, type Message } from "kafkajs";
import { Interner } from "../../pipeline/intern.js";
import { traceIdHex, type SpanBatch } from "../../pipeline/span-batch.js";
import { ReplayGenerator, type ReplayOptions } from "../replay/generator.js";
import { encodeOtlp } from "../replay/otlp-encode.js";
import { kafkajsConfig, type KafkaConnection } from "./config.js";
import { sendChunks } from "./send-chunks.js";

export interface ReplayToKafkaOptions extends KafkaConnection {
  topic: string;
  replay: Partial<ReplayOptions>;
  /** Spans per second to offer (0: as fast as the producer goes). */
  rate: number;
  /** Stop after this many spans (0: no limit). */
  spans: number;
  /** Stop after this many seconds (0: no limit). */
  durationS: number;
  onProgress?: (spans: number, messages: number, elapsedS: number) => void;
}

export function traceMessages(b: SpanBatch): Message[] {
  const byTrace = new Map<string, number[]>();
  for (let i = 0; i < b.length; i++) {
    const k = traceIdHex(b.tid, i * 4);
    let rows = byTrace.get(k);
    if (!rows) byTrace.set(k, (rows = []));
    rows.push(i);
  }
  return [...byTrace].map(([key, rows]) => ({ key, value: Buffer.from(encodeOtlp(b, rows)) }));
}

export async function replayToKafka(o: ReplayToKafkaOptions): Promise<{ spans: number; messages: number; elapsedS: number }> {
  const gen = new ReplayGenerator({ seed: 1, ...o.replay, partitions: 1 }, new Interner());
  const producer = new Kafka(kafkajsConfig(o)).producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const t0 = Date.now();
  let spans = 0;
  let messages = 0;
  const chunk = Math.max(100, Math.min(20_000, o.rate > 0 ? Math.floor(o.rate / 10) : 20_000));
  try {
    for (;;) {
      const elapsed = (Date.now() - t0) / 1000;
      if ((o.spans > 0 && spans >= o.spans) || (o.durationS > 0 && elapsed >= o.durationS)) break;
      const want = o.spans > 0 ? Math.min(chunk, o.spans - spans) : chunk;
      const batch: Message[] = [];
      spans += gen.generate(want, (b) => batch.push(...traceMessages(b)));
      // one request per <= 512 KiB of records: the messages of a partition travel as one record
      // batch, and the broker refuses a batch over message.max.bytes (1 MiB by default) whole
      for (const part of sendChunks(batch)) await producer.send({ topic: o.topic, messages: part, acks: -1 });
      messages += batch.length;
      o.onProgress?.(spans, messages, (Date.now() - t0) / 1000);
      if (o.rate > 0) {
        const ahead = spans / o.rate - (Date.now() - t0) / 1000;
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead * 1000));
      }
    }
  } finally {
    await producer.disconnect();
  }
  return { spans, messages, elapsedS: (Date.now() - t0) / 1000 };
}
