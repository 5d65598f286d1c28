import { describe, it, expect } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";

import { Interner } from "../pipeline/intern.js";
import { DecodeError } from "../pipeline/errors.js";
import {
  SpanBatch,
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
  spanIdHex,
  traceIdHex,
} from "../pipeline/span-batch.js";
import { DecodeStats, type MessageDecoder } from "../operators/decode/types.js";
import { decodeOtlpJson } from "../operators/decode/otlp-json.js";
import { decodeZipkinJson } from "../operators/decode/zipkin-json.js";
import { decodeJaegerJson } from "../operators/decode/jaeger-json.js";
import { decodeSpanLog } from "../operators/decode/span-log.js";
import {
  jsonSyntaxErrorOffset,
  nanosToUs,
  nanos,
  pbDurationToUs,
  rfc3339ToUs,
} from "../operators/decode/json-common.js";

const here = dirname(fileURLToPath(import.meta.url));
const corpus = join(here, "fixtures", "corpus");
const enc = new TextEncoder();

function fixture(...parts: string[]): Uint8Array {
  return new Uint8Array(readFileSync(join(corpus, ...parts)));
}
function json(v: unknown): Uint8Array {
  return enc.encode(JSON.stringify(v));
}
function newBatch(capacity = 4): SpanBatch {
  // a small capacity exercises the batch's growth while decoding
  return new SpanBatch(new Interner(), capacity);
}
function decode(dec: MessageDecoder, bytes: Uint8Array, b = newBatch(), stats = new DecodeStats()) {
  dec(bytes, b, stats);
  return { b, stats };
}

import { row, rows } from "./support/rows.js";
function findSid(b: SpanBatch, sid: string, kind?: number) {
  const r = rows(b).filter((x) => x.sid === sid && (kind === undefined || x.kind === kind));
  expect(r.length).toBe(1);
  return r[0];
}
function countFlag(b: SpanBatch, flag: number): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) if (b.flags[i] & flag) c++;
  return c;
}
function countKind(b: SpanBatch, kind: number): number {
  let c = 0;
  for (let i = 0; i < b.length; i++) if (b.kind[i] === kind) c++;
  return c;
}
function catchDecode(fn: () => void): DecodeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DecodeError);
    return e as DecodeError;
  }
  throw new Error("expected a DecodeError");
}

