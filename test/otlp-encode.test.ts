/**
 * The encoders (sources/replay/otlp-encode.ts) against the decoders (operators/decode): the
 * generator's rows, encoded in every format and message shape and decoded again, come back equal
 * column by column (minus what a format cannot carry), and folding the decoded otlp_proto rows
 * gives exactly the generator's ground-truth edges. The protobuf bytes are also read with the
 * official generated OTLP decoder (protobufjs, from @opentelemetry/otlp-transformer), so the
 * writer is checked against something other than our own lazy reader.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { DECODERS } from "../operators/decode/index.js";
import { DecodeStats, FORMATS, type FormatName } from "../operators/decode/types.js";
import { Fold } from "../operators/fold/fold.js";
import type { FoldDeltas } from "../operators/fold/deltas.js";
import { Interner } from "../pipeline/intern.js";
import {
  F_ERROR,
  F_HAS_LINK,
  F_HAS_PARENT,
  F_NO_DURATION,
  F_NO_START,
  F_SHARED,
  KIND_CLIENT,
  KIND_CONSUMER,
  KIND_INTERNAL,
  KIND_PRODUCER,
  KIND_SERVER,
  KIND_UNSPECIFIED,
  SpanBatch,
  parseHexWords,
  spanIdHex,
  traceIdHex,
} from "../pipeline/span-batch.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import {
  encodeJaegerJson,
  encodeOtlp,
  encodeSpanLog,
  messagesFromBatch,
  type MessageShape,
} from "../sources/replay/otlp-encode.js";

import { row, type Row } from "./support/rows.js";

const rowKey = (r: Row) => `${r.tid}/${r.sid}/${r.kind}/${r.service}`;
function sorted(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => (rowKey(a) < rowKey(b) ? -1 : rowKey(a) > rowKey(b) ? 1 : 0));
}

/** What a row looks like after a trip through `format` (what the format cannot carry is lost). */
function expected(r: Row, format: FormatName, shape: MessageShape): Row {
  const e = { ...r };
  if (format === "zipkin_json") {
    if (e.kind === KIND_INTERNAL) e.kind = KIND_UNSPECIFIED; // Zipkin has no INTERNAL kind
    e.flags &= ~F_HAS_LINK; // nor links
    e.lnk = "";
    if ((e.flags & F_NO_DURATION) === 0) e.durUs = Math.max(1, Math.round(e.durUs)); // whole us, 0 = absent
  }
  if (format === "otlp_proto" || format === "otlp_json" || format === "jaeger_json") e.flags &= ~F_SHARED;
  if (format === "jaeger_json" && shape !== "span") e.durUs = Math.round(e.durUs); // the query API: whole us
  // the decoders leave the columns of a flagged-absent time at 0
  if (e.flags & F_NO_START) e.startUs = 0;
  if (e.flags & (F_NO_START | F_NO_DURATION)) e.durUs = 0;
  return e;
}

/** Encodes every batch as messages and decodes them into fresh batches (own interner), keeping partitions. */
function roundTrip(batches: SpanBatch[], format: FormatName, shape: MessageShape): { decoded: SpanBatch[]; stats: DecodeStats; messages: number } {
  const interner = new Interner();
  const stats = new DecodeStats();
  const decoded: SpanBatch[] = [];
  let messages = 0;
  for (const b of batches) {
    const out = new SpanBatch(interner, 64);
    out.reset(b.partition);
    for (const m of messagesFromBatch(b, shape, 200, format)) {
      DECODERS[format](m, out, stats);
      messages++;
    }
    decoded.push(out);
  }
  return { decoded, stats, messages };
}

function allRows(batches: SpanBatch[]): Row[] {
  const out: Row[] = [];
  for (const b of batches) for (let i = 0; i < b.length; i++) out.push(row(b, i));
  return out;
}

function generate(spans: number, seed: number): { gen: ReplayGenerator; batches: SpanBatch[] } {
  const gen = new ReplayGenerator({ seed, partitions: 4, batchSize: 2048 }, new Interner());
  const batches: SpanBatch[] = [];
  gen.generate(spans, (b) => batches.push(b.clone()));
  return { gen, batches };
}

