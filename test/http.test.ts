/**
 * The health endpoints: Prometheus text (counters get _total, levels are gauges, labels kept),
 * /livez always 200, /readyz 200 or 503 with the reasons, unknown paths 404.
 */
import { describe, expect, it } from "vitest";
import type { AddressInfo } from "node:net";
import { prometheusText, startHealthServer } from "../pipeline/http.js";
import { httpListen, loadConfig, workerCount } from "../pipeline/config.js";

describe("prometheus text", () => {
  it("types counters and gauges, keeps labels, sorts by name", () => {
    const text = prometheusText({
      fold_spans_in: 12,
      "kafka_partition_lag{topic=\"t\",partition=\"1\"}": 5,
      "kafka_partition_lag{topic=\"t\",partition=\"0\"}": 3,
      fold_pending_spans: 7,
      runtime_last_checkpoint_ms: 40,
      bad: Number.NaN,
    });
    expect(text).toBe(
      [
        "# TYPE tracefold_fold_pending_spans gauge",
        "tracefold_fold_pending_spans 7",
        "# TYPE tracefold_fold_spans_in_total counter",
        "tracefold_fold_spans_in_total 12",
        "# TYPE tracefold_kafka_partition_lag gauge",
        'tracefold_kafka_partition_lag{topic="t",partition="1"} 5',
        'tracefold_kafka_partition_lag{topic="t",partition="0"} 3',
        "# TYPE tracefold_runtime_last_checkpoint_ms gauge",
        "tracefold_runtime_last_checkpoint_ms 40",
        "",
      ].join("\n"),
    );
  });
});

describe("health server", () => {
  it("answers /livez, /readyz (with reasons) and /metrics", async () => {
    let ready = false;
    const server = await startHealthServer("127.0.0.1", 0, { metrics: () => ({ fold_spans_in: 3 }), readiness: () => ({ ready, reasons: ready ? [] : ["worker 0: meta: unreachable"] }) });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await fetch(`${base}/livez`)).status).toBe(200);
      const notReady = await fetch(`${base}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.text()).toContain("- worker 0: meta: unreachable");
      ready = true;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${base}/metrics`)).text()).toContain("tracefold_fold_spans_in_total 3");
      expect((await fetch(`${base}/nope`)).status).toBe(404);
      expect((await fetch(`${base}/livez`, { method: "POST" })).status).toBe(405);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe("runtime settings", () => {
  it("workers: auto is one per core, a number is taken as is, anything else is rejected", () => {
    expect(workerCount(loadConfig({ sets: ["runtime.workers=3"] }))).toBe(3);
    expect(workerCount(loadConfig({}))).toBeGreaterThanOrEqual(1);
    expect(() => loadConfig({ sets: ["runtime.workers=0"] })).toThrow(/runtime.workers: must be auto or a number >= 1/);
    expect(() => loadConfig({ sets: ["runtime.workers=many"] })).toThrow(/runtime.workers/);
  });

  it("http.listen: auto serves with Kafka input only; off never; host:port as given", () => {
    const kafka = ["source.type=kafka", "source.kafka.brokers=127.0.0.1:9", "source.kafka.topic=t"];
    expect(httpListen(loadConfig({ sets: kafka }))).toEqual({ host: "0.0.0.0", port: 9464 });
    expect(httpListen(loadConfig({}))).toBeNull();
    expect(httpListen(loadConfig({ sets: [...kafka, "http.listen=off"] }))).toBeNull();
    expect(httpListen(loadConfig({ sets: ["http.listen=127.0.0.1:0"] }))).toEqual({ host: "127.0.0.1", port: 0 });
    expect(() => loadConfig({ sets: ["http.listen=nowhere"] })).toThrow(/http.listen/);
  });
});
