/**
 * jaeger_json: Jaeger span JSON, in the three shapes it is found in:
 *
 * (a) the query API / UI document: {"data":[{"traceID","spans":[{"traceID","spanID","operationName",
 *     "references":[{"refType","traceID","spanID"}],"startTime":us,"duration":us,
 *     "tags":[{"key","type","value"}],"logs":[..],"processID":"p1"}],"processes":{"p1":{..}}}]}
 *     (a bare trace object {"spans":[..],"processes":{..}} and a model.Batch {"spans":[..],
 *     "process":{..}} are read the same way);
 * (b) one span object with an inline "process":{"serviceName","tags"}, or an array of them;
 * (c) model.Span as jsonpb writes it (the collector's Kafka `json` encoding): "traceId"/"spanId"
 *     base64 of the id bytes, "startTime" RFC 3339, "duration" "0.001234s", "tags" with
 *     vType/vStr/vBool/..., "process" inline. jsonpb omits default values, so a reference with no
 *     refType is CHILD_OF and a tag with no vType is a string.
 *
 * Parent = the first CHILD_OF reference in the span's own trace, else the first FOLLOWS_FROM in it
 * (else a legacy "parentSpanID" field). The first reference into ANOTHER trace becomes the row's
 * link (F_HAS_LINK), never its parent. Kind = tag span.kind; failure = tag error=true (bool or
 * "true"). Process tags are resource attributes and are not read.
 */
import {
  F_ERROR,
  F_HAS_LINK,
  F_HAS_PARENT,
  F_NO_DURATION,
  F_NO_START,
  KIND_UNSPECIFIED,
  type SpanBatch,
} from "../../pipeline/span-batch.js";
import type { MessageDecoder } from "./types.js";
import {
  ID_BASE64_FIRST,
  internOrZero,
  isObject,
  kindFromString,
  malformed,
  parseJsonMessage,
  pbDurationToUs,
  readId,
  readParentId,
  rfc3339ToUs,
  setStringAttribute,
  toNumber,
  type JsonObject,
} from "./json-common.js";

const FORMAT = "jaeger_json";
const ENC = ID_BASE64_FIRST; // jsonpb: base64 of the bytes; query API: hex (16 or 32 digits)

// Per-message counters (decoding is synchronous; reset at the start of every message).
let badId = 0;
let noService = 0;
// Last process object seen and its interned serviceName (spans of one trace share processes).
let lastProcess: JsonObject | null = null;
let lastService = 0;

const refTid = new Uint32Array(4);
const refSid = new Uint32Array(2);

export const decodeJaegerJson: MessageDecoder = (bytes, out, stats) => {
  const start = out.length;
  const doc = parseJsonMessage(bytes, FORMAT);
  badId = 0;
  noService = 0;
  lastProcess = null;
  if (Array.isArray(doc)) {
    for (let k = 0; k < doc.length; k++) {
      const el = doc[k];
      if (!isObject(el)) throw malformed(out, start, FORMAT, 0, `[${k}] is not an object`);
      if (Array.isArray(el.spans)) decodeTrace(out, start, el, `[${k}].`);
      else decodeSpan(out, el, null, null);
    }
  } else if (isObject(doc)) {
    const data = doc.data;
    if (data !== undefined && data !== null) {
      if (!Array.isArray(data)) throw malformed(out, start, FORMAT, 0, "data is not an array");
      for (let t = 0; t < data.length; t++) {
        const tr = data[t];
        if (!isObject(tr)) throw malformed(out, start, FORMAT, 0, `data[${t}] is not an object`);
        decodeTrace(out, start, tr, `data[${t}].`);
      }
    } else if (doc.spans !== undefined) decodeTrace(out, start, doc, "");
    else decodeSpan(out, doc, null, null);
  } else {
    throw malformed(out, start, FORMAT, 0, "message is not a JSON object or array");
  }
  lastProcess = null;
  stats.spans += out.length - start;
  stats.spansWithInvalidId += badId;
  stats.spansWithoutService += noService;
  stats.messages++;
};

function decodeTrace(out: SpanBatch, start: number, tr: JsonObject, path: string): void {
  const spans = tr.spans;
  if (spans === undefined || spans === null) return;
  if (!Array.isArray(spans)) throw malformed(out, start, FORMAT, 0, `${path}spans is not an array`);
  const processes = isObject(tr.processes) ? tr.processes : null;
  const batchProcess = isObject(tr.process) ? tr.process : null;
  for (let k = 0; k < spans.length; k++) {
    const sp = spans[k];
    if (!isObject(sp)) throw malformed(out, start, FORMAT, 0, `${path}spans[${k}] is not an object`);
    decodeSpan(out, sp, processes, batchProcess);
  }
}

function decodeSpan(out: SpanBatch, sp: JsonObject, processes: JsonObject | null, batchProcess: JsonObject | null): void {
  const i = out.append();
  const res = fillSpan(out, i, sp, processes, batchProcess);
  if (res !== 0) {
    out.truncate(i);
    if (res === 1) badId++;
    else noService++;
  }
}

