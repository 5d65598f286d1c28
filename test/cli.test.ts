/** The command line, run as users run it (the build is made by the test command first). */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./support/tmp.js";
import { buildSdkTrace } from "./support/sdk-trace.js";

const ROOT = join(import.meta.dirname, "..");
const CORPUS = join(ROOT, "test", "fixtures", "corpus");
const tf = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), ...args], { cwd: ROOT, encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 });

describe("tracefold CLI", () => {
  it("--help explains the commands, formats and settings", () => {
    const r = tf(["--help"]);
    expect(r.status).toBe(0);
    for (const word of ["run", "fold", "--format", "--json", "otlp_proto", "zipkin_json", "span_log", "TRACEFOLD_"]) expect(r.stdout).toContain(word);
    const s = tf(["help", "settings"]);
    expect(s.stdout).toContain("fold.traceGapMs");
    expect(s.stdout).toContain("TRACEFOLD_FOLD_TRACE_GAP_MS");
  });

  it("every npm script that compiles installs the dependencies first, so it works on a fresh clone", () => {
    const scripts: Record<string, string> = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts;
    // a script needs node_modules when it (or its pre-script) runs tsc, directly or through `npm run build`
    const compiles = (cmd = ""): boolean => /\btsc\b|npm run (--silent )?build\b/.test(cmd);
    const needsDeps = (name: string): boolean => compiles(scripts[name]) || compiles(scripts[`pre${name}`]);
    const installs = (name: string): boolean => /ensure-deps\.mjs/.test(scripts[`pre${name}`] ?? "");
    const compiling = Object.keys(scripts).filter((n) => !n.startsWith("pre") && n !== "build" && n !== "typecheck" && needsDeps(n));
    expect(compiling).toEqual(expect.arrayContaining(["start", "bench", "microbench"]));
    expect(compiling.filter((n) => !installs(n))).toEqual([]);
  });

  it("fold --json prints exactly one JSON document with the topology", () => {
    // files are one partition, read in order: ascend (2018) before yelp (2019) keeps event time in order
    const r = tf(["fold", join(CORPUS, "zipkin-lens", "ascend.json"), join(CORPUS, "zipkin-lens", "yelp.json"), "--format", "zipkin_json", "--json"]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.spans).toBe(24);
    expect(doc.traces).toBe(2);
    const e = doc.edges.find((x: { client: string; server: string }) => x.client === "yelp-main" && x.server === "mobile_api");
    expect(e).toMatchObject({ type: "rpc", calls: 1, paired: 1, failed: 0, failedClient: 0, failedServer: 0 });
    expect(e.clientLatency).toMatchObject({ count: 1 });
    expect(typeof e.clientLatency.p50Ms).toBe("number");
    expect(doc.services[0]).toHaveProperty("unpairedClient");
    expect(doc.connectivity).toMatchObject({ traces: 2 });
    expect(doc.connectivity.rate).toBeGreaterThan(0);
    expect(doc.connectivity.lateSpans).toBe(0);
  });

  it("fold counts spans of an older file given after a newer one as late (one partition, event time)", () => {
    const r = tf(["fold", join(CORPUS, "zipkin-lens", "yelp.json"), join(CORPUS, "zipkin-lens", "ascend.json"), "--format", "zipkin_json", "--json"]);
    const doc = JSON.parse(r.stdout);
    expect(doc.connectivity).toMatchObject({ traces: 1, lateSpans: 8 });
    expect(doc.counters.fold_late_spans).toBe(8);
  });

  it("fold reads an OTLP/HTTP protobuf body from the OpenTelemetry SDK like its JSON twin", async () => {
    const fx = await buildSdkTrace();
    const dir = tempDir("tf-cli-");
    writeFileSync(join(dir, "trace.bin"), fx.otlp_proto);
    writeFileSync(join(dir, "trace.json"), fx.otlp_json);
    const proto = tf(["fold", join(dir, "trace.bin"), "--format", "otlp_proto", "--json"]);
    const json = tf(["fold", join(dir, "trace.json"), "--format", "otlp_json", "--json"]);
    expect(proto.status).toBe(0);
    const a = JSON.parse(proto.stdout);
    const b = JSON.parse(json.stdout);
    expect(a.spans).toBe(13);
    expect(a.edges).toEqual(b.edges);
    expect(a.services).toEqual(b.services);
    expect(a.edges.find((e: { server: string; type: string }) => e.server === "payments" && e.type === "rpc")).toMatchObject({ calls: 1, failed: 1, failedServer: 1, failedClient: 0 });
  });

  it("fold reports a malformed message (format, file, byte offset) on stderr and keeps going", () => {
    const dir = tempDir("tf-cli-");
    const ok = JSON.stringify({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "00f067aa0ba902b7", service: "web", kind: "server", name: "GET /", startUs: 1767225600000000, durationUs: 1500 });
    writeFileSync(join(dir, "spans.log"), `${ok}\n{"traceId": 12,\n${ok.replace("00f067aa0ba902b7", "00f067aa0ba902b8")}\n`);
    const r = tf(["fold", join(dir, "spans.log"), "--format", "span_log", "--json"]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/span_log: malformed message in .*spans\.log#1 \(byte \d+\) at byte \d+/);
    const doc = JSON.parse(r.stdout);
    expect(doc.deadLetters).toBe(1);
    expect(doc.spans).toBe(2);
    expect(doc.edges).toEqual([expect.objectContaining({ client: "user", server: "web", calls: 2 })]);
  });

  it("rejects bad settings with every problem listed and exit code 2", () => {
    const r = tf(["fold", "x.json", "--format", "nope", "--set", "fold.bogus=1"], { TRACEFOLD_FOLD_TRACE_GAP_MS: "soon" });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("source.file.format: must be one of");
    expect(r.stderr).toContain("fold.bogus: unknown setting");
    expect(r.stderr).toContain("TRACEFOLD_FOLD_TRACE_GAP_MS: expected int");
  });

  it("run on the embedded default ends by itself with a summary and a passing truth check", () => {
    const r = tf(["run", "--spans", "150000", "--services", "25", "--seed", "3"]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/truth check: PASS \(\d+ edges, 25 services/);
    expect(r.stdout).toContain("client");
  });

  it("run with JSON logs and a config file", () => {
    const dir = tempDir("tf-cli-");
    const cfg = join(dir, "tracefold.yaml");
    writeFileSync(cfg, "source:\n  replay:\n    spans: 30000\n    duplicateRate: 0.01\nfold:\n  flushIntervalMs: 50\n");
    const r = tf(["run", "--config", cfg, "--log-format", "json"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/truth check: PASS/);
    expect(readFileSync(cfg, "utf8")).toContain("duplicateRate");
  });
});
