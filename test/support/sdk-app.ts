/**
 * A small multi-service app instrumented with the real OpenTelemetry JS SDK (sdk-trace-base 2.x)
 * that makes REAL calls on loopback, for the end-to-end test (test/sdk-app.test.ts):
 *
 *   driver (uninstrumented load generator)
 *     -- HTTP GET /checkout?order=N -->  frontend  (node:http server on 127.0.0.1, root SERVER span)
 *   frontend -- HTTP POST /api/orders (traceparent) -->  checkout  (node:http server, SERVER span)
 *   checkout -- real MariaDB query (mysql2, CLIENT span with db.system=mysql) --> MariaDB
 *              for every `failEvery`-th order the query hits a missing table: MariaDB answers
 *              ER_NO_SUCH_TABLE, the db span and checkout's SERVER span are ERROR, checkout answers
 *              500, frontend's CLIENT span is ERROR (>= 400) and frontend answers 502 (SERVER ERROR)
 *   checkout -- HTTP GET /rate (traceparent sent, nobody reads it) --> tax, an uninstrumented
 *              legacy server reached as `localhost`, which answers 503 for every `taxFailEvery`-th
 *              order (checkout's CLIENT span ERROR; checkout goes on with a default rate)
 *   checkout -- real Kafka record (PRODUCER span, traceparent in the record headers) --> topic
 *   worker   -- real kafkajs consumer: CONSUMER span whose parent is extracted from the record
 *              headers, and an INTERNAL `ship order` child
 *
 * Instrumentation is manual but follows what @opentelemetry/instrumentation-http, -mysql2 and
 * -kafkajs do: W3C `traceparent` injected from the CLIENT/PRODUCER span's context and extracted
 * into the parent of the SERVER/CONSUMER span (the API's propagator interface, W3C implementation
 * from @opentelemetry/core); HTTP CLIENT spans are ERROR for status >= 400, SERVER spans for
 * status >= 500; database spans are ERROR when the driver returns an error; the PRODUCER span ends
 * when the broker acknowledged the record. Context inside a service is passed explicitly (no
 * context manager installed).
 *
 * Every service has its own BasicTracerProvider (its Resource carries service.name) with a
 * SimpleSpanProcessor into an InMemorySpanExporter. Besides the spans, the app keeps a record of
 * what it did, as each side saw it (status codes received, queries answered, records consumed),
 * and summarizes it per caller -> callee. Nothing in the summary is read from spans.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Kafka, logLevel, type Consumer, type Producer } from "kafkajs";
import mysql from "mysql2/promise";

// ---------------------------------------------------------------------------------------------
// Options and records

export interface SdkAppOptions {
  /** Kafka bootstrap servers, "host:port". */
  brokers: string[];
  /** mysql://user:pass@host:port/db: the MariaDB checkout queries. */
  mysqlUrl: string;
  /** The topic checkout publishes order events to (created fresh, deleted afterwards). */
  topic: string;
  /** Orders the driver places (default 20). */
  requests?: number;
  /** Every n-th order (order % n === 0) fails in checkout's database query (default 5). */
  failEvery?: number;
  /** The legacy tax server answers 503 to every n-th order (default 3). */
  taxFailEvery?: number;
  /** Orders in flight at once (default 4). */
  concurrency?: number;
  /** Consumer group of the worker (default: derived from the topic). */
  workerGroup?: string;
}

export const SERVICES = ["frontend", "checkout", "worker"] as const;
export type ServiceName = (typeof SERVICES)[number];

/** An order the driver placed: the entry call into frontend, as the driver and frontend saw it. */
export interface EntryRecord {
  order: number;
  traceId: string;
  service: ServiceName;
  /** Status the driver received. */
  status: number;
  /** frontend marked its SERVER span ERROR. */
  serverError: boolean;
}

/** One HTTP call, from the caller's side (what it sent, what came back, how it marked its span). */
export interface HttpCallRecord {
  requestId: string;
  traceId: string;
  caller: ServiceName;
  /** Logical target as the caller's config names it ("checkout", "tax"). */
  target: string;
  /** server.address / server.port the CLIENT span carries (the URL's host and port). */
  address: string;
  port: number;
  method: string;
  path: string;
  status: number;
  clientError: boolean;
}

