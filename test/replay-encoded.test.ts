/**
 * The replay source with pre-encoded OTLP messages (source.replay.encoded) and over worker threads
 * (runtime.workers=N): the in-process compute ceiling of issue 5. Run through the CLI as users
 * and the benchmark run it (the build is made by the test command first).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { checkAgainstTruth } from "../pipeline/truth-check.js";
import { buildJob } from "../pipeline/job.js";
import { loadConfig } from "../pipeline/config.js";

const ROOT = join(import.meta.dirname, "..");
const SPANS = 60_000;
const tf = (sets: string[]) =>
  spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "run", "--spans", String(SPANS), "--seed", "7", "--services", "25", "--no-progress", "--log-format", "json", ...sets.flatMap((s) => ["--set", s])], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });

/** The topology report the run prints first (identical input must fold to identical tables). */
const reportOf = (stdout: string) => stdout.slice(0, stdout.search(/^(replay pre-encoded|\d+ spans in)/m));
const logs = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);

interface Run {
  status: number | null;
  stdout: string;
  spans: number;
  messages: number | null;
  generated: number;
  perWorker: number[];
}

function run(encoded: string, workers: number): Run {
  const r = tf([`source.replay.encoded=${encoded}`, `runtime.workers=${workers}`, "sinks.traces=blackhole"]);
  expect(r.stderr).not.toMatch(/"level":"error"/);
  const line = /^(\d+) spans in [\d.]+ s \([^,)]+ spans\/s(?:, (\d+) messages, [^)]+)?\)/m.exec(r.stdout);
  expect(line, r.stdout + r.stderr).not.toBeNull();
  const pass = /truth check: PASS \(.*, (\d+) spans folded once each/.exec(r.stdout);
  return {
    status: r.status,
    stdout: r.stdout,
    spans: Number(line![1]),
    messages: line![2] === undefined ? null : Number(line![2]),
    generated: pass ? Number(pass[1]) : NaN,
    perWorker: logs(r.stderr).filter((l) => l.msg === "replay worker done").sort((a, b) => (a.worker as number) - (b.worker as number)).map((l) => l.spans as number),
  };
}

describe("replay with pre-encoded messages and worker threads", () => {
  // the reference: today's replay, SpanBatches straight into the fold, one thread
  let direct: Run;
  beforeAll(() => {
    direct = run("none", 1);
  });

  it("the direct replay passes its truth check (the reference for the rest)", () => {
    expect(direct.status).toBe(0);
    expect(direct.spans).toBeGreaterThanOrEqual(SPANS);
    expect(direct.generated).toBe(direct.spans);
    expect(direct.messages).toBeNull(); // nothing is decoded
  });

  for (const shape of ["batch", "trace", "span"] as const) {
    for (const workers of [1, 2]) {
      it(`encoded=${shape}, ${workers} worker(s): decoded, folded once each, truth check PASS, same topology as the direct replay`, () => {
        const r = run(shape, workers);
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`${shape}-shaped OTLP messages`);
        // the same stream: every generated span folded once (none lost, none twice)
        expect(r.spans).toBe(direct.spans);
        expect(r.generated).toBe(direct.spans);
        // went through the decode operator as messages of the shape
        if (shape === "span") expect(r.messages).toBe(r.spans);
        else if (shape === "batch") expect(r.messages).toBeLessThan(r.spans / 100); // ~200 spans per message
        else expect(r.messages).toBeGreaterThan(r.spans / 100); // one per trace: ~33 spans each here
        expect(reportOf(r.stdout)).toBe(reportOf(direct.stdout));
        if (workers === 2) {
          // each worker folded its own share, and the shares add up to the stream
          expect(r.stdout).toMatch(/ over 2 workers/);
          expect(r.perWorker).toHaveLength(2);
          for (const n of r.perWorker) expect(n).toBeGreaterThan(SPANS / 4);
          expect(r.perWorker[0] + r.perWorker[1]).toBe(direct.spans);
        } else expect(r.perWorker).toEqual([]);
      });
    }
  }

  it("the direct replay over 2 workers: the same shares and the same topology", () => {
    const r = run("none", 2);
    expect(r.status).toBe(0);
    expect(r.spans).toBe(direct.spans);
    expect(r.perWorker[0] + r.perWorker[1]).toBe(direct.spans);
    expect(reportOf(r.stdout)).toBe(reportOf(direct.stdout));
  });

  it("an encoded replay runs the Kafka job's chain (decode -> fold, trace details from decode); auto stays in one thread", () => {
    const d = buildJob(loadConfig({ sets: ["source.replay.encoded=span", "runtime.workers=2"] }));
    expect(d.operators.map((o) => [o.name, o.type, o.parallelism, o.key, o.inputs])).toEqual([
      ["decode", "decode", 2, "partition", ["replay"]],
      ["fold", "fold", 2, "traceId", ["decode"]],
    ]);
    expect(d.operators[0].config).toMatchObject({ format: "otlp_proto" });
    expect(d.chains).toEqual([["decode", "fold"]]);
    expect(d.sinks.map((s) => [s.name, s.inputs])).toEqual([["traces", ["decode"]], ["meta", ["fold"]]]);
    const direct = buildJob(loadConfig({ sets: ["runtime.workers=auto"] }));
    expect(direct.operators.map((o) => [o.name, o.parallelism, o.inputs])).toEqual([["fold", 1, ["replay"]]]);
    // at most one worker per replay partition
    expect(buildJob(loadConfig({ sets: ["runtime.workers=8", "source.replay.partitions=3"] })).operators[0].parallelism).toBe(3);
  });

  it("a replay worker that dies fails the run (it is not restarted: its share would be counted twice)", () => {
    const r = tf(["runtime.workers=2", "source.replay.encoded=trace", "debug.crashWorkerAfterBatches=3"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("replay worker died; the run fails");
    expect(r.stdout).toContain("replay over 2 workers failed");
    expect(r.stdout).not.toContain("truth check: PASS");
  });

  it("rejects an encoded replay without an end (it is encoded before the run)", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "run", "--forever", "--set", "source.replay.encoded=trace"], { cwd: ROOT, encoding: "utf8" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("source.replay.encoded: the messages are encoded before the run");
  });

  it("the truth check fails when the spans folded differ from the spans generated", () => {
    const truth = { edges: new Map(), services: new Map(), traces: 0, connectedTraces: 0 };
    const report = { spans: 0, traces: 0, edges: [], services: [], connectivity: { traces: 0, connected: 0, rate: null, orphanSpans: 0, duplicateSpans: 0, lateSpans: 0, cut: 0, evicted: 0 } };
    expect(checkAgainstTruth(report, truth, { folded: 10, generated: 10 }).ok).toBe(true);
    const twice = checkAgainstTruth(report, truth, { folded: 20, generated: 10 });
    expect(twice.ok).toBe(false);
    expect(twice.differences).toEqual(["spans folded 20 != generated 10"]);
  });
});
