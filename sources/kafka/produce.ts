/**
 * `tracefold produce`: writes capture files to a Kafka topic, keyed by the lower-case hex trace id
 * (DESIGN 1: all spans of a trace must reach one partition), in the message shapes producers use:
 * - batch: each message of the file as it is (keyed by its first span's trace id);
 * - trace: one trace per message (as the Collector's exporter does when it partitions by trace id);
 * - span:  one span per message (as Jaeger does).
 * For trace and span shapes the spans are decoded and re-encoded in the same format: attributes
 * the fold does not read are not carried over.
 */
import { readFile } from "node:fs/promises";
import { CompressionTypes, Kafka, type Message } from "kafkajs";
import { Interner } from "../../pipeline/intern.js";
import { SpanBatch, traceIdHex } from "../../pipeline/span-batch.js";
import { DECODERS, frameFile } from "../../operators/decode/index.js";
import { DecodeStats, type FormatName } from "../../operators/decode/types.js";
import { encoderFor, type MessageShape } from "../replay/otlp-encode.js";
import { kafkajsConfig, type KafkaConnection } from "./config.js";
import { sendChunks } from "./send-chunks.js";

export interface ProduceOptions extends KafkaConnection {
  topic: string;
  format: FormatName;
  files: string[];
  shape: MessageShape;
  /** Messages per produce request. */
  batchMessages?: number;
  compression?: "none" | "gzip";
}

export interface ProduceResult {
  messages: number;
  spans: number;
  malformed: number;
}

/** Cuts files into keyed messages (no Kafka involved: also used by tests). */
export async function keyedMessages(format: FormatName, files: string[], shape: MessageShape): Promise<{ messages: Message[]; spans: number; malformed: number }> {
  const interner = new Interner();
  const stats = new DecodeStats();
  const out: Message[] = [];
  let malformed = 0;
  const encode = encoderFor(format);
  for (const file of files) {
    const bytes = await readFile(file);
    for (const f of frameFile(format, bytes)) {
      const body = bytes.subarray(f.start, f.end);
      const b = new SpanBatch(interner, 256);
      try {
        DECODERS[format](body, b, stats);
      } catch {
        malformed++;
        out.push({ key: null, value: Buffer.from(body) }); // sent as is: the consumer dead-letters it
        continue;
      }
      if (b.length === 0) continue;
      if (shape === "batch") {
        out.push({ key: traceIdHex(b.tid, 0), value: Buffer.from(body) });
        continue;
      }
      const groups = new Map<string, number[]>();
      for (let i = 0; i < b.length; i++) {
        const k = traceIdHex(b.tid, i * 4);
        if (shape === "span") out.push({ key: k, value: Buffer.from(encode(b, [i])) });
        else groups.set(k, [...(groups.get(k) ?? []), i]);
      }
      for (const [k, rows] of groups) out.push({ key: k, value: Buffer.from(encode(b, rows)) });
    }
  }
  return { messages: out, spans: stats.spans, malformed };
}

export async function produce(opts: ProduceOptions): Promise<ProduceResult> {
  const { messages, spans, malformed } = await keyedMessages(opts.format, opts.files, opts.shape);
  const producer = new Kafka(kafkajsConfig(opts)).producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    // at most batchMessages per request, and at most 512 KiB of records (sources/kafka/send-chunks.ts)
    const per = opts.batchMessages ?? 500;
    for (let i = 0; i < messages.length; i += per)
      for (const part of sendChunks(messages.slice(i, i + per)))
        await producer.send({ topic: opts.topic, messages: part, compression: opts.compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None, acks: -1 });
  } finally {
    await producer.disconnect();
  }
  return { messages: messages.length, spans, malformed };
}
