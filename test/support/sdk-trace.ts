/**
 * One realistic trace made by the real OpenTelemetry JS SDK (sdk-trace-base 2.x), across several
 * services, then written in every input format tracefold reads:
 *
 * - otlp_proto / otlp_json: the exact bodies an OTLP/HTTP exporter sends (otlp-transformer's
 *   ProtobufTraceSerializer / JsonTraceSerializer);
 * - zipkin_json: the exact body @opentelemetry/exporter-zipkin POSTs (captured from a loopback HTTP
 *   server on 127.0.0.1; the exporter's transform is not part of its public API);
 * - jaeger_json: the Jaeger query-API document, built the way the Collector's OTLP -> Jaeger
 *   translator maps spans (span.kind tag, error=true for ERROR, otel.status_code, otel.scope.*,
 *   CHILD_OF parent reference first, links as FOLLOWS_FROM, resource attributes as process tags);
 * - span_log: tracefold's own NDJSON record (docs/FORMATS.md), one line per span.
 *
 * The SDK keeps the resource (service.name) per provider, so there is one BasicTracerProvider per
 * service. Context crosses services the way instrumentation does it: the caller injects a W3C
 * `traceparent` from its CLIENT/PRODUCER span's context, the callee extracts it and passes the
 * extracted (remote) context as the parent of its SERVER/CONSUMER span. Inside a service, children
 * get trace.setSpan(parentContext, parent). All times are fixed (HrTime start/end passed
 * explicitly); ids come from a deterministic IdGenerator unless `randomIds` is asked for.
 *
 * The trace (times in microseconds after T0 = 2026-01-01T00:00:10.9995Z; the trace crosses a
 * second boundary on purpose):
 *
 *   frontend  SERVER   GET /checkout          root, http.route=/checkout          [0, 120000]
 *   frontend  INTERNAL render cart                                                [1000, 3250]
 *   frontend  CLIENT   POST                   -> checkout                          [5123, 110000]
 *   checkout  SERVER   POST /api/orders       http.route=/api/orders               [6000, 108500]
 *   checkout  CLIENT   GET                    -> inventory                         [10000, 30000]
 *   inventory SERVER   GET /stock/{sku}       http.route=/stock/{sku}              [11000, 29000]
 *   inventory CLIENT   SELECT inventory.stock db.system=postgresql, db.name=inventory,
 *                                             server.address=pg-inventory.internal [13000, 20333]
 *   checkout  CLIENT   GET                    db.system.name=redis (newer names)   [31000, 31750]
 *   checkout  CLIENT   POST                   -> payments                          [35000, 80000]
 *   payments  SERVER   POST /payments         status ERROR "card declined"         [36000, 79000]
 *                                             (its client half has no ERROR)
 *   checkout  CLIENT   POST                   peer.service=payments-ext, server.address=
 *                                             api.payments-ext.example, http.response.status_code
 *                                             500, status UNSET (uninstrumented peer)   [81000, 90000]
 *   checkout  PRODUCER order-events publish   messaging.destination.name=order-events [95000, 97000]
 *   inventory CONSUMER order-events process   parent = the PRODUCER (context in message headers)
 *                                                                                  [150000, 160000]
 *
 * Kept within what every format carries: no span links (the OTel JS Zipkin exporter drops links and
 * Zipkin v2 has no field for them), whole-microsecond times (Zipkin and Jaeger's query API carry
 * microseconds), and the ERROR status has a message (the OTel JS Zipkin exporter writes the `error`
 * tag only when the status has a message: ERROR without one becomes just otel.status_code=ERROR).
 * One difference remains and is legitimate: Zipkin v2 has no INTERNAL kind (the exporter leaves
 * `kind` out), so `render cart` decodes as UNSPECIFIED from zipkin_json and INTERNAL elsewhere.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type AttributeValue,
  type Context,
  type HrTime,
  type Span,
  type SpanStatus,
  type Tracer,
} from "@opentelemetry/api";
import { ExportResultCode, W3CTraceContextPropagator, hrTimeDuration, hrTimeToMicroseconds } from "@opentelemetry/core";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  RandomIdGenerator,
  type IdGenerator,
  type ReadableSpan,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { ZipkinExporter } from "@opentelemetry/exporter-zipkin";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";

// ---------------------------------------------------------------------------------------------
// The expected content, format-independent

/** OTLP wire numbers (the JS API enum is one lower). */
export const OTLP_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export type SpanKey =
  | "fe.root"
  | "fe.render"
  | "fe.toCheckout"
  | "co.server"
  | "co.toInventory"
  | "inv.server"
  | "inv.db"
  | "co.redis"
  | "co.toPayments"
  | "pay.server"
  | "co.toPaymentsExt"
  | "co.produce"
  | "inv.consume";