/** One HTTP request served, from the callee's side (matched to the call by x-request-id). */
export interface HttpServedRecord {
  requestId: string;
  /** The trace the serving span belongs to, as the service logs it (null: uninstrumented, it does not know). */
  traceId: string | null;
  /** The serving service, or null for the uninstrumented legacy tax server. */
  service: ServiceName | null;
  route: string;
  status: number;
  /** The SERVER span was marked ERROR (null: no span, uninstrumented). */
  serverError: boolean | null;
}

export interface DbQueryRecord {
  traceId: string;
  caller: ServiceName;
  system: string;
  address: string;
  port: number;
  dbName: string;
  statement: string;
  ok: boolean;
  /** MariaDB's error code when not ok (e.g. ER_NO_SUCH_TABLE). */
  errorCode: string | null;
  clientError: boolean;
}

export interface MessageRecord {
  traceId: string;
  producer: ServiceName;
  topic: string;
  key: string;
  partition: number;
  offset: string;
  producerError: boolean;
}

/** One delivery of a record to a consumer, as the consumer saw it. */
export interface ConsumeRecord {
  service: ServiceName;
  topic: string;
  partition: number;
  offset: string;
  /** The CONSUMER span's trace (the producer's, when the headers carried it). */
  traceId: string;
  consumerError: boolean;
}

/** Calls per caller -> callee, as the app did them. */
export interface CallSummary {
  caller: string;
  /** The callee service, or for an uninstrumented peer / the database a description. */
  callee: string;
  via: "entry" | "http" | "mysql" | "kafka";
  /** The callee runs OpenTelemetry (it produced the other half). */
  instrumentedCallee: boolean;
  /** The address the CLIENT span names (server.address), "" when none (entry, kafka). */
  address: string;
  calls: number;
  failed: number;
  failedClient: number;
  failedServer: number;
}

export interface SdkAppSummary {
  requests: number;
  /** Status code -> orders the driver got it for. */
  responses: Record<string, number>;
  calls: CallSummary[];
  dbQueries: { count: number; failed: number; system: string; address: string; port: number; dbName: string };
  messages: { topic: string; published: number; consumed: number };
  /** Trace id -> spans the app's services finished for it. */
  spansPerTrace: Record<string, number>;
}

export interface SdkAppResult {
  /** Finished spans per service, in end order (what each service's exporter got). */
  spans: Record<ServiceName, ReadableSpan[]>;
  traceIds: string[];
  entries: EntryRecord[];
  httpCalls: HttpCallRecord[];
  httpServed: HttpServedRecord[];
  dbQueries: DbQueryRecord[];
  messages: MessageRecord[];
  consumed: ConsumeRecord[];
  summary: SdkAppSummary;
  /** The plan the app ran. */
  options: Required<Omit<SdkAppOptions, "brokers" | "mysqlUrl">>;
}

// ---------------------------------------------------------------------------------------------
// SDK plumbing

const propagator: TextMapPropagator = new W3CTraceContextPropagator();

interface Instrumented {
  name: ServiceName;
  tracer: Tracer;
  provider: BasicTracerProvider;
  exporter: InMemorySpanExporter;
}

function service(name: ServiceName): Instrumented {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ "service.name": name, "service.version": "0.3.1", "deployment.environment.name": "test" })),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  return { name, tracer: provider.getTracer(`@tracefold/sdk-app-${name}`, "0.1.0"), provider, exporter };
}

