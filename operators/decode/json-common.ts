/**
 * Helpers shared by the JSON decoders (otlp_json, zipkin_json, jaeger_json, span_log).
 *
 * - parseJsonMessage: UTF-8 bytes -> JSON.parse, turning a SyntaxError into a DecodeError whose
 *   offset is a BYTE offset into the message (V8 reports UTF-16 positions, and only for some errors:
 *   when it gives none, a small byte-level JSON scanner finds the first error).
 * - ids: hex (left-padded by parseHexWords) or base64 of the id bytes, never all-zero.
 * - times: OTLP nanosecond strings split exactly into whole microseconds + leftover nanoseconds,
 *   RFC 3339 timestamps and protobuf-JSON durations ("0.001234s") to microseconds.
 * - kinds and string attributes.
 *
 * Everything here is allocation-free on the success path except what JSON.parse itself builds and
 * Interner.internString's encoding of a name not seen before (see internOrZero's cache). Scratch
 * state is module-level (decoders are synchronous and single-threaded per isolate).
 */
import { DecodeError } from "../../pipeline/errors.js";
import { OTHER_ID, OTHER_NAME, type Interner } from "../../pipeline/intern.js";
import {
  KIND_CLIENT,
  KIND_CONSUMER,
  KIND_INTERNAL,
  KIND_PRODUCER,
  KIND_SERVER,
  KIND_UNSPECIFIED,
  bytesToWords,
  isZeroId,
  parseHexWords,
  type SpanBatch,
} from "../../pipeline/span-batch.js";
import { A_ERROR, A_NONE, A_SERVICE_NAME, attributeCode, setSpanAttribute } from "./attributes.js";

/** A parsed JSON object (the decoders read fields by name and check every type). */
export type JsonObject = { [key: string]: unknown };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// Parsing

const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

function bomLength(bytes: Uint8Array): number {
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
}

