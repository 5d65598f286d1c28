/**
 * Golden cases: one per rule of DESIGN.md section 3, named after the behaviour they pin.
 */
import { describe, expect, it } from "vitest";
import { FoldDriver, type TestSpan } from "./support/fold-driver.js";
import { SpanBatch } from "../pipeline/span-batch.js";
import { DecodeStats } from "../operators/decode/types.js";
import { decodeZipkinJson } from "../operators/decode/zipkin-json.js";
import { decodeOtlpJson } from "../operators/decode/otlp-json.js";

const T = "0af7651916cd43dd8448eb211c80319c";
const T2 = "1bf7651916cd43dd8448eb211c80319d";

function rpc(opts: { clientError?: boolean; serverError?: boolean } = {}): TestSpan[] {
  // exporters send children before parents
  return [
    { trace: T, id: "b2", parent: "b1", service: "backend", kind: "server", at: 0.002, ms: 6, error: opts.serverError },
    { trace: T, id: "b1", parent: "a1", service: "frontend", kind: "client", at: 0.001, ms: 8, error: opts.clientError },
    { trace: T, id: "a1", service: "frontend", kind: "server", at: 0, ms: 10 },
  ];
}

describe("pairing", () => {
  it("pairs a client and a server half into one rpc call", () => {
    const d = new FoldDriver().send(rpc()).finish();
    const e = d.edge("frontend", "backend", "rpc")!;
    expect(e).toMatchObject({ calls: 1, clientCalls: 1, serverCalls: 1, paired: 1, failed: 0 });
    expect(e.clientLatency.count).toBe(1);
    expect(e.clientLatency.p50Ms).toBeCloseTo(8, 0);
    expect(e.serverLatency.p50Ms).toBeCloseTo(6, 0);
    expect(d.service("frontend")).toMatchObject({ unpairedClient: 0, orphanSpans: 0 });
    expect(d.report().connectivity).toMatchObject({ traces: 1, connected: 1, rate: 1 });
  });

  it("pairs halves that arrive in separate batches, server before client", () => {
    const [server, client, root] = rpc();
    const d = new FoldDriver().send([server]).send([root, client]).finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 1, paired: 1 });
  });

  it("counts a failed server half as failed and failedServer, not failedClient", () => {
    const d = new FoldDriver().send(rpc({ serverError: true })).finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 1, failed: 1, failedServer: 1, failedClient: 0 });
  });

  it("counts a call with both halves failed once in failed", () => {
    const d = new FoldDriver().send(rpc({ serverError: true, clientError: true })).finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 1, failed: 1, failedServer: 1, failedClient: 1 });
  });

  it("makes a loopback edge when a service calls itself", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "c2", parent: "c1", service: "svc", kind: "server", at: 0.001, ms: 1 },
        { trace: T, id: "c1", parent: "r1", service: "svc", kind: "client", at: 0.001, ms: 2 },
        { trace: T, id: "r1", service: "svc", kind: "server", at: 0, ms: 5 },
      ])
      .finish();
    expect(d.edge("svc", "svc", "rpc")).toMatchObject({ calls: 1, paired: 1 });
  });
});

