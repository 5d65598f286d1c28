/**
 * The scenario runners: one tracefold run (`tracefold run` under /usr/bin/time, sampled through its
 * /metrics) or one peer run (bench/peers/<peer>/run.sh under /usr/bin/time, sampled through its
 * consumer group's committed offsets), each giving one `RunResult`.
 */
import { spawn, spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import { freePort, groupLagReader, metricsReader, sampler, type Sample } from "./kafka.js";
import { compareEdges, type EdgeCheck, type ReplayMeta } from "./replay-cache.js";

export interface RunResult {
  scenario: string;
  /** Message shape of the input (in-process replay: none, the source hands batches on). */
  shape: string;
  /** Topology: threads / processes / parallelism, in words. */
  topology: string;
  round: number;
  spans: number;
  messages: number | null;
  /** Seconds of consumption (see `timing`). */
  seconds: number;
  timing: string;
  spansPerS: number;
  messagesPerS: number | null;
  /** CPU seconds (user + sys) counted for the rate, and what they cover. */
  cpuS: number;
  cpuScope: string;
  cpuSPerMSpans: number;
  /** tracefold rows: the whole process's CPU (start-up and exit included) per M spans, beside the window's. */
  processCpuSPerMSpans?: number;
  peakRssMb: number;
  wallS: number;
  /** Correctness in words, and the edge check where there is one. */
  correctness: string;
  ok: boolean | null;
  edges?: EdgeCheck;
  samples: Sample[];
  load: number;
  error?: string;
  /** Seconds the run spent before its window (an encoded replay's generation + encoding). */
  prepareS?: number;
}

export interface Timed {
  code: number | null;
  stdout: string;
  stderr: string;
  wall: number;
  cpu: number;
  rssMb: number;
}

export function timed(cmd: string, args: string[], cwd: string, started?: (pid: number) => void): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const p = spawn("/usr/bin/time", ["-f", "TIME %e %U %S %M", cmd, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    if (p.pid) started?.(p.pid);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on("data", (b: Buffer) => out.push(b));
    p.stderr.on("data", (b: Buffer) => err.push(b));
    p.on("error", reject);
    p.on("close", (code) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      const m = /TIME (\S+) (\S+) (\S+) (\d+)\s*$/.exec(stderr);
      const [wall, user, sys, rssKb] = m ? m.slice(1).map(Number) : [NaN, NaN, NaN, NaN];
      resolve({ code, stdout, stderr, wall, cpu: user + sys, rssMb: rssKb / 1024 });
    });
  });
}

export interface TracefoldRun {
  scenario: string;
  shape: string;
  topology: string;
  round: number;
  /** --set path=value settings. */
  sets: string[];
  /** Spans and messages the input holds (Kafka), for the spans-read check. */
  expectSpans: number;
  expectMessages: number | null;
  blackhole: boolean;
  /**
   * "window": CPU of the run's own window ("CPU X s in the run", every thread, after the encoded
   * replay's pre-encoding), not the whole process; messages from the run's line.
   */
  cpu?: "process" | "window";
}

/** Seconds without progress after which a tracefold run is killed. */
const STALL_S = 30;

/** Signals the tracefold process under /usr/bin/time (its only child), so time still reports. */
export function killChild(timePid: number, signal: NodeJS.Signals = "SIGKILL"): void {
  const r = spawnSync("pgrep", ["-P", String(timePid)], { encoding: "utf8" });
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) process.kill(Number(pid), signal);
}

const logTime = (stderr: string, msg: string) => Date.parse(new RegExp(`"time":"([^"]+)","level":"info","msg":"${msg}`).exec(stderr)?.[1] ?? "");