/** True when the message is empty or only JSON whitespace (a blank NDJSON line). */
export function isBlank(bytes: Uint8Array): boolean {
  for (let i = bomLength(bytes); i < bytes.length; i++) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

/**
 * Parses one message. A leading UTF-8 BOM is skipped (offsets still count it). Invalid UTF-8 is
 * replaced by U+FFFD (as JSON readers in Go and the JVM do) rather than rejected.
 * Throws DecodeError(format, byteOffset, reason) for anything JSON.parse rejects.
 */
export function parseJsonMessage(bytes: Uint8Array, format: string): unknown {
  const base = bomLength(bytes);
  const text = utf8.decode(base === 0 ? bytes : bytes.subarray(base));
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DecodeError(format, syntaxErrorOffset(e, text, bytes, base), `invalid JSON: ${errorMessage(e)}`);
  }
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const POSITION_RE = /at position (\d+)/;

/**
 * Byte offset of a JSON.parse failure. V8 says "... in JSON at position N" (N counts UTF-16 code
 * units of the decoded text) for most errors, but "Unexpected token 'x', ... is not valid JSON" and
 * "Unexpected end of JSON input" carry no position: then the byte scanner locates the error.
 */
function syntaxErrorOffset(e: unknown, text: string, bytes: Uint8Array, base: number): number {
  if (e instanceof SyntaxError) {
    const m = POSITION_RE.exec(e.message);
    if (m !== null) {
      const n = Number(m[1]);
      if (n >= 0 && n <= text.length) return base + Buffer.byteLength(text.slice(0, n), "utf8");
    }
  }
  const off = jsonSyntaxErrorOffset(bytes, base);
  return off >= 0 ? off : bytes.length;
}

function skipWs(b: Uint8Array, p: number): number {
  const n = b.length;
  while (p < n) {
    const c = b[p];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    p++;
  }
  return p;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Scans a string starting at its opening quote; returns the index after the closing quote, or ~errorOffset. */
function scanString(b: Uint8Array, p: number): number {
  const n = b.length;
  let i = p + 1;
  for (;;) {
    if (i >= n) return ~n;
    const c = b[i];
    if (c === 0x22) return i + 1;
    if (c < 0x20) return ~i;
    if (c === 0x5c) {
      i++;
      if (i >= n) return ~n;
      const e = b[i];
      if (e === 0x75 /* u */) {
        for (let k = 1; k <= 4; k++) {
          if (i + k >= n) return ~n;
          if (!isHexDigit(b[i + k])) return ~(i + k);
        }
        i += 5;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i++;
      } else {
        return ~i;
      }
    } else {
      i++;
    }
  }
}

/** Scans a number; returns the index after it, or ~errorOffset. */
function scanNumber(b: Uint8Array, p: number): number {
  const n = b.length;
  let i = p;
  if (b[i] === 0x2d) i++;
  if (i >= n) return ~n;
  if (b[i] === 0x30) i++;
  else if (isDigit(b[i])) while (i < n && isDigit(b[i])) i++;
  else return ~i;
  if (i < n && b[i] === 0x2e) {
    i++;
    if (i >= n) return ~n;
    if (!isDigit(b[i])) return ~i;
    while (i < n && isDigit(b[i])) i++;
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= n) return ~n;
    if (!isDigit(b[i])) return ~i;
    while (i < n && isDigit(b[i])) i++;
  }
  return i;
}

const LIT_TRUE = [0x74, 0x72, 0x75, 0x65];
const LIT_FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const LIT_NULL = [0x6e, 0x75, 0x6c, 0x6c];

function scanLiteral(b: Uint8Array, p: number, lit: number[]): number {
  for (let k = 0; k < lit.length; k++) {
    if (p + k >= b.length) return ~b.length;
    if (b[p + k] !== lit[k]) return ~(p + k);
  }
  return p + lit.length;
}

/**
 * Byte offset of the first JSON syntax error in bytes[start..], or -1 when the text is valid JSON
 * (RFC 8259: one value, surrounded by optional whitespace). Used only on the error path.
 * Truncated input reports bytes.length.
 */
export function jsonSyntaxErrorOffset(b: Uint8Array, start = 0): number {
  const n = b.length;
  const stack: number[] = []; // 1 = array, 2 = object
  let p = skipWs(b, start);
  let state = 0; // 0: expect a value, 1: after a value, 2: expect an object key
  for (;;) {
    if (state === 0) {
      if (p >= n) return n;
      const c = b[p];
      let q: number;
      if (c === 0x7b) {
        stack.push(2);
        p = skipWs(b, p + 1);
        if (p < n && b[p] === 0x7d) {
          stack.pop();
          p++;
          state = 1;
        } else state = 2;
        continue;
      }
      if (c === 0x5b) {
        stack.push(1);
        p = skipWs(b, p + 1);
        if (p < n && b[p] === 0x5d) {
          stack.pop();
          p++;
          state = 1;
        }
        continue;
      }
      if (c === 0x22) q = scanString(b, p);
      else if (c === 0x2d || isDigit(c)) q = scanNumber(b, p);
      else if (c === 0x74) q = scanLiteral(b, p, LIT_TRUE);
      else if (c === 0x66) q = scanLiteral(b, p, LIT_FALSE);
      else if (c === 0x6e) q = scanLiteral(b, p, LIT_NULL);
      else return p;
      if (q < 0) return ~q;
      p = q;
      state = 1;
    } else if (state === 1) {
      p = skipWs(b, p);
      if (stack.length === 0) return p < n ? p : -1;
      if (p >= n) return n;
      const top = stack[stack.length - 1];
      const c = b[p];
      if (c === 0x2c) {
        p = skipWs(b, p + 1);
        state = top === 1 ? 0 : 2;
      } else if ((top === 1 && c === 0x5d) || (top === 2 && c === 0x7d)) {
        stack.pop();
        p++;
      } else return p;
    } else {
      if (p >= n) return n;
      if (b[p] !== 0x22) return p;
      const q = scanString(b, p);
      if (q < 0) return ~q;
      p = skipWs(b, q);
      if (p >= n) return n;
      if (b[p] !== 0x3a) return p;
      p = skipWs(b, p + 1);
      state = 0;
    }
  }
}

/** Rolls the batch back to `start` and builds the error to throw (structural problems: offset 0). */
export function malformed(out: SpanBatch, start: number, format: string, offset: number, reason: string): DecodeError {
  out.truncate(start);
  return new DecodeError(format, offset, reason);
}

// ---------------------------------------------------------------------------------------------
// Ids

const idBytes = new Uint8Array(16);

function b64Value(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41; // A-Z
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26; // a-z
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52; // 0-9
  if (c === 0x2b || c === 0x2d) return 62; // + (std) or - (url)
  if (c === 0x2f || c === 0x5f) return 63; // / (std) or _ (url)
  return -1;
}

/**
 * Decodes base64 (standard or URL alphabet, padded or not) of exactly n*4 bytes (a full-size id:
 * 16 bytes -> 24 chars padded / 22 unpadded, 8 bytes -> 12 / 11) into n big-endian words at
 * out[at..]. False when not base64 of that size.
 */
export function parseBase64Words(s: string, out: Uint32Array, at: number, n: number): boolean {
  let len = s.length;
  while (len > 0 && s.charCodeAt(len - 1) === 0x3d) len--; // '='
  if (len % 4 === 1 || (len * 6) >> 3 !== n * 4 || n * 4 > idBytes.length) return false;
  let acc = 0;
  let bits = 0;
  let j = 0;
  for (let i = 0; i < len; i++) {
    const v = b64Value(s.charCodeAt(i));
    if (v < 0) return false;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      idBytes[j++] = (acc >>> bits) & 0xff;
    }
  }
  return bytesToWords(idBytes, 0, n * 4, out, at, n);
}

