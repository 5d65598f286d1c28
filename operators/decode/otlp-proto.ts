/**
 * otlp_proto: a lazy decoder for one ExportTraceServiceRequest (the body an OTLP/HTTP exporter
 * sends, or one Kafka record from the Collector's kafka exporter).
 *
 * It reads only what the fold needs and skips every other field in place, whatever its wire type
 * (newer SDKs add Span.flags, field 16, fixed32). No object and no string is built per span: ids are
 * copied into uint32 words, names and attribute values are interned from their UTF-8 bytes, the
 * cursor is a module-level integer. A malformed message throws DecodeError with the byte offset.
 *
 *   ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
 *   ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2;
 *                   repeated ScopeSpans instrumentation_library_spans = 1000 (old) }
 *   Resource      { repeated KeyValue attributes = 1; }
 *   ScopeSpans    { InstrumentationScope scope = 1; repeated Span spans = 2; }
 *   Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5;
 *          SpanKind kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
 *          repeated KeyValue attributes = 9; repeated Link links = 13; Status status = 15; }
 *   Link   { bytes trace_id = 1; bytes span_id = 2; }
 *   Status { StatusCode code = 3; }          KeyValue { string key = 1; AnyValue value = 2; }
 *   AnyValue { string string_value = 1; bool bool_value = 2; ... }
 */
import { DecodeError } from "../../pipeline/errors.js";
import { F_ERROR, F_HAS_LINK, F_HAS_PARENT, F_NO_DURATION, F_NO_START, type SpanBatch } from "../../pipeline/span-batch.js";
import { ATTRIBUTE_KEYS, A_NONE, A_SERVICE_NAME, setSpanAttribute } from "./attributes.js";
import type { DecodeStats, MessageDecoder } from "./types.js";

const FORMAT = "otlp_proto";

// Attribute keys indexed by byte length, compared byte by byte (no string is made for a key).
const KEYS_BY_LEN: Array<Array<{ bytes: Uint8Array; code: number }> | undefined> = [];
for (const [key, code] of ATTRIBUTE_KEYS) {
  const bytes = new TextEncoder().encode(key);
  (KEYS_BY_LEN[bytes.length] ??= []).push({ bytes, code });
}

let buf: Uint8Array = new Uint8Array(0);
let p = 0;

function fail(at: number, reason: string): never {
  throw new DecodeError(FORMAT, at, reason);
}

function varint(): number {
  // Returns the low 32 bits as an unsigned number (enough for tags, lengths, kinds, codes).
  const start = p;
  let result = 0;
  let shift = 0;
  for (;;) {
    if (p >= buf.length) fail(start, "truncated varint");
    const b = buf[p++];
    if (shift < 28) result |= (b & 0x7f) << shift;
    else if (shift === 28) result |= (b & 0x0f) << 28;
    if ((b & 0x80) === 0) break;
    shift += 7;
    if (shift > 63) fail(start, "varint longer than 10 bytes");
  }
  return result >>> 0;
}

/** Reads a length prefix and returns the end offset of the field, checked against `limit`. */
function lenEnd(limit: number): number {
  const at = p;
  const len = varint();
  const end = p + len;
  if (end > limit) fail(at, `length ${len} runs past the end of its enclosing message (${limit - p} bytes left)`);
  return end;
}

function skip(wireType: number, limit: number, tagAt: number): void {
  switch (wireType) {
    case 0:
      varint();
      return;
    case 1:
      p += 8;
      break;
    case 2:
      p = lenEnd(limit);
      return;
    case 5:
      p += 4;
      break;
    default:
      fail(tagAt, `unsupported wire type ${wireType}`);
  }
  if (p > limit) fail(tagAt, "fixed-width field runs past the end of its message");
}

/** Little-endian 32-bit word as an int32 (callers add `>>> 0` in arithmetic): an int32 return
 * stays unboxed even when V8 does not inline this. */
function u32le(at: number): number {
  return buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16) | (buf[at + 3] << 24);
}

/** Big-endian 32-bit word at `at` (ids are big-endian byte strings). */
function u32be(at: number): number {
  return ((buf[at] << 24) | (buf[at + 1] << 16) | (buf[at + 2] << 8) | buf[at + 3]) >>> 0;
}

/** Copies an n-word id from buf[at..] into words[w..]; false when it is all zero. */
function readId(at: number, words: Uint32Array, w: number, n: number): boolean {
  let any = 0;
  for (let k = 0; k < n; k++) {
    const v = u32be(at + 4 * k);
    words[w + k] = v;
    any |= v;
  }
  return any !== 0;
}

