/**
 * span_log: one newline-delimited JSON span record per message (one log line), as agents write
 * them to local files and a shipper forwards them line by line. The record (docs/FORMATS.md):
 *
 *   {"traceId":"<32 or 16 hex>","spanId":"<16 hex>","parentSpanId":"<16 hex>","service":"checkout",
 *    "name":"GET /cart","kind":"server","startUs":1700000000123456,"durationUs":1234.5,
 *    "error":false,"shared":false,"attributes":{"peer.service":"cart"},
 *    "links":[{"traceId":"..","spanId":".."}]}
 *
 * Required: traceId, spanId, service. Everything else is optional; unknown fields are ignored.
 * A blank line (only whitespace) is an empty message: no span, not malformed.
 */
import {
  F_ERROR,
  F_HAS_LINK,
  F_HAS_PARENT,
  F_NO_DURATION,
  F_NO_START,
  F_SHARED,
  type SpanBatch,
} from "../../pipeline/span-batch.js";
import type { MessageDecoder } from "./types.js";
import {
  ID_HEX,
  clearLink,
  internOrZero,
  isBlank,
  isObject,
  kindFromValue,
  malformed,
  parseJsonMessage,
  readId,
  readParentId,
  setStringAttribute,
  toNumber,
  type JsonObject,
} from "./json-common.js";

const FORMAT = "span_log";

export const decodeSpanLog: MessageDecoder = (bytes, out, stats) => {
  const start = out.length;
  if (isBlank(bytes)) {
    stats.messages++;
    return;
  }
  const rec = parseJsonMessage(bytes, FORMAT);
  if (!isObject(rec)) throw malformed(out, start, FORMAT, 0, "record is not a JSON object");
  const i = out.append();
  const res = fillSpan(out, i, rec);
  if (res !== 0) {
    out.truncate(i);
    if (res === 1) stats.spansWithInvalidId++;
    else stats.spansWithoutService++;
  }
  stats.spans += out.length - start;
  stats.messages++;
};

function fillSpan(out: SpanBatch, i: number, r: JsonObject): number {
  if (!readId(r.traceId, out.tid, i * 4, 4, ID_HEX) || !readId(r.spanId, out.sid, i * 2, 2, ID_HEX)) return 1;
  const parent = readParentId(r.parentSpanId, out.pid, i * 2, ID_HEX);
  if (parent < 0) return 1;
  const service = internOrZero(out, r.service);
  if (service === 0) return 2;
  let flags = parent > 0 ? F_HAS_PARENT : 0;
  out.service[i] = service;
  out.name[i] = internOrZero(out, r.name);
  out.kind[i] = kindFromValue(r.kind);

  const startUs = toNumber(r.startUs);
  if (startUs > 0) out.startUs[i] = startUs;
  else flags |= F_NO_START;
  const durUs = toNumber(r.durationUs);
  if (durUs >= 0) out.durUs[i] = durUs;
  else flags |= F_NO_DURATION;

  if (r.error === true || r.error === "true") flags |= F_ERROR;
  if (r.shared === true) flags |= F_SHARED;

  const attrs = r.attributes;
  if (isObject(attrs)) {
    for (const key in attrs) setStringAttribute(out, i, key, attrs[key]);
  }

  const links = r.links;
  if (Array.isArray(links)) {
    for (let l = 0; l < links.length; l++) {
      const ln = links[l];
      if (isObject(ln) && readId(ln.traceId, out.lnkTid, i * 4, 4, ID_HEX) && readId(ln.spanId, out.lnkSid, i * 2, 2, ID_HEX)) {
        flags |= F_HAS_LINK;
        break;
      }
    }
    if ((flags & F_HAS_LINK) === 0) clearLink(out, i);
  }
  out.flags[i] = flags;
  return 0;
}