describe("failure markers", () => {
  it("follows the instrumentation's marker and not the HTTP status code", () => {
    const span = (id: string, parent: string, kind: number, svc: string, code: number, http: number) => ({
      resource: { attributes: [{ key: "service.name", value: { stringValue: svc } }] },
      scopeSpans: [{ spans: [{
        traceId: T, spanId: id, parentSpanId: parent, name: "GET /x", kind,
        startTimeUnixNano: "1767225600000000000", endTimeUnixNano: "1767225600005000000",
        attributes: [{ key: "http.response.status_code", value: { intValue: String(http) } }],
        status: code ? { code } : {},
      }] }],
    });
    // OTel marks a 4xx on the client half only: client ERROR + 404, server UNSET + 404;
    // a 500 whose server half carries no ERROR status is not a failure of that half.
    const req = { resourceSpans: [
      span("00000000000000b1", "00000000000000a1", 3, "frontend", 2, 404),
      span("00000000000000b2", "00000000000000b1", 2, "backend", 0, 404),
      span("00000000000000c1", "00000000000000a1", 3, "frontend", 0, 500),
      span("00000000000000c2", "00000000000000c1", 2, "backend", 0, 500),
      span("00000000000000a1", "", 2, "frontend", 0, 200),
    ] };
    const d = new FoldDriver();
    const b = new SpanBatch(d.interner);
    decodeOtlpJson(new TextEncoder().encode(JSON.stringify(req)), b, new DecodeStats());
    d.fold.processBatch(b);
    d.finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 2, failed: 1, failedClient: 1, failedServer: 0 });
  });

  it("takes a Zipkin error tag whatever its value, and ignores an annotation named error", () => {
    const zipkin = [
      { traceId: T, id: "00000000000000a1", kind: "SERVER", name: "get", timestamp: 1767225600000000, duration: 10000, localEndpoint: { serviceName: "frontend" } },
      { traceId: T, id: "00000000000000b1", parentId: "00000000000000a1", kind: "CLIENT", name: "get", timestamp: 1767225600001000, duration: 5000, localEndpoint: { serviceName: "frontend" }, remoteEndpoint: { serviceName: "backend" }, tags: { error: "" } },
      { traceId: T, id: "00000000000000b1", parentId: "00000000000000a1", kind: "SERVER", shared: true, name: "get", timestamp: 1767225600002000, duration: 3000, localEndpoint: { serviceName: "backend" } },
      { traceId: T, id: "00000000000000c1", parentId: "00000000000000a1", kind: "CLIENT", name: "get", timestamp: 1767225600001000, duration: 5000, localEndpoint: { serviceName: "frontend" }, remoteEndpoint: { serviceName: "backend" }, annotations: [{ timestamp: 1767225600001500, value: "error" }] },
      { traceId: T, id: "00000000000000c1", parentId: "00000000000000a1", kind: "SERVER", shared: true, name: "get", timestamp: 1767225600002000, duration: 3000, localEndpoint: { serviceName: "backend" } },
    ];
    const d = new FoldDriver();
    const b = new SpanBatch(d.interner);
    decodeZipkinJson(new TextEncoder().encode(JSON.stringify(zipkin)), b, new DecodeStats());
    d.fold.processBatch(b);
    d.finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 2, paired: 2, failed: 1, failedClient: 1, failedServer: 0 });
  });
});

