/**
 * Encoders: SpanBatch rows -> the wire formats tracefold reads (docs/FORMATS.md), for the replay
 * producer, the decode tests and the benchmarks. The inverse of operators/decode/*.ts.
 *
 * - otlp_proto: a hand-written protobuf writer (no protobufjs): one `ExportTraceServiceRequest`,
 *   ResourceSpans grouped by service (resource attribute service.name), one ScopeSpans each, and
 *   per Span: trace_id(1) span_id(2) parent_span_id(4, only with F_HAS_PARENT) name(5) kind(6)
 *   start(7, fixed64 ns) end(8, fixed64 ns) attributes(9) links(13, F_HAS_LINK) status(15, code 2
 *   with F_ERROR) and flags(16, fixed32) as newer SDKs send, so decoders meet every wire type.
 * - otlp_json, zipkin_json, jaeger_json, span_log: the JSON shapes the decoders document.
 *
 * What a format cannot carry is lost on the way, as it would be in production: Zipkin has no span
 * links and no INTERNAL kind (a kind-less span reads back UNSPECIFIED); OTLP and Jaeger have no
 * shared spans; Jaeger keeps a link only when it points into another trace (a reference into the
 * span's own trace is a parent). Zipkin and Jaeger carry whole microseconds (Zipkin reads a zero
 * duration as absent, so a present duration is written as at least 1 us, as Zipkin's reporters do).
 *
 * Attribute keys written (one per column, older generation where the fold reads both):
 * peer.service, server.address, db.system, db.name, messaging.destination.name, http.route.
 *
 * Not a hot path: the encoders build strings and objects freely; only the protobuf writer is tuned,
 * because the benchmarks and the replay producer pre-encode millions of spans with it.
 */
import { encodeExchangeRows } from "../../pipeline/exchange.js";
import type { Interner } from "../../pipeline/intern.js";
import {
  F_ERROR,
  F_HAS_LINK,
  F_HAS_PARENT,
  F_NO_DURATION,
  F_NO_START,
  F_SHARED,
  KIND_CLIENT,
  KIND_CONSUMER,
  KIND_PRODUCER,
  KIND_SERVER,
  spanIdHex,
  traceIdHex,
  type SpanBatch,
} from "../../pipeline/span-batch.js";
import type { FormatName } from "../../operators/decode/types.js";

/** Rows to encode: a half-open range, or explicit row indexes (in the order given). */
export type RowSelection = { start: number; end: number } | readonly number[];

/** How spans are cut into messages (DESIGN 2). */
export type MessageShape = "batch" | "trace" | "span";

/** Instrumentation scope name written in ScopeSpans / Jaeger's otel.scope.name. */
export const SCOPE_NAME = "tracefold.replay";

/**
 * Span.flags as the SDKs since OTLP 1.1 send it: W3C trace flags (sampled = 0x01) plus
 * SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE (0x100) and, for a parent in another process, IS_REMOTE (0x200).
 */
const SPAN_FLAGS_LOCAL = 0x101;
const SPAN_FLAGS_REMOTE_PARENT = 0x301;

/** The span attributes the fold reads: one key per SpanBatch column, in the order written. */
const SPAN_ATTRIBUTES = [
  ["peer.service", "peer"],
  ["server.address", "addr"],
  ["db.system", "dbSystem"],
  ["db.name", "dbNamespace"],
  ["messaging.destination.name", "msgDest"],
  ["http.route", "route"],
] as const;
const ATTR_PEER = SPAN_ATTRIBUTES[0][0];

const utf8 = new TextEncoder();

function rowList(batch: SpanBatch, rows?: RowSelection): readonly number[] {
  if (rows === undefined) rows = { start: 0, end: batch.length };
  if (!("start" in rows)) return rows as readonly number[];
  const out: number[] = [];
  for (let i = rows.start; i < rows.end; i++) out.push(i);
  return out;
}

/** Rows grouped by `key`, groups in order of first appearance, rows in the order given. */
function groupBy<K>(rows: readonly number[], key: (i: number) => K): number[][] {
  const groups = new Map<K, number[]>();
  for (const i of rows) {
    const k = key(i);
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [i]);
    else g.push(i);
  }
  return [...groups.values()];
}

const byService = (batch: SpanBatch, rows: readonly number[]) => groupBy(rows, (i) => batch.service[i]);
const byTrace = (batch: SpanBatch, rows: readonly number[]) => groupBy(rows, (i) => traceIdHex(batch.tid, i * 4));

