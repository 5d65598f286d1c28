/**
 * Micro-benchmarks of the hot functions (STYLE: one per hot function, plus an end-to-end run that
 * reports its machine and settings). Run: `npm run microbench` (builds, then runs dist/bench/micro.js).
 *
 *   --quick        smaller inputs (about a quarter), for a fast look
 *   --only=a,b     run the benchmarks whose name contains any of a, b (e.g. --only=decode,e2e)
 *   --services=N   services in the replay traffic (default 40; `tracefold run`'s bench uses 300)
 *   --spans=N      spans for the fold and e2e benchmarks (default 1M, a quarter with --quick)
 *   --threads=N    run the selected benchmarks in N worker threads at once (each its own isolate
 *                  and input, as the runtime's workers), print each thread's lines and, per
 *                  benchmark, the sum of their rates: the warm compute ceiling of N cores
 *
 * Every benchmark prints one line `name: X M spans/s (N spans, T ms, best of R rounds)`: one
 * untimed warm-up round, then R = 5 timed rounds (process.hrtime.bigint), best kept, a forced GC
 * before each round. Inputs (replay generator rows, pre-encoded messages) are built before the
 * clock starts. The allocation lines measure bytes the JS code allocates per span (see measureAlloc).
 */
import { cpus, loadavg } from "node:os";
import { createRequire } from "node:module";
import v8 from "node:v8";
import vm from "node:vm";
import { Worker, isMainThread } from "node:worker_threads";
import { DECODERS } from "../operators/decode/index.js";
import { DecodeStats, FORMATS, type FormatName } from "../operators/decode/types.js";
import { Fold } from "../operators/fold/fold.js";
import { HistogramPool } from "../operators/fold/histogram.js";
import { Interner } from "../pipeline/intern.js";
import { SpanBatch } from "../pipeline/span-batch.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { Rng } from "../sources/replay/rng.js";
import { messagesFromBatch, type MessageShape } from "../sources/replay/otlp-encode.js";

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const ONLY = args.find((a) => a.startsWith("--only="))?.slice(7).split(",").filter((s) => s.length > 0);
const ROUNDS = 5;
const scale = (n: number) => (QUICK ? Math.round(n / 4) : n);
const DECODE_SPANS = scale(200_000);
/** --name=N: a positive integer, or a clear error (exit 2). */
const flag = (name: string): number | undefined => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) return undefined;
  const n = Number(a.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 1) {
    console.error(`micro: --${name} must be a positive integer, got "${a.slice(name.length + 3)}"`);
    process.exit(2);
  }
  return n;
};
const SERVICES = flag("services") ?? 40;
const SPANS = flag("spans");
const FOLD_SPANS = SPANS ?? scale(1_000_000);
const E2E_SPANS = SPANS ?? scale(1_000_000);
const NAIVE_SPANS = scale(200_000);
const HISTOGRAM_VALUES = scale(10_000_000);
/** Messages per poll: a Kafka fetch hands the decode operator this many messages of one partition. */
const POLL_MESSAGES = 16;

// a GC we can force: --expose-gc when given, else the flag turned on at run time
const gc: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    v8.setFlagsFromString("--expose-gc");
    return vm.runInNewContext("gc") as () => void;
  })();

function selected(name: string): boolean {
  return ONLY === undefined || ONLY.some((o) => name.includes(o));
}

function line(name: string, spans: number, ms: number, cold?: number): void {
  const rate = spans / ms / 1000;
  // the untimed first round runs on cold code (interpreter, then the JIT) into a fresh process heap
  const first = cold === undefined ? "" : `; the first, untimed round ${cold.toFixed(1)} ms`;
  console.log(`${name}: ${rate.toFixed(rate < 10 ? 2 : 1)} M spans/s (${spans} spans, ${ms.toFixed(1)} ms, best of ${ROUNDS} rounds${first})`);
}

/** Runs `round` once to warm up, then ROUNDS times on the clock; prints and returns the best ms. */
function bench(name: string, spans: number, round: () => void): number {
  const c0 = process.hrtime.bigint();
  round();
  const cold = Number(process.hrtime.bigint() - c0) / 1e6;
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    gc();
    const t0 = process.hrtime.bigint();
    round();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms < best) best = ms;
  }
  line(name, spans, best, cold);
  return best;
}

