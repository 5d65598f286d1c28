/**
 * The process's own health over HTTP (what Kubernetes and Prometheus ask):
 *   GET /metrics  Prometheus text format: every worker's counters merged, plus the process's own
 *   GET /livez    200 while the process runs its event loop (never checks Kafka or the sinks)
 *   GET /readyz   200 when every worker joined its group and reached its sinks, else 503 + why
 */
import { createServer, type Server } from "node:http";
import { isGauge } from "./metrics.js";

export interface HealthSource {
  metrics(): Record<string, number>;
  readiness(): { ready: boolean; reasons: string[] };
}


export function prometheusText(metrics: Record<string, number>, prefix = "tracefold_"): string {
  const byName = new Map<string, Array<[string, number]>>();
  for (const [key, value] of Object.entries(metrics)) {
    if (!Number.isFinite(value)) continue;
    const brace = key.indexOf("{");
    const name = prefix + (brace < 0 ? key : key.slice(0, brace)).replace(/[^a-zA-Z0-9_]/g, "_");
    const labels = brace < 0 ? "" : key.slice(brace);
    const list = byName.get(name) ?? [];
    list.push([labels, value]);
    byName.set(name, list);
  }
  const out: string[] = [];
  for (const name of [...byName.keys()].sort()) {
    const gauge = isGauge(name);
    const exposed = gauge || name.endsWith("_total") ? name : `${name}_total`;
    out.push(`# TYPE ${exposed} ${gauge ? "gauge" : "counter"}`);
    for (const [labels, v] of byName.get(name)!) out.push(`${exposed}${labels} ${v}`);
  }
  return out.join("\n") + "\n";
}

export function startHealthServer(host: string, port: number, source: HealthSource): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
      return;
    }
    if (path === "/livez") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const r = source.readiness();
      res.writeHead(r.ready ? 200 : 503, { "content-type": "text/plain" }).end(r.ready ? "ok\n" : `not ready:\n${r.reasons.map((x) => `- ${x}`).join("\n")}\n`);
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(prometheusText(source.metrics()));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("tracefold: /metrics, /livez, /readyz\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