// ------------------------------------------------------------------------------------------------
describe("zipkin_json: openzipkin/zipkin zipkin-lens corpus", () => {
  it("smartthings-mobile-web-install.json: 1041 spans, kinds, shared, errors, missing times", () => {
    const { b, stats } = decode(decodeZipkinJson, fixture("zipkin-lens", "smartthings-mobile-web-install.json"));
    expect(b.length).toBe(1041);
    expect(stats.spans).toBe(1041);
    expect(stats.messages).toBe(1);
    expect(stats.spansWithoutService).toBe(0);
    expect(stats.spansWithInvalidId).toBe(0);
    expect(countKind(b, KIND_CLIENT)).toBe(628);
    expect(countKind(b, KIND_SERVER)).toBe(326);
    expect(countKind(b, KIND_UNSPECIFIED)).toBe(87);
    expect(countFlag(b, F_SHARED)).toBe(294);
    expect(countFlag(b, F_NO_START)).toBe(84);
    expect(countFlag(b, F_NO_DURATION)).toBe(175);
    // exactly the two spans tagged error=404 failed (http.status_code is never read)
    expect(countFlag(b, F_ERROR)).toBe(2);
    const failed = rows(b).filter((r) => r.flags & F_ERROR);
    expect(failed.map((r) => `${r.service}:${r.kind}:${r.sid}`).sort()).toEqual([
      `alice:${KIND_SERVER}:71687cb74971c332`,
      `execution:${KIND_CLIENT}:71687cb74971c332`,
    ]);
    const alice = findSid(b, "71687cb74971c332", KIND_SERVER);
    expect(alice.flags & F_SHARED).toBe(F_SHARED);
    expect(alice.pid).toBe("ce7bd8ffe2892e48");
    // remote endpoint without a serviceName: its ipv4 is the address
    expect(alice.addr).toBe("10.6.157.182");
    expect(alice.peer).toBe("");
    // one trace, a 64-bit id left-padded to 128 bits
    for (let i = 0; i < b.length; i++) {
      expect([b.tid[i * 4], b.tid[i * 4 + 1], b.tid[i * 4 + 2], b.tid[i * 4 + 3]]).toEqual([0, 0, 0x14b60fd9, 0xae504820]);
    }
    expect(new Set(rows(b).map((r) => r.service)).size).toBe(16);
  });

  it("ascend.json: shared pairs, roots, local spans, remote ip", () => {
    const { b } = decode(decodeZipkinJson, fixture("zipkin-lens", "ascend.json"));
    expect(b.length).toBe(8);
    expect([b.tid[0], b.tid[1], b.tid[2], b.tid[3]]).toEqual([0, 0, 0xef86c83c, 0x0a05a6d6]);
    expect(countKind(b, KIND_CLIENT)).toBe(3);
    expect(countKind(b, KIND_SERVER)).toBe(3);
    expect(countKind(b, KIND_UNSPECIFIED)).toBe(2);
    expect(countFlag(b, F_ERROR)).toBe(0);
    const shared = rows(b).filter((r) => r.flags & F_SHARED);
    expect(shared.map((r) => `${r.service}/${r.sid}/${r.kind}`).sort()).toEqual([
      `auth-service/52b1ab4956917c39/${KIND_SERVER}`,
      `content-service/ecc00062ceef4bf0/${KIND_SERVER}`,
    ]);
    const root = findSid(b, "ef86c83c0a05a6d6");
    expect(root.flags & F_HAS_PARENT).toBe(0);
    expect(root.pid).toBe("");
    expect(root.kind).toBe(KIND_SERVER);
    expect(root.service).toBe("mobile-gateway");
    expect(root.addr).toBe("110.170.201.178");
    expect(root.startUs).toBe(1531282088533035);
    expect(root.durUs).toBe(38793);
    const client = findSid(b, "ecc00062ceef4bf0", KIND_CLIENT);
    expect(client.pid).toBe("ef86c83c0a05a6d6");
    expect(client.flags).toBe(F_HAS_PARENT);
    expect(client.name).toBe("get");
    // local span: no kind, no remote endpoint -> unspecified
    const hystrix = findSid(b, "e6422f7ff7d78099");
    expect(hystrix.kind).toBe(KIND_UNSPECIFIED);
    expect(hystrix.service).toBe("content-service");
    expect(hystrix.pid).toBe("ecc00062ceef4bf0");
  });

  it("yelp.json: 16 spans, remote serviceName is the peer, http.route", () => {
    const { b } = decode(decodeZipkinJson, fixture("zipkin-lens", "yelp.json"));
    expect(b.length).toBe(16);
    expect(countFlag(b, F_SHARED)).toBe(4);
    expect(countKind(b, KIND_CLIENT)).toBe(11);
    expect(countKind(b, KIND_SERVER)).toBe(4);
    expect(countKind(b, KIND_UNSPECIFIED)).toBe(1);
    expect(findSid(b, "50b57281525a99d8").peer).toBe("mysql");
    expect(findSid(b, "0facde7c9130fd93").peer).toBe("memcache");
    expect(findSid(b, "15fc03927f0f68df").peer).toBe("blt");
    const apiProxy = findSid(b, "668ed78ad94b35a1", KIND_SERVER);
    expect(apiProxy.service).toBe("yelp_main/api_proxy");
    expect(apiProxy.flags & F_SHARED).toBe(F_SHARED);
    expect(apiProxy.route).not.toBe("");
    const root = findSid(b, "2e8cfb154b59a41f");
    expect(root.service).toBe("routing");
    expect(root.flags & F_HAS_PARENT).toBe(0);
  });

  it("simple-db-p6.json and skew.json", () => {
    const db = decode(decodeZipkinJson, fixture("zipkin-lens", "simple-db-p6.json")).b;
    expect(db.length).toBe(5);
    const clients = rows(db).filter((r) => r.kind === KIND_CLIENT);
    expect(clients.length).toBe(4);
    for (const c of clients) expect(c.peer).toBe("app_db");
    const server = findSid(db, "19f84f102048e047");
    expect(server.kind).toBe(KIND_SERVER);
    expect(server.addr).toBe("::1"); // ipv6-only remote endpoint
    expect(server.durUs).toBe(252016);

    const skew = decode(decodeZipkinJson, fixture("zipkin-lens", "skew.json")).b;
    expect(skew.length).toBe(4);
    expect(countFlag(skew, F_SHARED)).toBe(1);
    expect(findSid(skew, "74280ae0c10d8062", KIND_SERVER).service).toBe("serviceb");
    expect(findSid(skew, "74280ae0c10d8062", KIND_CLIENT).service).toBe("servicea");
  });

  it("no kind + remote endpoint is CLIENT; error tag counts, error annotation does not; peer precedence", () => {
    const base = { traceId: "463ac35c9f6413ad48485a3953bb6124", localEndpoint: { serviceName: "frontend" }, timestamp: 1700000000000000, duration: 10 };
    const { b, stats } = decode(
      decodeZipkinJson,
      json([
        { ...base, id: "0000000000000001", name: "redis get", remoteEndpoint: { serviceName: "redis" } },
        { ...base, id: "0000000000000002", remoteEndpoint: {} }, // empty endpoint: not remote
        { ...base, id: "0000000000000003", kind: "SERVER", annotations: [{ timestamp: 1700000000000001, value: "error" }] },
        { ...base, id: "0000000000000004", kind: "CLIENT", tags: { error: "" } },
        { ...base, id: "0000000000000005", kind: "PRODUCER", remoteEndpoint: { serviceName: "kafka" }, tags: { "peer.service": "tag-peer", "messaging.destination.name": "orders" } },
        { ...base, id: "0000000000000006", kind: "CONSUMER", remoteEndpoint: { serviceName: "kafka" }, tags: { "service.peer.name": "new-peer" } },
        { ...base, id: "0000000000000007", kind: "CLIENT", remoteEndpoint: { ipv4: "10.0.0.1" }, tags: { "server.address": "db.local", "db.system": "mysql", "db.name": "users" } },
        { ...base, id: "0000000000000008", timestamp: 0, duration: 0 },
      ]),
    );
    expect(stats.spans).toBe(8);
    const r = rows(b);
    expect(r[0].kind).toBe(KIND_CLIENT);
    expect(r[0].peer).toBe("redis");
    expect(r[0].tid).toBe("463ac35c9f6413ad48485a3953bb6124");
    expect(r[1].kind).toBe(KIND_UNSPECIFIED);
    expect(r[2].flags & F_ERROR).toBe(0);
    expect(r[3].flags & F_ERROR).toBe(F_ERROR);
    expect(r[4].kind).toBe(KIND_PRODUCER);
    expect(r[4].peer).toBe("kafka"); // remoteEndpoint.serviceName is taken before the peer.service tag
    expect(r[4].msgDest).toBe("orders");
    expect(r[5].kind).toBe(KIND_CONSUMER);
    expect(r[5].peer).toBe("new-peer"); // service.peer.name overrides
    expect(r[6].addr).toBe("db.local"); // a tag beats the remote ip
    expect(r[6].dbSystem).toBe("mysql");
    expect(r[6].dbNamespace).toBe("users");
    expect(r[7].flags & (F_NO_START | F_NO_DURATION)).toBe(F_NO_START | F_NO_DURATION);
  });

  it("accepts a single span object", () => {
    const { b } = decode(decodeZipkinJson, json({ traceId: "a1", id: "b2", kind: "SERVER", localEndpoint: { serviceName: "s" } }));
    expect(b.length).toBe(1);
    expect(row(b, 0).tid).toBe("000000000000000000000000000000a1");
    expect(row(b, 0).sid).toBe("00000000000000b2");
  });
});