function keyCode(start: number, end: number): number {
  const cands = KEYS_BY_LEN[end - start];
  if (cands === undefined) return A_NONE;
  for (let c = 0; c < cands.length; c++) {
    const kb = cands[c].bytes;
    let k = 0;
    while (k < kb.length && kb[k] === buf[start + k]) k++;
    if (k === kb.length) return cands[c].code;
  }
  return A_NONE;
}

// KeyValue result registers (module-level so a KeyValue costs no allocation).
let kvCode = 0;
let kvStrStart = -1;
let kvStrEnd = -1;

/** Parses a KeyValue in [p, end); sets kvCode and the string value's byte range (or -1). */
function keyValue(end: number): void {
  kvCode = A_NONE;
  kvStrStart = kvStrEnd = -1;
  let valStart = -1;
  let valEnd = -1;
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) {
      const e = lenEnd(end);
      kvCode = keyCode(p, e);
      p = e;
    } else if (field === 2 && wt === 2) {
      const e = lenEnd(end);
      valStart = p;
      valEnd = e;
      p = e;
    } else skip(wt, end, tagAt);
  }
  if (kvCode === A_NONE || valStart < 0) return;
  // AnyValue: only string_value (1) matters to the fold.
  const save = p;
  p = valStart;
  while (p < valEnd) {
    const tagAt = p;
    const tag = varint();
    if (tag === ((1 << 3) | 2)) {
      const e = lenEnd(valEnd);
      kvStrStart = p;
      kvStrEnd = e;
      p = e;
    } else skip(tag & 7, valEnd, tagAt);
  }
  p = save;
}

function resource(end: number, out: SpanBatch): number {
  let service = 0;
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    if (tag === ((1 << 3) | 2)) {
      const e = lenEnd(end);
      keyValue(e);
      if (kvCode === A_SERVICE_NAME && kvStrEnd > kvStrStart) service = out.interner.internBytes(buf, kvStrStart, kvStrEnd);
      p = e;
    } else skip(tag & 7, end, tagAt);
  }
  return service;
}

function span(end: number, out: SpanBatch, service: number, stats: DecodeStats): void {
  const i = out.append();
  let flags = 0;
  let tidOk = false;
  let sidOk = false;
  let startLo = 0;
  let startHi = 0;
  let endLo = 0;
  let endHi = 0;
  let haveLink = false;
  let badParent = false;
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    switch (field) {
      case 1:
      case 2:
      case 4: {
        if (wt !== 2) fail(tagAt, `span field ${field} has wire type ${wt}, expected bytes`);
        const e = lenEnd(end);
        const len = e - p;
        if (field === 1) tidOk = len === 16 && readId(p, out.tid, i * 4, 4);
        else if (field === 2) sidOk = len === 8 && readId(p, out.sid, i * 2, 2);
        else if (len === 8) {
          if (readId(p, out.pid, i * 2, 2)) flags |= F_HAS_PARENT;
        } else if (len !== 0) badParent = true; // present but not a span id: counted and skipped
        p = e;
        break;
      }
      case 5: {
        if (wt !== 2) fail(tagAt, `span name has wire type ${wt}`);
        const e = lenEnd(end);
        out.name[i] = out.interner.internBytes(buf, p, e);
        p = e;
        break;
      }
      case 6:
        if (wt !== 0) fail(tagAt, `span kind has wire type ${wt}`);
        {
          const k = varint();
          out.kind[i] = k <= 5 ? k : 0; // unknown kinds read as UNSPECIFIED
        }
        break;
      case 7:
      case 8:
        if (wt !== 1) fail(tagAt, `span time field ${field} has wire type ${wt}, expected fixed64`);
        if (p + 8 > end) fail(tagAt, "fixed64 runs past the end of the span");
        if (field === 7) {
          startLo = u32le(p);
          startHi = u32le(p + 4);
        } else {
          endLo = u32le(p);
          endHi = u32le(p + 4);
        }
        p += 8;
        break;
      case 9: {
        if (wt !== 2) fail(tagAt, `span attribute has wire type ${wt}`);
        const e = lenEnd(end);
        keyValue(e);
        // an empty value is absent: it must not wipe its twin's value (order independence)
        if (kvStrEnd > kvStrStart) setSpanAttribute(out, i, kvCode, out.interner.internBytes(buf, kvStrStart, kvStrEnd));
        p = e;
        break;
      }
      case 13: {
        if (wt !== 2) fail(tagAt, `span link has wire type ${wt}`);
        const e = lenEnd(end);
        if (!haveLink) haveLink = link(e, out, i);
        p = e;
        break;
      }
      case 15: {
        if (wt !== 2) fail(tagAt, `span status has wire type ${wt}`);
        const e = lenEnd(end);
        while (p < e) {
          const sAt = p;
          const st = varint();
          if (st === ((3 << 3) | 0)) {
            if (varint() === 2) flags |= F_ERROR;
          } else skip(st & 7, e, sAt);
        }
        break;
      }
      default:
        skip(wt, end, tagAt);
    }
  }
  if (haveLink) flags |= F_HAS_LINK;
  if (!tidOk || !sidOk || badParent) {
    stats.spansWithInvalidId++;
    out.truncate(i);
    return;
  }
  if (service === 0) {
    stats.spansWithoutService++;
    out.truncate(i);
    return;
  }
  out.service[i] = service;
  // ns = hi * 2^32 + lo, and 2^32 = 4294967 * 1000 + 296: whole microseconds stay exact. The
  // remainders use floor arithmetic, not `%` on doubles (a C call in V8).
  const sRest = (startHi >>> 0) * 296 + (startLo >>> 0);
  const sQ = Math.floor(sRest / 1000);
  const sUs = (startHi >>> 0) * 4294967 + sQ;
  if (startHi === 0 && startLo === 0) flags |= F_NO_START | F_NO_DURATION; // as otlp_json: no start, no duration
  else out.startUs[i] = sUs;
  if (endHi === 0 && endLo === 0) flags |= F_NO_DURATION;
  else if ((flags & F_NO_START) === 0) {
    const eRest = (endHi >>> 0) * 296 + (endLo >>> 0);
    const eQ = Math.floor(eRest / 1000);
    const eUs = (endHi >>> 0) * 4294967 + eQ;
    const d = eUs - sUs + (eRest - eQ * 1000 - (sRest - sQ * 1000)) / 1000;
    if (d >= 0) out.durUs[i] = d;
    else flags |= F_NO_DURATION; // end before start: the duration is unknown, never negative
  }
  out.flags[i] = flags;
  stats.spans++;
}

