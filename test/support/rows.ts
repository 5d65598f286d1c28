/** A SpanBatch row as plain data (hex ids, resolved names), for comparing decoders in tests. */
import { F_HAS_LINK, F_HAS_PARENT, spanIdHex, traceIdHex, type SpanBatch } from "../../pipeline/span-batch.js";

export interface Row {
  tid: string;
  sid: string;
  pid: string;
  lnk: string;
  startUs: number;
  durUs: number;
  kind: number;
  flags: number;
  service: string;
  name: string;
  peer: string;
  addr: string;
  dbSystem: string;
  dbNamespace: string;
  msgDest: string;
  route: string;
}

export function row(b: SpanBatch, i: number): Row {
  const f = b.flags[i];
  const n = (id: number) => (id === 0 ? "" : b.interner.name(id));
  return {
    tid: traceIdHex(b.tid, i * 4),
    sid: spanIdHex(b.sid, i * 2),
    pid: f & F_HAS_PARENT ? spanIdHex(b.pid, i * 2) : "",
    lnk: f & F_HAS_LINK ? `${traceIdHex(b.lnkTid, i * 4)}/${spanIdHex(b.lnkSid, i * 2)}` : "",
    startUs: b.startUs[i],
    durUs: b.durUs[i],
    kind: b.kind[i],
    flags: f,
    service: n(b.service[i]),
    name: n(b.name[i]),
    peer: n(b.peer[i]),
    addr: n(b.addr[i]),
    dbSystem: n(b.dbSystem[i]),
    dbNamespace: n(b.dbNamespace[i]),
    msgDest: n(b.msgDest[i]),
    route: n(b.route[i]),
  };
}

export function rows(b: SpanBatch): Row[] {
  const r: Row[] = [];
  for (let i = 0; i < b.length; i++) r.push(row(b, i));
  return r;
}