/** One span as every decoder should see it (ids in lower-case hex). */
export interface ExpectedSpan {
  key: SpanKey;
  service: string;
  name: string;
  /** OTLP wire number. */
  kind: number;
  spanId: string;
  /** "" for the root. */
  parentSpanId: string;
  /** Microseconds since the epoch, exact. */
  startUs: number;
  durUs: number;
  /** Failed by its instrumentation's own marker (status ERROR). */
  error: boolean;
  peer: string;
  addr: string;
  dbSystem: string;
  dbNamespace: string;
  msgDest: string;
  route: string;
}

export interface SdkTraceFixture {
  otlp_proto: Uint8Array;
  otlp_json: Uint8Array;
  zipkin_json: Uint8Array;
  jaeger_json: Uint8Array;
  span_log: Uint8Array;
  /** The spans as the SDK finished them (children before parents, as exporters send them). */
  spans: ReadableSpan[];
  expected: {
    traceId: string;
    /** In export order. */
    spans: ExpectedSpan[];
    byKey: Record<SpanKey, ExpectedSpan>;
    services: string[];
  };
}

/** 2026-01-01T00:00:10.9995Z as [seconds, nanoseconds]. */
export const T0: HrTime = [Date.UTC(2026, 0, 1, 0, 0, 10) / 1000, 999_500_000];
export const T0_US = Date.UTC(2026, 0, 1, 0, 0, 10) * 1000 + 999_500;
export const FIXED_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";

/** T0 + `us` microseconds, as an HrTime (exact: no float milliseconds involved). */
function at(us: number): HrTime {
  const ns = T0[1] + us * 1000;
  return [T0[0] + Math.floor(ns / 1e9), ns % 1e9];
}

// ---------------------------------------------------------------------------------------------
// SDK plumbing

/** Deterministic ids: one trace id, span ids 00f067aa0ba90001, ...02, ... in creation order. */
class SequentialIdGenerator implements IdGenerator {
  private n = 0;
  generateTraceId(): string {
    return FIXED_TRACE_ID;
  }
  generateSpanId(): string {
    this.n++;
    return "00f067aa0ba9" + this.n.toString(16).padStart(4, "0");
  }
}

/** Collects finished spans in end() order, synchronously (what a SimpleSpanProcessor hands its exporter). */
class CollectingProcessor implements SpanProcessor {
  readonly finished: ReadableSpan[] = [];
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    this.finished.push(span);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const propagator = new W3CTraceContextPropagator();

/** What a caller's instrumentation puts on the wire (HTTP headers, Kafka record headers). */
function inject(span: Span): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  return carrier;
}

/** What the callee's instrumentation makes of it: a context whose span context is remote. */
function extract(carrier: Record<string, string>): Context {
  return propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
}

interface Planned {
  key: SpanKey;
  span: Span;
  end: HrTime;
}

export interface SdkTraceOptions {
  /** Use the SDK's RandomIdGenerator instead of fixed ids (the topology must not depend on ids). */
  randomIds?: boolean;
}