/** How an id string is encoded. */
export const ID_HEX = 0; // hex only (Zipkin, span_log)
export const ID_HEX_FIRST = 1; // hex, else full-size base64 (OTLP/JSON; old exporters wrote base64)
export const ID_BASE64_FIRST = 2; // full-size base64, else hex (Jaeger: jsonpb base64 or query-API hex)

function parseIdWords(s: string, out: Uint32Array, at: number, n: number, enc: number): boolean {
  if (enc === ID_HEX) return parseHexWords(s, out, at, n);
  if (enc === ID_HEX_FIRST || s.length === n * 8) return parseHexWords(s, out, at, n) || parseBase64Words(s, out, at, n);
  return parseBase64Words(s, out, at, n) || parseHexWords(s, out, at, n);
}

/** A trace or span id: a string in encoding `enc`, not all-zero. Writes n words at out[at..]. */
export function readId(v: unknown, out: Uint32Array, at: number, n: number, enc: number): boolean {
  return typeof v === "string" && parseIdWords(v, out, at, n, enc) && !isZeroId(out, at, n);
}

/**
 * A parent (or referenced) span id: 1 = present (written to out[at..at+2)), 0 = absent (undefined,
 * null, "", or all-zero), -1 = present but not an id.
 */
export function readParentId(v: unknown, out: Uint32Array, at: number, enc: number): number {
  if (v === undefined || v === null || v === "") return 0;
  if (typeof v !== "string" || !parseIdWords(v, out, at, 2, enc)) return -1;
  return isZeroId(out, at, 2) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Times

/** Leftover nanoseconds (0..999) of the last nanosToUs call. */
export const nanos = { frac: 0 };

/**
 * Splits a nanosecond timestamp (decimal string, or a JSON number) into whole microseconds, which
 * it returns, and the remaining nanoseconds, left in `nanos.frac`. The string is read digit by digit,
 * so a 19-digit value converts exactly (never Number(nanos) / 1000, which rounds to 256 ns).
 * Returns -1 when the value is absent, zero or not a non-negative integer.
 */
export function nanosToUs(v: unknown): number {
  if (typeof v === "string") {
    const len = v.length;
    if (len === 0) return -1;
    const cut = len - 3;
    let us = 0;
    let frac = 0;
    for (let k = 0; k < len; k++) {
      const d = v.charCodeAt(k) - 48;
      if (d < 0 || d > 9) return -1;
      if (k < cut) us = us * 10 + d;
      else frac = frac * 10 + d;
    }
    if (us === 0 && frac === 0) return -1;
    nanos.frac = frac;
    return us;
  }
  if (typeof v === "number") {
    if (!(v > 0) || v === Infinity) return -1;
    const us = Math.floor(v / 1000);
    const frac = v - us * 1000;
    nanos.frac = frac > 0 && frac < 1000 ? frac : 0;
    return us;
  }
  return -1;
}

/** A finite JSON number, or a decimal string of one, as a number; NaN when absent or not numeric. */
export function toNumber(v: unknown): number {
  let n = NaN;
  if (typeof v === "number") n = v;
  else if (typeof v === "string" && v.length > 0) {
    const c = v.charCodeAt(0);
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) n = Number(v); // Number("12x") is NaN
  }
  return Number.isFinite(n) ? n : NaN;
}