export async function runTracefold(root: string, r: TracefoldRun, onSample: (s: Sample) => void): Promise<RunResult> {
  const port = await freePort();
  const load = loadNow();
  // stall guard: a run whose span count stops moving for STALL_S is killed and reported as stalled
  // (seen: the thread shuffle stopping with its exchange queue full, credits exhausted)
  let timePid = 0;
  let last = { spans: -1, at: Date.now() };
  let stalled = "";
  const s = sampler(metricsReader(port), (x) => {
    onSample(x);
    if (x.spans !== last.spans) last = { spans: x.spans ?? -1, at: Date.now() };
    else if (!stalled && Date.now() - last.at > STALL_S * 1000 && timePid) {
      stalled = `stalled: no span processed for ${STALL_S} s at ${x.spans} spans (lag ${x.lag} messages); killed`;
      killChild(timePid);
    }
  });
  // BENCH_NODE_ARGS: node flags for the tracefold runs, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // (a profile per thread: the worker threads write theirs too)
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
  const args = [...nodeArgs, join(root, "bin", "tracefold.mjs"), "run", "--log-format", "json", "--set", `http.listen=127.0.0.1:${port}`, ...r.sets.flatMap((x) => ["--set", x])];
  const t = await timed(process.execPath, args, root, (pid) => (timePid = pid));
  const exited = Date.now();
  const samples = await s.stop();
  const base = { scenario: r.scenario, shape: r.shape, topology: r.topology, round: r.round, samples, load, wallS: t.wall, peakRssMb: t.rssMb, cpuS: t.cpu, cpuScope: "whole process (start-up included)" };
  // "N spans in S s" is the run's own count and timing
  const done = /(\d+) spans in ([\d.]+) s/.exec(t.stdout);
  const truthLine = /truth check: (PASS|FAIL[^\n]*)/.exec(t.stdout)?.[1];
  // a blackhole run exits 1 on its truth check (nothing stored to check): that is not a failure
  if (!done || (t.code !== 0 && !truthLine)) {
    return { ...base, spans: 0, messages: null, seconds: 0, timing: "", spansPerS: 0, messagesPerS: null, cpuSPerMSpans: 0, correctness: stalled || "run failed", ok: false, error: stalled || `exit ${t.code}: ${(t.stderr + t.stdout).slice(-1500)}` };
  }
  const spans = Number(done[1]);
  let seconds: number;
  let timing: string;
  const joined = logTime(t.stderr, "joined the consumer group");
  if (joined) {
    // as bench/workers.ts: the time before the first member joined (Node start-up, group join) is
    // not consumption; the end (close every window, flush, exit) is counted
    seconds = Math.max(0.1, (exited - joined) / 1000);
    timing = "first group join to process exit";
  } else {
    seconds = Number(done[2]);
    timing = "the run's own 'N spans in S s' (source open to end)";
  }
  // an encoded replay counts its messages itself ("N spans in S s (R spans/s, M messages, ...")
  const counted = /^\d+ spans in [\d.]+ s \([^,)]+ spans\/s, (\d+) messages/m.exec(t.stdout);
  const messages = r.expectMessages ?? (counted ? Number(counted[1]) : null);
  const windowCpu = /CPU ([\d.]+) s in the run/.exec(t.stdout);
  const prepared = /pre-encoded before the run \(not timed\): .* in ([\d.]+) s/.exec(t.stdout);
  const cpu = r.cpu === "window" && windowCpu ? Number(windowCpu[1]) : t.cpu;
  const cpuScope = !(r.cpu === "window" && windowCpu)
    ? base.cpuScope
    : joined
      ? `the run's window, every thread: the workers' go to the end of their runs (process and worker start-up and the exit excluded, as the peers' windows exclude theirs; whole process: ${t.cpu.toFixed(1)} s)`
      : `the run's window, every thread (pre-encoding and start-up excluded; whole process: ${t.cpu.toFixed(1)} s)`;
  const reread = Number(/(\d+) read again after rollbacks/.exec(t.stdout)?.[1] ?? 0);
  let correctness: string;
  let ok: boolean | null;
  if (truthLine && !r.blackhole) {
    ok = truthLine === "PASS";
    correctness = `truth check ${truthLine.slice(0, 60)}`;
  } else {
    ok = r.expectSpans ? spans === r.expectSpans : null;
    const read = r.expectSpans ? `spans read ${spans === r.expectSpans ? "= produced" : `${spans} != produced ${r.expectSpans}`}` : "";
    correctness = `n/a (blackhole)${read ? `; ${read}` : ""}${reread ? `; ${reread} re-read after rollbacks` : ""}`;
  }
  return {
    ...base,
    spans,
    messages,
    seconds,
    timing,
    spansPerS: spans / seconds,
    messagesPerS: messages === null ? null : messages / seconds,
    cpuS: cpu,
    cpuScope,
    cpuSPerMSpans: cpu / (spans / 1e6),
    processCpuSPerMSpans: t.cpu / (spans / 1e6),
    correctness,
    ok,
    ...(prepared ? { prepareS: Number(prepared[1]) } : {}),
  };
}

