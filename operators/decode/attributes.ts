/**
 * The attribute keys the fold reads, in both generations of OpenTelemetry semantic conventions.
 * Everything else is skipped in place. A newer key overwrites a value taken from its older twin;
 * an older key fills a column only when it is still empty, so the result never depends on order.
 */
import type { SpanBatch } from "../../pipeline/span-batch.js";

export const A_NONE = 0;
export const A_PEER = 1; // service.peer.name (new) — overwrites
export const A_PEER_OLD = 2; // peer.service (old) — fills if empty
export const A_ADDR = 3; // server.address
export const A_ADDR_OLD = 4; // net.peer.name
export const A_DB_SYSTEM = 5; // db.system.name
export const A_DB_SYSTEM_OLD = 6; // db.system
export const A_DB_NAMESPACE = 7; // db.namespace
export const A_DB_NAMESPACE_OLD = 8; // db.name
export const A_MSG_DEST = 9; // messaging.destination.name
export const A_MSG_DEST_OLD = 10; // messaging.destination
export const A_ROUTE = 11; // http.route
export const A_SERVICE_NAME = 12; // service.name (resource)
export const A_ERROR = 13; // error (Zipkin / Jaeger / OpenTracing tag)

export const ATTRIBUTE_KEYS: ReadonlyArray<readonly [string, number]> = [
  ["service.peer.name", A_PEER],
  ["peer.service", A_PEER_OLD],
  ["server.address", A_ADDR],
  ["net.peer.name", A_ADDR_OLD],
  ["db.system.name", A_DB_SYSTEM],
  ["db.system", A_DB_SYSTEM_OLD],
  ["db.namespace", A_DB_NAMESPACE],
  ["db.name", A_DB_NAMESPACE_OLD],
  ["messaging.destination.name", A_MSG_DEST],
  ["messaging.destination", A_MSG_DEST_OLD],
  ["http.route", A_ROUTE],
  ["service.name", A_SERVICE_NAME],
  ["error", A_ERROR],
];

const byName = new Map<string, number>(ATTRIBUTE_KEYS);

/** Attribute code for a key string (JSON decoders). */
export function attributeCode(key: string): number {
  return byName.get(key) ?? A_NONE;
}

/**
 * Stores an interned string value for a span attribute code into row `i`.
 * Returns false for codes that are not span columns (service.name, error: the caller handles them).
 */
export function setSpanAttribute(b: SpanBatch, i: number, code: number, id: number): boolean {
  switch (code) {
    case A_PEER:
      b.peer[i] = id;
      return true;
    case A_PEER_OLD:
      if (b.peer[i] === 0) b.peer[i] = id;
      return true;
    case A_ADDR:
      b.addr[i] = id;
      return true;
    case A_ADDR_OLD:
      if (b.addr[i] === 0) b.addr[i] = id;
      return true;
    case A_DB_SYSTEM:
      b.dbSystem[i] = id;
      return true;
    case A_DB_SYSTEM_OLD:
      if (b.dbSystem[i] === 0) b.dbSystem[i] = id;
      return true;
    case A_DB_NAMESPACE:
      b.dbNamespace[i] = id;
      return true;
    case A_DB_NAMESPACE_OLD:
      if (b.dbNamespace[i] === 0) b.dbNamespace[i] = id;
      return true;
    case A_MSG_DEST:
      b.msgDest[i] = id;
      return true;
    case A_MSG_DEST_OLD:
      if (b.msgDest[i] === 0) b.msgDest[i] = id;
      return true;
    case A_ROUTE:
      b.route[i] = id;
      return true;
    default:
      return false;
  }
}