function link(end: number, out: SpanBatch, i: number): boolean {
  let tidOk = false;
  let sidOk = false;
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    if (tag === ((1 << 3) | 2) || tag === ((2 << 3) | 2)) {
      const e = lenEnd(end);
      if (tag >>> 3 === 1) tidOk = e - p === 16 && readId(p, out.lnkTid, i * 4, 4);
      else sidOk = e - p === 8 && readId(p, out.lnkSid, i * 2, 2);
      p = e;
    } else skip(tag & 7, end, tagAt);
  }
  return tidOk && sidOk;
}

function scopeSpans(end: number, out: SpanBatch, service: number, stats: DecodeStats): void {
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    if (tag === ((2 << 3) | 2)) {
      const e = lenEnd(end);
      span(e, out, service, stats);
      p = e;
    } else skip(tag & 7, end, tagAt);
  }
}

function resourceSpans(end: number, out: SpanBatch, stats: DecodeStats): void {
  // Pass 1: the resource (service.name), wherever it sits among the fields.
  const begin = p;
  let service = 0;
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    if (tag === ((1 << 3) | 2)) {
      const e = lenEnd(end);
      service = resource(e, out);
      p = e;
    } else skip(tag & 7, end, tagAt);
  }
  // Pass 2: the spans.
  p = begin;
  while (p < end) {
    const tagAt = p;
    const tag = varint();
    if (tag === ((2 << 3) | 2) || tag === ((1000 << 3) | 2)) {
      const e = lenEnd(end);
      scopeSpans(e, out, service, stats);
      p = e;
    } else skip(tag & 7, end, tagAt);
  }
}

export const decodeOtlpProto: MessageDecoder = (bytes, out, stats) => {
  const before = out.length;
  const spansBefore = stats.spans;
  buf = bytes;
  p = 0;
  try {
    const end = bytes.length;
    while (p < end) {
      const tagAt = p;
      const tag = varint();
      if (tag === ((1 << 3) | 2)) {
        const e = lenEnd(end);
        resourceSpans(e, out, stats);
        p = e;
      } else if ((tag & 7) === 3 || (tag & 7) === 4 || tag >>> 3 === 0) {
        fail(tagAt, `invalid tag ${tag} (field ${tag >>> 3}, wire type ${tag & 7})`);
      } else skip(tag & 7, end, tagAt);
    }
    stats.messages++;
  } catch (err) {
    out.truncate(before);
    stats.spans = spansBefore;
    throw err;
  } finally {
    buf = EMPTY;
  }
};

const EMPTY = new Uint8Array(0);