describe("one-sided edges", () => {
  it("names a database node by peer.service, then server.address, then db.namespace, then db.system", () => {
    const db = (id: string, attrs: Record<string, string>): TestSpan => ({ trace: T, id, parent: "a1", service: "orders", kind: "client", at: 0.001, ms: 1, attrs });
    const d = new FoldDriver()
      .send([
        db("d1", { "db.system": "postgresql", "db.name": "shop", "server.address": "pg-1", "peer.service": "orders-db" }),
        db("d2", { "db.system": "postgresql", "db.name": "shop", "server.address": "pg-1" }),
        db("d3", { "db.system.name": "postgresql", "db.namespace": "shop" }),
        db("d4", { "db.system": "redis" }),
        { trace: T, id: "a1", service: "orders", kind: "server", at: 0, ms: 5 },
      ])
      .finish();
    for (const node of ["orders-db", "pg-1", "shop", "redis"]) expect(d.edge("orders", node, "database")).toMatchObject({ calls: 1, paired: 0, clientCalls: 1 });
    // a database call is not an unpaired client half
    expect(d.service("orders")!.unpairedClient).toBe(0);
  });

  it("sends a lone client to a virtual server named by peer attributes, else unknown", () => {
    const c = (id: string, attrs: Record<string, string>, error = false): TestSpan => ({ trace: T, id, parent: "a1", service: "checkout", kind: "client", at: 0.001, ms: 2, attrs, error });
    const d = new FoldDriver()
      .send([
        c("v1", { "peer.service": "payments-ext", "server.address": "pay.example" }),
        c("v2", { "service.peer.name": "payments-ext" }, true),
        c("v3", { "server.address": "api.partner.example" }),
        c("v4", {}),
        { trace: T, id: "a1", service: "checkout", kind: "server", at: 0, ms: 5 },
      ])
      .finish();
    expect(d.edge("checkout", "payments-ext", "virtual")).toMatchObject({ calls: 2, paired: 0, failed: 1, failedClient: 1 });
    expect(d.edge("checkout", "api.partner.example", "virtual")).toMatchObject({ calls: 1 });
    expect(d.edge("checkout", "unknown", "virtual")).toMatchObject({ calls: 1 });
    expect(d.service("checkout")!.unpairedClient).toBe(4);
  });

  it("makes a root server span a call from the virtual client user, not an unpaired half", () => {
    const d = new FoldDriver().send([{ trace: T, id: "a1", service: "gateway", kind: "server", at: 0, ms: 5, error: true }]).finish();
    expect(d.edge("user", "gateway", "virtual")).toMatchObject({ calls: 1, serverCalls: 1, clientCalls: 0, paired: 0, failed: 1, failedServer: 1 });
    expect(d.service("gateway")).toMatchObject({ unpairedServer: 0, orphanSpans: 0, traces: 1, connectedTraces: 1 });
  });

  it("does not make an edge of a server half whose client never arrives", () => {
    const d = new FoldDriver().send([{ trace: T, id: "b2", parent: "b1", service: "backend", kind: "server", at: 0, ms: 5 }]).finish();
    expect(d.report().edges).toEqual([]);
    expect(d.service("backend")).toMatchObject({ unpairedServer: 1, orphanSpans: 1 });
    expect(d.report().connectivity).toMatchObject({ traces: 1, connected: 0 });
  });
});

describe("messaging", () => {
  it("pairs producer and consumer into a messaging call and measures queue lag", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "p1", parent: "a1", service: "orders", kind: "producer", at: 0.001, ms: 2, attrs: { "messaging.destination.name": "order-events" } },
        { trace: T, id: "a1", service: "orders", kind: "server", at: 0, ms: 5 },
        { trace: T, id: "q1", parent: "p1", service: "billing", kind: "consumer", at: 0.503, ms: 4 },
        // clock skew: consumer starts before its producer ended
        { trace: T2, id: "p2", service: "orders", kind: "producer", at: 1, ms: 10 },
        { trace: T2, id: "q2", parent: "p2", service: "billing", kind: "consumer", at: 1.005, ms: 4 },
      ])
      .finish();
    const e = d.edge("orders", "billing", "messaging")!;
    expect(e).toMatchObject({ calls: 2, paired: 2 });
    expect(e.lag!.count).toBe(2);
    expect(e.lag!.maxMs).toBeCloseTo(500, 0);
    expect(d.store.edges.size).toBeGreaterThan(0);
    const negative = [...d.store.edges.values()].reduce((n, r) => n + r.negativeLag, 0);
    expect(negative).toBe(1);
    expect(d.fold.counters.negativeLag).toBe(1);
  });

  it("sends a lone producer to peer.service, else messaging.destination.name, else unknown", () => {
    const p = (id: string, attrs: Record<string, string>): TestSpan => ({ trace: T, id, parent: "a1", service: "orders", kind: "producer", at: 0.001, ms: 1, attrs });
    const d = new FoldDriver()
      .send([
        p("p1", { "peer.service": "kafka-main", "messaging.destination.name": "order-events" }),
        p("p2", { "messaging.destination.name": "order-events" }),
        p("p3", {}),
        { trace: T, id: "a1", service: "orders", kind: "server", at: 0, ms: 5 },
      ])
      .finish();
    expect(d.edge("orders", "kafka-main", "messaging")).toMatchObject({ calls: 1, paired: 0 });
    expect(d.edge("orders", "order-events", "messaging")).toMatchObject({ calls: 1, paired: 0 });
    expect(d.edge("orders", "unknown", "messaging")).toMatchObject({ calls: 1, paired: 0 });
  });

  it("pairs a consumer with the producer its span link points to", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "p1", service: "orders", kind: "producer", at: 0, ms: 1 },
        { trace: T2, id: "q1", service: "billing", kind: "consumer", at: 0.01, ms: 3, link: { trace: T, id: "p1" } },
      ])
      .finish();
    expect(d.edge("orders", "billing", "messaging")).toMatchObject({ calls: 1, paired: 1 });
    expect(d.report().connectivity).toMatchObject({ traces: 2, connected: 2 });
  });
});

