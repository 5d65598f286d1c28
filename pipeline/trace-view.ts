/**
 * `tracefold trace ID`: one trace as a tree with timings and errors (or JSON), from the spans a
 * trace store returns.
 */
import type { StoredSpan } from "../sinks/embedded/trace-store.js";

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];

export function formatTrace(spans: StoredSpan[]): string {
  if (spans.length === 0) return "trace not found (expired by TTL, or never seen)";
  const t0 = Math.min(...spans.map((s) => s.startUs));
  // children by parent id; a server half shares its client's id (Zipkin) and goes under it
  const byParent = new Map<string, StoredSpan[]>();
  const ids = new Set(spans.map((s) => s.spanId));
  const roots: StoredSpan[] = [];
  for (const s of [...spans].sort((a, b) => a.startUs - b.startUs)) {
    if (s.parentSpanId && ids.has(s.parentSpanId)) {
      const list = byParent.get(s.parentSpanId) ?? [];
      list.push(s);
      byParent.set(s.parentSpanId, list);
    } else roots.push(s);
  }
  const lines = [`trace ${spans[0].traceId}: ${spans.length} spans, ${((Math.max(...spans.map((s) => s.startUs + s.durationUs)) - t0) / 1000).toFixed(1)} ms${roots.length > 1 ? `, ${roots.length} roots (broken)` : ""}`];
  const seen = new Set<StoredSpan>();
  const walk = (s: StoredSpan, depth: number) => {
    if (seen.has(s)) return;
    seen.add(s);
    const orphan = s.parentSpanId && !ids.has(s.parentSpanId) ? "  [orphan: parent missing]" : "";
    lines.push(
      `${"  ".repeat(depth)}${s.service}  ${s.name}  (${KINDS[s.kind] ?? s.kind}${s.peer ? ` -> ${s.peer}` : ""})  +${((s.startUs - t0) / 1000).toFixed(1)} ms  ${(s.durationUs / 1000).toFixed(1)} ms${s.error ? "  ERROR" : ""}${orphan}`,
    );
    for (const c of byParent.get(s.spanId) ?? []) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return lines.join("\n");
}