function inject(span: Span): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  return carrier;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function markException(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : new Error(String(err)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

interface Handled {
  status: number;
  body: unknown;
}

type Handler = (ctx: Context, span: Span, url: URL, body: string) => Promise<Handled>;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * An instrumented HTTP server: one SERVER span per request, parent extracted from the headers,
 * ERROR for status >= 500 (what instrumentation-http does). The span ends before the answer is
 * written, so the caller never sees an answer whose server span is still open.
 */
function instrumentedServer(svc: Instrumented, routes: Record<string, { method: string; route: string; handle: Handler }>, served: HttpServedRecord[]): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const r = routes[url.pathname];
      const method = req.method ?? "GET";
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      const local = req.socket.address() as AddressInfo;
      const attributes: Attributes = {
        "http.request.method": method,
        "url.path": url.pathname,
        "url.scheme": "http",
        "server.address": "127.0.0.1",
        "server.port": local.port,
        "network.peer.address": req.socket.remoteAddress ?? "",
      };
      if (r) attributes["http.route"] = r.route;
      const span = svc.tracer.startSpan(r ? `${method} ${r.route}` : method, { kind: SpanKind.SERVER, attributes }, parent);
      const ctx = trace.setSpan(parent, span);
      let out: Handled;
      try {
        const body = await readBody(req);
        out = r && r.method === method ? await r.handle(ctx, span, url, body) : { status: 404, body: { error: "not found" } };
      } catch (err) {
        span.recordException(err instanceof Error ? err : new Error(String(err)));
        out = { status: 500, body: { error: errorMessage(err) } };
      }
      span.setAttribute("http.response.status_code", out.status);
      const serverError = out.status >= 500;
      if (serverError) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      served.push({ requestId: String(req.headers["x-request-id"] ?? ""), traceId: span.spanContext().traceId, service: svc.name, route: r?.route ?? url.pathname, status: out.status, serverError });
      const payload = JSON.stringify(out.body);
      res.writeHead(out.status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
      res.end(payload);
    })();
  });
}

let requestSeq = 0;

/**
 * An instrumented HTTP call: a CLIENT span child of `ctx`, its traceparent in the request headers,
 * ERROR for status >= 400 or a transport error (what instrumentation-http does).
 */