function serviceOf(out: SpanBatch, sp: JsonObject, processes: JsonObject | null, batchProcess: JsonObject | null): number {
  let proc: unknown = sp.process;
  if (!isObject(proc)) {
    proc = batchProcess;
    const pid = sp.processID !== undefined ? sp.processID : sp.processId;
    if (typeof pid === "string" && processes !== null && Object.prototype.hasOwnProperty.call(processes, pid)) proc = processes[pid];
  }
  if (!isObject(proc)) return 0;
  if (proc === lastProcess) return lastService;
  lastProcess = proc;
  lastService = internOrZero(out, proc.serviceName);
  return lastService;
}

function fillSpan(out: SpanBatch, i: number, sp: JsonObject, processes: JsonObject | null, batchProcess: JsonObject | null): number {
  const t = i * 4;
  const tid = out.tid;
  if (!readId(sp.traceID !== undefined ? sp.traceID : sp.traceId, tid, t, 4, ENC)) return 1;
  if (!readId(sp.spanID !== undefined ? sp.spanID : sp.spanId, out.sid, i * 2, 2, ENC)) return 1;

  // references: parent in the same trace, link to another trace
  let flags = 0;
  let parentRank = 0; // 0 none, 1 FOLLOWS_FROM, 2 CHILD_OF
  const refs = sp.references;
  if (Array.isArray(refs)) {
    for (let r = 0; r < refs.length; r++) {
      const ref = refs[r];
      if (!isObject(ref)) continue;
      const type = ref.refType;
      let rank: number;
      if (type === undefined || type === null || type === "CHILD_OF" || type === 0 || type === "child_of") rank = 2;
      else if (type === "FOLLOWS_FROM" || type === 1 || type === "follows_from") rank = 1;
      else continue;
      if (readParentId(ref.spanID !== undefined ? ref.spanID : ref.spanId, refSid, 0, ENC) !== 1) continue;
      const rt = ref.traceID !== undefined ? ref.traceID : ref.traceId;
      let same = true;
      if (rt !== undefined && rt !== null && rt !== "") {
        if (!readId(rt, refTid, 0, 4, ENC)) continue;
        same = refTid[0] === tid[t] && refTid[1] === tid[t + 1] && refTid[2] === tid[t + 2] && refTid[3] === tid[t + 3];
      }
      if (same) {
        if (rank > parentRank) {
          out.pid[i * 2] = refSid[0];
          out.pid[i * 2 + 1] = refSid[1];
          parentRank = rank;
        }
      } else if ((flags & F_HAS_LINK) === 0) {
        out.lnkTid.set(refTid, t);
        out.lnkSid[i * 2] = refSid[0];
        out.lnkSid[i * 2 + 1] = refSid[1];
        flags |= F_HAS_LINK;
      }
    }
  }
  if (parentRank > 0) flags |= F_HAS_PARENT;
  else {
    const legacy = sp.parentSpanID !== undefined ? sp.parentSpanID : sp.parentSpanId;
    const p = readParentId(legacy, out.pid, i * 2, ENC);
    if (p < 0) return 1;
    if (p > 0) flags |= F_HAS_PARENT;
  }

  const service = serviceOf(out, sp, processes, batchProcess);
  if (service === 0) return 2;
  out.service[i] = service;
  out.name[i] = internOrZero(out, sp.operationName);

  const st = sp.startTime;
  const startUs = typeof st === "string" && st.length > 10 && st.charCodeAt(10) === 0x54 ? rfc3339ToUs(st) : toNumber(st);
  if (startUs > 0) out.startUs[i] = startUs;
  else flags |= F_NO_START;
  const d = sp.duration;
  const durUs = typeof d === "string" && d.length > 1 && d.charCodeAt(d.length - 1) === 0x73 ? pbDurationToUs(d) : toNumber(d);
  if (durUs >= 0) out.durUs[i] = durUs;
  else flags |= F_NO_DURATION; // absent, not a duration, or negative

  let kind = KIND_UNSPECIFIED;
  const tags = sp.tags;
  if (Array.isArray(tags)) {
    for (let k = 0; k < tags.length; k++) {
      const tag = tags[k];
      if (!isObject(tag)) continue;
      const key = tag.key;
      if (typeof key !== "string") continue;
      // query API: "value"; jsonpb: vStr / vBool (other types are not read)
      let v = tag.value;
      if (v === undefined) v = tag.vStr !== undefined ? tag.vStr : tag.vBool;
      if (key === "span.kind") {
        if (typeof v === "string") {
          const kk = kindFromString(v);
          if (kk >= 0) kind = kk;
        }
      } else if (key === "error") {
        if (v === true || v === "true") flags |= F_ERROR;
      } else setStringAttribute(out, i, key, v);
    }
  }
  out.kind[i] = kind;
  out.flags[i] = flags;
  return 0;
}
