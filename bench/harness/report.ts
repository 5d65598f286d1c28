/**
 * What a benchmark run leaves behind: bench/results/<stamp>.json (everything, samples included),
 * <stamp>.md (the environment and one table row per run) and <stamp>-plots/<run>.svg (spans/s or
 * messages/s and lag over time, one plot per run, from the once-a-second samples).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Sample } from "./kafka.js";
import type { RunResult } from "./scenarios.js";
import type { SustainedResult } from "./sustained.js";

export interface Environment {
  cpuModel: string;
  /** One core's speed on a fixed workload (the micro-benchmark's e2e), to compare machines. */
  calibration?: string;
  cores: number;
  memoryGb: number;
  node: string;
  loadStart: number[];
  loadEnd?: number[];
  kafka: string;
  kafkaClient: string;
  partitions: number;
  replay: string;
  batchSizes: string;
}

const fmt = (n: number | null | undefined, digits = 0) => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));

/** The sustained-rate search (one table row per step) and the latency points. */
export function sustainedMarkdown(results: SustainedResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    const best = r.sustainedRate === null ? "none of the offered rates" : `${r.atLeast ? ">= " : ""}${fmt(r.sustainedRate)} spans/s`;
    lines.push(
      "",
      `## Sustained rate: ${r.scenario} [${r.shape}]`,
      "",
      `- **Sustained: ${best}**${r.failedRate !== null ? ` (not sustained at ${fmt(r.failedRate)})` : r.sustainedRate !== null && !r.atLeast ? " (no failing rate found within the steps: a lower bound)" : ""}; backlog drain rate ${fmt(r.drainRate)} spans/s (${r.drainSource}); search from ${fmt(r.startRate)}, ${r.durationS} s per step, ${r.topology}.`,
      ...r.notes.map((n) => `- ${n}`),
      "",
      "| step | purpose | offered spans/s | achieved spans/s | consumed spans/s (last half) | lag floor slope spans/s | last-quarter floor (s of input) | max lag spans | longest checkpoint ms | verdict | checkpoint interval ms | latency p50 / p99 ms | visible | CPU s tracefold / harness | load |",
      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|",
      ...r.steps.map((s, i) =>
        s.error
          ? `| ${i + 1} | ${s.purpose} | ${fmt(s.offeredRate)} | | | | | | | failed: ${s.error.split("\n")[0].slice(0, 100).replace(/\|/g, "/")} | ${s.checkpointIntervalMs} | | | | ${s.load.toFixed(1)} |`
          : `| ${i + 1} | ${s.purpose} | ${fmt(s.offeredRate)} | ${fmt(s.achievedRate)}${s.producerLimited ? " (producer-bound)" : ""} | ${fmt(s.consumedRate)} | ${fmt(s.floorSlope)} | ${fmt(s.finalLagS, 2)} | ${fmt(s.maxLagSpans)} | ${fmt(s.maxCheckpointMs)}${s.maxCheckpointSyncMs != null ? ` (sync ${fmt(s.maxCheckpointSyncMs)}${s.maxSnapshotMs != null ? `: increment ${fmt(s.maxSnapshotMs)}, deltas ${fmt(s.maxDrainMs)}` : ""}${s.medianCheckpointSyncMs != null ? `; median sync ${fmt(s.medianCheckpointSyncMs)}` : ""})` : ""} | ${s.sustained ? "sustained" : "**not sustained**"} | ${s.checkpointIntervalMs} | ${s.latency && s.latency.visibleMessages ? `${fmt(s.latency.p50Ms)} / ${fmt(s.latency.p99Ms)}` : "-"} | ${s.latency ? `${((100 * s.latency.visibleSpans) / Math.max(1, s.latency.spans)).toFixed(0)}%` : "-"} | ${fmt(s.cpuS, 1)} / ${fmt(s.harnessCpuS, 1)} | ${s.load.toFixed(1)} |`,
      ),
      "",
      "Latency is over the visible messages only (a commit passed their offset before the step ended); a step that was not sustained is not waited for, so its latency is shown for completeness only.",
    );
  }
  return lines;
}