/** Builds the trace with the SDK and returns the finished spans plus the logical key of each. */
export function buildSdkSpans(opts: SdkTraceOptions = {}): { spans: ReadableSpan[]; keys: Map<ReadableSpan, SpanKey> } {
  const idGenerator: IdGenerator = opts.randomIds ? new RandomIdGenerator() : new SequentialIdGenerator();
  const collector = new CollectingProcessor();
  const tracerFor = (service: string): Tracer => {
    const provider = new BasicTracerProvider({
      resource: defaultResource().merge(
        resourceFromAttributes({ "service.name": service, "service.version": "1.4.2", "deployment.environment.name": "test" }),
      ),
      idGenerator,
      spanProcessors: [collector],
    });
    return provider.getTracer(`@tracefold/fixture-${service}`, "0.1.0");
  };
  const frontend = tracerFor("frontend");
  const checkout = tracerFor("checkout");
  const inventory = tracerFor("inventory");
  const payments = tracerFor("payments");

  const planned: Planned[] = [];
  const start = (
    key: SpanKey,
    tracer: Tracer,
    name: string,
    kind: SpanKind,
    from: number,
    to: number,
    parent: Context,
    attributes: Attributes = {},
    status?: SpanStatus,
  ): Span => {
    const span = tracer.startSpan(name, { kind, startTime: at(from), attributes }, parent);
    if (status) span.setStatus(status);
    planned.push({ key, span, end: at(to) });
    return span;
  };
  const child = (parent: Span): Context => trace.setSpan(ROOT_CONTEXT, parent);

  // frontend: the entry point (no parent: a call from the virtual client `user`)
  const feRoot = start("fe.root", frontend, "GET /checkout", SpanKind.SERVER, 0, 120_000, ROOT_CONTEXT, {
    "http.request.method": "GET",
    "http.route": "/checkout",
    "url.path": "/checkout",
    "http.response.status_code": 200,
  });
  start("fe.render", frontend, "render cart", SpanKind.INTERNAL, 1_000, 3_250, child(feRoot), { "cart.items": 3 });
  const feToCheckout = start("fe.toCheckout", frontend, "POST", SpanKind.CLIENT, 5_123, 110_000, child(feRoot), {
    "http.request.method": "POST",
    "server.address": "checkout.internal",
    "server.port": 8080,
    "url.full": "http://checkout.internal:8080/api/orders",
    "http.response.status_code": 200,
  });

  // checkout: receives the frontend's call (remote parent extracted from the traceparent header)
  const coServer = start("co.server", checkout, "POST /api/orders", SpanKind.SERVER, 6_000, 108_500, extract(inject(feToCheckout)), {
    "http.request.method": "POST",
    "http.route": "/api/orders",
    "http.response.status_code": 200,
  });
  const coToInventory = start("co.toInventory", checkout, "GET", SpanKind.CLIENT, 10_000, 30_000, child(coServer), {
    "http.request.method": "GET",
    "server.address": "inventory.internal",
    "http.response.status_code": 200,
  });
  const invServer = start("inv.server", inventory, "GET /stock/{sku}", SpanKind.SERVER, 11_000, 29_000, extract(inject(coToInventory)), {
    "http.request.method": "GET",
    "http.route": "/stock/{sku}",
    "http.response.status_code": 200,
  });
  // a database call: older semantic-convention names, every naming attribute but peer.service
  start("inv.db", inventory, "SELECT inventory.stock", SpanKind.CLIENT, 13_000, 20_333, child(invServer), {
    "db.system": "postgresql",
    "db.name": "inventory",
    "db.statement": "SELECT qty FROM stock WHERE sku = $1",
    "server.address": "pg-inventory.internal",
    "server.port": 5432,
  });
  // a cache call: newer names, only db.system.name, so the node is named after the system
  start("co.redis", checkout, "GET", SpanKind.CLIENT, 31_000, 31_750, child(coServer), {
    "db.system.name": "redis",
    "db.operation.name": "GET",
  });
  const coToPayments = start("co.toPayments", checkout, "POST", SpanKind.CLIENT, 35_000, 80_000, child(coServer), {
    "http.request.method": "POST",
    "server.address": "payments.internal",
    "http.response.status_code": 402,
  });
  // the failed server half: ERROR status (with a message); its client half above is not failed
  start(
    "pay.server",
    payments,
    "POST /payments",
    SpanKind.SERVER,
    36_000,
    79_000,
    extract(inject(coToPayments)),
    { "http.request.method": "POST", "http.route": "/payments", "http.response.status_code": 402 },
    { code: SpanStatusCode.ERROR, message: "card declined" },
  );
  // an uninstrumented peer: a 500 answer, but the instrumentation did not set ERROR
  start("co.toPaymentsExt", checkout, "POST", SpanKind.CLIENT, 81_000, 90_000, child(coServer), {
    "http.request.method": "POST",
    "peer.service": "payments-ext",
    "server.address": "api.payments-ext.example",
    "server.port": 443,
    "http.response.status_code": 500,
  });
  const coProduce = start("co.produce", checkout, "order-events publish", SpanKind.PRODUCER, 95_000, 97_000, child(coServer), {
    "messaging.system": "kafka",
    "messaging.operation.type": "send",
    "messaging.destination.name": "order-events",
  });
  // the consumer: another service; its parent is the producer (context carried in record headers)
  start("inv.consume", inventory, "order-events process", SpanKind.CONSUMER, 150_000, 160_000, extract(inject(coProduce)), {
    "messaging.system": "kafka",
    "messaging.operation.type": "process",
    "messaging.destination.name": "order-events",
    "messaging.consumer.group.name": "inventory",
  });

  // End in time order: exporters see children before parents.
  const order = planned.slice().sort((a, b) => a.end[0] - b.end[0] || a.end[1] - b.end[1]);
  const spanKey = new Map<Span, SpanKey>();
  for (const p of order) {
    spanKey.set(p.span, p.key);
    p.span.end(p.end);
  }
  if (collector.finished.length !== planned.length) throw new Error(`expected ${planned.length} finished spans, got ${collector.finished.length}`);
  const keys = new Map<ReadableSpan, SpanKey>();
  // The SDK's Span is its own ReadableSpan: map them through their span ids.
  const bySid = new Map<string, SpanKey>();
  for (const p of planned) bySid.set(p.span.spanContext().spanId, p.key);
  for (const s of collector.finished) keys.set(s, bySid.get(s.spanContext().spanId)!);
  return { spans: collector.finished, keys };
}

