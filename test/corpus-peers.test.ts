/**
 * Peer corpus: the OpenTelemetry Collector's servicegraph connector test traces with the edge
 * counts it expects, and Zipkin/Jaeger traces (test/fixtures/corpus/README.md has provenance).
 * Where our edges differ from the peer's, the test says why (DESIGN 3 semantics).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { SpanBatch } from "../pipeline/span-batch.js";
import { DecodeStats } from "../operators/decode/types.js";
import { DECODERS, frameFile } from "../operators/decode/index.js";
import { FoldDriver } from "./support/fold-driver.js";

const CORPUS = join(import.meta.dirname, "fixtures", "corpus");

function foldFile(path: string, format: keyof typeof DECODERS, yaml = false, config = {}): FoldDriver {
  let bytes: Uint8Array = readFileSync(path);
  if (yaml) bytes = new TextEncoder().encode(JSON.stringify(parseYaml(new TextDecoder().decode(bytes))));
  const d = new FoldDriver(config);
  const b = new SpanBatch(d.interner);
  const stats = new DecodeStats();
  for (const fr of frameFile(format, bytes)) DECODERS[format](bytes.subarray(fr.start, fr.end), b, stats);
  d.fold.processBatch(b);
  return d.finish();
}

/** request_total data points of a servicegraph expected-metrics file: client|server|failed -> n */
function expectedRequests(file: string): Map<string, number> {
  const doc = parseYaml(readFileSync(join(CORPUS, "otel-servicegraph", file), "utf8"));
  const out = new Map<string, number>();
  for (const rm of doc.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) {
    if (m.name !== "traces_service_graph_request_total") continue;
    for (const dp of m.sum.dataPoints) {
      const a = Object.fromEntries(dp.attributes.map((x: { key: string; value: Record<string, unknown> }) => [x.key, Object.values(x.value)[0]]));
      const k = `${a.client}|${a.server}|${a.failed}`;
      out.set(k, (out.get(k) ?? 0) + Number(dp.asInt));
    }
  }
  return out;
}

function ourRequests(d: FoldDriver): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of d.report().edges) {
    if (e.calls - e.failed > 0) out.set(`${e.client}|${e.server}|false`, e.calls - e.failed);
    if (e.failed > 0) out.set(`${e.client}|${e.server}|true`, e.failed);
  }
  return out;
}

describe("OpenTelemetry Collector servicegraph testdata", () => {
  const cases: Array<[string, string]> = [
    ["messaging-system-trace.yaml", "messaging-system-trace-expected-metrics.yaml"],
    ["extra-dimensions-queue-db-trace.yaml", "extra-dimensions-queue-db-expected-metrics.yaml"],
    ["virtual-node-label-trace.yaml", "virtual-node-label-expected-metrics.yaml"],
    ["virtual-node-label-client-trace.yaml", "virtual-node-label-client-expected-metrics.yaml"],
  ];
  for (const [trace, expected] of cases) {
    it(`${trace}: the same request counts per (client, server, failed) as the connector`, () => {
      const d = foldFile(join(CORPUS, "otel-servicegraph", trace), "otlp_json", true);
      expect(ourRequests(d)).toEqual(expectedRequests(expected));
    });
  }

  it("virtual-node-label-trace.yaml: the connector's virtual_node edges are our virtual edges", () => {
    const d = foldFile(join(CORPUS, "otel-servicegraph", "virtual-node-label-trace.yaml"), "otlp_json", true);
    // foo-server's root CLIENT span has no server side and no peer attributes -> unknown
    expect(d.edge("foo-server", "unknown", "virtual")).toMatchObject({ calls: 1, clientCalls: 1, paired: 0 });
    // bar-requester's root SERVER span is called by the virtual client `user`
    expect(d.edge("user", "bar-requester", "virtual")).toMatchObject({ calls: 1, serverCalls: 1 });
  });

  it("extra-dimensions-queue-db-trace.yaml: db.system on a SERVER span makes no database edge", () => {
    // DESIGN 3: only a CLIENT span carrying database attributes is a database call
    const d = foldFile(join(CORPUS, "otel-servicegraph", "extra-dimensions-queue-db-trace.yaml"), "otlp_json", true);
    expect(d.report().edges.map((e) => `${e.client}->${e.server}:${e.type}`)).toEqual(["foo-server->bar-requester:rpc"]);
  });
});

describe("Zipkin lens testdata", () => {
  it("yelp.json: a shared root span with no client half is called by user; shared pairs are rpc", () => {
    const d = foldFile(join(CORPUS, "zipkin-lens", "yelp.json"), "zipkin_json");
    const edges = d.report().edges.map((e) => `${e.client}->${e.server}:${e.type}:${e.calls}`).sort();
    expect(edges).toEqual([
      "mobile_api->blt:virtual:1",
      "mobile_api->memcache:virtual:2",
      "mobile_api->spectre:rpc:1",
      "unknown->yelp_main/api_proxy:rpc:1",
      "user->routing:virtual:1",
      "yelp-main->memcache:virtual:3",
      "yelp-main->mobile_api:rpc:1",
      "yelp-main->mysql:virtual:2",
    ]);
    expect(d.report().connectivity).toMatchObject({ traces: 1, connected: 1 });
  });

  it("simple-db-p6.json: CLIENT spans to an uninstrumented remote endpoint are virtual edges named by it", () => {
    const d = foldFile(join(CORPUS, "zipkin-lens", "simple-db-p6.json"), "zipkin_json");
    expect(d.edge("bootifulmeters", "app_db", "virtual")).toMatchObject({ calls: 4, paired: 0 });
    expect(d.edge("user", "bootifulmeters", "virtual")).toMatchObject({ calls: 1 });
  });

  it("smartthings-mobile-web-install.json: 1041 spans fold; spans without timestamps take their trace's minute", () => {
    const d = foldFile(join(CORPUS, "zipkin-lens", "smartthings-mobile-web-install.json"), "zipkin_json");
    const r = d.report();
    expect(r.spans).toBe(1041);
    expect(r.connectivity.traces).toBe(1);
    expect(r.services.length).toBe(16);
    // the 2 spans with an error tag fail their halves; nothing is lost
    expect(r.edges.reduce((n, e) => n + e.failedClient + e.failedServer, 0)).toBe(2);
    expect(d.fold.counters.spansWithoutTimestamp).toBe(0);
  });
});

describe("Jaeger integration fixtures (OTLP/JSON without span kinds)", () => {
  it("make no calls without kinds, and parent -> child edges with linkParentChild", () => {
    const file = join(CORPUS, "jaeger-integration", "traces", "opname_maxdur_trace.json");
    const plain = foldFile(file, "otlp_json");
    expect(plain.report().edges).toEqual([]);
    expect(plain.report().connectivity).toMatchObject({ traces: 1, connected: 1 });
  });
});