export function markdown(command: string, env: Environment, runs: RunResult[], notes: string[], sustained: SustainedResult[] = []): string {
  const lines = [
    `# tracefold benchmark, ${new Date().toISOString()}`,
    "",
    "```",
    command,
    "```",
    "",
    `- Machine: \`${env.cpuModel}\`, ${env.cores} cores, ${env.memoryGb} GB, Node ${env.node}${env.calibration ? `; ${env.calibration}` : ""}; load average ${env.loadStart.map((x) => x.toFixed(1)).join(" ")} at start, ${env.loadEnd?.map((x) => x.toFixed(1)).join(" ") ?? "-"} at end.`,
    `- Kafka: ${env.kafka}, ${env.partitions} partitions. Client: ${env.kafkaClient}.`,
    `- Replay: ${env.replay}.`,
    `- Batch sizes: ${env.batchSizes}.`,
    ...notes.map((n) => `- ${n}`),
    "",
    "| scenario | shape | topology | round | spans/s | messages/s | CPU s per M spans | CPU s per M, whole process | peak RSS MB | load | correctness |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ...runs.map((r) =>
      r.error
        ? `| ${r.scenario} | ${r.shape} | ${r.topology} | ${r.round} | failed | | | | | ${r.load.toFixed(1)} | ${r.error.split("\n").filter(Boolean).pop()?.slice(0, 120).replace(/\|/g, "/") ?? ""} |`
        : `| ${r.scenario} | ${r.shape} | ${r.topology} | ${r.round} | ${r.spans ? fmt(r.spansPerS) : "-"} | ${fmt(r.messagesPerS)} | ${r.spans ? fmt(r.cpuSPerMSpans, 2) : "-"} | ${r.spans && r.processCpuSPerMSpans !== undefined ? fmt(r.processCpuSPerMSpans, 2) : "-"} | ${fmt(r.peakRssMb)} | ${r.load.toFixed(1)} | ${r.correctness} |`,
    ),
    "",
    "Timing and CPU per row:",
    ...[...new Map(runs.filter((r) => !r.error).map((r) => [r.scenario, `- ${r.scenario}: rate over ${r.timing}; CPU: ${r.cpuScope.replace(/whole process: [\d.]+ s\)/, r.processCpuSPerMSpans !== undefined ? "whole process in its own column and the JSON)" : "whole process in the JSON)")}${prepared(runs, r.scenario)}.`])).values()],
    ...sustainedMarkdown(sustained),
    "",
  ];
  return lines.join("\n");
}

/** The pre-encoding an encoded replay did before its window (not timed), over a scenario's rows. */
function prepared(runs: RunResult[], scenario: string): string {
  const s = runs.filter((r) => r.scenario === scenario && r.prepareS !== undefined).map((r) => r.prepareS!);
  return s.length ? `; generating + encoding the replay before the window took ${fmt(Math.min(...s), 1)}-${fmt(Math.max(...s), 1)} s (not timed)` : "";
}