async function httpCall(
  svc: Instrumented,
  ctx: Context,
  target: string,
  method: string,
  url: URL,
  body: unknown,
  calls: HttpCallRecord[],
  family?: 4 | 6,
): Promise<{ status: number; body: unknown }> {
  const port = Number(url.port);
  const span = svc.tracer.startSpan(
    method,
    {
      kind: SpanKind.CLIENT,
      attributes: { "http.request.method": method, "server.address": url.hostname, "server.port": port, "url.full": url.toString() },
    },
    ctx,
  );
  const requestId = `${svc.name}-${++requestSeq}`;
  const payload = body === undefined ? "" : JSON.stringify(body);
  const headers: Record<string, string | number> = { ...inject(span), "x-request-id": requestId, "content-type": "application/json", "content-length": Buffer.byteLength(payload) };
  const record: HttpCallRecord = { requestId, traceId: span.spanContext().traceId, caller: svc.name, target, address: url.hostname, port, method, path: url.pathname, status: 0, clientError: false };
  try {
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(url, { method, headers, family, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
    span.setAttribute("http.response.status_code", status);
    record.status = status;
    if (status >= 400) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      record.clientError = true;
    }
    return { status, body: text ? JSON.parse(text) : null };
  } catch (err) {
    markException(span, err);
    record.clientError = true;
    throw err;
  } finally {
    span.end();
    calls.push(record);
  }
}

// ---------------------------------------------------------------------------------------------
// The app

/** Runs the app: `requests` orders through frontend, checkout, MariaDB, the tax server, Kafka and worker. */
export async function runSdkApp(opts: SdkAppOptions): Promise<SdkAppResult> {
  const plan = {
    topic: opts.topic,
    requests: opts.requests ?? 20,
    failEvery: opts.failEvery ?? 5,
    taxFailEvery: opts.taxFailEvery ?? 3,
    concurrency: opts.concurrency ?? 4,
    workerGroup: opts.workerGroup ?? `worker-${opts.topic}`,
  };
  const frontend = service("frontend");
  const checkout = service("checkout");
  const worker = service("worker");
  const all = [frontend, checkout, worker];

  const entries: EntryRecord[] = [];
  const httpCalls: HttpCallRecord[] = [];
  const httpServed: HttpServedRecord[] = [];
  const dbQueries: DbQueryRecord[] = [];
  const messages: MessageRecord[] = [];
  const consumed: ConsumeRecord[] = [];

  const dbUrl = new URL(opts.mysqlUrl);
  const dbName = decodeURIComponent(dbUrl.pathname.replace(/^\//, ""));
  const dbPort = Number(dbUrl.port || 3306);

  const kafka = new Kafka({ clientId: "tracefold-sdk-app", brokers: opts.brokers, logLevel: logLevel.ERROR });
  const servers: Server[] = [];
  let db: mysql.Connection | null = null;
  let producer: Producer | null = null;
  let consumer: Consumer | null = null;
  const admin = kafka.admin();
  await admin.connect();
  let topicCreated = false;
  try {
    await admin.createTopics({ topics: [{ topic: plan.topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true });
    topicCreated = true;
    db = await mysql.createConnection(opts.mysqlUrl);
    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();

    // ---- worker: consumes order events, context from the record headers
    consumer = kafka.consumer({ groupId: plan.workerGroup, sessionTimeout: 6000, heartbeatInterval: 500 });
    await consumer.connect();
    await consumer.subscribe({ topic: plan.topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const carrier: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) carrier[k] = String(Array.isArray(v) ? v[0] : v);
        const parent = propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
        const span = worker.tracer.startSpan(
          `process ${topic}`,
          {
            kind: SpanKind.CONSUMER,
            attributes: {
              "messaging.system": "kafka",
              "messaging.operation.type": "process",
              "messaging.operation.name": "process",
              "messaging.destination.name": topic,
              "messaging.destination.partition.id": String(partition),
              "messaging.kafka.offset": Number(message.offset),
              "messaging.kafka.message.key": message.key?.toString("utf8") ?? "",
              "messaging.consumer.group.name": plan.workerGroup,
            },
          },
          parent,
        );
        let error = false;
        try {
          const order = JSON.parse(message.value?.toString("utf8") ?? "null") as { order: number; total: number };
          const ship = worker.tracer.startSpan("ship order", { kind: SpanKind.INTERNAL, attributes: { "order.id": order.order } }, trace.setSpan(parent, span));
          await new Promise((r) => setImmediate(r));
          ship.end();
        } catch (err) {
          markException(span, err);
          error = true;
        } finally {
          span.end();
        }
        consumed.push({ service: "worker", topic, partition, offset: message.offset, traceId: span.spanContext().traceId, consumerError: error });
      },
    });

    // ---- tax: a legacy HTTP server without OpenTelemetry (it gets a traceparent and ignores it)
    const tax = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const order = Number(url.searchParams.get("order"));
      const status = order % plan.taxFailEvery === 0 ? 503 : 200;
      httpServed.push({ requestId: String(req.headers["x-request-id"] ?? ""), traceId: null, service: null, route: url.pathname, status, serverError: null });
      const payload = JSON.stringify(status === 200 ? { rate: 0.2 } : { error: "rate service overloaded" });
      res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }).end(payload);
    });
    servers.push(tax);
    const taxPort = await listen(tax);

    // ---- checkout: the order API
    const query = async (ctx: Context, order: number): Promise<number> => {
      const fails = order % plan.failEvery === 0;
      // a deployment bug for every failEvery-th order: the query names a table that does not exist
      const statement = fails ? "SELECT total FROM tracefold_sdk_app_missing_orders WHERE id = ?" : "SELECT 1 AS ok, ? AS order_id";
      const span = checkout.tracer.startSpan(
        "SELECT",
        {
          kind: SpanKind.CLIENT,
          attributes: {
            "db.system": "mysql",
            "db.name": dbName,
            "db.statement": statement,
            "db.operation": "SELECT",
            "db.user": decodeURIComponent(dbUrl.username),
            "server.address": dbUrl.hostname,
            "server.port": dbPort,
          },
        },
        ctx,
      );
      const rec: DbQueryRecord = { traceId: span.spanContext().traceId, caller: "checkout", system: "mysql", address: dbUrl.hostname, port: dbPort, dbName, statement, ok: false, errorCode: null, clientError: false };
      try {
        const [rows] = await db!.query<mysql.RowDataPacket[]>(statement, [order]);
        if (fails || rows.length !== 1 || Number(rows[0].order_id) !== order) throw new Error(`unexpected answer to ${statement}: ${JSON.stringify(rows)}`);
        rec.ok = true;
        return 10 * order;
      } catch (err) {
        rec.errorCode = (err as { code?: string }).code ?? "UNKNOWN";
        span.setAttribute("db.response.status_code", String((err as { errno?: number }).errno ?? ""));
        span.setAttribute("error.type", rec.errorCode);
        markException(span, err);
        rec.clientError = true;
        throw err;
      } finally {
        span.end();
        dbQueries.push(rec);
      }
    };
    const publish = async (ctx: Context, order: number, total: number): Promise<void> => {
      const key = String(order);
      const span = checkout.tracer.startSpan(
        `send ${plan.topic}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": plan.topic,
            "messaging.kafka.message.key": key,
          },
        },
        ctx,
      );
      const rec: MessageRecord = { traceId: span.spanContext().traceId, producer: "checkout", topic: plan.topic, key, partition: -1, offset: "", producerError: false };
      try {
        const [meta] = await producer!.send({ topic: plan.topic, acks: -1, messages: [{ key, value: JSON.stringify({ order, total }), headers: inject(span) }] });
        rec.partition = meta.partition;
        rec.offset = meta.baseOffset ?? "";
      } catch (err) {
        markException(span, err);
        rec.producerError = true;
        throw err;
      } finally {
        span.end();
        messages.push(rec);
      }
    };
    const checkoutServer = instrumentedServer(
      checkout,
      {
        "/api/orders": {
          method: "POST",
          route: "/api/orders",
          handle: async (ctx, span, _url, body) => {
            const { order } = JSON.parse(body) as { order: number };
            span.setAttribute("order.id", order);
            let total: number;
            try {
              total = await query(ctx, order);
            } catch (err) {
              span.recordException(err instanceof Error ? err : new Error(String(err)));
              return { status: 500, body: { error: errorMessage(err) } };
            }
            let rate = 0.19; // the default when the tax service does not answer
            const t = await httpCall(checkout, ctx, "tax", "GET", new URL(`http://localhost:${taxPort}/rate?order=${order}`), undefined, httpCalls, 4);
            if (t.status === 200) rate = (t.body as { rate: number }).rate;
            await publish(ctx, order, total * (1 + rate));
            return { status: 200, body: { order, total: total * (1 + rate) } };
          },
        },
      },
      httpServed,
    );
    servers.push(checkoutServer);
    const checkoutPort = await listen(checkoutServer);

    // ---- frontend: the web entry point
    const frontendServer = instrumentedServer(
      frontend,
      {
        "/checkout": {
          method: "GET",
          route: "/checkout",
          handle: async (ctx, _span, url) => {
            const order = Number(url.searchParams.get("order"));
            const r = await httpCall(frontend, ctx, "checkout", "POST", new URL(`http://127.0.0.1:${checkoutPort}/api/orders`), { order }, httpCalls);
            return r.status === 200 ? { status: 200, body: r.body } : { status: 502, body: { error: "checkout failed", upstream: r.status } };
          },
        },
      },
      httpServed,
    );
    servers.push(frontendServer);
    const frontendPort = await listen(frontendServer);

    // ---- the driver: plain HTTP, no OpenTelemetry (frontend's SERVER spans are the roots)
    const orders = Array.from({ length: plan.requests }, (_, i) => i + 1);
    let next = 0;
    const place = async (order: number): Promise<void> => {
      const requestId = `driver-${order}`;
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpRequest(`http://127.0.0.1:${frontendPort}/checkout?order=${order}`, { method: "GET", headers: { "x-request-id": requestId }, timeout: 20_000 }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", reject);
        });
        req.on("timeout", () => req.destroy(new Error(`order ${order} timed out`)));
        req.on("error", reject);
        req.end();
      });
      // frontend logged the request with its trace id (as an app logs its request ids)
      const served = httpServed.find((s) => s.requestId === requestId);
      if (!served || served.traceId === null) throw new Error(`frontend has no record of ${requestId}`);
      entries.push({ order, traceId: served.traceId, service: "frontend", status, serverError: served.serverError === true });
    };
    await Promise.all(
      Array.from({ length: Math.min(plan.concurrency, orders.length) }, async () => {
        while (next < orders.length) await place(orders[next++]);
      }),
    );

    // ---- wait until the worker processed every published record
    const deadline = Date.now() + 60_000;
    const published = messages.filter((m) => !m.producerError);
    const done = () => published.filter((m) => consumed.some((c) => c.partition === m.partition && c.offset === m.offset)).length;
    while (done() < published.length) {
      if (Date.now() > deadline) throw new Error(`worker consumed ${done()} of ${published.length} order events within 60 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await consumer?.disconnect().catch(() => {});
    await producer?.disconnect().catch(() => {});
    await db?.end().catch(() => {});
    for (const s of servers) await closeServer(s);
    if (topicCreated) await admin.deleteTopics({ topics: [plan.topic] }).catch(() => {});
    await admin.disconnect();
  }

  for (const s of all) await s.provider.forceFlush();
  const spans = Object.fromEntries(all.map((s) => [s.name, s.exporter.getFinishedSpans().slice()])) as Record<ServiceName, ReadableSpan[]>;
  for (const s of all) await s.provider.shutdown();
  entries.sort((a, b) => a.order - b.order);
  const summary = summarize(plan.topic, spans, entries, httpCalls, httpServed, dbQueries, messages, consumed);
  return { spans, traceIds: entries.map((e) => e.traceId), entries, httpCalls, httpServed, dbQueries, messages, consumed, summary, options: plan };
}

/** Counts what the app did per caller -> callee, from the records each side kept (not from spans). */
export function summarize(
  topic: string,
  spans: Record<ServiceName, ReadableSpan[]>,
  entries: EntryRecord[],
  httpCalls: HttpCallRecord[],
  httpServed: HttpServedRecord[],
  dbQueries: DbQueryRecord[],
  messages: MessageRecord[],
  consumed: ConsumeRecord[],
): SdkAppSummary {
  const calls = new Map<string, CallSummary>();
  const add = (caller: string, callee: string, via: CallSummary["via"], instrumentedCallee: boolean, address: string, clientError: boolean, serverError: boolean) => {
    const k = `${caller}|${callee}|${via}|${address}`;
    let c = calls.get(k);
    if (!c) calls.set(k, (c = { caller, callee, via, instrumentedCallee, address, calls: 0, failed: 0, failedClient: 0, failedServer: 0 }));
    c.calls++;
    c.failed += clientError || serverError ? 1 : 0;
    c.failedClient += clientError ? 1 : 0;
    c.failedServer += serverError ? 1 : 0;
  };
  for (const e of entries) add("driver", e.service, "entry", true, "", false, e.serverError);
  const served = new Map(httpServed.map((s) => [s.requestId, s]));
  for (const c of httpCalls) {
    const s = served.get(c.requestId);
    const instrumented = s !== undefined && s.service !== null;
    add(c.caller, instrumented ? s.service! : `${c.target} (uninstrumented)`, "http", instrumented, c.address, c.clientError, s?.serverError === true);
  }
  for (const q of dbQueries) add(q.caller, q.system, "mysql", false, q.address, q.clientError, false);
  // one call per delivery: a record processed twice is two calls (two CONSUMER spans)
  for (const m of messages)
    for (const c of consumed) if (c.topic === m.topic && c.partition === m.partition && c.offset === m.offset) add(m.producer, c.service, "kafka", true, "", m.producerError, c.consumerError);
  const responses: Record<string, number> = {};
  for (const e of entries) responses[e.status] = (responses[e.status] ?? 0) + 1;
  const spansPerTrace: Record<string, number> = {};
  for (const list of Object.values(spans)) for (const s of list) spansPerTrace[s.spanContext().traceId] = (spansPerTrace[s.spanContext().traceId] ?? 0) + 1;
  const q0 = dbQueries[0];
  return {
    requests: entries.length,
    responses,
    calls: [...calls.values()].sort((a, b) => `${a.caller}|${a.callee}`.localeCompare(`${b.caller}|${b.callee}`)),
    dbQueries: { count: dbQueries.length, failed: dbQueries.filter((q) => !q.ok).length, system: q0?.system ?? "", address: q0?.address ?? "", port: q0?.port ?? 0, dbName: q0?.dbName ?? "" },
    messages: { topic, published: messages.filter((m) => !m.producerError).length, consumed: consumed.length },
    spansPerTrace,
  };
}