// ------------------------------------------------------------------------------------------------
describe("otlp_json: jaegertracing/jaeger integration fixtures (OTLP/JSON, no span kind)", () => {
  const dir = join(corpus, "jaeger-integration", "traces");
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  const twoSpans = new Set(["multi_index_trace.json", "opname_maxdur_trace.json"]);

  it("decodes all 27 files with the expected counts and services", () => {
    expect(files.length).toBe(27);
    const stats = new DecodeStats();
    let total = 0;
    for (const f of files) {
      const b = newBatch();
      decodeOtlpJson(fixture("jaeger-integration", "traces", f), b, stats);
      const expected = twoSpans.has(f) ? 2 : 1;
      expect(b.length, f).toBe(expected);
      total += expected;
      const doc = JSON.parse(readFileSync(join(dir, f), "utf8"));
      const svc = doc.resourceSpans[0].resource.attributes.find((a: { key: string }) => a.key === "service.name").value.stringValue;
      expect(svc).toMatch(/^query\d\d-service$/);
      for (const r of rows(b)) {
        expect(r.service, f).toBe(svc);
        expect(r.kind, f).toBe(KIND_UNSPECIFIED);
        expect(r.flags & (F_ERROR | F_NO_START | F_NO_DURATION), f).toBe(0);
        expect(r.tid, f).toBe(doc.resourceSpans[0].scopeSpans[0].spans[0].traceId);
        expect(r.tid, f).toMatch(/^0{29}[0-9]{3}$/);
      }
    }
    expect(stats.spans).toBe(total);
    expect(stats.spans).toBe(29);
    expect(stats.messages).toBe(27);
  });

  it("opname_maxdur_trace.json: parent flag, exact microseconds", () => {
    const { b } = decode(decodeOtlpJson, fixture("jaeger-integration", "traces", "opname_maxdur_trace.json"));
    const [child, parent] = rows(b);
    expect(child.tid).toBe("00000000000000000000000000000007");
    expect([b.tid[0], b.tid[1], b.tid[2], b.tid[3]]).toEqual([0, 0, 0, 7]);
    expect(child.sid).toBe("0000000000000003");
    expect(child.pid).toBe("0000000000000002");
    expect(child.flags).toBe(F_HAS_PARENT);
    expect(child.startUs).toBe(1485449191639875);
    expect(child.durUs).toBe(1);
    expect(child.name).toBe("query07-operation");
    expect(parent.pid).toBe("");
    expect(parent.flags & F_HAS_PARENT).toBe(0);
    expect(parent.durUs).toBe(2);
  });

  it("multi_index_trace.json: two roots on different days", () => {
    const { b } = decode(decodeOtlpJson, fixture("jaeger-integration", "traces", "multi_index_trace.json"));
    expect(rows(b).map((r) => [r.startUs, r.durUs])).toEqual([
      [1485389011639875, 5],
      [1485388591639875, 5],
    ]);
  });

  it("tags_opname_trace.json: the first link is kept", () => {
    const { b } = decode(decodeOtlpJson, fixture("jaeger-integration", "traces", "tags_opname_trace.json"));
    const r = row(b, 0);
    expect(r.flags & F_HAS_LINK).toBe(F_HAS_LINK);
    expect(r.lnk).toBe("000000000000000000000000000000ff/00000000000000ff");
    expect([b.lnkTid[0], b.lnkTid[1], b.lnkTid[2], b.lnkTid[3], b.lnkSid[0], b.lnkSid[1]]).toEqual([0, 0, 0, 0xff, 0, 0xff]);
    expect(r.sid).toBe("0000000000000004");
  });
});

describe("otlp_json: open-telemetry servicegraph connector testdata (pdata YAML)", () => {
  function yamlTrace(name: string): Uint8Array {
    return json(parseYaml(readFileSync(join(corpus, "otel-servicegraph", name), "utf8")));
  }

  it("extra-dimensions-queue-db-trace.yaml: CLIENT -> SERVER pair with db.system", () => {
    const { b, stats } = decode(decodeOtlpJson, yamlTrace("extra-dimensions-queue-db-trace.yaml"));
    expect(stats.spans).toBe(2);
    const [client, server] = rows(b);
    expect(client).toMatchObject({ service: "foo-server", kind: KIND_CLIENT, name: "server", pid: "", sid: "a000000000000000" });
    expect(client.tid).toBe("a0000000000000000000000000000000");
    expect([b.tid[0], b.tid[1], b.tid[2], b.tid[3]]).toEqual([0xa0000000, 0, 0, 0]);
    expect(client.startUs).toBe(1800000000000000);
    expect(client.durUs).toBe(1);
    expect(server).toMatchObject({ service: "bar-requester", kind: KIND_SERVER, name: "HTTP GET /ready", pid: "a000000000000000", dbSystem: "postgresql" });
    expect([b.pid[2], b.pid[3]]).toEqual([0xa0000000, 0]);
    expect(server.flags).toBe(F_HAS_PARENT);
  });

  it("virtual-node-label-trace.yaml: two traces, peer.service on the server root", () => {
    const { b } = decode(decodeOtlpJson, yamlTrace("virtual-node-label-trace.yaml"));
    const [client, server] = rows(b);
    expect(client).toMatchObject({ service: "foo-server", kind: KIND_CLIENT, pid: "", peer: "" });
    expect(server).toMatchObject({ service: "bar-requester", kind: KIND_SERVER, pid: "", peer: "external-platform" });
    expect(server.tid).toBe("a0000000000000000000000000000001");
  });

  it("messaging-system-trace.yaml and virtual-node-label-client-trace.yaml", () => {
    const m = rows(decode(decodeOtlpJson, yamlTrace("messaging-system-trace.yaml")).b);
    expect(m.map((r) => [r.service, r.kind, r.pid])).toEqual([
      ["foo-server", KIND_CLIENT, ""],
      ["bar-requester", KIND_SERVER, "a000000000000000"],
    ]);
    // "peer.service.name" is not a key of either semantic-convention generation
    const c = rows(decode(decodeOtlpJson, yamlTrace("virtual-node-label-client-trace.yaml")).b);
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ service: "bar-requester", kind: KIND_SERVER, peer: "" });
  });
});

