/**
 * End to end with a real instrumented app: a small multi-service app (test/support/sdk-app.ts:
 * frontend -> checkout over real HTTP, checkout -> real MariaDB, checkout -> an uninstrumented
 * legacy HTTP server, checkout -> real Kafka -> worker) instrumented with the OpenTelemetry JS SDK
 * places orders; its spans, serialized by otlp-transformer's ProtobufTraceSerializer (the body an
 * OTLP exporter sends), are produced to a fresh Kafka topic keyed by trace id; `tracefold run`
 * consumes them in bounded mode into MySQL (topology) and HBase (traces). The edges in MySQL are
 * what the app did, by DESIGN 3's rules, and HBase holds every span of every trace.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpanStatusCode } from "@opentelemetry/api";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Kafka } from "kafkajs";
import mysql from "mysql2/promise";
import { HBaseSink } from "../sinks/hbase/sink.js";
import type { EdgeCounts } from "../operators/fold/deltas.js";
import { dropHBaseTables } from "./support/cleanup.js";
import { runSdkApp, SERVICES, type SdkAppResult, type SdkAppSummary } from "./support/sdk-app.js";
import { serviceEnv } from "./support/services.js";
import { createTopic, databaseUrl, serverConnection } from "./support/stream.js";

const ROOT = join(import.meta.dirname, "..");
const brokers = serviceEnv("KAFKA_BROKERS");
const hbaseThrift = serviceEnv("HBASE_THRIFT");
const appMysqlUrl = serviceEnv("MYSQL_URL");
const mysqlBase = new URL(appMysqlUrl);
const run = `${process.pid}_${Date.now() % 100000}`;
const db = `tracefold_sdkapp_${run}`;
const mysqlUrl = databaseUrl(mysqlBase, db);
const topic = `sdkapp_spans_${run}`;
const dir = mkdtempSync(join(tmpdir(), "tf-sdkapp-"));
// No /metrics listener: its default (http.listen=auto) is a fixed 0.0.0.0:9464 with Kafka input, which
// any other `tracefold run` on this machine (the other Kafka test files, run in parallel) holds too.
// Given as the environment variable, ignored by a build without that setting.
const tf = (args: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 180_000, env: { ...process.env, TRACEFOLD_HTTP_LISTEN: "off" } });
const kafka = new Kafka({ clientId: "tracefold-test", brokers: brokers.split(","), logLevel: 1 });
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await serverConnection(mysqlBase);
  await admin.query(`CREATE DATABASE ${db}`);
});
afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin?.end();
  await dropHBaseTables(hbaseThrift, [`t_${topic}`, `i_${topic}`]);
  const a = kafka.admin();
  await a.connect();
  await a.deleteTopics({ topics: [topic, `${topic}_dlq`] }).catch(() => {});
  await a.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

function consume(database: string) {
  return tf(["run", "--set", "source.type=kafka", "--set", `source.kafka.deadLetterTopic=${topic}_dlq`, "--set", `source.kafka.brokers=${brokers}`, "--set", `source.kafka.topic=${topic}`, "--set", "source.kafka.format=otlp_proto",
    "--set", `source.kafka.groupId=g-${topic}`, "--set", "source.kafka.bounded=true", "--set", "source.kafka.sessionTimeoutMs=6000",
    "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${database}`,
    "--set", "sinks.traces=hbase", "--set", `sinks.hbase.thrift=${hbaseThrift}`, "--set", `sinks.hbase.table=t_${topic}`, "--set", `sinks.hbase.indexTable=i_${topic}`,
    "--log-format", "json"]);
}

/** An edge as MySQL returns it (type as a plain string). */
type Edge = Omit<EdgeCounts, "type"> & { type: string };

const byEdge = (a: Edge, b: Edge) => `${a.client}|${a.server}|${a.type}`.localeCompare(`${b.client}|${b.server}|${b.type}`);