// ---------------------------------------------------------------------------------------------
// Formats

/** The exact body @opentelemetry/exporter-zipkin POSTs for `spans`, captured on 127.0.0.1. */
export async function zipkinExporterBody(spans: ReadableSpan[]): Promise<Uint8Array> {
  const bodies: Buffer[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      bodies.push(Buffer.concat(chunks));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const exporter = new ZipkinExporter({ url: `http://127.0.0.1:${port}/api/v2/spans` });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("zipkin exporter did not answer within 10 s")), 10_000);
      exporter.export(spans, (r) => {
        clearTimeout(timer);
        if (r.code === ExportResultCode.SUCCESS) resolve();
        else reject(r.error ?? new Error("zipkin export failed"));
      });
    });
    await exporter.shutdown();
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  if (bodies.length !== 1) throw new Error(`expected one zipkin request, got ${bodies.length}`);
  return new Uint8Array(bodies[0]);
}

type JaegerTag = { key: string; type: "string" | "bool" | "int64" | "float64" | "binary"; value: string | boolean | number };

function jaegerTag(key: string, v: AttributeValue): JaegerTag {
  if (typeof v === "string") return { key, type: "string", value: v };
  if (typeof v === "boolean") return { key, type: "bool", value: v };
  if (typeof v === "number") return Number.isInteger(v) ? { key, type: "int64", value: v } : { key, type: "float64", value: v };
  // arrays become a JSON list in a string tag
  return { key, type: "string", value: JSON.stringify(v) };
}

