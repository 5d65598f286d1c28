/**
 * One trace made by the real OpenTelemetry JS SDK, written in every input format (test/support/
 * sdk-trace.ts), decoded by every decoder and folded: the same trace must give the same rows and
 * the same topology whatever format it came in.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { BasicTracerProvider, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";

import { DECODERS, frameFile } from "../operators/decode/index.js";
import { DecodeStats, FORMATS, type FormatName } from "../operators/decode/types.js";
import type { ReportEdge, ReportService, TopologyReport } from "../operators/fold/report.js";
import { DecodeError } from "../pipeline/errors.js";
import { Interner } from "../pipeline/intern.js";
import {
  F_ERROR,
  F_HAS_LINK,
  F_HAS_PARENT,
  F_NO_DURATION,
  F_NO_START,
  F_SHARED,
  KIND_INTERNAL,
  KIND_UNSPECIFIED,
  SpanBatch,
  spanIdHex,
  traceIdHex,
} from "../pipeline/span-batch.js";
import { FoldDriver } from "./support/fold-driver.js";
import { T0, buildSdkTrace, zipkinExporterBody, type ExpectedSpan, type SdkTraceFixture } from "./support/sdk-trace.js";

function decodeFile(format: FormatName, bytes: Uint8Array, out: SpanBatch, stats = new DecodeStats()): DecodeStats {
  for (const { start, end } of frameFile(format, bytes)) DECODERS[format](bytes.subarray(start, end), out, stats);
  return stats;
}

/** A row as plain data: hex ids, resolved names. */
function row(b: SpanBatch, i: number) {
  const f = b.flags[i];
  const n = (id: number) => (id === 0 ? "" : b.interner.name(id));
  return {
    traceId: traceIdHex(b.tid, i * 4),
    spanId: spanIdHex(b.sid, i * 2),
    parentSpanId: f & F_HAS_PARENT ? spanIdHex(b.pid, i * 2) : "",
    startUs: b.startUs[i],
    durUs: b.durUs[i],
    kind: b.kind[i],
    flags: f,
    error: (f & F_ERROR) !== 0,
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
type Row = ReturnType<typeof row>;

function rows(b: SpanBatch): Row[] {
  const r: Row[] = [];
  for (let i = 0; i < b.length; i++) r.push(row(b, i));
  return r;
}

/**
 * The kind a format can carry for an expected span. Zipkin v2 has no INTERNAL kind: the OTel Zipkin
 * exporter leaves `kind` out, and a span with no kind and no remote endpoint is UNSPECIFIED.
 */
function kindIn(format: FormatName, e: ExpectedSpan): number {
  return format === "zipkin_json" && e.kind === KIND_INTERNAL ? KIND_UNSPECIFIED : e.kind;
}

function foldReport(format: FormatName, bytes: Uint8Array): TopologyReport {
  const d = new FoldDriver();
  const b = new SpanBatch(d.interner);
  decodeFile(format, bytes, b);
  d.fold.processBatch(b);
  d.finish();
  return d.report();
}

let fx: SdkTraceFixture;
beforeAll(async () => {
  fx = await buildSdkTrace();
});

describe("the SDK fixture", () => {
  it("is the trace the fixture describes", () => {
    expect(fx.expected.spans).toHaveLength(13);
    expect(fx.expected.services).toEqual(["checkout", "frontend", "inventory", "payments"]);
    const k = fx.expected.byKey;
    // context propagated the way instrumentation does it: every server/consumer half's parent is its caller's span
    expect(k["co.server"].parentSpanId).toBe(k["fe.toCheckout"].spanId);
    expect(k["inv.server"].parentSpanId).toBe(k["co.toInventory"].spanId);
    expect(k["pay.server"].parentSpanId).toBe(k["co.toPayments"].spanId);
    expect(k["inv.consume"].parentSpanId).toBe(k["co.produce"].spanId);
    expect(k["fe.root"].parentSpanId).toBe("");
    // fixed times: T0 = 2026-01-01T00:00:10.9995Z
    expect(k["fe.root"].startUs).toBe(Date.UTC(2026, 0, 1, 0, 0, 10) * 1000 + 999_500);
    expect(T0).toEqual([1767225610, 999_500_000]);
    expect(k["fe.toCheckout"].startUs).toBe(1767225611004623);
    expect(k["fe.toCheckout"].durUs).toBe(104_877);
    // exporters send children before parents
    const order = fx.expected.spans.map((s) => s.key);
    expect(order.indexOf("fe.render")).toBeLessThan(order.indexOf("fe.root"));
    expect(order.indexOf("pay.server")).toBeLessThan(order.indexOf("co.toPayments"));
  });

  it("is what the real exporters send", () => {
    const zipkin = JSON.parse(new TextDecoder().decode(fx.zipkin_json)) as Array<Record<string, any>>;
    expect(zipkin).toHaveLength(13);
    const failed = zipkin.find((s) => s.id === fx.expected.byKey["pay.server"].spanId)!;
    expect(failed.tags).toMatchObject({ "otel.status_code": "ERROR", error: "card declined" });
    // no remoteEndpoint: peer.service travels as a plain tag
    const ext = zipkin.find((s) => s.id === fx.expected.byKey["co.toPaymentsExt"].spanId)!;
    expect(ext.remoteEndpoint).toBeUndefined();
    expect(ext.tags).toMatchObject({ "peer.service": "payments-ext", "http.response.status_code": "500" });
    expect(ext.tags.error).toBeUndefined();
    // the OTLP body carries Span.flags (field 16, fixed32: tag 0x85 0x01), which the decoder must skip
    const body = Buffer.from(fx.otlp_proto);
    expect(body.includes(Buffer.from([0x85, 0x01, 0x01, 0x01, 0x00, 0x00]))).toBe(true);
  });
});

describe("every decoder reads the SDK trace", () => {
  it.each(FORMATS.map((f) => [f]))("%s: spans, ids, parents, kinds, times, errors, attributes", (format) => {
    const b = new SpanBatch(new Interner(), 4);
    const stats = decodeFile(format, fx[format], b);
    expect(b.length).toBe(13);
    expect(stats).toMatchObject({ spans: 13, malformedMessages: 0, spansWithoutService: 0, spansWithInvalidId: 0 });
    const got = rows(b);
    for (const e of fx.expected.spans) {
      const r = got.filter((x) => x.spanId === e.spanId);
      expect(r, `${format} ${e.key}`).toHaveLength(1);
      expect(r[0], `${format} ${e.key}`).toEqual({
        traceId: fx.expected.traceId,
        spanId: e.spanId,
        parentSpanId: e.parentSpanId,
        // microsecond times, exact (the trace crosses a second boundary; OTLP's 19-digit nanoseconds do not fit a double)
        startUs: e.startUs,
        durUs: e.durUs,
        kind: kindIn(format, e),
        flags: (e.parentSpanId ? F_HAS_PARENT : 0) | (e.error ? F_ERROR : 0),
        error: e.error,
        service: e.service,
        name: e.name,
        peer: e.peer,
        addr: e.addr,
        dbSystem: e.dbSystem,
        dbNamespace: e.dbNamespace,
        msgDest: e.msgDest,
        route: e.route,
      });
    }
    // no row is shared, linked or missing a time
    for (const r of got) expect(r.flags & (F_SHARED | F_HAS_LINK | F_NO_START | F_NO_DURATION)).toBe(0);
  });

  it.each(FORMATS.map((f) => [f]))("%s: kinds per service, failures by status only, attributes interned", (format) => {
    const interner = new Interner();
    const b = new SpanBatch(interner, 4);
    decodeFile(format, fx[format], b);
    const got = rows(b);
    const kinds = (svc: string) => got.filter((r) => r.service === svc).map((r) => r.kind).sort();
    const internal = format === "zipkin_json" ? KIND_UNSPECIFIED : KIND_INTERNAL;
    expect(kinds("frontend")).toEqual([internal, 2, 3].sort());
    expect(kinds("checkout")).toEqual([2, 3, 3, 3, 3, 4]);
    expect(kinds("inventory")).toEqual([2, 3, 5]);
    expect(kinds("payments")).toEqual([2]);

    const k = fx.expected.byKey;
    const by = (key: keyof typeof k) => got.find((r) => r.spanId === k[key].spanId)!;
    // ERROR status only: the failed server half, not its client half, and not the 500 without ERROR
    expect(got.filter((r) => r.error).map((r) => r.spanId)).toEqual([k["pay.server"].spanId]);
    expect(by("co.toPayments").error).toBe(false);
    expect(by("co.toPaymentsExt").error).toBe(false);

    // the attributes the fold reads are interned once per distinct value, in the batch's interner
    const i = got.indexOf(by("co.toPaymentsExt"));
    expect(b.peer[i]).toBe(interner.lookup("payments-ext"));
    expect(b.addr[i]).toBe(interner.lookup("api.payments-ext.example"));
    const db = got.indexOf(by("inv.db"));
    expect(b.dbSystem[db]).toBe(interner.lookup("postgresql"));
    expect(b.dbNamespace[db]).toBe(interner.lookup("inventory"));
    expect(b.addr[db]).toBe(interner.lookup("pg-inventory.internal"));
    expect(b.dbSystem[got.indexOf(by("co.redis"))]).toBe(interner.lookup("redis"));
    const prod = got.indexOf(by("co.produce"));
    const cons = got.indexOf(by("inv.consume"));
    expect(b.msgDest[prod]).toBeGreaterThan(1);
    expect(b.msgDest[prod]).toBe(b.msgDest[cons]);
    expect(b.msgDest[prod]).toBe(interner.lookup("order-events"));
    // the service name is one intern id for all spans of a service
    expect(new Set(got.filter((r) => r.service === "checkout").map((r) => b.service[got.indexOf(r)])).size).toBe(1);
  });
});

const lat = (ms: number) => ({ count: 1, p50Ms: ms, p99Ms: ms, maxMs: ms });
const none = { count: 0, p50Ms: null, p99Ms: null, maxMs: null };

function edge(client: string, server: string, type: ReportEdge["type"], e: Partial<ReportEdge>): ReportEdge {
  return {
    client, server, type,
    calls: 1, clientCalls: 0, serverCalls: 0, paired: 0, failed: 0, failedClient: 0, failedServer: 0,
    clientLatency: none, serverLatency: none,
    ...e,
  };
}

/**
 * The topology of the fixture trace by DESIGN.md section 3, written out by hand.
 */
const EXPECTED_EDGES: ReportEdge[] = [
  // PRODUCER -> CONSUMER paired through the consumer's parent: messaging; lag = consumer start - producer end
  edge("checkout", "inventory", "messaging", { clientCalls: 1, serverCalls: 1, paired: 1, clientLatency: lat(2), serverLatency: lat(10), lag: lat(53) }),
  edge("checkout", "inventory", "rpc", { clientCalls: 1, serverCalls: 1, paired: 1, clientLatency: lat(20), serverLatency: lat(18) }),
  // the failed server half: failed and failedServer, not failedClient
  edge("checkout", "payments", "rpc", { clientCalls: 1, serverCalls: 1, paired: 1, failed: 1, failedServer: 1, clientLatency: lat(45), serverLatency: lat(43) }),
  // lone CLIENT -> virtual server named by peer.service (before server.address); its 500 without ERROR is not a failure
  edge("checkout", "payments-ext", "virtual", { clientCalls: 1, clientLatency: lat(9) }),
  // database CLIENT with only db.system.name: named after the system
  edge("checkout", "redis", "database", { clientCalls: 1, clientLatency: lat(0.75) }),
  edge("frontend", "checkout", "rpc", { clientCalls: 1, serverCalls: 1, paired: 1, clientLatency: lat(104.877), serverLatency: lat(102.5) }),
  // database CLIENT: server.address wins over db.name and db.system
  edge("inventory", "pg-inventory.internal", "database", { clientCalls: 1, clientLatency: lat(7.333) }),
  // the root SERVER span: a call from the virtual client user
  edge("user", "frontend", "virtual", { serverCalls: 1, serverLatency: lat(120) }),
];

function service(name: string, s: Partial<ReportService>): ReportService {
  return {
    name, spans: 0, serverCalls: 0, failures: 0, orphanSpans: 0, unpairedClient: 0, unpairedServer: 0,
    duplicateSpans: 0, lateSpans: 0, traces: 1, connectedTraces: 1, connectivityRate: 1, operations: 0,
    ...s,
  };
}

const EXPECTED_SERVICES: ReportService[] = [
  // the virtual-edge client counts as an unpaired client half; the redis call does not
  service("checkout", { spans: 6, serverCalls: 1, unpairedClient: 1, operations: 4 }), // /api/orders, GET, POST, order-events publish
  service("frontend", { spans: 3, serverCalls: 1, operations: 3 }), // /checkout, render cart, POST
  service("inventory", { spans: 3, serverCalls: 2, operations: 3 }), // /stock/{sku}, SELECT inventory.stock, order-events process (SERVER and CONSUMER are server calls)
  service("payments", { spans: 1, serverCalls: 1, failures: 1, operations: 1 }), // /payments
];

const EXPECTED_CONNECTIVITY = { traces: 1, connected: 1, rate: 1, orphanSpans: 0, duplicateSpans: 0, lateSpans: 0, cut: 0, evicted: 0 };

describe("the same trace in every format folds to the same topology", () => {
  let reference: TopologyReport;
  beforeAll(() => {
    reference = foldReport("otlp_proto", fx.otlp_proto);
  });

  it("otlp_proto folds to the topology DESIGN.md section 3 gives", () => {
    expect(reference.edges).toEqual(EXPECTED_EDGES);
    expect(reference.services).toEqual(EXPECTED_SERVICES);
    expect(reference.connectivity).toEqual(EXPECTED_CONNECTIVITY);
    expect(reference).toMatchObject({ spans: 13, traces: 1 });
  });

  it.each(FORMATS.filter((f) => f !== "otlp_proto").map((f) => [f]))("%s folds exactly as otlp_proto does", (format) => {
    const r = foldReport(format, fx[format]);
    expect(r).toEqual(reference);
    expect(r.edges).toEqual(EXPECTED_EDGES);
    expect(r.services).toEqual(EXPECTED_SERVICES);
    expect(r.connectivity).toEqual(EXPECTED_CONNECTIVITY);
  });

  it("does not depend on the ids: the SDK's random ids fold to the same topology", async () => {
    const rnd = await buildSdkTrace({ randomIds: true });
    expect(rnd.expected.traceId).not.toBe(fx.expected.traceId);
    for (const format of FORMATS) expect(foldReport(format, rnd[format]), format).toEqual(reference);
  });

  it("does not depend on the message shape: the spans one per message fold the same", () => {
    // one OTLP request per span, as a per-span exporter would send them
    const d = new FoldDriver();
    const b = new SpanBatch(d.interner);
    for (const s of fx.spans) DECODERS.otlp_proto(ProtobufTraceSerializer.serializeRequest([s])!, b, new DecodeStats());
    d.fold.processBatch(b);
    d.finish();
    expect(d.report()).toEqual(reference);
  });
});

describe("malformed otlp_proto", () => {
  function expectDecodeError(bytes: Uint8Array, offsetCheck: (offset: number) => void): void {
    const b = new SpanBatch(new Interner(), 4);
    const stats = new DecodeStats();
    DECODERS.otlp_proto(fx.otlp_proto, b, stats); // rows already in the batch must survive
    expect(b.length).toBe(13);
    let err: unknown;
    try {
      DECODERS.otlp_proto(bytes, b, stats);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DecodeError);
    const de = err as DecodeError;
    expect(de.code).toBe("TF_DECODE_MALFORMED");
    expect(de.format).toBe("otlp_proto");
    expect(de.message).toMatch(/^otlp_proto: malformed message at byte \d+: /);
    expect(de.message).toContain(`at byte ${de.offset}:`);
    expect(Number.isInteger(de.offset) && de.offset >= 0 && de.offset <= bytes.length).toBe(true);
    offsetCheck(de.offset);
    // the batch is as it was, the stats count no span of the bad message
    expect(b.length).toBe(13);
    expect(stats.spans).toBe(13);
    // and a valid message decoded right after still works
    DECODERS.otlp_proto(fx.otlp_proto, b, stats);
    expect(b.length).toBe(26);
    expect(rows(b).slice(13)).toEqual(rows(b).slice(0, 13));
  }

  /** Where the first ResourceSpans ends (the body is a run of field-1 ResourceSpans). */
  function firstResourceSpansEnd(body: Uint8Array): number {
    expect(body[0]).toBe(0x0a);
    let len = 0;
    let shift = 0;
    let p = 1;
    for (;;) {
      const c = body[p++];
      len += (c & 0x7f) * 2 ** shift;
      if ((c & 0x80) === 0) break;
      shift += 7;
    }
    return p + len;
  }

  it.each([1, 2, 3, 17, 100, 0.5, -1])("throws with a byte offset when the body is cut at %s", (cut) => {
    const body = fx.otlp_proto;
    const firstEnd = firstResourceSpansEnd(body);
    // cut inside a message, never on a ResourceSpans boundary (the head of a request is a valid request)
    const at = cut === 0.5 ? Math.floor(firstEnd / 2) : cut === -1 ? body.length - 1 : cut;
    expect(at < firstEnd || at === body.length - 1).toBe(true);
    expectDecodeError(body.slice(0, at), (offset) => expect(offset).toBeLessThanOrEqual(at));
  });

  it("throws at the tag when a span field's wire type is flipped", () => {
    const body = new Uint8Array(fx.otlp_proto); // a copy (Buffer#slice would be a view)
    // the first span: trace_id (0x0a 0x10 + 16 bytes), then span_id (0x12 0x08 + 8 bytes)
    const tid = Buffer.from(fx.expected.traceId, "hex");
    const needle = Buffer.concat([Buffer.from([0x0a, 0x10]), tid]);
    const at = Buffer.from(body).indexOf(needle);
    expect(at).toBeGreaterThan(0);
    const sidTag = at + needle.length;
    expect(body[sidTag]).toBe(0x12); // field 2, wire type 2 (bytes)
    body[sidTag] = 0x10; // field 2, wire type 0 (varint)
    expectDecodeError(body, (offset) => expect(offset).toBe(sidTag));
  });

  it("throws at byte 0 when the request's first tag has an invalid wire type", () => {
    const body = new Uint8Array(fx.otlp_proto);
    body[0] = 0x0b; // field 1, wire type 3 (start group)
    expectDecodeError(body, (offset) => expect(offset).toBe(0));
  });
});

describe("known difference: Zipkin from the OTel JS exporter", () => {
  /**
   * The OTel JS Zipkin exporter writes the `error` tag only when an ERROR status has a message; a
   * message-less ERROR (what HTTP instrumentations set for a 5xx) becomes only otel.status_code=ERROR.
   * tracefold's zipkin_json decoder reads failure from the `error` tag alone (DESIGN.md section 3), so
   * such a span is failed in OTLP and Jaeger but not in Zipkin. The fixture gives its ERROR a message.
   */
  it("an ERROR status without a message reaches Zipkin as otel.status_code only, and still fails the half", async () => {
    const finished: ReadableSpan[] = [];
    const collect: SpanProcessor = {
      onStart() {},
      onEnd: (s) => void finished.push(s),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
    const tracer = new BasicTracerProvider({ resource: resourceFromAttributes({ "service.name": "solo" }), spanProcessors: [collect] }).getTracer("t");
    const span = tracer.startSpan("GET /boom", { kind: SpanKind.SERVER, startTime: T0, attributes: { "http.response.status_code": 500 } });
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.end([T0[0] + 1, T0[1]]);

    const zipkin = await zipkinExporterBody(finished);
    const tags = (JSON.parse(new TextDecoder().decode(zipkin)) as Array<{ tags: Record<string, string> }>)[0].tags;
    expect(tags["otel.status_code"]).toBe("ERROR");
    expect(tags.error).toBeUndefined();

    const fromZipkin = new SpanBatch(new Interner());
    DECODERS.zipkin_json(zipkin, fromZipkin, new DecodeStats());
    const fromOtlp = new SpanBatch(new Interner());
    DECODERS.otlp_proto(ProtobufTraceSerializer.serializeRequest(finished)!, fromOtlp, new DecodeStats());
    expect(fromOtlp.flags[0] & F_ERROR).toBe(F_ERROR);
    // the OTel exporter's own marker survives the trip (docs/DECISIONS.md 9)
    expect(fromZipkin.flags[0] & F_ERROR).toBe(F_ERROR);
  });
});