describe("Zipkin shapes", () => {
  it("pairs a shared span (server half reusing the client's id) and counts one root", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "b1", service: "backend", kind: "server", shared: true, at: 0.002, ms: 3 },
        { trace: T, id: "b1", service: "frontend", kind: "client", at: 0.001, ms: 5 },
      ])
      .finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 1, paired: 1 });
    expect(d.report().connectivity).toMatchObject({ traces: 1, connected: 1 });
  });

  it("counts a span without kind but with a remote endpoint as a client", () => {
    const zipkin = [
      { traceId: T, id: "00000000000000a1", kind: "SERVER", name: "get", timestamp: 1767225600000000, duration: 10000, localEndpoint: { serviceName: "web" } },
      { traceId: T, id: "00000000000000b1", parentId: "00000000000000a1", name: "query", timestamp: 1767225600001000, duration: 5000, localEndpoint: { serviceName: "web" }, remoteEndpoint: { serviceName: "app_db", port: 3306 } },
      { traceId: T, id: "00000000000000c1", parentId: "00000000000000a1", name: "local-work", timestamp: 1767225600001000, duration: 5000, localEndpoint: { serviceName: "web" } },
    ];
    const d = new FoldDriver();
    const b = new SpanBatch(d.interner);
    decodeZipkinJson(new TextEncoder().encode(JSON.stringify(zipkin)), b, new DecodeStats());
    d.fold.processBatch(b);
    d.finish();
    expect(d.edge("web", "app_db", "virtual")).toMatchObject({ calls: 1, clientCalls: 1 });
    expect(d.report().edges.map((e) => `${e.client}->${e.server}`).sort()).toEqual(["user->web", "web->app_db"]);
  });
});

describe("duplicates", () => {
  it("counts a duplicate once, also after its call paired, and ignores it everywhere else", () => {
    const spans = rpc();
    const d = new FoldDriver().send(spans).send([spans[0], spans[1]]).finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 1, paired: 1, serverCalls: 1 });
    expect(d.service("backend")).toMatchObject({ spans: 1, duplicateSpans: 1, unpairedServer: 0 });
    expect(d.service("frontend")).toMatchObject({ spans: 2, duplicateSpans: 1 });
    expect(d.report().connectivity).toMatchObject({ duplicateSpans: 2, connected: 1, traces: 1 });
    expect(d.fold.counters.duplicateSpans).toBe(2);
  });
});

describe("connectivity", () => {
  it("lets an orphan (parent never seen) break its trace", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "a1", service: "frontend", kind: "server", at: 0, ms: 10 },
        { trace: T, id: "e9", parent: "ffff", service: "worker", kind: "internal", at: 0.001, ms: 1 },
        { trace: T2, id: "a2", service: "frontend", kind: "server", at: 0, ms: 10 },
      ])
      .finish();
    expect(d.service("worker")).toMatchObject({ orphanSpans: 1, traces: 1, connectedTraces: 0 });
    expect(d.service("frontend")).toMatchObject({ traces: 2, connectedTraces: 1, connectivityRate: 0.5 });
    expect(d.report().connectivity).toMatchObject({ traces: 2, connected: 1, rate: 0.5, orphanSpans: 1 });
  });

  it("does not call a trace with two roots connected", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "a1", service: "frontend", kind: "server", at: 0, ms: 10 },
        { trace: T, id: "a2", service: "frontend", kind: "server", at: 0.5, ms: 10 },
      ])
      .finish();
    expect(d.report().connectivity).toMatchObject({ traces: 1, connected: 0, orphanSpans: 0 });
  });
});