// ------------------------------------------------------------------------------------- times

/**
 * A time as whole microseconds `us` and leftover nanoseconds `ns` (0..999), exact for every
 * double-microsecond timestamp (a nanosecond count above 2^53 does not fit a double; this does).
 */
interface Nanos {
  us: number;
  ns: number;
}

function startNanos(batch: SpanBatch, i: number): Nanos {
  const v = batch.startUs[i];
  let us = Math.floor(v);
  let ns = Math.round((v - us) * 1000);
  if (ns >= 1000) {
    us++;
    ns -= 1000;
  }
  return { us, ns };
}

function endNanos(start: Nanos, durUs: number): Nanos {
  const d = Math.round(durUs * 1000);
  const f = start.ns + (d % 1000);
  return { us: start.us + Math.floor(d / 1000) + Math.floor(f / 1000), ns: f % 1000 };
}

/** Decimal nanoseconds since the epoch (OTLP/JSON's 64-bit integer as a string). */
function nanosDecimal(t: Nanos): string {
  return t.us === 0 ? String(t.ns) : `${t.us}${String(t.ns).padStart(3, "0")}`;
}

// ---------------------------------------------------------------------------- protobuf writer

const TWO32 = 4294967296;

/**
 * A growable protobuf writer. Nested messages are written in place: `fork` reserves one length
 * byte, `join` writes the length and, when it needs more than one byte, shifts the body right
 * (once per nested message, not per field), so lengths stay canonical (minimal varints).
 */
class ProtoWriter {
  buf = new Uint8Array(1 << 16);
  pos = 0;

  reset(): void {
    this.pos = 0;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }

