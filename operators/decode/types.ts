import type { SpanBatch } from "../../pipeline/span-batch.js";

/** The formats producers send. */
export type InputFormat = "otlp_proto" | "otlp_json" | "zipkin_json" | "jaeger_json" | "span_log";
export const FORMATS: readonly InputFormat[] = ["otlp_proto", "otlp_json", "zipkin_json", "jaeger_json", "span_log"];
/** ... and tracefold's own repartition topic (runtime.shuffle=topic). */
export type FormatName = InputFormat | "tracefold_exchange";

/** Counters a decoder bumps for spans it skips (each skip has a counter and a reason). */
export class DecodeStats {
  messages = 0;
  spans = 0;
  malformedMessages = 0;
  /** A span without a service name is counted and skipped (DESIGN 3). */
  spansWithoutService = 0;
  /** A span whose trace id or span id is missing, all-zero or not hex. */
  spansWithInvalidId = 0;
}

/**
 * Decodes one message (one Kafka record, or one framed piece of a file) and appends its spans to
 * `out`. Throws DecodeError on malformed input; the caller rolls `out` back to its length before
 * the call, so a bad message contributes nothing.
 */
export type MessageDecoder = (bytes: Uint8Array, out: SpanBatch, stats: DecodeStats) => void;