describe("event time", () => {
  it("makes no edge of a late span and counts it in its own minute", () => {
    const d = new FoldDriver()
      .send([{ trace: T, id: "a1", service: "frontend", kind: "server", at: 0, ms: 10 }])
      // 3 minutes later: the watermark moves to ~2.5 min, closing everything before it
      .send([{ trace: T2, id: "a2", service: "frontend", kind: "server", at: 180, ms: 10 }])
      // a straggler of the first minute: its client half arrives after the watermark passed it
      .send([{ trace: "2cf7651916cd43dd8448eb211c80319e", id: "b1", parent: "a9", service: "frontend", kind: "client", at: 1, ms: 5, attrs: { "peer.service": "backend" } }]);
    d.finish();
    expect(d.edge("frontend", "backend")).toBeUndefined();
    const minutes = d.serviceMinutes("frontend");
    expect(minutes.map((m) => [m.minute - minutes[0].minute, m.spans, m.lateSpans])).toEqual([
      [0, 2, 1],
      [180_000, 1, 0],
    ]);
    expect(d.fold.counters.lateSpans).toBe(1);
  });

  it("treats a span of an already assembled trace as late", () => {
    const d = new FoldDriver()
      .send([{ trace: T, id: "a1", service: "frontend", kind: "server", at: 0, ms: 10 }])
      .send([{ trace: T2, id: "a2", service: "frontend", kind: "server", at: 70, ms: 10 }])
      // T was assembled (watermark 40 s > 0.01 s + 30 s gap); this span ends after the watermark
      .send([{ trace: T, id: "b1", parent: "a1", service: "frontend", kind: "client", at: 45, ms: 5 }])
      .finish();
    expect(d.fold.counters.lateSpans).toBe(1);
    expect(d.report().connectivity).toMatchObject({ traces: 2, connected: 2, lateSpans: 1 });
  });

  it("advances an idle partition's watermark by processing time and closes its windows", () => {
    const d = new FoldDriver({ idleTimeoutMs: 10_000 });
    d.send([{ trace: T, id: "b1", parent: "a1", service: "frontend", kind: "client", at: 0, ms: 5, attrs: { "peer.service": "ext" } }], 3);
    expect(d.edge("frontend", "ext")).toBeUndefined(); // still waiting for its server half
    d.tick(5_000);
    expect(d.edge("frontend", "ext")).toBeUndefined(); // not idle long enough
    d.tick(60_000); // idle: the watermark moves 65 s forward, past end + assembly window
    expect(d.edge("frontend", "ext", "virtual")).toMatchObject({ calls: 1 });
    expect(d.fold.watermarkLog).toHaveLength(1);
    expect(d.fold.watermarkLog[0].partition).toBe(3);
    expect(d.fold.counters.idleAdvances).toBe(1);
  });

  it("keeps watermarks per partition: a busy partition does not close another's windows", () => {
    const d = new FoldDriver();
    d.send([{ trace: T, id: "b1", parent: "a1", service: "frontend", kind: "client", at: 0, ms: 5, attrs: { "peer.service": "backend" } }], 0);
    d.send([{ trace: T2, id: "f1", service: "other", kind: "server", at: 600, ms: 5 }], 1);
    d.send([{ trace: T, id: "b2", parent: "b1", service: "backend", kind: "server", at: 0.001, ms: 3 }], 0);
    d.finish();
    expect(d.edge("frontend", "backend", "rpc")).toMatchObject({ calls: 1, paired: 1 });
  });
});