export async function runPeer(root: string, admin: Admin, peer: string, brokers: string, topic: string, shape: string, round: number, meta: ReplayMeta, onSample: (s: Sample) => void): Promise<RunResult> {
  const group = `bench-${peer}-${process.pid}-${Date.now()}`;
  const load = loadNow();
  const s = sampler(groupLagReader(admin, group, topic), onSample);
  const t = await timed("bash", [join(root, "bench", "peers", peer, "run.sh"), "--brokers", brokers, "--topic", topic, "--group", group], root);
  const samples = await s.stop();
  const base = { scenario: `peer ${peer}`, shape, topology: PEER_TOPOLOGY[peer] ?? peer, round, samples, load, wallS: t.wall, peakRssMb: t.rssMb };
  let out: { spans: number | null; messages: number; seconds: number; cpuSeconds: number; cpuSecondsTotal?: number; edges: Array<{ client: string; server: string; calls: number; errors: number }> };
  try {
    out = JSON.parse(t.stdout.trim().split("\n").pop() ?? "");
  } catch {
    return { ...base, spans: 0, messages: null, seconds: 0, timing: "", spansPerS: 0, messagesPerS: null, cpuS: 0, cpuScope: "", cpuSPerMSpans: 0, correctness: "run failed", ok: false, error: `exit ${t.code}: ${t.stderr.replace(/(Command exited with non-zero status \d+\n)?TIME [^\n]*\s*$/, "").slice(-1500)}` };
  }
  const spans = out.spans ?? 0;
  const edges = peer === "consumer-perf" ? undefined : compareEdges(out.edges, meta.truth);
  const correctness = !edges
    ? `no decode, no edges; ${out.messages === meta.messages ? "messages read = produced" : `${out.messages} messages read != ${meta.messages}`}`
    : `${edges.identical} of ${edges.truthPairs} pairs identical to the truth, ${edges.differing} differ; calls ${edges.calls} vs ${edges.truthCalls}, errors ${edges.errors} vs ${edges.truthErrors}`;
  return {
    ...base,
    spans,
    messages: out.messages,
    seconds: out.seconds,
    timing: "the peer's own window: first record received to last processed",
    spansPerS: spans / out.seconds,
    messagesPerS: out.messages / out.seconds,
    cpuS: out.cpuSeconds,
    cpuScope: peer === "consumer-perf" ? "whole JVM (the tool reports no window)" : `consumption window (whole process: ${t.cpu.toFixed(1)} s)`,
    cpuSPerMSpans: spans ? out.cpuSeconds / (spans / 1e6) : 0,
    // /usr/bin/time's, as for tracefold's rows: start-up, the consumption and the tail
    ...(spans ? { processCpuSPerMSpans: t.cpu / (spans / 1e6) } : {}),
    correctness,
    ok: edges ? edges.differing === 0 : out.messages === meta.messages,
    edges,
  };
}

const PEER_TOPOLOGY: Record<string, string> = {
  "consumer-perf": "1 JVM, 1 KafkaConsumer thread, no decode",
  "naive-node": "1 Node thread (kafkajs, protobufjs, string Maps)",
  flink: "1 JVM MiniCluster, parallelism 2 (2 sources+decode, 2 pairing, 2 sum)",
  otelcol: "1 Go process, GOMAXPROCS=cores, franz-go -> servicegraph",
};

function loadNow(): number {
  return loadavg()[0];
}

/**
 * The warm compute ceiling: the micro-benchmark's e2e (pre-encoded batch-shaped OTLP messages,
 * decode + the full fold, then finish) in `threads` worker threads at once, each on `spans`
 * spans of the replay's services, best of 5 rounds after an untimed first one. A long-running job
 * runs warm (JIT done, tables grown); a `tracefold run` row of ~2 s is partly its warm-up.
 * No CPU column: the rounds are compute-bound, one core per thread.
 */
export async function runWarmCeiling(root: string, threads: number, services: number, spans: number, round: number): Promise<RunResult> {
  const load = loadNow();
  const args = [join(root, "dist", "bench", "micro.js"), "--only=e2e", `--services=${services}`, `--spans=${spans}`, `--threads=${threads}`];
  const t = await timed(process.execPath, args, root);
  const base = {
    scenario: "warm compute ceiling (micro e2e: decode + full fold)", shape: "batch", round, samples: [], load, wallS: t.wall, peakRssMb: t.rssMb,
    topology: threads === 1 ? "1 thread" : `1 process, ${threads} threads at once`,
    timing: "best of 5 rounds per thread, after an untimed first round (node dist/bench/micro.js --only=e2e)",
    cpuS: NaN, cpuScope: "not measured: compute-bound rounds, one core per thread", cpuSPerMSpans: NaN, messages: null, messagesPerS: null,
  };
  // per thread: "e2e ...: R M spans/s (N spans, T ms, best of 5 rounds; the first, untimed round F ms)"
  const lines = [...t.stdout.matchAll(/e2e [^:\n]+: [\d.]+ M spans\/s \((\d+) spans, ([\d.]+) ms, best of \d+ rounds; the first, untimed round ([\d.]+) ms/g)];
  const checks = [...t.stdout.matchAll(/check: fold calls (\d+) = truth calls (\d+): (\w+)/g)];
  if (t.code !== 0 || lines.length !== threads || checks.length !== threads) return { ...base, spans: 0, seconds: 0, spansPerS: 0, correctness: "run failed", ok: false, error: `exit ${t.code}: ${(t.stderr + t.stdout).slice(-1500)}` };
  const ok = checks.every((c) => c[3] === "ok");
  const rate = lines.reduce((sum, l) => sum + (Number(l[1]) * 1000) / Number(l[2]), 0);
  const cold = lines.map((l) => `${((Number(l[1]) * 1000) / Number(l[3]) / 1e6).toFixed(2)} M`).join(" + ");
  const folded = lines.reduce((sum, l) => sum + Number(l[1]), 0); // whole traces: a few over `spans`
  return {
    ...base, spans: folded, seconds: folded / rate, spansPerS: rate, ok,
    correctness: `${ok ? "calls = truth" : "calls != truth"} in every thread; the first (cold) round: ${cold} spans/s`,
  };
}