/** Young-generation spaces: where JS code allocates (code objects from the JIT go elsewhere). */
const YOUNG = new Set(["new_space", "new_large_object_space"]);

interface SpaceStats {
  spaceName: string;
  spaceUsedSize: number;
}
interface GcEvent {
  beforeGC: { heapSpaceStatistics: SpaceStats[] };
  afterGC: { heapSpaceStatistics: SpaceStats[] };
}

function youngUsed(spaces: SpaceStats[]): number {
  let n = 0;
  for (const s of spaces) if (YOUNG.has(s.spaceName)) n += s.spaceUsedSize;
  return n;
}

/**
 * Bytes the JS code allocates while `run` executes: after a forced full GC (which leaves the young
 * generation empty), the young generation's growth plus what every GC in between took out of it
 * (freed or promoted), from v8.GCProfiler's per-space statistics. Code objects the JIT makes are
 * not counted (they go to code space), which keeps a late re-optimisation from showing up as
 * allocation. Typed-array backing stores live outside the heap; the runs below allocate none
 * (batches are pre-sized), while a view such as `subarray()` is a heap object and is counted.
 * The smallest of 5 runs is kept (a run can catch the JIT finishing a compile).
 */
function measureAlloc(run: () => void): number {
  let best = Infinity;
  for (let k = 0; k < 5; k++) {
    gc();
    const profiler = new v8.GCProfiler();
    profiler.start();
    const before = youngUsed(v8.getHeapSpaceStatistics().map((s) => ({ spaceName: s.space_name, spaceUsedSize: s.space_used_size })));
    run();
    const after = youngUsed(v8.getHeapSpaceStatistics().map((s) => ({ spaceName: s.space_name, spaceUsedSize: s.space_used_size })));
    let left = 0;
    for (const e of profiler.stop().statistics as GcEvent[]) left += youngUsed(e.beforeGC.heapSpaceStatistics) - youngUsed(e.afterGC.heapSpaceStatistics);
    best = Math.min(best, after - before + left);
  }
  return best;
}

// ------------------------------------------------------------------------------------ inputs

interface Input {
  interner: Interner;
  gen: ReplayGenerator;
  batches: SpanBatch[];
  spans: number;
}

/** Replay traffic (seed 42, 40 services unless --services, 4 partitions), the emitted batches copied. */
function replay(spans: number): Input {
  const interner = new Interner();
  const gen = new ReplayGenerator({ seed: 42, services: SERVICES, partitions: 4, batchSize: 4096 }, interner);
  const batches: SpanBatch[] = [];
  const n = gen.generate(spans, (b) => batches.push(b.clone()));
  return { interner, gen, batches, spans: n };
}

/** Messages of one partition, as a consumer polls them. */
interface Poll {
  partition: number;
  messages: Uint8Array[];
}

function encode(input: Input, format: FormatName, shape: MessageShape): { polls: Poll[]; messages: number; bytes: number } {
  const polls: Poll[] = [];
  let messages = 0;
  let bytes = 0;
  for (const b of input.batches) {
    const ms = messagesFromBatch(b, shape, 200, format);
    messages += ms.length;
    for (const m of ms) bytes += m.length;
    const per = format === "span_log" || shape === "span" ? POLL_MESSAGES * 200 : POLL_MESSAGES;
    for (let k = 0; k < ms.length; k += per) polls.push({ partition: b.partition, messages: ms.slice(k, k + per) });
  }
  return { polls, messages, bytes };
}

/** Decodes every poll into `out` (reset per poll, as the decode operator does); calls `then` per poll. */
function decodeAll(format: FormatName, polls: Poll[], out: SpanBatch, stats: DecodeStats, then?: (b: SpanBatch) => void): void {
  const decode = DECODERS[format];
  for (const p of polls) {
    out.reset(p.partition);
    for (const m of p.messages) decode(m, out, stats);
    if (then !== undefined) then(out);
  }
}

// ------------------------------------------------------------------------------------ benches

function machine(): void {
  const cpu = cpus();
  console.log(`machine: ${cpu[0]?.model ?? "unknown cpu"}, ${cpu.length} cores, node ${process.version} (V8 ${process.versions.v8})${QUICK ? ", --quick" : ""}, ${SERVICES} services`);
  console.log(`load average at start: ${loadAverage()} (other processes on the machine share its cores)`);
}