describe("otlp_json: field handling", () => {
  function request(spans: unknown[], service: string | null = "checkout", field = "scopeSpans") {
    const resource = service === null ? {} : { attributes: [{ key: "service.name", value: { stringValue: service } }] };
    return { resourceSpans: [{ resource, [field]: [{ scope: { name: "x" }, spans }] }] };
  }
  const tid = "5b8efff798038103d269b633813fc60c";

  it("converts 19-digit nanosecond strings exactly", () => {
    const { b } = decode(
      decodeOtlpJson,
      json(
        request([
          { traceId: tid, spanId: "eee19b7ec3c1b174", startTimeUnixNano: "1700000000123456789", endTimeUnixNano: "1700000000123457000" },
          // Number("1700000000123456999") / 1000 rounds up to ...457
          { traceId: tid, spanId: "eee19b7ec3c1b175", startTimeUnixNano: "1700000000123456999", endTimeUnixNano: "1700000000123459999" },
          { traceId: tid, spanId: "eee19b7ec3c1b176", startTimeUnixNano: 1700000000000000000, endTimeUnixNano: 1700000000000002000 },
          { traceId: tid, spanId: "eee19b7ec3c1b177", startTimeUnixNano: "0", endTimeUnixNano: "0" },
          { traceId: tid, spanId: "eee19b7ec3c1b178", startTimeUnixNano: "1700000000123456789" },
          { traceId: tid, spanId: "eee19b7ec3c1b179", startTimeUnixNano: "1700000000123456789", endTimeUnixNano: "1700000000123455789" },
        ]),
      ),
    );
    expect(b.startUs[0]).toBe(1700000000123456);
    expect(b.durUs[0]).toBeCloseTo(0.211, 9);
    expect(b.startUs[1]).toBe(1700000000123456);
    expect(b.durUs[1]).toBe(3);
    expect(b.startUs[2]).toBe(1700000000000000);
    expect(b.durUs[2]).toBe(2);
    expect(b.flags[0] & (F_NO_START | F_NO_DURATION)).toBe(0);
    expect(b.flags[3] & (F_NO_START | F_NO_DURATION)).toBe(F_NO_START | F_NO_DURATION);
    expect(b.flags[4] & (F_NO_START | F_NO_DURATION)).toBe(F_NO_DURATION);
    expect(b.flags[5] & (F_NO_START | F_NO_DURATION)).toBe(F_NO_DURATION); // end before start
  });

  it("kinds as integers or names, status error, attributes of both generations, older field names", () => {
    const { b, stats } = decode(
      decodeOtlpJson,
      json(
        request(
          [
            { traceId: tid, spanId: "0000000000000001", kind: "SPAN_KIND_CLIENT", status: { code: "STATUS_CODE_ERROR" }, attributes: [
              { key: "peer.service", value: { stringValue: "old" } },
              { key: "service.peer.name", value: { stringValue: "new" } },
              { key: "db.system", value: { stringValue: "mysql" } },
              { key: "db.system.name", value: { stringValue: "postgresql" } },
              { key: "db.namespace", value: { stringValue: "orders" } },
              { key: "db.name", value: { stringValue: "ignored" } },
              { key: "http.status_code", value: { intValue: "500" } },
              { key: "error", value: { boolValue: true } },
            ] },
            { traceId: tid, spanId: "0000000000000002", kind: 5, status: { code: 1 }, parentSpanId: "0000000000000000", attributes: [
              { key: "messaging.destination", value: { stringValue: "q-old" } },
              { key: "http.route", value: { stringValue: "/cart/{id}" } },
              { key: "net.peer.name", value: { stringValue: "broker" } },
            ] },
            { traceId: tid, spanId: "0000000000000003", kind: 4, status: { code: 2 }, links: [{ traceId: "zz", spanId: "1" }, { traceId: tid, spanId: "0000000000000001" }] },
            { traceId: tid, spanId: "0000000000000004", kind: "SPAN_KIND_INTERNAL", parentSpanId: "" },
            { traceId: tid, spanId: "0000000000000005", kind: 9 },
          ],
          "checkout",
          "instrumentationLibrarySpans",
        ),
      ),
    );
    expect(stats.spans).toBe(5);
    const r = rows(b);
    expect(r[0].flags).toBe(F_ERROR | F_NO_START | F_NO_DURATION);
    expect(r[0]).toMatchObject({ kind: KIND_CLIENT, peer: "new", dbSystem: "postgresql", dbNamespace: "orders", service: "checkout" });
    expect(r[1].flags & (F_ERROR | F_HAS_PARENT | F_HAS_LINK)).toBe(0);
    expect(r[1]).toMatchObject({ kind: KIND_CONSUMER, pid: "", msgDest: "q-old", route: "/cart/{id}", addr: "broker" });
    expect(r[2]).toMatchObject({ kind: KIND_PRODUCER, lnk: `${tid}/0000000000000001` });
    expect(r[2].flags).toBe(F_ERROR | F_HAS_LINK | F_NO_START | F_NO_DURATION);
    expect(r[3].kind).toBe(KIND_INTERNAL);
    expect(r[4].kind).toBe(KIND_UNSPECIFIED);
  });

  it("tolerates base64 ids", () => {
    const { b } = decode(decodeOtlpJson, json(request([{ traceId: "WvcYP7HUz18BI0VniavN7w==", spanId: "ERERERERERE=", parentSpanId: "IiIiIiIiIiI=" }])));
    expect(row(b, 0)).toMatchObject({ tid: "5af7183fb1d4cf5f0123456789abcdef", sid: "1111111111111111", pid: "2222222222222222" });
  });

  it("counts and skips spans without service or with invalid ids", () => {
    const stats = new DecodeStats();
    const b = newBatch();
    decodeOtlpJson(json(request([{ traceId: tid, spanId: "0000000000000001" }], null)), b, stats);
    decodeOtlpJson(
      json(
        request([
          { traceId: "00000000000000000000000000000000", spanId: "0000000000000001" },
          { traceId: tid, spanId: "0000000000000000" },
          { traceId: tid, spanId: "not-hex" },
          { traceId: tid, spanId: "0000000000000001", parentSpanId: "xyz" },
          { spanId: "0000000000000001" },
          { traceId: tid, spanId: "0000000000000009", name: "kept" },
        ]),
      ),
      b,
      stats,
    );
    expect(stats.spansWithoutService).toBe(1);
    expect(stats.spansWithInvalidId).toBe(5);
    expect(stats.spans).toBe(1);
    expect(stats.messages).toBe(2);
    expect(b.length).toBe(1);
    expect(row(b, 0)).toMatchObject({ sid: "0000000000000009", name: "kept" });
  });
});

