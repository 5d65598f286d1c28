/**
 * zipkin_json: a JSON array of Zipkin v2 spans (a single span object is accepted too).
 *
 *   [{"traceId":"16|32 hex","id":"16 hex","parentId":"16 hex","kind":"CLIENT|SERVER|PRODUCER|CONSUMER",
 *     "name":"get","timestamp":us,"duration":us,"localEndpoint":{"serviceName":..,"ipv4":..},
 *     "remoteEndpoint":{"serviceName":..,"ipv4":..,"ipv6":..,"port":..},"tags":{"k":"v"},
 *     "annotations":[..],"shared":true}]
 *
 * - service = localEndpoint.serviceName, taken as written (Zipkin's server lower-cases it; we do not).
 * - A span with no kind but a (non-empty) remoteEndpoint is a CLIENT (DESIGN 3).
 * - remoteEndpoint.serviceName plays the part of peer.service: it fills `peer` before the tags are
 *   read, so a `peer.service` tag does not replace it and a `service.peer.name` tag does. With no
 *   remote serviceName, its ipv4 (else ipv6) fills `addr` when no tag set it.
 * - Failure = a tag with the key `error`, whatever its value, or `otel.status_code` = "ERROR"
 *   (OpenTelemetry's exporter); annotations are never read.
 * - timestamp / duration are microseconds; 0 means absent, as in Zipkin's model.
 */
import {
  F_ERROR,
  F_HAS_PARENT,
  F_NO_DURATION,
  F_NO_START,
  F_SHARED,
  KIND_CLIENT,
  KIND_UNSPECIFIED,
  type SpanBatch,
} from "../../pipeline/span-batch.js";
import { A_PEER_OLD, setSpanAttribute } from "./attributes.js";
import type { MessageDecoder } from "./types.js";
import {
  ID_HEX,
  internOrZero,
  isObject,
  kindFromString,
  malformed,
  parseJsonMessage,
  readId,
  readParentId,
  setStringAttribute,
  toNumber,
  type JsonObject,
} from "./json-common.js";

const FORMAT = "zipkin_json";

const OK = 0;
const BAD_ID = 1;
const NO_SERVICE = 2;

export const decodeZipkinJson: MessageDecoder = (bytes, out, stats) => {
  const start = out.length;
  const doc = parseJsonMessage(bytes, FORMAT);
  let badId = 0;
  let noService = 0;
  if (Array.isArray(doc)) {
    for (let k = 0; k < doc.length; k++) {
      const sp = doc[k];
      if (!isObject(sp)) throw malformed(out, start, FORMAT, 0, `span [${k}] is not an object`);
      const i = out.append();
      const res = fillSpan(out, i, sp);
      if (res !== OK) {
        out.truncate(i);
        if (res === BAD_ID) badId++;
        else noService++;
      }
    }
  } else if (isObject(doc)) {
    const i = out.append();
    const res = fillSpan(out, i, doc);
    if (res !== OK) {
      out.truncate(i);
      if (res === BAD_ID) badId++;
      else noService++;
    }
  } else {
    throw malformed(out, start, FORMAT, 0, "message is not a JSON array of spans or a span object");
  }
  stats.spans += out.length - start;
  stats.spansWithInvalidId += badId;
  stats.spansWithoutService += noService;
  stats.messages++;
};

/** A remote endpoint counts when it has any of serviceName, ipv4, ipv6, port (Zipkin drops empty endpoints). */
function hasEndpoint(ep: JsonObject): boolean {
  return (
    (typeof ep.serviceName === "string" && ep.serviceName.length > 0) ||
    (typeof ep.ipv4 === "string" && ep.ipv4.length > 0) ||
    (typeof ep.ipv6 === "string" && ep.ipv6.length > 0) ||
    (typeof ep.port === "number" && ep.port > 0)
  );
}

function fillSpan(out: SpanBatch, i: number, sp: JsonObject): number {
  if (!readId(sp.traceId, out.tid, i * 4, 4, ID_HEX) || !readId(sp.id, out.sid, i * 2, 2, ID_HEX)) return BAD_ID;
  const parent = readParentId(sp.parentId, out.pid, i * 2, ID_HEX);
  if (parent < 0) return BAD_ID;
  const local = sp.localEndpoint;
  const service = isObject(local) ? internOrZero(out, local.serviceName) : 0;
  if (service === 0) return NO_SERVICE;
  let flags = parent > 0 ? F_HAS_PARENT : 0;
  out.service[i] = service;
  out.name[i] = internOrZero(out, sp.name);

  const remote = isObject(sp.remoteEndpoint) && hasEndpoint(sp.remoteEndpoint) ? sp.remoteEndpoint : null;
  const kind = sp.kind;
  if (typeof kind === "string") {
    const k = kindFromString(kind);
    out.kind[i] = k < 0 ? KIND_UNSPECIFIED : k;
  } else out.kind[i] = remote !== null ? KIND_CLIENT : KIND_UNSPECIFIED;

  const ts = toNumber(sp.timestamp);
  if (ts > 0) out.startUs[i] = ts;
  else flags |= F_NO_START;
  const dur = toNumber(sp.duration);
  if (dur > 0) out.durUs[i] = dur;
  else flags |= F_NO_DURATION;

  if (sp.shared === true) flags |= F_SHARED;

  let remoteNamed = false;
  if (remote !== null && typeof remote.serviceName === "string" && remote.serviceName.length > 0) {
    setSpanAttribute(out, i, A_PEER_OLD, internOrZero(out, remote.serviceName));
    remoteNamed = true;
  }

  const tags = sp.tags;
  if (isObject(tags)) {
    for (const key in tags) {
      if (key === "error") flags |= F_ERROR;
      // OpenTelemetry's Zipkin exporter writes the `error` tag only for an ERROR status with a
      // message; an ERROR without one arrives as otel.status_code alone (DECISIONS 9)
      else if (key === "otel.status_code") {
        if (tags[key] === "ERROR") flags |= F_ERROR;
      } else setStringAttribute(out, i, key, tags[key]);
    }
  }

  if (remote !== null && !remoteNamed && out.addr[i] === 0) {
    if (typeof remote.ipv4 === "string" && remote.ipv4.length > 0) out.addr[i] = internOrZero(out, remote.ipv4);
    else if (typeof remote.ipv6 === "string" && remote.ipv6.length > 0) out.addr[i] = internOrZero(out, remote.ipv6);
  }
  out.flags[i] = flags;
  return OK;
}