/** A message rate with a readable unit. */
function perSecond(count: number, ms: number, unit: string): string {
  const r = (count / ms) * 1000;
  return r >= 1e6 ? `${(r / 1e6).toFixed(2)} M ${unit}/s` : `${(r / 1e3).toFixed(1)} k ${unit}/s`;
}

function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

function decodeBenches(): void {
  const names = [
    ...FORMATS.map((f) => ({ name: `decode ${f}`, format: f, shape: "batch" as MessageShape })),
    { name: "decode otlp_proto [one trace per message]", format: "otlp_proto" as FormatName, shape: "trace" as MessageShape },
    { name: "decode otlp_proto [one span per message]", format: "otlp_proto" as FormatName, shape: "span" as MessageShape },
  ].filter((d) => selected(d.name));
  const wantsPbjs = selected("decode otlp_proto [protobufjs reference]");
  if (names.length === 0 && !wantsPbjs) return;
  const input = replay(DECODE_SPANS);
  for (const d of names) {
    const { polls, messages, bytes } = encode(input, d.format, d.shape);
    const out = new SpanBatch(new Interner(), 1 << 16);
    const stats = new DecodeStats();
    const ms = bench(d.name, input.spans, () => decodeAll(d.format, polls, out, stats));
    console.log(`  ${messages} messages (${perSecond(messages, ms, "messages")}), ${(bytes / input.spans).toFixed(0)} bytes/span`);
  }
  if (wantsPbjs) {
    // the official generated OTLP decoder (protobufjs static code): builds every object
    const require = createRequire(import.meta.url);
    const root = require("@opentelemetry/otlp-transformer/build/src/generated/root.js") as {
      opentelemetry: { proto: { collector: { trace: { v1: { ExportTraceServiceRequest: { decode(b: Uint8Array): unknown } } } } } };
    };
    const Req = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
    const { polls } = encode(input, "otlp_proto", "batch");
    let sink = 0;
    bench("decode otlp_proto [protobufjs reference]", input.spans, () => {
      for (const p of polls) for (const m of p.messages) sink += (Req.decode(m) as { resourceSpans: unknown[] }).resourceSpans.length;
    });
    if (sink < 0) console.log(sink);
  }
}

function pairingBench(): void {
  if (!selected("pairing")) return;
  const input = replay(FOLD_SPANS);
  bench("pairing (fold processBatch + finish)", input.spans, () => {
    const fold = new Fold(input.interner);
    for (const b of input.batches) fold.processBatch(b);
    fold.finish();
  });
  const bytes = measureAlloc(() => {
    const fold = new Fold(input.interner);
    for (const b of input.batches) fold.processBatch(b);
  });
  console.log(`alloc fold processBatch: ${(bytes / input.spans).toFixed(1)} bytes/span (${input.spans} spans into a new Fold, table growth included; young-generation bytes, see measureAlloc)`);
}

function histogramBench(): void {
  if (!selected("histogram")) return;
  // lognormal latencies: median 2 ms, sigma 1.2 (5 us .. seconds), from a seeded PRNG
  const rng = new Rng(7, 1);
  const values = new Float64Array(HISTOGRAM_VALUES);
  for (let i = 0; i < values.length; i++) values[i] = rng.lognormal(2000, 1.2);
  const pool = new HistogramPool(64);
  const ids: number[] = [];
  for (let h = 0; h < 64; h++) ids.push(pool.alloc());
  const ms = bench("histogram insert (HistogramPool.record, 64 histograms)", values.length, () => {
    for (let i = 0; i < values.length; i++) pool.record(i & 63, values[i]);
  });
  console.log(`  ${((ms * 1e6) / values.length).toFixed(1)} ns per value`);
}

function e2eBench(): void {
  if (!selected("e2e")) return;
  const input = replay(E2E_SPANS);
  const { polls, messages } = encode(input, "otlp_proto", "batch");
  const decodeInterner = new Interner();
  const out = new SpanBatch(decodeInterner, 1 << 16);
  const stats = new DecodeStats();
  let last: Fold | null = null;
  const ms = bench("e2e otlp_proto decode + full fold (one core)", input.spans, () => {
    const fold = new Fold(decodeInterner);
    decodeAll("otlp_proto", polls, out, stats, (b) => fold.processBatch(b));
    fold.finish();
    last = fold;
  });
  console.log(`  ${messages} messages of ~200 spans, ${POLL_MESSAGES} per poll (${perSecond(messages, ms, "messages")}); target >= 1.5 M spans/s: ${input.spans / ms / 1000 >= 1.5 ? "met" : "NOT met"}`);
  // the run did real work: every truth call is there
  let calls = 0;
  for (const e of (last as Fold | null)!.drain().edges) calls += e.calls;
  let truthCalls = 0;
  for (const e of input.gen.truth.edges.values()) truthCalls += e.calls;
  console.log(`  check: fold calls ${calls} = truth calls ${truthCalls}: ${calls === truthCalls ? "ok" : "MISMATCH"}`);
}

