/**
 * Compares a folded topology with the replay generator's ground truth: every edge's calls,
 * paired, failures by half; every service's orphans and unpaired halves; connectivity; and, when
 * given, the spans the fold took in against the spans generated (none lost, none counted twice).
 */
import type { TopologyReport } from "../operators/fold/report.js";
import type { ReplayTruth } from "../sources/replay/truth.js";

export interface TruthCheck {
  ok: boolean;
  edgesChecked: number;
  servicesChecked: number;
  differences: string[];
}

/** What the check reads of a ReplayTruth (a worker thread sends these fields to the main thread). */
export type TruthLike = Pick<ReplayTruth, "edges" | "services" | "traces" | "connectedTraces">;

export function checkAgainstTruth(report: TopologyReport, truth: TruthLike, spans?: { folded: number; generated: number }): TruthCheck {
  const diffs: string[] = [];
  if (spans && spans.folded !== spans.generated) diffs.push(`spans folded ${spans.folded} != generated ${spans.generated}`);
  const got = new Map(report.edges.map((e) => [`${e.client}|${e.server}|${e.type}`, e]));
  const fields = ["calls", "paired", "failed", "failedClient", "failedServer", "clientCalls", "serverCalls"] as const;
  for (const [k, t] of truth.edges) {
    const e = got.get(k);
    if (!e) {
      diffs.push(`edge ${k}: missing (truth has ${t.calls} calls)`);
      continue;
    }
    for (const f of fields) if (e[f] !== t[f]) diffs.push(`edge ${k}: ${f} ${e[f]} != truth ${t[f]}`);
    got.delete(k);
  }
  for (const k of got.keys()) diffs.push(`edge ${k}: not in the truth`);
  const svc = new Map(report.services.map((s) => [s.name, s]));
  for (const [name, t] of truth.services) {
    const s = svc.get(name);
    if (!s) {
      diffs.push(`service ${name}: missing`);
      continue;
    }
    for (const f of ["orphanSpans", "unpairedClient", "unpairedServer", "duplicateSpans"] as const) if (s[f] !== t[f]) diffs.push(`service ${name}: ${f} ${s[f]} != truth ${t[f]}`);
    if (s.spans !== t.spans) diffs.push(`service ${name}: spans ${s.spans} != truth ${t.spans}`);
  }
  if (report.connectivity.traces !== truth.traces) diffs.push(`traces ${report.connectivity.traces} != truth ${truth.traces}`);
  if (report.connectivity.connected !== truth.connectedTraces) diffs.push(`connected traces ${report.connectivity.connected} != truth ${truth.connectedTraces}`);
  return { ok: diffs.length === 0, edgesChecked: truth.edges.size, servicesChecked: truth.services.size, differences: diffs };
}