const JAEGER_KIND: Record<number, string> = {
  [SpanKind.CLIENT]: "client",
  [SpanKind.SERVER]: "server",
  [SpanKind.PRODUCER]: "producer",
  [SpanKind.CONSUMER]: "consumer",
  [SpanKind.INTERNAL]: "internal", // the Collector's translator writes it (the spec says SHOULD NOT)
};

function us(t: HrTime): number {
  return Math.floor(hrTimeToMicroseconds(t));
}

/**
 * The Jaeger query-API document (GET /api/traces/{id}) for `spans`, as Jaeger shows spans that came
 * in over OTLP: the Collector's OTLP -> Jaeger translator, then the UI JSON model.
 */
export function toJaegerQueryJson(spans: ReadableSpan[]): unknown {
  const processes: Record<string, { serviceName: string; tags: JaegerTag[] }> = {};
  const processIds = new Map<unknown, string>();
  const traceId = spans[0].spanContext().traceId;
  const out = spans.map((s) => {
    let pid = processIds.get(s.resource);
    if (pid === undefined) {
      pid = `p${processIds.size + 1}`;
      processIds.set(s.resource, pid);
      const attrs = s.resource.attributes;
      processes[pid] = {
        serviceName: String(attrs["service.name"]),
        tags: Object.keys(attrs)
          .filter((k) => k !== "service.name" && attrs[k] !== undefined)
          .map((k) => jaegerTag(k, attrs[k]!)),
      };
    }
    const ctx = s.spanContext();
    const tags: JaegerTag[] = Object.keys(s.attributes)
      .filter((k) => s.attributes[k] !== undefined)
      .map((k) => jaegerTag(k, s.attributes[k]!));
    const kind = JAEGER_KIND[s.kind];
    if (kind !== undefined) tags.push({ key: "span.kind", type: "string", value: kind });
    if (s.status.code === SpanStatusCode.ERROR) {
      tags.push({ key: "otel.status_code", type: "string", value: "ERROR" });
      tags.push({ key: "error", type: "bool", value: true });
      if (s.status.message) tags.push({ key: "otel.status_description", type: "string", value: s.status.message });
    } else if (s.status.code === SpanStatusCode.OK) {
      tags.push({ key: "otel.status_code", type: "string", value: "OK" });
    }
    tags.push({ key: "otel.scope.name", type: "string", value: s.instrumentationScope.name });
    if (s.instrumentationScope.version) tags.push({ key: "otel.scope.version", type: "string", value: s.instrumentationScope.version });
    const references: Array<{ refType: "CHILD_OF" | "FOLLOWS_FROM"; traceID: string; spanID: string }> = [];
    if (s.parentSpanContext?.spanId) references.push({ refType: "CHILD_OF", traceID: ctx.traceId, spanID: s.parentSpanContext.spanId });
    for (const l of s.links) references.push({ refType: "FOLLOWS_FROM", traceID: l.context.traceId, spanID: l.context.spanId });
    return {
      traceID: ctx.traceId,
      spanID: ctx.spanId,
      flags: ctx.traceFlags,
      operationName: s.name,
      references,
      startTime: us(s.startTime),
      duration: us(hrTimeDuration(s.startTime, s.endTime)),
      tags,
      logs: s.events.map((e) => ({
        timestamp: us(e.time),
        fields: [{ key: "event", type: "string", value: e.name }, ...Object.keys(e.attributes ?? {}).map((k) => jaegerTag(k, e.attributes![k]!))],
      })),
      processID: pid,
      warnings: null,
    };
  });
  return { data: [{ traceID: traceId, spans: out, processes, warnings: null }], total: 0, limit: 0, offset: 0, errors: null };
}