function naiveBench(): void {
  if (!selected("naive")) return;
  const input = replay(NAIVE_SPANS);
  const { polls } = encode(input, "otlp_json", "batch");
  const messages = polls.flatMap((p) => p.messages);
  let result: ReturnType<typeof naiveFold> | null = null;
  bench("naive baseline (JSON.parse OTLP/JSON + Map of hex-string keys + object per span)", input.spans, () => {
    result = naiveFold(messages);
  });
  // how much of it is the parse alone (TextDecoder + JSON.parse)
  const text = new TextDecoder();
  let sink = 0;
  bench("naive baseline [TextDecoder + JSON.parse only]", input.spans, () => {
    for (const m of messages) sink += (JSON.parse(text.decode(m)) as { resourceSpans: unknown[] }).resourceSpans.length;
  });
  if (sink < 0) console.log(sink);
  let truthCalls = 0;
  for (const e of input.gen.truth.edges.values()) truthCalls += e.calls;
  const calls = (result as ReturnType<typeof naiveFold> | null)!.calls;
  console.log(`  check: naive calls ${calls} = truth calls ${truthCalls}: ${calls === truthCalls ? "ok" : "MISMATCH"}`);
}

function allocBench(): void {
  if (!selected("alloc")) return;
  const input = replay(DECODE_SPANS);
  const { polls } = encode(input, "otlp_proto", "batch");
  const out = new SpanBatch(new Interner(), 1 << 16);
  const stats = new DecodeStats();
  for (let k = 0; k < 10; k++) decodeAll("otlp_proto", polls, out, stats); // JIT and interner warm
  const bytes = measureAlloc(() => decodeAll("otlp_proto", polls, out, stats));
  console.log(
    `alloc otlp_proto decode: ${(bytes / input.spans).toFixed(2)} bytes/span (${input.spans} spans, ${bytes} bytes, warm decoder; ` +
      `young-generation growth + what GCs took out of it (v8.GCProfiler), after a forced GC, best of 5)`,
  );
}

// ------------------------------------------------------------------------------ naive baseline

/**
 * The fold as a first version is written: JSON.parse of OTLP/JSON, an object per span, Maps keyed
 * by hex-string ids, a string key per edge. It does the same pairing and edge counting as the fold
 * (duplicates, database calls, user -> root, lone client -> virtual/messaging at the end) but none
 * of its windows, stats or histograms, so it is a generous baseline.
 */
interface NaiveSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  service: string;
  name: string;
  kind: number;
  startUs: number;
  endUs: number;
  error: boolean;
  attributes: Record<string, string>;
}

interface NaiveEdge {
  calls: number;
  paired: number;
  failed: number;
  failedClient: number;
  failedServer: number;
}