/**
 * The edges DESIGN 3 makes of what the app did (its summary, kept by the app's own records):
 * - the driver has no spans: frontend's SERVER span is a root, a call from the virtual client
 *   `user` (type virtual), server half only;
 * - an HTTP call whose callee is instrumented pairs CLIENT with SERVER: an `rpc` call, failed if
 *   either half is ERROR, counted per half;
 * - an HTTP call to the uninstrumented tax server is a lone CLIENT: a `virtual` call to the node
 *   named by peer.service, else server.address (the app sets no peer.service);
 * - a CLIENT span with db.system/db.name is a `database` call at once, to peer.service, else
 *   server.address, else db.name, else db.system;
 * - PRODUCER -> CONSUMER is a `messaging` call from the producing to the consuming service, one
 *   per CONSUMER span.
 */
function edgesFromSummary(s: SdkAppSummary): Edge[] {
  const out: Edge[] = [];
  for (const c of s.calls) {
    const both = { calls: c.calls, clientCalls: c.calls, serverCalls: c.calls, paired: c.calls, failed: c.failed, failedClient: c.failedClient, failedServer: c.failedServer };
    const clientOnly = { calls: c.calls, clientCalls: c.calls, serverCalls: 0, paired: 0, failed: c.failedClient, failedClient: c.failedClient, failedServer: 0 };
    if (c.via === "entry") out.push({ client: "user", server: c.callee, type: "virtual", calls: c.calls, clientCalls: 0, serverCalls: c.calls, paired: 0, failed: c.failedServer, failedClient: 0, failedServer: c.failedServer });
    else if (c.via === "http" && c.instrumentedCallee) out.push({ client: c.caller, server: c.callee, type: "rpc", ...both });
    else if (c.via === "http") out.push({ client: c.caller, server: c.address, type: "virtual", ...clientOnly });
    else if (c.via === "mysql") out.push({ client: c.caller, server: c.address, type: "database", ...clientOnly });
    else out.push({ client: c.caller, server: c.callee, type: "messaging", ...both });
  }
  return out.sort(byEdge);
}

/**
 * The same edges written out from the app's plan (orders 1..requests; every failEvery-th order's
 * database query fails, which fails checkout (500) and frontend (502); the tax server answers 503
 * to every taxFailEvery-th order that got that far; only orders that passed the database publish
 * an order event). With the defaults (20, 5, 3): 4 failed orders, 16 events, 5 tax failures.
 */
function edgesFromPlan(app: SdkAppResult): Edge[] {
  const { requests, failEvery, taxFailEvery } = app.options;
  const orders = Array.from({ length: requests }, (_, i) => i + 1);
  const failed = orders.filter((o) => o % failEvery === 0).length;
  const ok = requests - failed;
  const taxFailed = orders.filter((o) => o % failEvery !== 0 && o % taxFailEvery === 0).length;
  const dbHost = new URL(appMysqlUrl).hostname;
  return [
    { client: "user", server: "frontend", type: "virtual", calls: requests, clientCalls: 0, serverCalls: requests, paired: 0, failed, failedClient: 0, failedServer: failed },
    { client: "frontend", server: "checkout", type: "rpc", calls: requests, clientCalls: requests, serverCalls: requests, paired: requests, failed, failedClient: failed, failedServer: failed },
    { client: "checkout", server: dbHost, type: "database", calls: requests, clientCalls: requests, serverCalls: 0, paired: 0, failed, failedClient: failed, failedServer: 0 },
    { client: "checkout", server: "localhost", type: "virtual", calls: ok, clientCalls: ok, serverCalls: 0, paired: 0, failed: taxFailed, failedClient: taxFailed, failedServer: 0 },
    { client: "checkout", server: "worker", type: "messaging", calls: ok, clientCalls: ok, serverCalls: ok, paired: ok, failed: 0, failedClient: 0, failedServer: 0 },
  ].sort(byEdge);
}

/**
 * One ExportTraceServiceRequest per service and trace, as an exporter in each service sends its
 * batch, cut by trace id so every message has one key (all spans of a trace reach one partition,
 * FORMATS.md; the Collector's Kafka exporter partitioning by trace id does the same).
 */