// ------------------------------------------------------------------------------------------------
describe("jaeger_json: the three shapes decode to identical rows", () => {
  // One trace, 128-bit id 5af7183fb1d4cf5f0123456789abcdef; another trace aaaa..bbbb is only referenced.
  // span 1: frontend SERVER root; span 2: frontend CLIENT, child of 1, follows-from a span of another
  // trace (-> link), error; span 3: driver SERVER with FOLLOWS_FROM 1 listed before CHILD_OF 2 (parent 2);
  // span 4: worker CONSUMER with only FOLLOWS_FROM 2 (parent 2).
  const TID = "5af7183fb1d4cf5f0123456789abcdef";
  const T0 = 1485449191639875;

  const queryApi = {
    data: [
      {
        traceID: TID,
        spans: [
          {
            traceID: TID, spanID: "1111111111111111", operationName: "GET /dispatch", references: [], startTime: T0, duration: 2000,
            tags: [{ key: "span.kind", type: "string", value: "server" }, { key: "http.route", type: "string", value: "/dispatch" }, { key: "http.status_code", type: "int64", value: 200 }],
            logs: [{ timestamp: T0 + 1, fields: [{ key: "event", type: "string", value: "error" }] }], processID: "p1", warnings: null,
          },
          {
            traceID: TID, spanID: "2222222222222222", operationName: "HTTP GET",
            references: [
              { refType: "FOLLOWS_FROM", traceID: "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb", spanID: "3333333333333333" },
              { refType: "CHILD_OF", traceID: TID, spanID: "1111111111111111" },
            ],
            startTime: T0 + 100, duration: 1234,
            tags: [{ key: "span.kind", type: "string", value: "client" }, { key: "error", type: "bool", value: true }, { key: "peer.service", type: "string", value: "driver" }],
            logs: [], processID: "p1", warnings: null,
          },
          {
            traceID: TID, spanID: "4444444444444444", operationName: "FindNearest",
            references: [
              { refType: "FOLLOWS_FROM", traceID: TID, spanID: "1111111111111111" },
              { refType: "CHILD_OF", traceID: TID, spanID: "2222222222222222" },
            ],
            startTime: T0 + 200, duration: 1000,
            tags: [{ key: "span.kind", type: "string", value: "server" }, { key: "db.system", type: "string", value: "redis" }],
            logs: [], processID: "p2", warnings: null,
          },
          {
            traceID: TID, spanID: "5555555555555555", operationName: "process",
            references: [{ refType: "FOLLOWS_FROM", traceID: TID, spanID: "2222222222222222" }],
            startTime: T0 + 1500, duration: 0,
            tags: [{ key: "span.kind", type: "string", value: "consumer" }, { key: "messaging.destination.name", type: "string", value: "jobs" }, { key: "error", type: "string", value: "false" }],
            logs: [], processID: "p3", warnings: null,
          },
        ],
        processes: {
          p1: { serviceName: "frontend", tags: [{ key: "hostname", type: "string", value: "h1" }, { key: "peer.service", type: "string", value: "not-a-span-attribute" }] },
          p2: { serviceName: "driver", tags: [] },
          p3: { serviceName: "worker", tags: [] },
        },
        warnings: null,
      },
    ],
    total: 0, limit: 0, offset: 0, errors: null,
  };

  // (b): the same spans with the process inline, as an array
  const inlineSpans = queryApi.data[0].spans.map((s) => {
    const { processID, ...rest } = s;
    return { ...rest, process: (queryApi.data[0].processes as Record<string, unknown>)[processID] };
  });

  // (c): model.Span via jsonpb (defaults omitted: CHILD_OF refType, STRING vType)
  const b64 = { [TID]: "WvcYP7HUz18BI0VniavN7w==", other: "qqqqqqqqqqq7u7u7u7u7uw==", s1: "ERERERERERE=", s2: "IiIiIiIiIiI=", s3: "MzMzMzMzMzM=", s4: "REREREREREQ=", s5: "VVVVVVVVVVU=" };
  const protoJson = [
    {
      traceId: b64[TID], spanId: b64.s1, operationName: "GET /dispatch", startTime: "2017-01-26T16:46:31.639875Z", duration: "0.002s",
      tags: [{ key: "span.kind", vStr: "server" }, { key: "http.route", vStr: "/dispatch" }, { key: "http.status_code", vType: "INT64", vInt64: "200" }],
      process: { serviceName: "frontend", tags: [{ key: "hostname", vStr: "h1" }] },
    },
    {
      traceId: b64[TID], spanId: b64.s2, operationName: "HTTP GET",
      references: [{ traceId: b64.other, spanId: b64.s3, refType: "FOLLOWS_FROM" }, { traceId: b64[TID], spanId: b64.s1 }],
      startTime: "2017-01-26T16:46:31.639975Z", duration: "0.001234s",
      tags: [{ key: "span.kind", vStr: "client" }, { key: "error", vType: "BOOL", vBool: true }, { key: "peer.service", vStr: "driver" }],
      process: { serviceName: "frontend" },
    },
    {
      traceId: b64[TID], spanId: b64.s4, operationName: "FindNearest",
      references: [{ traceId: b64[TID], spanId: b64.s1, refType: "FOLLOWS_FROM" }, { traceId: b64[TID], spanId: b64.s2 }],
      startTime: "2017-01-26T17:46:31.640075+01:00", duration: "0.001s",
      tags: [{ key: "span.kind", vStr: "server" }, { key: "db.system", vStr: "redis" }],
      process: { serviceName: "driver" },
    },
    {
      traceId: b64[TID], spanId: b64.s5, operationName: "process",
      references: [{ traceId: b64[TID], spanId: b64.s2, refType: "FOLLOWS_FROM" }],
      startTime: "2017-01-26T16:46:31.641375123Z", duration: "0s",
      tags: [{ key: "span.kind", vStr: "consumer" }, { key: "messaging.destination.name", vStr: "jobs" }, { key: "error", vType: "BOOL" }],
      process: { serviceName: "worker" },
    },
  ];

  const expected = [
    { tid: TID, sid: "1111111111111111", pid: "", lnk: "", startUs: T0, durUs: 2000, kind: KIND_SERVER, flags: 0, service: "frontend", name: "GET /dispatch", route: "/dispatch", peer: "" },
    { tid: TID, sid: "2222222222222222", pid: "1111111111111111", lnk: "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb/3333333333333333", startUs: T0 + 100, durUs: 1234, kind: KIND_CLIENT, flags: F_HAS_PARENT | F_HAS_LINK | F_ERROR, service: "frontend", name: "HTTP GET", peer: "driver" },
    { tid: TID, sid: "4444444444444444", pid: "2222222222222222", lnk: "", startUs: T0 + 200, durUs: 1000, kind: KIND_SERVER, flags: F_HAS_PARENT, service: "driver", dbSystem: "redis" },
    { tid: TID, sid: "5555555555555555", pid: "2222222222222222", lnk: "", startUs: T0 + 1500, durUs: 0, kind: KIND_CONSUMER, flags: F_HAS_PARENT, service: "worker", msgDest: "jobs" },
  ];

  it("(a) query API document", () => {
    const { b, stats } = decode(decodeJaegerJson, json(queryApi));
    expect(stats.spans).toBe(4);
    const r = rows(b);
    for (let k = 0; k < expected.length; k++) expect(r[k]).toMatchObject(expected[k]);
  });

  it("(a), (b) single spans, (b) array, (c) protobuf-JSON: identical rows", () => {
    const a = rows(decode(decodeJaegerJson, json(queryApi)).b);
    const bArray = rows(decode(decodeJaegerJson, json(inlineSpans)).b);
    const bSingle = newBatch();
    const cSingle = newBatch();
    const stats = new DecodeStats();
    for (const s of inlineSpans) decodeJaegerJson(json(s), bSingle, stats);
    for (const s of protoJson) decodeJaegerJson(json(s), cSingle, stats); // one model.Span per Kafka message
    const cArray = rows(decode(decodeJaegerJson, json(protoJson)).b);
    expect(stats.messages).toBe(8);
    expect(stats.spans).toBe(8);
    expect(a).toHaveLength(4);
    expect(bArray).toEqual(a);
    expect(rows(bSingle)).toEqual(a);
    expect(rows(cSingle)).toEqual(a);
    expect(cArray).toEqual(a);
  });

  it("64-bit trace ids, a model.Batch, process lookup misses", () => {
    const stats = new DecodeStats();
    const { b } = decode(
      decodeJaegerJson,
      json({
        process: { serviceName: "batch-svc" },
        spans: [
          { traceID: "0123456789abcdef", spanID: "00000000000000aa", operationName: "op", startTime: 5, duration: 1 },
          { traceID: "0123456789abcdef", spanID: "00000000000000ab", operationName: "op", startTime: 5, duration: 1, processID: "nope" },
          { traceID: "0123456789abcdef", spanID: "00000000000000ac", process: {} },
          { traceID: "0000000000000000", spanID: "00000000000000ad", process: { serviceName: "x" } },
        ],
      }),
      newBatch(),
      stats,
    );
    expect(b.length).toBe(2);
    expect([b.tid[0], b.tid[1], b.tid[2], b.tid[3]]).toEqual([0, 0, 0x01234567, 0x89abcdef]);
    expect(row(b, 0).service).toBe("batch-svc");
    expect(row(b, 1).service).toBe("batch-svc");
    expect(row(b, 0).flags & (F_NO_START | F_NO_DURATION)).toBe(0);
    expect(stats.spansWithoutService).toBe(1);
    expect(stats.spansWithInvalidId).toBe(1);
  });
});