function naiveFold(messages: Uint8Array[]): { calls: number; edges: Map<string, NaiveEdge> } {
  const text = new TextDecoder();
  const seen = new Set<string>();
  const clients = new Map<string, NaiveSpan>();
  const servers = new Map<string, NaiveSpan>();
  const edges = new Map<string, NaiveEdge>();
  let calls = 0;
  const edge = (c: NaiveSpan | null, s: NaiveSpan | null, client: string, server: string, type: string): void => {
    const minute = Math.floor((c ?? s)!.startUs / 60e6);
    const key = `${minute}|${client}|${server}|${type}`;
    let e = edges.get(key);
    if (e === undefined) edges.set(key, (e = { calls: 0, paired: 0, failed: 0, failedClient: 0, failedServer: 0 }));
    e.calls++;
    calls++;
    if (c && s) e.paired++;
    if (c?.error) e.failedClient++;
    if (s?.error) e.failedServer++;
    if (c?.error || s?.error) e.failed++;
  };
  for (const m of messages) {
    const doc = JSON.parse(text.decode(m));
    for (const rs of doc.resourceSpans ?? []) {
      const service = (rs.resource?.attributes ?? []).find((a: { key: string }) => a.key === "service.name")?.value?.stringValue;
      for (const ss of rs.scopeSpans ?? []) {
        for (const o of ss.spans ?? []) {
          const attributes: Record<string, string> = {};
          for (const a of o.attributes ?? []) attributes[a.key] = a.value?.stringValue;
          const span: NaiveSpan = {
            traceId: o.traceId,
            spanId: o.spanId,
            parentSpanId: o.parentSpanId ?? "",
            service,
            name: o.name,
            kind: o.kind,
            startUs: Number(o.startTimeUnixNano) / 1000,
            endUs: Number(o.endTimeUnixNano) / 1000,
            error: o.status?.code === 2,
            attributes,
          };
          const id = `${span.traceId}:${span.spanId}:${span.kind}`;
          if (seen.has(id)) continue;
          seen.add(id);
          if (span.kind === 3 || span.kind === 4) {
            const db = attributes["db.system"] ?? attributes["db.system.name"];
            if (span.kind === 3 && db !== undefined) {
              const node = attributes["peer.service"] ?? attributes["server.address"] ?? attributes["db.name"] ?? db;
              edge(span, null, service, node, "database");
              continue;
            }
            const key = `${span.traceId}:${span.spanId}`;
            const server = servers.get(key);
            if (server !== undefined) {
              servers.delete(key);
              edge(span, server, service, server.service, span.kind === 4 ? "messaging" : "rpc");
            } else clients.set(key, span);
          } else if (span.kind === 2 || span.kind === 5) {
            if (span.parentSpanId === "") {
              edge(null, span, "user", service, "virtual");
              continue;
            }
            const key = `${span.traceId}:${span.parentSpanId}`;
            const client = clients.get(key);
            if (client !== undefined) {
              clients.delete(key);
              edge(client, span, client.service, service, client.kind === 4 ? "messaging" : "rpc");
            } else servers.set(key, span);
          }
        }
      }
    }
  }
  // end of input: lone clients are calls to virtual nodes (producers: to their destination)
  for (const c of clients.values()) {
    const a = c.attributes;
    if (c.kind === 4) edge(c, null, c.service, a["peer.service"] ?? a["messaging.destination.name"] ?? "unknown", "messaging");
    else edge(c, null, c.service, a["peer.service"] ?? a["server.address"] ?? "unknown", "virtual");
  }
  return { calls, edges };
}

/** --threads=N: the same benchmarks in N threads at once; per benchmark, the sum of the rates. */
async function inThreads(n: number): Promise<void> {
  machine();
  const argv = args.filter((a) => !a.startsWith("--threads="));
  const outs = await Promise.all(
    Array.from({ length: n }, (_, k) => new Promise<string>((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { argv, stdout: true });
      let out = "";
      w.stdout.setEncoding("utf8");
      w.stdout.on("data", (d: string) => (out += d));
      w.on("error", reject);
      w.on("exit", (code) => (code === 0 ? resolve(out.replace(/^/gm, `[thread ${k + 1}] `).trimEnd()) : reject(new Error(`thread ${k + 1} exited with ${code}`))));
    })),
  );
  for (const o of outs) console.log(o.split("\n").filter((l) => /M spans\/s|bytes\/span|check:/.test(l)).join("\n"));
  const sums = new Map<string, number[]>();
  for (const o of outs)
    for (const m of o.matchAll(/^\[thread \d+\] ([^:\n]+): ([\d.]+) M spans\/s/gm)) sums.set(m[1], [...(sums.get(m[1]) ?? []), Number(m[2])]);
  for (const [name, rates] of sums)
    console.log(`${name} x ${n} threads at once: ${rates.reduce((a, b) => a + b, 0).toFixed(2)} M spans/s (${rates.map((r) => r.toFixed(2)).join(" + ")})`);
  console.log(`load average at end: ${loadAverage()}`);
}

const THREADS = flag("threads") ?? 1;
if (THREADS > 1 && isMainThread) {
  await inThreads(THREADS);
} else {
  runAll();
}

function runAll(): void {
  machine();
  decodeBenches();
  pairingBench();
  histogramBench();
  e2eBench();
  naiveBench();
  allocBench();
  console.log(`load average at end: ${loadAverage()}`);
}