function fold(batches: SpanBatch[]): FoldDeltas {
  const f = new Fold(batches[0].interner);
  for (const b of batches) f.processBatch(b);
  f.finish();
  return f.drain();
}

interface EdgeSum {
  calls: number;
  clientCalls: number;
  serverCalls: number;
  paired: number;
  failed: number;
  failedClient: number;
  failedServer: number;
}

/** Edges summed over minutes, keyed `${client}|${server}|${type}` like the truth. */
function edgeSums(d: FoldDeltas): Map<string, EdgeSum> {
  const out = new Map<string, EdgeSum>();
  for (const e of d.edges) {
    const k = `${e.client}|${e.server}|${e.type}`;
    let s = out.get(k);
    if (s === undefined) out.set(k, (s = { calls: 0, clientCalls: 0, serverCalls: 0, paired: 0, failed: 0, failedClient: 0, failedServer: 0 }));
    s.calls += e.calls;
    s.clientCalls += e.clientCalls;
    s.serverCalls += e.serverCalls;
    s.paired += e.paired;
    s.failed += e.failed;
    s.failedClient += e.failedClient;
    s.failedServer += e.failedServer;
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

const SHAPES: readonly MessageShape[] = ["batch", "trace", "span"];
const { gen, batches } = generate(20_000, 11);
const originalRows = sorted(allRows(batches));

describe("encoders -> decoders round trip on the replay generator's rows", () => {
  it("the sample covers every kind, errors, parents and every attribute column", () => {
    const kinds = new Set(originalRows.map((r) => r.kind));
    for (const k of [KIND_INTERNAL, KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER]) expect(kinds.has(k)).toBe(true);
    expect(originalRows.some((r) => r.flags & F_ERROR)).toBe(true);
    expect(originalRows.some((r) => r.flags & F_HAS_PARENT)).toBe(true);
    for (const col of ["peer", "addr", "dbSystem", "dbNamespace", "msgDest", "route"] as const) {
      expect(originalRows.some((r) => r[col] !== "")).toBe(true);
    }
  });

  for (const format of FORMATS) {
    for (const shape of SHAPES) {
      it(`${format}, one ${shape} per message: every row decodes equal to the original, column by column`, () => {
        const { decoded, stats, messages } = roundTrip(batches, format, shape);
        expect(stats.spansWithInvalidId).toBe(0);
        expect(stats.spansWithoutService).toBe(0);
        expect(stats.spans).toBe(originalRows.length);
        expect(stats.messages).toBe(messages);
        if (shape === "span" || format === "span_log") expect(messages).toBe(originalRows.length);
        // partitions are kept batch by batch
        expect(decoded.map((b) => b.partition)).toEqual(batches.map((b) => b.partition));
        const got = sorted(allRows(decoded));
        const want = originalRows.map((r) => expected(r, format, shape));
        expect(got.length).toBe(want.length);
        for (let k = 0; k < got.length; k++) {
          if (JSON.stringify(got[k]) !== JSON.stringify(want[k])) expect(got[k]).toEqual(want[k]); // one readable diff
        }
      });
    }
  }

  it("folding the decoded otlp_proto rows gives exactly the generator's truth edges", () => {
    const { gen: g, batches: bs } = generate(60_000, 5);
    const { decoded } = roundTrip(bs, "otlp_proto", "batch");
    const got = edgeSums(fold(decoded));
    const truth = new Map([...g.truth.edges].sort(([a], [b]) => (a < b ? -1 : 1)));
    expect([...got.keys()]).toEqual([...truth.keys()]);
    for (const [k, t] of truth) {
      const e = got.get(k)!;
      expect({ key: k, ...e }).toEqual({
        key: k,
        calls: t.calls,
        clientCalls: t.clientCalls,
        serverCalls: t.serverCalls,
        paired: t.paired,
        failed: t.failed,
        failedClient: t.failedClient,
        failedServer: t.failedServer,
      });
    }
    // and the whole per-minute output (latency included) equals folding the original rows
    const norm = (d: FoldDeltas) => JSON.stringify([...d.edges].sort((a, b) => `${a.minute}|${a.client}|${a.server}|${a.type}`.localeCompare(`${b.minute}|${b.client}|${b.server}|${b.type}`)));
    expect(norm(fold(decoded))).toBe(norm(fold(bs)));
  });

  it("the stream is realistic: ~200-span batches, several traces per message, the truth is non-trivial", () => {
    const { messages } = roundTrip(batches, "otlp_proto", "batch");
    expect(messages).toBeLessThan(originalRows.length / 150);
    expect(gen.truth.edges.size).toBeGreaterThan(20);
  });
});

// ----------------------------------------------------------------------------------------------
// Hand-made rows for what the generator never produces: links, shared spans, absent times,
// fractional durations, unicode and JSON-hostile names, empty names, UNSPECIFIED kinds.

const T1 = "4bf92f3577b34da6a3ce929d0e0e4736";
const T2 = "9a1c03e4c1f2b8d7e6a5f40312b7c6d5";
const START = Date.UTC(2026, 0, 1) * 1000 + 123_456;

interface EdgeRow {
  tid: string;
  sid: string;
  pid?: string;
  link?: [string, string];
  kind: number;
  flags?: number;
  start?: number;
  dur?: number;
  service: string;
  name?: string;
  attrs?: Partial<Record<"peer" | "addr" | "dbSystem" | "dbNamespace" | "msgDest" | "route", string>>;
}

function edgeBatch(): SpanBatch {
  const specs: EdgeRow[] = [
    { tid: T1, sid: "00f067aa0ba902b7", kind: KIND_SERVER, start: START, dur: 1234, service: "checkout", name: "GET /cart", attrs: { route: "/cart" } },
    { tid: T1, sid: "00f067aa0ba902b8", pid: "00f067aa0ba902b7", kind: KIND_CLIENT, flags: F_ERROR, start: START + 10, dur: 812.5, service: "checkout", name: "SELECT orders", attrs: { dbSystem: "postgresql", dbNamespace: "shop", addr: "pg-1" } },
    { tid: T1, sid: "00f067aa0ba902b9", pid: "00f067aa0ba902b7", kind: KIND_CLIENT, start: START + 20, dur: 300, service: "checkout", name: "cart.Get", attrs: { peer: "cart", addr: "cart.svc" } },
    { tid: T1, sid: "00f067aa0ba902b9", pid: "00f067aa0ba902b7", kind: KIND_SERVER, flags: F_SHARED | F_ERROR, start: START + 30, dur: 250, service: "cart", name: "cart.Get" },
    { tid: T1, sid: "00f067aa0ba902c0", pid: "00f067aa0ba902b7", kind: KIND_PRODUCER, flags: F_NO_DURATION, start: START + 40, service: "checkout", name: "orders send", attrs: { msgDest: "orders" } },
    { tid: T1, sid: "00f067aa0ba902c1", pid: "00f067aa0ba902b7", kind: KIND_INTERNAL, flags: F_NO_START | F_NO_DURATION, service: "checkout", name: 'render "café" 名前 \\ \n' },
    { tid: T2, sid: "1b2c3d4e5f607182", kind: KIND_CONSUMER, flags: F_HAS_LINK, link: [T1, "00f067aa0ba902c0"], start: START + 5_000_000, dur: 2100.25, service: "billing", name: "orders process", attrs: { msgDest: "orders" } },
    { tid: T2, sid: "1b2c3d4e5f607183", pid: "1b2c3d4e5f607182", kind: KIND_UNSPECIFIED, start: START + 5_000_100, dur: 0.5, service: "billing" },
  ];
  const b = new SpanBatch(new Interner(), 2);
  for (const s of specs) {
    const i = b.append();
    parseHexWords(s.tid, b.tid, i * 4, 4);
    parseHexWords(s.sid, b.sid, i * 2, 2);
    let flags = s.flags ?? 0;
    if (s.pid !== undefined) {
      parseHexWords(s.pid, b.pid, i * 2, 2);
      flags |= F_HAS_PARENT;
    }
    if (s.link !== undefined) {
      parseHexWords(s.link[0], b.lnkTid, i * 4, 4);
      parseHexWords(s.link[1], b.lnkSid, i * 2, 2);
    }
    b.flags[i] = flags;
    b.kind[i] = s.kind;
    b.startUs[i] = s.start ?? 0;
    b.durUs[i] = s.dur ?? 0;
    const id = (v: string | undefined) => (v === undefined ? 0 : b.interner.internString(v));
    b.service[i] = id(s.service);
    b.name[i] = id(s.name);
    b.peer[i] = id(s.attrs?.peer);
    b.addr[i] = id(s.attrs?.addr);
    b.dbSystem[i] = id(s.attrs?.dbSystem);
    b.dbNamespace[i] = id(s.attrs?.dbNamespace);
    b.msgDest[i] = id(s.attrs?.msgDest);
    b.route[i] = id(s.attrs?.route);
  }
  return b;
}

describe("encoders: links, shared spans, absent times, fractions, unicode", () => {
  const b = edgeBatch();
  const original = sorted(allRows([b]));

  for (const format of FORMATS) {
    for (const shape of SHAPES) {
      it(`${format}, one ${shape} per message`, () => {
        const { decoded, stats } = roundTrip([b], format, shape);
        expect(stats.spans).toBe(b.length);
        expect(sorted(allRows(decoded))).toEqual(original.map((r) => expected(r, format, shape)));
      });
    }
  }

  it("span_log is one line per record, and the file form decodes line by line", () => {
    const text = new TextDecoder().decode(encodeSpanLog(b));
    const lines = text.split("\n");
    expect(lines.pop()).toBe("");
    expect(lines.length).toBe(b.length);
    const out = new SpanBatch(new Interner());
    for (const l of lines) DECODERS.span_log(new TextEncoder().encode(l), out, new DecodeStats());
    expect(sorted(allRows([out]))).toEqual(original);
  });

  it("jaeger_json: the query-API document groups spans by trace with a processes map", () => {
    const doc = JSON.parse(new TextDecoder().decode(encodeJaegerJson(b)));
    expect(doc.data.map((t: { traceID: string }) => t.traceID)).toEqual([T1, T2]);
    expect(Object.values(doc.data[0].processes).map((p) => (p as { serviceName: string }).serviceName)).toEqual(["checkout", "cart"]);
  });

  it("a nested message longer than 127 bytes gets a canonical multi-byte length (the body is shifted)", () => {
    const big = new SpanBatch(new Interner(), 1);
    const i = big.append();
    parseHexWords(T1, big.tid, 0, 4);
    parseHexWords("00f067aa0ba902b7", big.sid, 0, 2);
    big.kind[i] = KIND_SERVER;
    big.startUs[i] = START;
    big.durUs[i] = 5;
    big.service[i] = big.interner.internString("s".repeat(300));
    big.name[i] = big.interner.internString("n".repeat(20_000));
    const out = new SpanBatch(new Interner());
    DECODERS.otlp_proto(encodeOtlp(big), out, new DecodeStats());
    expect(row(out, 0)).toEqual(row(big, 0));
  });
});

// ----------------------------------------------------------------------------------------------
// The official OTLP protobuf decoder (protobufjs static code generated from opentelemetry-proto).

interface PbKeyValue { key: string; value: { stringValue?: string } }
interface PbSpan {
  traceId: Uint8Array; spanId: Uint8Array; parentSpanId: Uint8Array; name: string; kind: number;
  startTimeUnixNano: string; endTimeUnixNano: string; attributes: PbKeyValue[];
  links: Array<{ traceId: Uint8Array; spanId: Uint8Array; flags: number }>; status?: { code?: number }; flags: number;
}
interface PbRequest { resourceSpans: Array<{ resource: { attributes: PbKeyValue[] }; scopeSpans: Array<{ scope: { name: string }; spans: PbSpan[] }> }> }
interface PbType { decode(b: Uint8Array): unknown; toObject(m: unknown, o: object): PbRequest }

const require = createRequire(import.meta.url);
const pbRoot = require("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
  opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: PbType } } } } };
};
const ExportTraceServiceRequest = pbRoot.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