function exportRequests(app: SdkAppResult): Array<{ service: string; traceId: string; spans: number; body: Uint8Array }> {
  const out: Array<{ service: string; traceId: string; spans: number; body: Uint8Array }> = [];
  for (const service of SERVICES) {
    const byTrace = new Map<string, ReadableSpan[]>();
    for (const s of app.spans[service]) {
      const t = s.spanContext().traceId;
      byTrace.set(t, [...(byTrace.get(t) ?? []), s]);
    }
    for (const [traceId, spans] of byTrace) {
      const body = ProtobufTraceSerializer.serializeRequest(spans);
      if (body === undefined) throw new Error("otlp-transformer returned no body");
      out.push({ service, traceId, spans: spans.length, body: new Uint8Array(body) });
    }
  }
  return out;
}

describe("an OpenTelemetry-instrumented app -> OTLP -> Kafka -> tracefold -> MySQL + HBase (real services)", () => {
  it("the edges in MySQL and the traces in HBase are what the app did", async () => {
    const app = await runSdkApp({ brokers: brokers.split(","), mysqlUrl: appMysqlUrl, topic: `sdkapp_orders_${run}` });
    const s = app.summary;

    // ---- the app did what it was planned to do (real calls, real failures)
    const expected = edgesFromSummary(s);
    expect(expected).toEqual(edgesFromPlan(app));
    expect(s.requests).toBe(app.options.requests);
    expect(s.dbQueries.failed).toBeGreaterThan(0);
    expect(app.dbQueries.filter((q) => !q.ok).every((q) => q.errorCode === "ER_NO_SUCH_TABLE")).toBe(true);
    expect(s.messages.consumed).toBe(s.messages.published);
    expect(new Set(app.traceIds).size).toBe(app.options.requests);
    // every span belongs to one of the orders' traces; an order that got through makes 8 spans
    // (frontend SERVER + CLIENT; checkout SERVER, db CLIENT, tax CLIENT, PRODUCER; worker CONSUMER
    // + INTERNAL), a failed one 4 (frontend SERVER + CLIENT; checkout SERVER, db CLIENT)
    expect(Object.keys(s.spansPerTrace).sort()).toEqual([...app.traceIds].sort());
    for (const e of app.entries) expect(s.spansPerTrace[e.traceId], `order ${e.order}`).toBe(e.status === 200 ? 8 : 4);

    // ---- OTLP protobuf, keyed by trace id, into a fresh topic
    const requests = exportRequests(app);
    const files = requests.map((r, i) => {
      const file = join(dir, `${String(i).padStart(3, "0")}-${r.service}-${r.traceId}.otlp`);
      writeFileSync(file, r.body);
      return file;
    });
    const totalSpans = requests.reduce((n, r) => n + r.spans, 0);
    await createTopic(kafka, topic, 3);
    await createTopic(kafka, `${topic}_dlq`, 1);
    const p = tf(["produce", "--brokers", brokers, "--topic", topic, "--format", "otlp_proto", "--shape", "batch", ...files]);
    expect(p.stderr).toBe("");
    expect(p.stdout).toContain(`produced ${files.length} messages (${totalSpans} spans, 0 malformed`);

    // ---- tracefold: Kafka -> MySQL + HBase, bounded
    const r = consume(mysqlUrl);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout, r.stderr.slice(-6000)).toMatch(new RegExp(`^${totalSpans} spans in .*dead letters 0,`, "m"));

    // ---- MySQL: exactly the expected edges (summed over minutes), nothing else
    const pool = await mysql.createConnection(mysqlUrl);
    try {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        `SELECT client, server, type, SUM(calls) calls, SUM(client_calls) clientCalls, SUM(server_calls) serverCalls, SUM(paired) paired,
                SUM(failed) failed, SUM(failed_client) failedClient, SUM(failed_server) failedServer
           FROM edge_minutes GROUP BY client, server, type`,
      );
      const edges: Edge[] = rows
        .map((x) => ({
          client: x.client, server: x.server, type: x.type, calls: Number(x.calls), clientCalls: Number(x.clientCalls), serverCalls: Number(x.serverCalls), paired: Number(x.paired),
          failed: Number(x.failed), failedClient: Number(x.failedClient), failedServer: Number(x.failedServer),
        }))
        .sort(byEdge);
      expect(edges).toEqual(expected);

      // every trace assembled and connected (one root, no orphan), nothing late or duplicated
      const [[tr]] = await pool.query<mysql.RowDataPacket[]>("SELECT SUM(traces) traces, SUM(connected) connected, SUM(cut) cut, SUM(evicted) evicted FROM trace_minutes");
      expect({ traces: Number(tr.traces), connected: Number(tr.connected), cut: Number(tr.cut), evicted: Number(tr.evicted) }).toEqual({ traces: s.requests, connected: s.requests, cut: 0, evicted: 0 });
      // per service: the spans it exported; unpaired client halves are the calls to the uninstrumented peer
      const [svc] = await pool.query<mysql.RowDataPacket[]>(
        `SELECT service, SUM(spans) spans, SUM(server_calls) serverCalls, SUM(failures) failures, SUM(orphan_spans) orphans, SUM(unpaired_client) unpairedClient,
                SUM(unpaired_server) unpairedServer, SUM(duplicate_spans) dups, SUM(late_spans) late FROM service_minutes GROUP BY service ORDER BY service`,
      );
      const unpairedClient = (svcName: string) => s.calls.filter((c) => c.caller === svcName && c.via === "http" && !c.instrumentedCallee).reduce((n, c) => n + c.calls, 0);
      const served = (svcName: string) => s.calls.filter((c) => c.callee === svcName && c.instrumentedCallee);
      expect(svc.map((x) => ({ service: x.service, spans: Number(x.spans), serverCalls: Number(x.serverCalls), failures: Number(x.failures), orphans: Number(x.orphans), unpairedClient: Number(x.unpairedClient), unpairedServer: Number(x.unpairedServer), dups: Number(x.dups), late: Number(x.late) }))).toEqual(
        [...SERVICES].sort().map((name) => ({
          service: name,
          spans: app.spans[name].length,
          serverCalls: served(name).reduce((n, c) => n + c.calls, 0),
          failures: served(name).reduce((n, c) => n + c.failedServer, 0),
          orphans: 0,
          unpairedClient: unpairedClient(name),
          unpairedServer: 0,
          dups: 0,
          late: 0,
        })),
      );
    } finally {
      await pool.end();
    }

    // ---- HBase: every trace, every span, as the SDK finished it
    const sink = new HBaseSink({ client: "thrift2", thrift: hbaseThrift, table: `t_${topic}`, indexTable: `i_${topic}`, createTables: false });
    await sink.open();
    try {
      const view = (x: { spanId: string; parentSpanId: string | null; kind: number; service: string; name: string; error: boolean }) =>
        `${x.spanId} ${x.parentSpanId ?? "-"} ${x.kind} ${x.service} ${x.name} ${x.error}`;
      const all = SERVICES.flatMap((name) => app.spans[name].map((sp) => ({ sp, service: name })));
      let stored = 0;
      for (const traceId of app.traceIds) {
        const got = await sink.getTrace(traceId);
        expect(got.length, `trace ${traceId}`).toBe(s.spansPerTrace[traceId]);
        const want = all
          .filter(({ sp }) => sp.spanContext().traceId === traceId)
          .map(({ sp, service }) => ({
            spanId: sp.spanContext().spanId,
            parentSpanId: sp.parentSpanContext?.spanId ?? null,
            kind: sp.kind + 1, // OTLP wire numbers
            service,
            name: sp.name,
            error: sp.status.code === SpanStatusCode.ERROR,
          }));
        expect(got.map(view).sort(), `trace ${traceId}`).toEqual(want.map(view).sort());
        stored += got.length;
      }
      expect(stored).toBe(totalSpans);
    } finally {
      await sink.close();
    }
  }, 300_000);
});