  varint(v: number): void {
    this.ensure(10);
    const b = this.buf;
    while (v >= 0x80) {
      b[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    b[this.pos++] = v;
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  fixed32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    b[p] = v & 0xff;
    b[p + 1] = (v >>> 8) & 0xff;
    b[p + 2] = (v >>> 16) & 0xff;
    b[p + 3] = (v >>> 24) & 0xff;
    this.pos = p + 4;
  }

  /** fixed64 nanoseconds since the epoch of `t`, exact: ns = hi * 2^32 + lo. */
  fixed64Nanos(t: Nanos): void {
    const a = Math.floor(t.us / TWO32);
    const low = (t.us - a * TWO32) * 1000 + t.ns; // < 2^42: exact
    const carry = Math.floor(low / TWO32);
    this.fixed32(low - carry * TWO32);
    this.fixed32(a * 1000 + carry);
  }

  /** A length-delimited field holding `n` big-endian uint32 words (an id) from words[at..]. */
  idField(field: number, words: Uint32Array, at: number, n: number): void {
    this.tag(field, 2);
    this.varint(n * 4);
    this.ensure(n * 4);
    const b = this.buf;
    let p = this.pos;
    for (let k = 0; k < n; k++) {
      const w = words[at + k];
      b[p] = w >>> 24;
      b[p + 1] = (w >>> 16) & 0xff;
      b[p + 2] = (w >>> 8) & 0xff;
      b[p + 3] = w & 0xff;
      p += 4;
    }
    this.pos = p;
  }

  bytesField(field: number, bytes: Uint8Array): void {
    this.tag(field, 2);
    this.varint(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Starts a nested message in `field`; returns the body start for `join`. */
  fork(field: number): number {
    this.tag(field, 2);
    this.ensure(1);
    this.pos++;
    return this.pos;
  }

  join(bodyStart: number): void {
    const len = this.pos - bodyStart;
    let extra = 0;
    for (let v = len; v >= 0x80; v = Math.floor(v / 128)) extra++;
    if (extra > 0) {
      this.ensure(extra);
      this.buf.copyWithin(bodyStart + extra, bodyStart, this.pos);
      this.pos += extra;
    }
    const end = this.pos;
    this.pos = bodyStart - 1;
    this.varint(len);
    this.pos = end;
  }
}

// UTF-8 bytes of interned names, cached per interner (ids never change for an interner)
const nameBytes = new WeakMap<Interner, Uint8Array[]>();
const utf8Cache = new Map<string, Uint8Array>();

function nameUtf8(interner: Interner, id: number): Uint8Array {
  let cache = nameBytes.get(interner);
  if (cache === undefined) {
    cache = [];
    nameBytes.set(interner, cache);
  }
  let b = cache[id];
  if (b === undefined) {
    b = utf8.encode(interner.name(id));
    cache[id] = b;
  }
  return b;
}

function constUtf8(s: string): Uint8Array {
  let b = utf8Cache.get(s);
  if (b === undefined) {
    b = utf8.encode(s);
    utf8Cache.set(s, b);
  }
  return b;
}

/** KeyValue { key = 1; AnyValue value = 2 { string_value = 1 } } in `field`. */
function writeStringKeyValue(w: ProtoWriter, field: number, key: Uint8Array, value: Uint8Array): void {
  const kv = w.fork(field);
  w.bytesField(1, key);
  const av = w.fork(2);
  w.bytesField(1, value);
  w.join(av);
  w.join(kv);
}

function writeSpan(w: ProtoWriter, batch: SpanBatch, i: number): void {
  const interner = batch.interner;
  const flags = batch.flags[i];
  const kind = batch.kind[i];
  const sp = w.fork(2); // ScopeSpans.spans
  w.idField(1, batch.tid, i * 4, 4);
  w.idField(2, batch.sid, i * 2, 2);
  if ((flags & F_HAS_PARENT) !== 0) w.idField(4, batch.pid, i * 2, 2);
  if (batch.name[i] !== 0) w.bytesField(5, nameUtf8(interner, batch.name[i]));
  if (kind !== 0) {
    w.tag(6, 0);
    w.varint(kind);
  }
  if ((flags & F_NO_START) === 0) {
    const start = startNanos(batch, i);
    w.tag(7, 1);
    w.fixed64Nanos(start);
    if ((flags & F_NO_DURATION) === 0) {
      w.tag(8, 1);
      w.fixed64Nanos(endNanos(start, batch.durUs[i]));
    }
  }
  for (const [key, col] of SPAN_ATTRIBUTES) {
    const id = batch[col][i];
    if (id !== 0) writeStringKeyValue(w, 9, constUtf8(key), nameUtf8(interner, id));
  }
  if ((flags & F_HAS_LINK) !== 0) {
    const ln = w.fork(13);
    w.idField(1, batch.lnkTid, i * 4, 4);
    w.idField(2, batch.lnkSid, i * 2, 2);
    w.tag(6, 5); // Link.flags
    w.fixed32(SPAN_FLAGS_LOCAL);
    w.join(ln);
  }
  if ((flags & F_ERROR) !== 0) {
    const st = w.fork(15);
    w.tag(3, 0); // Status.code = STATUS_CODE_ERROR
    w.varint(2);
    w.join(st);
  }
  w.tag(16, 5);
  w.fixed32((flags & F_HAS_PARENT) !== 0 && (kind === KIND_SERVER || kind === KIND_CONSUMER) ? SPAN_FLAGS_REMOTE_PARENT : SPAN_FLAGS_LOCAL);
  w.join(sp);
}

const writer = new ProtoWriter();

/** The rows as one OTLP `ExportTraceServiceRequest` (protobuf). */
export function encodeOtlp(batch: SpanBatch, rows?: RowSelection): Uint8Array {
  const w = writer;
  w.reset();
  const serviceName = constUtf8("service.name");
  const scopeName = constUtf8(SCOPE_NAME);
  for (const g of byService(batch, rowList(batch, rows))) {
    const rs = w.fork(1); // ExportTraceServiceRequest.resource_spans
    const res = w.fork(1); // ResourceSpans.resource
    writeStringKeyValue(w, 1, serviceName, nameUtf8(batch.interner, batch.service[g[0]]));
    w.join(res);
    const ss = w.fork(2); // ResourceSpans.scope_spans
    const scope = w.fork(1); // ScopeSpans.scope
    w.bytesField(1, scopeName);
    w.join(scope);
    for (const i of g) writeSpan(w, batch, i);
    w.join(ss);
    w.join(rs);
  }
  return w.finish();
}

// ---------------------------------------------------------------------------------- JSON formats

/** Kind names (span_log, Jaeger's span.kind), indexed by the OTLP wire number; 0 has no name. */
const KIND_NAMES = ["", "internal", "server", "client", "producer", "consumer"];

function attributes(batch: SpanBatch, i: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, col] of SPAN_ATTRIBUTES) if (batch[col][i] !== 0) out.push([key, batch.interner.name(batch[col][i])]);
  return out;
}

function json(v: unknown): Uint8Array {
  return utf8.encode(JSON.stringify(v));
}

function otlpJsonSpan(batch: SpanBatch, i: number): Record<string, unknown> {
  const f = batch.flags[i];
  const kind = batch.kind[i];
  const sp: Record<string, unknown> = { traceId: traceIdHex(batch.tid, i * 4), spanId: spanIdHex(batch.sid, i * 2) };
  if ((f & F_HAS_PARENT) !== 0) sp.parentSpanId = spanIdHex(batch.pid, i * 2);
  sp.flags = (f & F_HAS_PARENT) !== 0 && (kind === KIND_SERVER || kind === KIND_CONSUMER) ? SPAN_FLAGS_REMOTE_PARENT : SPAN_FLAGS_LOCAL;
  sp.name = batch.interner.name(batch.name[i]);
  sp.kind = kind;
  if ((f & F_NO_START) === 0) {
    const start = startNanos(batch, i);
    sp.startTimeUnixNano = nanosDecimal(start);
    if ((f & F_NO_DURATION) === 0) sp.endTimeUnixNano = nanosDecimal(endNanos(start, batch.durUs[i]));
  }
  sp.attributes = attributes(batch, i).map(([key, v]) => ({ key, value: { stringValue: v } }));
  if ((f & F_HAS_LINK) !== 0) sp.links = [{ traceId: traceIdHex(batch.lnkTid, i * 4), spanId: spanIdHex(batch.lnkSid, i * 2), flags: SPAN_FLAGS_LOCAL }];
  sp.status = (f & F_ERROR) !== 0 ? { code: 2 } : {};
  return sp;
}

/** The rows as one OTLP/JSON `ExportTraceServiceRequest`. */
export function encodeOtlpJson(batch: SpanBatch, rows?: RowSelection): Uint8Array {
  const resourceSpans = byService(batch, rowList(batch, rows)).map((g) => ({
    resource: { attributes: [{ key: "service.name", value: { stringValue: batch.interner.name(batch.service[g[0]]) } }] },
    scopeSpans: [{ scope: { name: SCOPE_NAME }, spans: g.map((i) => otlpJsonSpan(batch, i)) }],
  }));
  return json({ resourceSpans });
}

function zipkinSpan(batch: SpanBatch, i: number): Record<string, unknown> {
  const f = batch.flags[i];
  const kind = batch.kind[i];
  const n = (id: number) => batch.interner.name(id);
  const sp: Record<string, unknown> = { traceId: traceIdHex(batch.tid, i * 4) };
  if ((f & F_HAS_PARENT) !== 0) sp.parentId = spanIdHex(batch.pid, i * 2);
  sp.id = spanIdHex(batch.sid, i * 2);
  if (kind >= KIND_SERVER && kind <= KIND_CONSUMER) sp.kind = KIND_NAMES[kind].toUpperCase();
  if (batch.name[i] !== 0) sp.name = n(batch.name[i]);
  if ((f & F_NO_START) === 0) sp.timestamp = Math.round(batch.startUs[i]);
  if ((f & F_NO_DURATION) === 0) sp.duration = Math.max(1, Math.round(batch.durUs[i]));
  sp.localEndpoint = { serviceName: n(batch.service[i]) };
  // the remote service plays the part of peer.service (only for spans that call out: a kind-less
  // span with a remote endpoint would read back as a CLIENT)
  const calls = kind === KIND_CLIENT || kind === KIND_PRODUCER;
  if (calls && batch.peer[i] !== 0) sp.remoteEndpoint = { serviceName: n(batch.peer[i]) };
  const tags: Record<string, string> = {};
  for (const [k, v] of attributes(batch, i)) if (k !== ATTR_PEER || !calls) tags[k] = v;
  if ((f & F_ERROR) !== 0) tags.error = "true";
  sp.tags = tags;
  if ((f & F_SHARED) !== 0) sp.shared = true;
  return sp;
}

/** The rows as a Zipkin v2 JSON array (what `/api/v2/spans` and Zipkin's Kafka reporters carry). */
export function encodeZipkinJson(batch: SpanBatch, rows?: RowSelection): Uint8Array {
  return json(rowList(batch, rows).map((i) => zipkinSpan(batch, i)));
}

function idBase64(words: Uint32Array, at: number, n: number): string {
  const bytes = Buffer.alloc(n * 4);
  for (let k = 0; k < n; k++) bytes.writeUInt32BE(words[at + k], k * 4);
  return bytes.toString("base64");
}

/** RFC 3339 with microseconds, as jsonpb writes a Timestamp ("2017-01-26T16:46:31.639975Z"). */
function rfc3339(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString(); // yyyy-mm-ddThh:mm:ss.mmmZ
  return `${iso.slice(0, 19)}.${String(us - Math.floor(us / 1e6) * 1e6).padStart(6, "0")}Z`;
}

/** A protobuf-JSON Duration ("0.001234s"), 0, 3, 6 or 9 fraction digits as jsonpb writes them. */
function pbDuration(durUs: number): string {
  const ns = Math.round(durUs * 1000);
  const sec = Math.floor(ns / 1e9);
  const frac = ns - sec * 1e9;
  if (frac === 0) return `${sec}s`;
  let f = String(frac).padStart(9, "0");
  if (f.endsWith("000000")) f = f.slice(0, 3);
  else if (f.endsWith("000")) f = f.slice(0, 6);
  return `${sec}.${f}s`;
}

/**
 * One Jaeger span. `api`: the query API's shape (hex ids, us numbers, typed tags, processID);
 * otherwise model.Span through jsonpb, as the collector writes it to Kafka (base64 ids, RFC 3339
 * start, Duration string, vType/vStr tags, the process inline).
 */
function jaegerSpan(batch: SpanBatch, i: number, api: boolean, processID: string): Record<string, unknown> {
  const f = batch.flags[i];
  const kind = batch.kind[i];
  const n = (id: number) => batch.interner.name(id);
  const hexT = (w: Uint32Array, at: number) => (api ? traceIdHex(w, at) : idBase64(w, at, 4));
  const hexS = (w: Uint32Array, at: number) => (api ? spanIdHex(w, at) : idBase64(w, at, 2));
  const refs: Array<Record<string, unknown>> = [];
  if ((f & F_HAS_PARENT) !== 0) {
    const r: Record<string, unknown> = {};
    if (api) r.refType = "CHILD_OF"; // jsonpb omits the default (CHILD_OF = 0)
    r[api ? "traceID" : "traceId"] = hexT(batch.tid, i * 4);
    r[api ? "spanID" : "spanId"] = hexS(batch.pid, i * 2);
    refs.push(r);
  }
  if ((f & F_HAS_LINK) !== 0) {
    refs.push({ refType: "FOLLOWS_FROM", [api ? "traceID" : "traceId"]: hexT(batch.lnkTid, i * 4), [api ? "spanID" : "spanId"]: hexS(batch.lnkSid, i * 2) });
  }
  const tags: Array<Record<string, unknown>> = [];
  const str = (key: string, v: string) => tags.push(api ? { key, type: "string", value: v } : { key, vStr: v });
  if (kind !== 0) str("span.kind", KIND_NAMES[kind]);
  for (const [k, v] of attributes(batch, i)) str(k, v);
  if ((f & F_ERROR) !== 0) tags.push(api ? { key: "error", type: "bool", value: true } : { key: "error", vType: "BOOL", vBool: true });
  str("otel.scope.name", SCOPE_NAME);
  const sp: Record<string, unknown> = api
    ? { traceID: hexT(batch.tid, i * 4), spanID: hexS(batch.sid, i * 2), operationName: n(batch.name[i]), references: refs }
    : { traceId: hexT(batch.tid, i * 4), spanId: hexS(batch.sid, i * 2), operationName: n(batch.name[i]), references: refs };
  sp.flags = 1;
  if ((f & F_NO_START) === 0) sp.startTime = api ? Math.round(batch.startUs[i]) : rfc3339(Math.round(batch.startUs[i]));
  if ((f & F_NO_DURATION) === 0) sp.duration = api ? Math.round(batch.durUs[i]) : pbDuration(batch.durUs[i]);
  sp.tags = tags;
  sp.logs = [];
  if (api) sp.processID = processID;
  else sp.process = { serviceName: n(batch.service[i]), tags: [] };
  return sp;
}

export interface JaegerJsonOptions {
  /**
   * "api" (default): the query API / UI document {"data":[trace, ...]}, one entry per trace with
   * its processes map. "jsonpb": model.Span as the collector's Kafka `json` encoding writes it;
   * one row gives one span object, several rows an array of them.
   */
  style?: "api" | "jsonpb";
}

/** The rows as Jaeger JSON (see JaegerJsonOptions for the two shapes). */
export function encodeJaegerJson(batch: SpanBatch, rows?: RowSelection, options: JaegerJsonOptions = {}): Uint8Array {
  const list = rowList(batch, rows);
  if (options.style === "jsonpb") {
    const spans = list.map((i) => jaegerSpan(batch, i, false, ""));
    return json(spans.length === 1 ? spans[0] : spans);
  }
  const data: Array<Record<string, unknown>> = [];
  for (const trace of byTrace(batch, list)) {
    const processes: Record<string, unknown> = {};
    const pidOf = new Map<number, string>();
    const spans = trace.map((i) => {
      const svc = batch.service[i];
      let pid = pidOf.get(svc);
      if (pid === undefined) {
        pid = `p${pidOf.size + 1}`;
        pidOf.set(svc, pid);
        processes[pid] = { serviceName: batch.interner.name(svc), tags: [] };
      }
      return jaegerSpan(batch, i, true, pid);
    });
    data.push({ traceID: traceIdHex(batch.tid, trace[0] * 4), spans, processes, warnings: null });
  }
  return json({ data });
}

function spanLogRecord(batch: SpanBatch, i: number): Record<string, unknown> {
  const f = batch.flags[i];
  const kind = batch.kind[i];
  const n = (id: number) => batch.interner.name(id);
  const r: Record<string, unknown> = { traceId: traceIdHex(batch.tid, i * 4), spanId: spanIdHex(batch.sid, i * 2) };
  if ((f & F_HAS_PARENT) !== 0) r.parentSpanId = spanIdHex(batch.pid, i * 2);
  r.service = n(batch.service[i]);
  if (batch.name[i] !== 0) r.name = n(batch.name[i]);
  if (kind !== 0) r.kind = KIND_NAMES[kind];
  if ((f & F_NO_START) === 0) r.startUs = batch.startUs[i];
  if ((f & F_NO_DURATION) === 0) r.durationUs = batch.durUs[i];
  if ((f & F_ERROR) !== 0) r.error = true;
  if ((f & F_SHARED) !== 0) r.shared = true;
  const attrs = attributes(batch, i);
  if (attrs.length > 0) r.attributes = Object.fromEntries(attrs);
  if ((f & F_HAS_LINK) !== 0) r.links = [{ traceId: traceIdHex(batch.lnkTid, i * 4), spanId: spanIdHex(batch.lnkSid, i * 2) }];
  return r;
}

/**
 * The rows as span_log: newline-delimited JSON, one record per line, each line ending in "\n"
 * (a file; a shipper sends each line as its own message, see messagesFromBatch).
 */
export function encodeSpanLog(batch: SpanBatch, rows?: RowSelection): Uint8Array {
  let s = "";
  for (const i of rowList(batch, rows)) s += JSON.stringify(spanLogRecord(batch, i)) + "\n";
  return utf8.encode(s);
}

// ------------------------------------------------------------------------------------- shapes

/** The encoder of a format, for one message of the given rows. */
export function encoderFor(format: FormatName): (batch: SpanBatch, rows: readonly number[]) => Uint8Array {
  switch (format) {
    case "otlp_proto":
      return encodeOtlp;
    case "otlp_json":
      return encodeOtlpJson;
    case "zipkin_json":
      return encodeZipkinJson;
    case "jaeger_json":
      // a span per message is how Jaeger's collector writes Kafka (jsonpb); documents group traces
      return (b, rows) => encodeJaegerJson(b, rows, rows.length === 1 ? { style: "jsonpb" } : {});
    case "span_log":
      return (b, rows) => encodeSpanLog(b, rows).subarray(0, -1); // one line, no newline
    case "tracefold_exchange":
      return (b, rows) => new Uint8Array(encodeExchangeRows(b, rows));
  }
}

/**
 * Cuts a batch's rows into messages the way producers do (DESIGN 2) and encodes each:
 * - "batch": an SDK/Collector export of ~`spansPerBatch` consecutive rows (grouped by service inside);
 * - "trace": one trace per message (the Collector's Kafka exporter partitioning by trace id);
 * - "span": one span per message (Jaeger's Kafka encodings).
 * span_log is one record per message whatever the shape (a shipper forwards one line per message).
 */
export function messagesFromBatch(
  batch: SpanBatch,
  shape: MessageShape,
  spansPerBatch = 200,
  format: FormatName = "otlp_proto",
): Uint8Array[] {
  const encode = encoderFor(format);
  const all = rowList(batch);
  const out: Uint8Array[] = [];
  if (shape === "span" || format === "span_log") {
    for (const i of all) out.push(encode(batch, [i]));
  } else if (shape === "trace") {
    for (const rows of byTrace(batch, all)) out.push(encode(batch, rows));
  } else {
    const n = Math.max(1, Math.floor(spansPerBatch));
    for (let s = 0; s < all.length; s += n) out.push(encode(batch, all.slice(s, s + n)));
  }
  return out;
}