describe("otlp_proto bytes read by the official generated OTLP decoder", () => {
  const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");

  it("resources, scopes, ids, nanosecond times, kinds, attributes, links, status and flags", () => {
    const b = edgeBatch();
    const req = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(encodeOtlp(b)), { longs: String, defaults: true });
    expect(req.resourceSpans.map((rs) => rs.resource.attributes)).toEqual(
      ["checkout", "cart", "billing"].map((s) => [{ key: "service.name", value: { stringValue: s } }]),
    );
    const spans = req.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    expect(req.resourceSpans.every((rs) => rs.scopeSpans.length === 1 && rs.scopeSpans[0].scope.name === "tracefold.replay")).toBe(true);
    expect(spans.length).toBe(b.length);
    const byId = new Map(spans.map((s) => [`${hex(s.spanId)}/${s.kind}`, s]));
    const get = (sid: string, kind: number) => byId.get(`${sid}/${kind}`)!;

    const db = get("00f067aa0ba902b8", KIND_CLIENT);
    expect(hex(db.traceId)).toBe(T1);
    expect(hex(db.parentSpanId)).toBe("00f067aa0ba902b7");
    expect(db.name).toBe("SELECT orders");
    // exact nanoseconds: 812.5 us of duration is 812500 ns
    const startNs = BigInt(START + 10) * 1000n;
    expect(db.startTimeUnixNano).toBe(String(startNs));
    expect(db.endTimeUnixNano).toBe(String(startNs + 812_500n));
    expect(db.attributes).toEqual([
      { key: "server.address", value: { stringValue: "pg-1" } },
      { key: "db.system", value: { stringValue: "postgresql" } },
      { key: "db.name", value: { stringValue: "shop" } },
    ]);
    expect(db.status?.code).toBe(2);
    expect(db.flags).toBe(0x101);

    const root = get("00f067aa0ba902b7", KIND_SERVER);
    expect(root.parentSpanId.length).toBe(0);
    expect(root.status?.code ?? 0).toBe(0);
    const shared = get("00f067aa0ba902b9", KIND_SERVER);
    expect(shared.flags).toBe(0x301); // a server with a parent: the parent is remote

    const consumer = get("1b2c3d4e5f607182", KIND_CONSUMER);
    expect(consumer.links.map((l) => [hex(l.traceId), hex(l.spanId), l.flags])).toEqual([[T1, "00f067aa0ba902c0", 0x101]]);
    expect(consumer.attributes).toEqual([{ key: "messaging.destination.name", value: { stringValue: "orders" } }]);

    const noTimes = get("00f067aa0ba902c1", KIND_INTERNAL);
    expect(noTimes.name).toBe('render "café" 名前 \\ \n');
    expect([noTimes.startTimeUnixNano, noTimes.endTimeUnixNano]).toEqual(["0", "0"]);
    const producer = get("00f067aa0ba902c0", KIND_PRODUCER);
    expect(producer.endTimeUnixNano).toBe("0");
    const unspecified = get("1b2c3d4e5f607183", KIND_UNSPECIFIED);
    expect(unspecified.name).toBe("");
  });

  it("every generator message: the span count and every span id agree with the lazy decoder", () => {
    for (const batch of batches.slice(0, 4)) {
      for (const m of messagesFromBatch(batch, "batch", 200)) {
        const req = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(m), { longs: String });
        const ids = req.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => hex(s.spanId))));
        const out = new SpanBatch(new Interner());
        DECODERS.otlp_proto(m, out, new DecodeStats());
        expect(ids).toEqual(allRows([out]).map((r) => r.sid));
      }
    }
  });
});