const API_KIND_NAME: Record<number, string> = {
  [SpanKind.INTERNAL]: "internal",
  [SpanKind.SERVER]: "server",
  [SpanKind.CLIENT]: "client",
  [SpanKind.PRODUCER]: "producer",
  [SpanKind.CONSUMER]: "consumer",
};

/** tracefold span_log records (docs/FORMATS.md), one NDJSON line per span, as an agent writes them. */
export function toSpanLog(spans: ReadableSpan[]): string {
  return spans
    .map((s) => {
      const ctx = s.spanContext();
      const rec: Record<string, unknown> = {
        traceId: ctx.traceId,
        spanId: ctx.spanId,
        ...(s.parentSpanContext?.spanId ? { parentSpanId: s.parentSpanContext.spanId } : {}),
        service: String(s.resource.attributes["service.name"]),
        name: s.name,
        kind: API_KIND_NAME[s.kind],
        startUs: us(s.startTime),
        durationUs: hrTimeToMicroseconds(hrTimeDuration(s.startTime, s.endTime)),
        error: s.status.code === SpanStatusCode.ERROR,
        // typed values as the SDK holds them: non-strings are ignored by the decoder
        attributes: s.attributes,
        ...(s.links.length ? { links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })) } : {}),
        host: "node-7",
        pid: 4242,
      };
      return JSON.stringify(rec);
    })
    .join("\n") + "\n";
}

function str(v: AttributeValue | undefined): string {
  return typeof v === "string" ? v : "";
}

/** What every decoder should read from the spans (FORMATS.md attribute table: newer key wins). */
export function expectedSpans(spans: ReadableSpan[], keys: Map<ReadableSpan, SpanKey>): ExpectedSpan[] {
  return spans.map((s) => {
    const a = s.attributes;
    return {
      key: keys.get(s)!,
      service: String(s.resource.attributes["service.name"]),
      name: s.name,
      kind: s.kind + 1,
      spanId: s.spanContext().spanId,
      parentSpanId: s.parentSpanContext?.spanId ?? "",
      startUs: us(s.startTime),
      durUs: us(hrTimeDuration(s.startTime, s.endTime)),
      error: s.status.code === SpanStatusCode.ERROR,
      peer: str(a["service.peer.name"]) || str(a["peer.service"]),
      addr: str(a["server.address"]) || str(a["net.peer.name"]),
      dbSystem: str(a["db.system.name"]) || str(a["db.system"]),
      dbNamespace: str(a["db.namespace"]) || str(a["db.name"]),
      msgDest: str(a["messaging.destination.name"]) || str(a["messaging.destination"]),
      route: str(a["http.route"]),
    };
  });
}

/** The trace in every input format, plus what a decoder should read from it. */
export async function buildSdkTrace(opts: SdkTraceOptions = {}): Promise<SdkTraceFixture> {
  const { spans, keys } = buildSdkSpans(opts);
  const otlpProto = ProtobufTraceSerializer.serializeRequest(spans);
  const otlpJson = JsonTraceSerializer.serializeRequest(spans);
  if (otlpProto === undefined || otlpJson === undefined) throw new Error("otlp-transformer returned no body");
  const enc = new TextEncoder();
  const exp = expectedSpans(spans, keys);
  const byKey = Object.fromEntries(exp.map((e) => [e.key, e])) as Record<SpanKey, ExpectedSpan>;
  return {
    // plain copies: protobufjs hands out a Node Buffer, whose slice() is a view, not a copy
    otlp_proto: new Uint8Array(otlpProto),
    otlp_json: new Uint8Array(otlpJson),
    zipkin_json: await zipkinExporterBody(spans),
    jaeger_json: enc.encode(JSON.stringify(toJaegerQueryJson(spans))),
    span_log: enc.encode(toSpanLog(spans)),
    spans,
    expected: {
      traceId: spans[0].spanContext().traceId,
      spans: exp,
      byKey,
      services: [...new Set(exp.map((e) => e.service))].sort(),
    },
  };
}