/** One SVG: throughput (from sample deltas) and lag over time. */
export function svg(title: string, samples: Sample[], lagUnit = "messages"): string | null {
  const rate: Array<[number, number]> = [];
  const lag: Array<[number, number]> = [];
  const unit = samples.some((s) => s.spans !== null) ? "spans/s" : "messages/s";
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const va = unit === "spans/s" ? a.spans : a.messages, vb = unit === "spans/s" ? b.spans : b.messages;
    if (va !== null && vb !== null && b.t > a.t) rate.push([b.t, Math.max(0, (vb - va) / (b.t - a.t))]);
  }
  for (const s of samples) if (s.lag !== null) lag.push([s.t, s.lag]);
  if (rate.length < 2 && lag.length < 2) return null;
  const W = 640, H = 240, L = 70, R = 70, T = 30, B = 30;
  const tMax = Math.max(1, ...samples.map((s) => s.t));
  const rMax = Math.max(1, ...rate.map((p) => p[1]));
  const lMax = Math.max(1, ...lag.map((p) => p[1]));
  const x = (t: number) => L + ((W - L - R) * t) / tMax;
  const path = (pts: Array<[number, number]>, max: number) => pts.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${(H - B - ((H - T - B) * v) / max).toFixed(1)}`).join(" ");
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="16" font-size="12">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/><line x1="${W - R}" y1="${T}" x2="${W - R}" y2="${H - B}" stroke="#888"/>`,
    `<text x="${L - 4}" y="${T + 4}" text-anchor="end" fill="#1f5fbf">${fmt(rMax)}</text><text x="${L - 4}" y="${H - B}" text-anchor="end" fill="#1f5fbf">0</text>`,
    `<text x="${W - R + 4}" y="${T + 4}" fill="#c0392b">${fmt(lMax)}</text><text x="${W - R + 4}" y="${H - B}" fill="#c0392b">0</text>`,
    `<text x="${W - R}" y="${H - 8}" text-anchor="end">${tMax.toFixed(0)} s</text><text x="${L}" y="${H - 8}">0 s</text>`,
    `<text x="${L + 4}" y="${T - 4}" fill="#1f5fbf">${unit} (left)</text><text x="${W - R - 4}" y="${T - 4}" text-anchor="end" fill="#c0392b">lag, ${lagUnit} (right)</text>`,
    rate.length > 1 ? `<path d="${path(rate, rMax)}" fill="none" stroke="#1f5fbf" stroke-width="1.5"/>` : "",
    lag.length > 1 ? `<path d="${path(lag, lMax)}" fill="none" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="4 2"/>` : "",
    "</svg>",
    "",
  ].join("\n");
}

export function writeResults(dir: string, stamp: string, command: string, env: Environment, runs: RunResult[], notes: string[], sustained: SustainedResult[] = []): { json: string; md: string; plots: number } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${stamp}.json`);
  const md = join(dir, `${stamp}.md`);
  writeFileSync(json, JSON.stringify({ command, env, notes, runs, sustained }, null, 1) + "\n");
  let plots = 0;
  const plotDir = join(dir, `${stamp}-plots`);
  const links: string[] = [];
  for (const [i, r] of runs.entries()) {
    const name = `${String(i + 1).padStart(2, "0")}-${r.scenario}-${r.topology.includes("2 worker") ? "w2-" : ""}${r.shape}-r${r.round}`.replace(/[^A-Za-z0-9_.-]+/g, "_");
    const s = svg(`${r.scenario} [${r.shape}] round ${r.round}`, r.samples);
    if (!s) continue;
    mkdirSync(plotDir, { recursive: true });
    writeFileSync(join(plotDir, `${name}.svg`), s);
    links.push(`[${name}](${stamp}-plots/${name}.svg)`);
    plots++;
  }
  // the sustained steps: spans taken in per second and the lag in spans (acked - taken in)
  for (const r of sustained) {
    for (const [i, st] of r.steps.entries()) {
      const name = `sustained-${r.shape}-step${String(i + 1).padStart(2, "0")}-${Math.round(st.offeredRate)}-cp${st.checkpointIntervalMs}`;
      const s = svg(`${r.shape}: offered ${fmt(st.offeredRate)} spans/s, checkpoint ${st.checkpointIntervalMs} ms: ${st.error ? "failed" : st.sustained ? "sustained" : "not sustained"}`, st.samples.map((x) => ({ ...x, lag: x.lagSpans })), "spans");
      if (!s) continue;
      mkdirSync(plotDir, { recursive: true });
      writeFileSync(join(plotDir, `${name}.svg`), s);
      links.push(`[${name}](${stamp}-plots/${name}.svg)`);
      plots++;
    }
  }
  writeFileSync(md, markdown(command, env, runs, notes, sustained) + (links.length ? `\nPlots (throughput and lag over time, sampled once a second): ${links.join(", ")}\n` : ""));
  return { json, md, plots };
}
