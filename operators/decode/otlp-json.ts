/**
 * otlp_json: one OTLP/JSON ExportTraceServiceRequest per message.
 *
 *   {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"x"}}]},
 *     "scopeSpans":[{"scope":{..},"spans":[{traceId, spanId, parentSpanId, name, kind,
 *       startTimeUnixNano, endTimeUnixNano, attributes, links, status}]}]}]}
 *
 * Ids are hex (full-size base64 tolerated); 64-bit integers are decimal strings (numbers
 * tolerated); enums are integers (names tolerated). The older `instrumentationLibrarySpans` is read
 * when `scopeSpans` is absent or empty. Failure = status.code 2 (STATUS_CODE_ERROR), nothing else.
 */
import { F_ERROR, F_HAS_LINK, F_HAS_PARENT, F_NO_DURATION, F_NO_START, type SpanBatch } from "../../pipeline/span-batch.js";
import type { MessageDecoder } from "./types.js";
import {
  ID_HEX_FIRST,
  clearLink,
  internOrZero,
  isObject,
  kindFromValue,
  malformed,
  nanos,
  nanosToUs,
  parseJsonMessage,
  readId,
  readParentId,
  setStringAttribute,
  type JsonObject,
} from "./json-common.js";

const FORMAT = "otlp_json";

const OK = 0;
const BAD_ID = 1;
const NO_SERVICE = 2;

export const decodeOtlpJson: MessageDecoder = (bytes, out, stats) => {
  const start = out.length;
  const doc = parseJsonMessage(bytes, FORMAT);
  if (!isObject(doc)) throw malformed(out, start, FORMAT, 0, "message is not a JSON object (ExportTraceServiceRequest)");
  const rss = doc.resourceSpans;
  let badId = 0;
  let noService = 0;
  if (rss !== undefined && rss !== null) {
    if (!Array.isArray(rss)) throw malformed(out, start, FORMAT, 0, "resourceSpans is not an array");
    for (let r = 0; r < rss.length; r++) {
      const rs = rss[r];
      if (!isObject(rs)) throw malformed(out, start, FORMAT, 0, `resourceSpans[${r}] is not an object`);
      const service = resourceService(out, rs.resource);
      let scopes = rs.scopeSpans;
      let field = "scopeSpans";
      if (scopes === undefined || scopes === null || (Array.isArray(scopes) && scopes.length === 0)) {
        const old = rs.instrumentationLibrarySpans;
        if (old !== undefined && old !== null) {
          scopes = old;
          field = "instrumentationLibrarySpans";
        }
      }
      if (scopes === undefined || scopes === null) continue;
      if (!Array.isArray(scopes)) throw malformed(out, start, FORMAT, 0, `resourceSpans[${r}].${field} is not an array`);
      for (let s = 0; s < scopes.length; s++) {
        const ss = scopes[s];
        if (!isObject(ss)) throw malformed(out, start, FORMAT, 0, `resourceSpans[${r}].${field}[${s}] is not an object`);
        const spans = ss.spans;
        if (spans === undefined || spans === null) continue;
        if (!Array.isArray(spans)) throw malformed(out, start, FORMAT, 0, `resourceSpans[${r}].${field}[${s}].spans is not an array`);
        for (let k = 0; k < spans.length; k++) {
          const sp = spans[k];
          if (!isObject(sp)) throw malformed(out, start, FORMAT, 0, `resourceSpans[${r}].${field}[${s}].spans[${k}] is not an object`);
          const i = out.append();
          const res = fillSpan(out, i, sp, service);
          if (res !== OK) {
            out.truncate(i);
            if (res === BAD_ID) badId++;
            else noService++;
          }
        }
      }
    }
  }
  stats.spans += out.length - start;
  stats.spansWithInvalidId += badId;
  stats.spansWithoutService += noService;
  stats.messages++;
};

/** Intern id of the resource's service.name (a non-empty stringValue), else 0. */
function resourceService(out: SpanBatch, resource: unknown): number {
  if (!isObject(resource)) return 0;
  const attrs = resource.attributes;
  if (!Array.isArray(attrs)) return 0;
  for (let a = 0; a < attrs.length; a++) {
    const kv = attrs[a];
    if (isObject(kv) && kv.key === "service.name") {
      const v = kv.value;
      return isObject(v) ? internOrZero(out, v.stringValue) : 0;
    }
  }
  return 0;
}

function fillSpan(out: SpanBatch, i: number, sp: JsonObject, service: number): number {
  if (!readId(sp.traceId, out.tid, i * 4, 4, ID_HEX_FIRST) || !readId(sp.spanId, out.sid, i * 2, 2, ID_HEX_FIRST)) return BAD_ID;
  const parent = readParentId(sp.parentSpanId, out.pid, i * 2, ID_HEX_FIRST);
  if (parent < 0) return BAD_ID;
  if (service === 0) return NO_SERVICE;
  let flags = parent > 0 ? F_HAS_PARENT : 0;
  out.service[i] = service;
  out.name[i] = internOrZero(out, sp.name);
  out.kind[i] = kindFromValue(sp.kind);

  const startUs = nanosToUs(sp.startTimeUnixNano);
  const startFrac = nanos.frac;
  if (startUs < 0) flags |= F_NO_START | F_NO_DURATION;
  else {
    out.startUs[i] = startUs;
    const endUs = nanosToUs(sp.endTimeUnixNano);
    const dur = endUs < 0 ? -1 : endUs - startUs + (nanos.frac - startFrac) / 1000;
    if (dur >= 0) out.durUs[i] = dur;
    else flags |= F_NO_DURATION; // no end, or end before start
  }

  const status = sp.status;
  if (isObject(status)) {
    const code = status.code;
    if (code === 2 || code === "STATUS_CODE_ERROR" || code === "2" || code === "ERROR") flags |= F_ERROR;
  }

  const attrs = sp.attributes;
  if (Array.isArray(attrs)) {
    for (let a = 0; a < attrs.length; a++) {
      const kv = attrs[a];
      if (!isObject(kv) || typeof kv.key !== "string") continue;
      const v = kv.value;
      if (isObject(v)) setStringAttribute(out, i, kv.key, v.stringValue);
    }
  }

  const links = sp.links;
  if (Array.isArray(links)) {
    for (let l = 0; l < links.length; l++) {
      const ln = links[l];
      if (isObject(ln) && readId(ln.traceId, out.lnkTid, i * 4, 4, ID_HEX_FIRST) && readId(ln.spanId, out.lnkSid, i * 2, 2, ID_HEX_FIRST)) {
        flags |= F_HAS_LINK;
        break;
      }
    }
    if ((flags & F_HAS_LINK) === 0) clearLink(out, i);
  }
  out.flags[i] = flags;
  return OK;
}
