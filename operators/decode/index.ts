/**
 * The decoder registry and the `decode` operator: raw messages in, SpanBatch out. A message that
 * fails to decode contributes nothing, goes to the dead-letter side output with its reason, and
 * decoding goes on with the next message.
 */
import type { Collector, MessageBatch, Operator, RuntimeContext } from "../../pipeline/contracts.js";
import { DecodeError } from "../../pipeline/errors.js";
import { SpanBatch } from "../../pipeline/span-batch.js";
import { decodeJaegerJson } from "./jaeger-json.js";
import { decodeOtlpJson } from "./otlp-json.js";
import { decodeOtlpProto } from "./otlp-proto.js";
import { decodeSpanLog } from "./span-log.js";
import { DecodeStats, FORMATS, type FormatName, type MessageDecoder } from "./types.js";
import { decodeZipkinJson } from "./zipkin-json.js";
import { decodeExchange } from "./exchange.js";

export const DECODERS: Readonly<Record<FormatName, MessageDecoder>> = {
  otlp_proto: decodeOtlpProto,
  otlp_json: decodeOtlpJson,
  zipkin_json: decodeZipkinJson,
  jaeger_json: decodeJaegerJson,
  span_log: decodeSpanLog,
  tracefold_exchange: decodeExchange,
};

export function isFormat(f: string): f is FormatName {
  return (FORMATS as readonly string[]).includes(f) || f === "tracefold_exchange";
}

/**
 * Cuts a capture file into messages. otlp_proto: the file is one request (an OTLP/HTTP body).
 * zipkin_json: one array. otlp_json and jaeger_json: one document, or one document per line (the
 * Collector's file exporter). span_log: one record per line.
 */
export function frameFile(format: FormatName, bytes: Uint8Array): Array<{ start: number; end: number }> {
  if (format === "otlp_proto" || format === "zipkin_json" || format === "tracefold_exchange") return [{ start: 0, end: bytes.length }];
  if (format === "otlp_json" || format === "jaeger_json") {
    const lines = splitLines(bytes);
    if (lines.length <= 1) return lines.length === 1 ? lines : [{ start: 0, end: bytes.length }];
    // several lines: one document per line only if the first line is a whole document
    const first = lines[0];
    try {
      JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + first.start, first.end - first.start).toString("utf8"));
      return lines;
    } catch {
      return [{ start: 0, end: bytes.length }];
    }
  }
  return splitLines(bytes);
}

function splitLines(bytes: Uint8Array): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 10) {
      let end = i;
      if (end > start && bytes[end - 1] === 13) end--;
      let blank = true;
      for (let k = start; k < end; k++) if (bytes[k] !== 32 && bytes[k] !== 9) { blank = false; break; }
      if (!blank) out.push({ start, end });
      start = i + 1;
    }
  }
  return out;
}

export interface DecodeOperatorConfig {
  format: FormatName;
  /** A larger message is not decoded: it goes to the dead letters (TF_DECODE_TOO_LARGE). */
  maxMessageBytes?: number;
}

export class DecodeOperator implements Operator {
  readonly stats = new DecodeStats();
  oversized = 0;
  private decoder: MessageDecoder;
  private batch!: SpanBatch;
  private ctx!: RuntimeContext;

  constructor(readonly config: DecodeOperatorConfig) {
    if (!isFormat(config.format)) throw new Error(`unknown format "${config.format}"`);
    this.decoder = DECODERS[config.format];
  }

  open(ctx: RuntimeContext): void {
    this.ctx = ctx;
    this.batch ??= new SpanBatch(ctx.interner, 4096);
  }

  processBatch(input: unknown, out: Collector): void {
    const mb = input as MessageBatch;
    const b = this.batch;
    b.reset(mb.partition);
    const limit = this.config.maxMessageBytes ?? 16 << 20;
    for (let m = 0; m < mb.messages.length; m++) {
      const before = b.length;
      if (mb.messages[m].length > limit) {
        this.oversized++;
        this.ctx.deadLetter({
          origin: mb.origins[m],
          partition: mb.partition,
          offset: mb.offsets[m],
          code: "TF_DECODE_TOO_LARGE",
          reason: `${this.config.format}: message of ${mb.messages[m].length} bytes in ${mb.origins[m]} exceeds decode.maxMessageBytes (${limit})`,
          message: mb.messages[m],
        });
        continue;
      }
      try {
        this.decoder(mb.messages[m], b, this.stats);
      } catch (err) {
        b.truncate(before);
        this.stats.malformedMessages++;
        const de = err instanceof DecodeError ? err : new DecodeError(this.config.format, 0, String((err as Error)?.message ?? err));
        this.ctx.deadLetter({
          origin: mb.origins[m],
          partition: mb.partition,
          offset: mb.offsets[m],
          code: de.code,
          reason: de.withSource(mb.origins[m]).message,
          message: mb.messages[m],
        });
      }
    }
    if (mb.offsets.length > 0) {
      b.firstOffset = mb.offsets[0];
      b.lastOffset = mb.offsets[mb.offsets.length - 1];
    }
    if (b.length > 0) out.emit(b);
  }

  finish(): void {}
  close(): void {}

  metrics(): Record<string, number> {
    const s = this.stats;
    return {
      decode_messages: s.messages,
      decode_spans: s.spans,
      decode_malformed_messages: s.malformedMessages,
      decode_oversized_messages: this.oversized,
      decode_spans_without_service: s.spansWithoutService,
      decode_spans_invalid_id: s.spansWithInvalidId,
    };
  }
}