// ------------------------------------------------------------------------------------------------
describe("span_log", () => {
  it("decodes the documented record, one line per message", () => {
    const lines = [
      `{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","service":"checkout","name":"GET /cart","kind":"server","startUs":1700000000123456,"durationUs":1234.5,"attributes":{"http.route":"/cart","http.status_code":500}}\n`,
      `{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b8","parentSpanId":"00f067aa0ba902b7","service":"checkout","name":"SELECT","kind":3,"startUs":"1700000000123500","durationUs":10,"error":true,"attributes":{"db.system.name":"postgresql","db.namespace":"shop","peer.service":"pg"}}`,
      `{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b9","parentSpanId":"00f067aa0ba902b7","service":"cart","kind":"SERVER","shared":true,"startUs":1700000000123600,"durationUs":0}\r\n`,
      `{"traceId":"0123456789abcdef","spanId":"00f067aa0ba902c0","service":"mailer","kind":"consumer","links":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7"}],"attributes":{"messaging.destination.name":"mail"}}`,
      `  \n`,
      `{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902c1","name":"no service"}`,
    ];
    const b = newBatch();
    const stats = new DecodeStats();
    for (const l of lines) decodeSpanLog(enc.encode(l), b, stats);
    expect(stats.messages).toBe(6);
    expect(stats.spans).toBe(4);
    expect(stats.spansWithoutService).toBe(1);
    const r = rows(b);
    expect(r[0]).toMatchObject({ tid: "4bf92f3577b34da6a3ce929d0e0e4736", sid: "00f067aa0ba902b7", pid: "", kind: KIND_SERVER, startUs: 1700000000123456, durUs: 1234.5, flags: 0, service: "checkout", name: "GET /cart", route: "/cart" });
    expect(r[1]).toMatchObject({ pid: "00f067aa0ba902b7", kind: KIND_CLIENT, startUs: 1700000000123500, durUs: 10, flags: F_HAS_PARENT | F_ERROR, dbSystem: "postgresql", dbNamespace: "shop", peer: "pg" });
    expect(r[2]).toMatchObject({ service: "cart", kind: KIND_SERVER, flags: F_HAS_PARENT | F_SHARED, durUs: 0 });
    expect(r[3]).toMatchObject({ tid: "00000000000000000123456789abcdef", kind: KIND_CONSUMER, lnk: "4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7", msgDest: "mail" });
    expect(r[3].flags).toBe(F_HAS_LINK | F_NO_START | F_NO_DURATION);
  });

  it("rejects a line that is not one record", () => {
    const b = newBatch();
    const e = catchDecode(() => decodeSpanLog(enc.encode(`[{"traceId":"01","spanId":"02","service":"s"}]`), b, new DecodeStats()));
    expect(e.offset).toBe(0);
    expect(e.format).toBe("span_log");
    expect(b.length).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------
describe("malformed input", () => {
  it("truncated JSON: DecodeError naming the format and the byte offset; nothing appended", () => {
    const b = newBatch();
    const stats = new DecodeStats();
    decodeZipkinJson(fixture("zipkin-lens", "yelp.json"), b, stats);
    expect(b.length).toBe(16);
    const full = fixture("zipkin-lens", "ascend.json");
    for (const cut of [1, 100, 101, 537, full.length - 3]) {
      const e = catchDecode(() => decodeZipkinJson(full.subarray(0, cut), b, stats));
      expect(e.format).toBe("zipkin_json");
      expect(e.code).toBe("TF_DECODE_MALFORMED");
      expect(e.offset).toBe(cut); // the input ends where the message is cut
      expect(e.message).toContain("zipkin_json");
      expect(e.message).toContain(`at byte ${cut}`);
      expect(b.length).toBe(16);
    }
    expect(stats.spans).toBe(16);
    expect(stats.messages).toBe(1);
  });

  it("reports byte offsets, not UTF-16 positions (V8 position and scanner paths)", () => {
    // V8: "Expected ',' or ']' after array element in JSON at position 16"; 日本語 is 9 bytes, 3 UTF-16 units
    const a = enc.encode(`[{"name":"日本語"} {"a":1}]`);
    const ea = catchDecode(() => decodeZipkinJson(a, newBatch(), new DecodeStats()));
    expect(ea.offset).toBe(22);
    expect(String.fromCharCode(a[22])).toBe("{");
    // V8: "Unexpected token '}', ... is not valid JSON" (no position): the byte scanner finds it
    const c = enc.encode(`{"service":"café","name":tru}`);
    const ec = catchDecode(() => decodeSpanLog(c, newBatch(), new DecodeStats()));
    expect(ec.offset).toBe(29);
    expect(ec.message).toContain("span_log");
    expect(ec.message).toContain("at byte 29");
    // a UTF-8 BOM is skipped but counted
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(`{"resourceSpans":[}`)]);
    expect(catchDecode(() => decodeOtlpJson(bom, newBatch(), new DecodeStats())).offset).toBe(3 + 18);
    const ok = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(`{"resourceSpans":[]}`)]);
    expect(() => decodeOtlpJson(ok, newBatch(), new DecodeStats())).not.toThrow();
  });

  it("the byte scanner agrees with V8 wherever V8 gives a position", () => {
    const bad = [`[1,2`, `{"a":1} x`, `{"a" 1}`, `"abc`, `[1 2]`, `{"a":"\u0001"}`, `[-]`, `[01]`, `{x`, `{"a":1,}`, `[1,]`, `{"a":}`, `tru`, ``, `  `, `[1.]`, `[1e]`, `["\\x"]`, `["\\u12g4"]`, `{"a":[1,{"b":null}],"c":fals}`];
    let withPosition = 0;
    for (const s of bad) {
      const bytes = enc.encode(s);
      const off = jsonSyntaxErrorOffset(bytes);
      expect(off, s).toBeGreaterThanOrEqual(0);
      let msg = "";
      try {
        JSON.parse(s);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, s).not.toBe("");
      const m = /at position (\d+)/.exec(msg);
      if (m) {
        withPosition++;
        expect(off, `${s}: ${msg}`).toBe(Number(m[1]));
      }
    }
    expect(withPosition).toBeGreaterThan(5);
    for (const s of [`[]`, ` {"a":[1,-2.5e3,true,false,null,"\\u00e9\\n"]} `, `"x"`, `0`]) expect(jsonSyntaxErrorOffset(enc.encode(s)), s).toBe(-1);
  });

  it("structural problems: offset 0, the field named, the partial message rolled back", () => {
    const good = { resource: { attributes: [{ key: "service.name", value: { stringValue: "a" } }] }, scopeSpans: [{ spans: [{ traceId: "01", spanId: "02" }, { traceId: "01", spanId: "03" }] }] };
    const b = newBatch(1);
    const stats = new DecodeStats();
    decodeOtlpJson(json({ resourceSpans: [good] }), b, stats);
    expect(b.length).toBe(2);
    const e = catchDecode(() => decodeOtlpJson(json({ resourceSpans: [good, { resource: {}, scopeSpans: {} }] }), b, stats));
    expect(e.offset).toBe(0);
    expect(e.reason).toContain("resourceSpans[1].scopeSpans is not an array");
    expect(e.message).toContain("otlp_json");
    expect(b.length).toBe(2);
    expect(stats.spans).toBe(2);
    expect(stats.messages).toBe(1);
    expect(catchDecode(() => decodeOtlpJson(json({ resourceSpans: {} }), b, stats)).reason).toContain("resourceSpans is not an array");
    expect(catchDecode(() => decodeJaegerJson(json({ data: [{ spans: 5 }] }), b, stats)).reason).toContain("data[0].spans is not an array");
    expect(catchDecode(() => decodeZipkinJson(json([{ traceId: "01", id: "02", localEndpoint: { serviceName: "s" } }, 7]), b, stats)).reason).toContain("[1]");
    expect(b.length).toBe(2);
  });

  it("never throws anything but DecodeError", () => {
    const inputs = [``, `null`, `42`, `"s"`, `[1]`, `[null]`, `{`, `}`, `{"data":3}`, `{"resourceSpans":[1]}`, `{"resourceSpans":[{"scopeSpans":[3]}]}`, `{"resourceSpans":[{"scopeSpans":[{"spans":"x"}]}]}`];
    const decoders: [string, MessageDecoder][] = [
      ["otlp_json", decodeOtlpJson],
      ["zipkin_json", decodeZipkinJson],
      ["jaeger_json", decodeJaegerJson],
      ["span_log", decodeSpanLog],
    ];
    const junk = [...inputs.map((s) => enc.encode(s)), new Uint8Array([0xff, 0xfe, 0x00]), new Uint8Array([0x5b, 0xc3])];
    let thrown = 0;
    for (const [name, dec] of decoders) {
      for (const bytes of junk) {
        const b = newBatch();
        try {
          dec(bytes, b, new DecodeStats());
        } catch (e) {
          thrown++;
          expect(e, `${name} ${Buffer.from(bytes).toString()}`).toBeInstanceOf(DecodeError);
          expect((e as DecodeError).format).toBe(name);
          expect((e as DecodeError).offset).toBeLessThanOrEqual(bytes.length);
          expect(b.length).toBe(0);
        }
      }
    }
    expect(thrown).toBeGreaterThan(30);
  });

  it("a span without a service is counted and skipped", () => {
    const { b, stats } = decode(
      decodeZipkinJson,
      json([
        { traceId: "0000000000000001", id: "0000000000000001", kind: "SERVER" },
        { traceId: "0000000000000001", id: "0000000000000002", kind: "CLIENT", localEndpoint: { ipv4: "1.2.3.4" } },
        { traceId: "0000000000000001", id: "0000000000000003", kind: "CLIENT", localEndpoint: { serviceName: "ok" } },
      ]),
    );
    expect(stats.spansWithoutService).toBe(2);
    expect(stats.spans).toBe(1);
    expect(b.length).toBe(1);
    expect(row(b, 0).sid).toBe("0000000000000003");
  });
});

describe("json-common time helpers", () => {
  it("nanosToUs, rfc3339ToUs, pbDurationToUs", () => {
    expect(nanosToUs("1700000000123456789")).toBe(1700000000123456);
    expect(nanos.frac).toBe(789);
    expect(nanosToUs("999")).toBe(0);
    expect(nanos.frac).toBe(999);
    expect(nanosToUs("12a")).toBe(-1);
    expect(nanosToUs(undefined)).toBe(-1);
    expect(rfc3339ToUs("2017-01-26T16:46:31.639875Z")).toBe(1485449191639875);
    expect(rfc3339ToUs("2017-01-26T16:46:31Z")).toBe(1485449191000000);
    expect(rfc3339ToUs("2017-01-26T18:46:31.6398759+02:00")).toBe(1485449191639875);
    expect(rfc3339ToUs("2017-01-26T16:46:31.639875")).toBeNaN();
    expect(pbDurationToUs("0.001234s")).toBe(1234);
    expect(pbDurationToUs("3s")).toBe(3_000_000);
    expect(pbDurationToUs("1.000000500s")).toBe(1_000_000.5);
    expect(pbDurationToUs("s")).toBeNaN();
    expect(pbDurationToUs("1.s")).toBeNaN();
  });
});