describe("budgets", () => {
  it("keeps the first N operations per service and folds the rest into __other__", () => {
    const d = new FoldDriver({ operationBudget: 2 });
    const spans: TestSpan[] = ["GET /a", "GET /b", "GET /c", "GET /d"].map((name, k) => ({ trace: T, id: `a${k + 1}`, service: "api", kind: "internal", name, at: k * 0.001, ms: 1 }));
    d.send(spans).finish();
    expect([...d.store.operations.get("api")!].sort()).toEqual(["GET /a", "GET /b", "__other__"]);
    const other = [...d.store.operationStats.values()].find((o) => o.operation === "__other__")!;
    expect(other.spans).toBe(2);
    expect(d.fold.counters.operationsOverBudget).toBe(2);
  });

  it("prefers http.route over the raw span name", () => {
    const d = new FoldDriver();
    d.send([{ trace: T, id: "a1", service: "api", kind: "server", name: "GET", at: 0, ms: 1, attrs: { "http.route": "/users/{id}" } }]).finish();
    expect([...d.store.operations.get("api")!]).toEqual(["/users/{id}"]);
  });

  it("keeps the first N virtual peers per service and folds the rest into __other__", () => {
    const d = new FoldDriver({ virtualNodeBudget: 1 });
    d.send([
      { trace: T, id: "c1", service: "api", kind: "client", at: 0, ms: 1, attrs: { "peer.service": "ext-a" } },
      { trace: T, id: "c2", service: "api", kind: "client", at: 0, ms: 1, attrs: { "peer.service": "ext-b" } },
      { trace: T, id: "c3", service: "api", kind: "client", at: 0, ms: 1, attrs: { "peer.service": "ext-c" } },
    ]).finish();
    expect(d.edge("api", "__other__", "virtual")).toMatchObject({ calls: 2 });
    expect(d.report().edges.filter((e) => e.client === "api").map((e) => e.server).sort()).toEqual(["__other__", "ext-a"]);
    expect(d.fold.counters.virtualNodesOverBudget).toBe(2);
  });

  it("cuts a trace past maxSpansPerTrace and counts the dropped spans", () => {
    const d = new FoldDriver({ maxSpansPerTrace: 2 });
    d.send([1, 2, 3, 4].map((k) => ({ trace: T, id: `a${k}`, service: "api", kind: "internal" as const, at: 0, ms: 1 }))).finish();
    expect(d.fold.counters.spansOverTraceLimit).toBe(2);
    expect(d.service("api")!.spans).toBe(2);
  });

  it("assembles the oldest trace early when a partition reaches maxPendingSpans, and counts it", () => {
    const d = new FoldDriver({ maxPendingSpans: 2 });
    d.send([
      { trace: T, id: "a1", service: "api", kind: "server", at: 0, ms: 1 },
      { trace: T, id: "a2", parent: "a1", service: "api", kind: "internal", at: 0, ms: 1 },
      { trace: T2, id: "b1", service: "api", kind: "server", at: 0.5, ms: 1 },
    ]).finish();
    expect(d.fold.counters.tracesEvicted).toBe(1);
    expect(d.report().connectivity).toMatchObject({ traces: 2, connected: 2, evicted: 1 });
  });
});

describe("kind-less input", () => {
  it("links parent -> child across two services when linkParentChild is on (Jaeger's dependency rule)", () => {
    const spans: TestSpan[] = [
      { trace: T, id: "a1", service: "frontend", kind: "unspecified", at: 0, ms: 10 },
      { trace: T, id: "b1", parent: "a1", service: "backend", kind: "unspecified", at: 0.001, ms: 5 },
      { trace: T, id: "b2", parent: "b1", service: "backend", kind: "unspecified", at: 0.002, ms: 1 },
    ];
    expect(new FoldDriver().send(spans).finish().report().edges).toEqual([]);
    const d = new FoldDriver({ linkParentChild: true }).send(spans).finish();
    expect(d.report().edges.map((e) => [e.client, e.server, e.type, e.calls])).toEqual([["frontend", "backend", "rpc", 1]]);
  });
});

describe("timestamps", () => {
  it("gives a half without a timestamp its partner's minute", () => {
    const d = new FoldDriver()
      .send([
        { trace: T, id: "b2", parent: "b1", service: "backend", kind: "server", at: null, ms: null },
        { trace: T, id: "b1", service: "frontend", kind: "client", at: 61, ms: 5 },
      ])
      .finish();
    const rows = [...d.store.edges.values()].filter((e) => e.type === "rpc");
    expect(rows).toHaveLength(1);
    expect(rows[0].calls).toBe(1);
    expect(new Date(rows[0].minute).toISOString()).toBe("2026-01-01T00:01:00.000Z");
  });
});
