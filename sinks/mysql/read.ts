/**
 * Reads topology back from MySQL into an EmbeddedMetaStore over a time range, so the same report
 * code serves `tracefold topology` (MySQL) and `tracefold fold` (embedded): one shape, two stores.
 */
import type { Pool } from "mysql2/promise";
import { EmbeddedMetaStore } from "../embedded/meta-store.js";
import type { EdgeType } from "../../operators/fold/deltas.js";
import type { HistogramData } from "../../operators/fold/histogram.js";

type Row = Record<string, unknown>;

export async function loadStore(pool: Pool, fromMs = 0, toMs = Number.MAX_SAFE_INTEGER): Promise<EmbeddedMetaStore> {
  const store = new EmbeddedMetaStore();
  const range = [fromMs, toMs];
  const q = async (sql: string) => (await pool.execute(sql, range))[0] as Row[];
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const hist = (r: Row, p: string): HistogramData | null =>
    Number(r[`${p}_count`]) > 0 ? { count: Number(r[`${p}_count`]), sum: Number(r[`${p}_sum`]), min: num(r[`${p}_min`]) ?? Infinity, max: num(r[`${p}_max`]) ?? -Infinity, buckets: [] } : null;

  const edgeBuckets = new Map<string, Array<[number, number]>>();
  for (const b of await q("SELECT minute, client, server, type, which, bucket, count FROM edge_latency_buckets WHERE minute >= ? AND minute < ? ORDER BY bucket")) {
    const k = `${b.minute}|${b.client}|${b.server}|${b.type}|${b.which}`;
    let list = edgeBuckets.get(k);
    if (!list) edgeBuckets.set(k, (list = []));
    list.push([Number(b.bucket), Number(b.count)]);
  }
  const withBuckets = (h: HistogramData | null, key: string) => {
    if (h) h.buckets = edgeBuckets.get(key) ?? [];
    return h;
  };
  await store.write({
    edges: (await q("SELECT * FROM edge_minutes WHERE minute >= ? AND minute < ?")).map((r) => {
      const base = `${r.minute}|${r.client}|${r.server}|${r.type}`;
      return {
        minute: Number(r.minute), client: String(r.client), server: String(r.server), type: String(r.type) as EdgeType,
        calls: Number(r.calls), clientCalls: Number(r.client_calls), serverCalls: Number(r.server_calls), paired: Number(r.paired),
        failed: Number(r.failed), failedClient: Number(r.failed_client), failedServer: Number(r.failed_server), negativeLag: Number(r.negative_lag),
        clientLatency: withBuckets(hist(r, "client_lat"), `${base}|c`), serverLatency: withBuckets(hist(r, "server_lat"), `${base}|s`), lag: withBuckets(hist(r, "lag"), `${base}|l`),
      };
    }),
    services: await (async () => {
      const buckets = new Map<string, Array<[number, number]>>();
      for (const b of await q("SELECT minute, service, bucket, count FROM service_latency_buckets WHERE minute >= ? AND minute < ? ORDER BY bucket")) {
        const k = `${b.minute}|${b.service}`;
        let list = buckets.get(k);
        if (!list) buckets.set(k, (list = []));
        list.push([Number(b.bucket), Number(b.count)]);
      }
      return (await q("SELECT * FROM service_minutes WHERE minute >= ? AND minute < ?")).map((r) => {
        const latency = hist(r, "lat");
        if (latency) latency.buckets = buckets.get(`${r.minute}|${r.service}`) ?? [];
        return {
          minute: Number(r.minute), service: String(r.service), spans: Number(r.spans), serverCalls: Number(r.server_calls), failures: Number(r.failures),
          errorSpans: Number(r.error_spans), orphanSpans: Number(r.orphan_spans), unpairedClient: Number(r.unpaired_client), unpairedServer: Number(r.unpaired_server),
          duplicateSpans: Number(r.duplicate_spans), lateSpans: Number(r.late_spans), traces: Number(r.traces), connectedTraces: Number(r.connected_traces), latency,
        };
      });
    })(),
    operations: (await q("SELECT * FROM operation_minutes WHERE minute >= ? AND minute < ?")).map((r) => ({
      minute: Number(r.minute), service: String(r.service), operation: String(r.operation), spans: Number(r.spans), serverCalls: Number(r.server_calls),
      failures: Number(r.failures), errorSpans: Number(r.error_spans), latency: hist(r, "lat"),
    })),
    traces: (await q("SELECT * FROM trace_minutes WHERE minute >= ? AND minute < ?")).map((r) => ({
      minute: Number(r.minute), traces: Number(r.traces), connected: Number(r.connected), cut: Number(r.cut), evicted: Number(r.evicted),
    })),
  });
  return store;
}