function digitsAt(s: string, at: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const d = s.charCodeAt(at + k) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * RFC 3339 timestamp ("2017-01-26T16:46:31.639875Z", any number of fraction digits, "Z" or a
 * +hh:mm offset) to whole microseconds since the epoch (digits past the microsecond are dropped).
 * NaN when not RFC 3339.
 */
export function rfc3339ToUs(s: string): number {
  const len = s.length;
  if (len < 20) return NaN;
  const t = s.charCodeAt(10);
  if (s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return NaN;
  if (t !== 0x54 && t !== 0x74 && t !== 0x20) return NaN;
  const y = digitsAt(s, 0, 4);
  const mo = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  const h = digitsAt(s, 11, 2);
  const mi = digitsAt(s, 14, 2);
  const se = digitsAt(s, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60) return NaN;
  let i = 19;
  let frac = 0;
  if (s.charCodeAt(i) === 0x2e) {
    i++;
    let k = 0;
    for (; i < len; i++) {
      const dd = s.charCodeAt(i) - 48;
      if (dd < 0 || dd > 9) break;
      if (k < 6) frac = frac * 10 + dd;
      k++;
    }
    if (k === 0) return NaN;
    for (; k < 6; k++) frac *= 10;
  }
  if (i >= len) return NaN;
  let offsetMin = 0;
  const z = s.charCodeAt(i);
  if (z === 0x5a || z === 0x7a) i++;
  else if (z === 0x2b || z === 0x2d) {
    if (len - i !== 6 || s.charCodeAt(i + 3) !== 0x3a) return NaN;
    const oh = digitsAt(s, i + 1, 2);
    const om = digitsAt(s, i + 4, 2);
    if (oh < 0 || om < 0) return NaN;
    offsetMin = (z === 0x2d ? -1 : 1) * (oh * 60 + om);
    i += 6;
  } else return NaN;
  if (i !== len) return NaN;
  const ms = Date.UTC(y, mo - 1, d, h, mi, se);
  if (Number.isNaN(ms)) return NaN;
  return ms * 1000 + frac - offsetMin * 60_000_000;
}

/**
 * protobuf-JSON Duration ("0.001234s", "3s", "-0.5s", up to 9 fraction digits) to microseconds,
 * keeping sub-microsecond digits as a fraction. NaN when not a duration.
 */
export function pbDurationToUs(s: string): number {
  const len = s.length;
  if (len < 2 || s.charCodeAt(len - 1) !== 0x73 /* s */) return NaN;
  let i = 0;
  let neg = false;
  if (s.charCodeAt(0) === 0x2d) {
    neg = true;
    i = 1;
  }
  let sec = 0;
  let nd = 0;
  for (; i < len - 1; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    sec = sec * 10 + d;
    nd++;
  }
  let ns = 0;
  if (i < len - 1 && s.charCodeAt(i) === 0x2e) {
    i++;
    let k = 0;
    for (; i < len - 1; i++) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return NaN;
      if (k < 9) ns = ns * 10 + d;
      k++;
    }
    if (k === 0) return NaN;
    for (; k < 9; k++) ns *= 10;
  } else if (nd === 0) return NaN;
  if (i !== len - 1) return NaN;
  const us = sec * 1_000_000 + ns / 1000;
  return neg ? -us : us;
}

// ---------------------------------------------------------------------------------------------
// Kinds and attributes

/**
 * Span kind from a name: "server"/"SERVER"/"SPAN_KIND_SERVER" (any case) and the other kinds;
 * a decimal OTLP wire number is accepted too. -1 when unknown.
 */
export function kindFromString(s: string): number {
  switch (s) {
    case "server":
    case "SERVER":
    case "SPAN_KIND_SERVER":
      return KIND_SERVER;
    case "client":
    case "CLIENT":
    case "SPAN_KIND_CLIENT":
      return KIND_CLIENT;
    case "producer":
    case "PRODUCER":
    case "SPAN_KIND_PRODUCER":
      return KIND_PRODUCER;
    case "consumer":
    case "CONSUMER":
    case "SPAN_KIND_CONSUMER":
      return KIND_CONSUMER;
    case "internal":
    case "INTERNAL":
    case "SPAN_KIND_INTERNAL":
      return KIND_INTERNAL;
    case "":
    case "unspecified":
    case "UNSPECIFIED":
    case "SPAN_KIND_UNSPECIFIED":
      return KIND_UNSPECIFIED;
  }
  if (s.length === 1) {
    const d = s.charCodeAt(0) - 48;
    if (d >= 0 && d <= 5) return d;
  }
  let t = s.toLowerCase();
  if (t.startsWith("span_kind_")) t = t.slice(10);
  if (t === s) return -1;
  return kindFromString(t);
}

/** Span kind from an OTLP enum (integer, tolerating names and decimal strings); UNSPECIFIED when unknown. */
export function kindFromValue(v: unknown): number {
  if (typeof v === "number") return v >= 0 && v <= 5 && Number.isInteger(v) ? v : KIND_UNSPECIFIED;
  if (typeof v === "string") {
    const k = kindFromString(v);
    return k < 0 ? KIND_UNSPECIFIED : k;
  }
  return KIND_UNSPECIFIED;
}

/**
 * Stores a string attribute the fold reads (peer, address, db, messaging, route) into row i.
 * Other keys, empty values and non-strings are ignored; service.name and error are not span
 * columns (the decoders handle error themselves).
 */
export function setStringAttribute(out: SpanBatch, i: number, key: string, value: unknown): void {
  const code = attributeCode(key);
  if (code === A_NONE || code === A_SERVICE_NAME || code === A_ERROR) return;
  if (typeof value !== "string" || value.length === 0) return;
  setSpanAttribute(out, i, code, internOrZero(out, value));
}

/**
 * String -> intern id cache in front of Interner.internString, which UTF-8-encodes its argument on
 * every call (a fresh Uint8Array): with JSON input the same service, operation and peer names
 * repeat in every span, and a Map hit on a string JSON.parse already made is several times cheaper.
 * Ids never change for an interner, so the cache is always right; it belongs to one interner (the
 * last one seen: a worker has one) and is dropped when it reaches NAME_CACHE_MAX entries. A name
 * the interner refused (OTHER_ID, past its budget) is not cached, so every refusal is still counted
 * by the interner.
 */
const NAME_CACHE_MAX = 8192;
let cacheOwner: Interner | null = null;
const nameCache = new Map<string, number>();

/** Interned id of a non-empty string, else 0 (absent). */
export function internOrZero(out: SpanBatch, v: unknown): number {
  if (typeof v !== "string" || v.length === 0) return 0;
  const interner = out.interner;
  if (interner !== cacheOwner) {
    nameCache.clear();
    cacheOwner = interner;
  }
  let id = nameCache.get(v);
  if (id === undefined) {
    id = interner.internString(v);
    if (id !== OTHER_ID || v === OTHER_NAME) {
      if (nameCache.size >= NAME_CACHE_MAX) nameCache.clear();
      nameCache.set(v, id);
    }
  }
  return id;
}

/** A rejected link may leave words behind: a row's link columns are zero when F_HAS_LINK is clear. */
export function clearLink(out: SpanBatch, i: number): void {
  const t = i * 4;
  out.lnkTid[t] = out.lnkTid[t + 1] = out.lnkTid[t + 2] = out.lnkTid[t + 3] = 0;
  out.lnkSid[i * 2] = out.lnkSid[i * 2 + 1] = 0;
}
