/**
 * What `tracefold run` prints when it ends: the summary line the benchmark harness reads ("N spans
 * in S s ... CPU X s in the run"), and the replay's truth check.
 */
import type { Config } from "./config.js";
import type { ProcessResult } from "./process.js";
import { checkAgainstTruth, type TruthLike } from "./truth-check.js";
import { formatReport, type TopologyReport } from "../operators/fold/report.js";

/**
 * The multi-worker process's summary (Kafka input). The CPU is the run's window, every thread:
 * from the go (every worker opened its sinks and operators) to the end of the last worker's run,
 * so process and worker start-up and the exit are not in it (the whole process is in /usr/bin/time).
 */
export function printProcessSummary(cfg: Config, r: ProcessResult): void {
  const m = r.metrics;
  process.stdout.write(
    `topology written to ${cfg["sinks.meta"]}${cfg["sinks.meta"] === "mysql" ? " (read it with: tracefold topology --mysql-url URL)" : ""}\n` +
      // spans read again after a rollback are work done, not input: the summary counts input
      `${(m.fold_spans_in ?? 0) - (m.fold_spans_reprocessed ?? 0)} spans in ${(r.elapsedMs / 1000).toFixed(2)} s over ${m.process_workers_started ?? m.process_workers ?? 0} worker(s), ` +
      `${m.fold_spans_reprocessed ?? 0} read again after rollbacks, dead letters ${m.runtime_dead_letters ?? 0}, ` +
      `checkpoints ${m.runtime_checkpoints ?? 0}, rollbacks ${m.runtime_rollbacks ?? 0}, worker restarts ${m.process_worker_restarts}` +
      (r.windowMs ? `, CPU ${(r.windowCpuS ?? 0).toFixed(2)} s in the run (user + sys, every thread, over the ${(r.windowMs / 1000).toFixed(1)} s from the workers' go to the end of their runs)` : "") +
      `${r.stopped ? " (stopped by signal: windows left open, saved with the checkpoint)" : ""}\n`,
  );
}

/**
 * The report (embedded meta store) and the run's summary line: "N spans in S s (R spans/s)", the
 * harness reads it. S and the CPU time are the run's window: an encoded replay's pre-encoding is
 * before it (reported on a line of its own).
 */
export function printRunSummary(cfg: Config, report: TopologyReport, r: { metrics: Record<string, number>; elapsedMs: number; cpuS: number; deadLetters: number; workers: number; prepareMs: number }): void {
  const m = r.metrics;
  if (cfg["sinks.meta"] === "embedded") process.stdout.write(formatReport(report) + "\n\n");
  else process.stdout.write(`topology written to ${cfg["sinks.meta"]}${cfg["sinks.meta"] === "mysql" ? " (read it with: tracefold topology --mysql-url URL)" : ""}\n`);
  if (r.prepareMs > 0)
    process.stdout.write(`replay pre-encoded before the run (not timed): ${m.replay_messages} ${cfg["source.replay.encoded"]}-shaped OTLP messages, ${(m.replay_encoded_bytes / 1e6).toFixed(1)} MB, in ${(r.prepareMs / 1000).toFixed(1)} s${r.workers > 1 ? " (slowest worker)" : ""}\n`);
  const perS = (n: number) => fmtRate((n * 1000) / Math.max(1, r.elapsedMs));
  process.stdout.write(
    `${m.fold_spans_in} spans in ${(r.elapsedMs / 1000).toFixed(2)} s (${perS(m.fold_spans_in)} spans/s` +
      (m.replay_messages ? `, ${m.replay_messages} messages, ${perS(m.replay_messages)} messages/s` : "") +
      `)${r.workers > 1 ? ` over ${r.workers} workers` : ""}, ` +
      (cfg["sinks.meta"] === "embedded" ? `${report.edges.length} edges, connectivity ${pct(report.connectivity.rate)}, ` : "") +
      `dead letters ${r.deadLetters}, ` +
      `peak state ${fmtRate(m.fold_peak_pending_spans)} pending spans in ${(m.fold_peak_state_bytes / 1e6).toFixed(1)} MB ` +
      `(${m.fold_peak_pending_spans ? Math.round(m.fold_peak_state_bytes / m.fold_peak_pending_spans) : "-"} bytes per pending span${r.workers > 1 ? "; peaks summed over the workers" : ""}), ` +
      `CPU ${r.cpuS.toFixed(2)} s in the run (user + sys, every thread)\n`,
  );
  const offered = m.replay_offered_spans_per_second ?? 0;
  if (offered > 0) process.stdout.write(pacingVerdict(offered, m.replay_behind_spans ?? 0, m.replay_peak_behind_spans ?? 0, m.replay_spans ?? 0, (cfg["source.replay.batchSize"] as number) * Math.max(1, r.workers)) + "\n");
}

/**
 * A paced replay (source.replay.rate): kept up when it ended at most 5% of its spans (or two
 * batches per worker) behind its schedule, i.e. within 5% of the time the offered rate gives it;
 * else the pipeline is slower than the offered rate.
 */
export function pacingVerdict(offered: number, behind: number, peak: number, handed: number, batchSpans: number): string {
  const slack = Math.max(2 * batchSpans, handed / 20);
  const s = (n: number) => `${fmtRate(n)} spans, ${(n / offered).toFixed(2)} s`;
  return behind <= slack
    ? `paced replay: offered ${fmtRate(offered)} spans/s and kept up (at most ${s(peak)} behind its schedule)`
    : `paced replay: offered ${fmtRate(offered)} spans/s and did NOT keep up: ${s(behind)} behind its schedule at the end (at most ${s(peak)}); the pipeline is slower than the offered rate`;
}

/** The replay's truth check: the folded topology and the spans taken in against what was generated. */
export function truthVerdict(report: TopologyReport, truth: TruthLike & { spans: number }, m: Record<string, number>, stopped: boolean): number {
  if (stopped) {
    process.stdout.write("stopped by signal: windows left open, truth check skipped\n");
    return 0;
  }
  const check = checkAgainstTruth(report, truth, { folded: m.fold_spans_in - (m.fold_spans_reprocessed ?? 0), generated: truth.spans });
  if (check.ok) {
    process.stdout.write(`truth check: PASS (${check.edgesChecked} edges, ${check.servicesChecked} services, ${truth.traces} traces, ${truth.connectedTraces} connected, ${truth.spans} spans folded once each: all equal to what the replay generated)\n`);
    return 0;
  }
  process.stdout.write(`truth check: FAIL (${check.differences.length} differences)\n  ${check.differences.slice(0, 30).join("\n  ")}\n`);
  return 1;
}

export const emptyReport = (): TopologyReport => ({ spans: 0, traces: 0, edges: [], services: [], connectivity: { traces: 0, connected: 0, rate: null, orphanSpans: 0, duplicateSpans: 0, lateSpans: 0, cut: 0, evicted: 0 } });

export function fmtRate(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (n >= 1e6) return (n / 1e6).toFixed(2) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n));
}

function pct(x: number | null): string {
  return x === null ? "-" : (x * 100).toFixed(2) + "%";
}
