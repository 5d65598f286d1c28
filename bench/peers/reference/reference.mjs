// tracefold's own answer for a topic, in the peers' edge shape, and a comparison of peer outputs
// against it.
//
//   node bench/peers/reference/reference.mjs --brokers B --topic T [--seed S --spans N] [PEER.json...]
//   node bench/peers/reference/reference.mjs --truth-only --seed S --spans N [PEER.json...]
//
// 1. Reads the topic (bounded: to the end offsets at start) and folds its messages with
//    `tracefold fold --format otlp_proto --json` (one file per message, in partition/offset
//    order: all files are one fold partition, fine for a small topic whose event time spans a
//    fraction of a second).
// 2. With --seed/--spans (what `tracefold replay` was given, and the same --set
//    source.replay.*=... if any): regenerates the same traffic and takes the generator's truth
//    (edges by construction, not by a fold).
// 3. Prints a JSON line {"fold": edges, "truth": edges} (edges summed per client -> server over
//    edge types, with calls and failed), and for each PEER.json (a peer's output line) the edges
//    that differ from tracefold's fold (with --truth-only: from the truth; for big topics, where
//    one file per message is too many files), grouped by tracefold's edge type.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dirname, "..", "..", "..");
const dist = (p) => import(join(ROOT, "dist", p));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { brokers: { type: "string" }, topic: { type: "string" }, seed: { type: "string" }, spans: { type: "string" }, out: { type: "string" }, "truth-only": { type: "boolean" }, set: { type: "string", multiple: true } },
});

/** All messages of the topic up to its end offsets now, in partition and offset order. */
async function readTopic(brokers, topic) {
  const { Kafka, logLevel } = await import(join(ROOT, "node_modules", "kafkajs", "index.js"));
  const kafka = new Kafka({ brokers: brokers.split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const want = new Map(ends.map((p) => [p.partition, { low: Number(p.low), high: Number(p.high) }]));
  const byPartition = new Map([...want.keys()].map((p) => [p, []]));
  let left = [...want.values()].reduce((n, w) => n + (w.high - w.low), 0);
  const consumer = kafka.consumer({ groupId: `tracefold-reference-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise((resolve, reject) => {
    if (left === 0) return resolve();
    consumer.run({
      eachBatch: async ({ batch }) => {
        const w = want.get(batch.partition);
        for (const m of batch.messages) {
          if (Number(m.offset) >= w.high) continue;
          byPartition.get(batch.partition).push(m.value);
          if (--left === 0) resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  return [...byPartition.keys()].sort((a, b) => a - b).flatMap((p) => byPartition.get(p));
}

/** Edges of a fold --json report or a truth map, summed per (client, server). */
function perPair(edges) {
  const m = new Map();
  for (const e of edges) {
    const k = `${e.client}\u0000${e.server}`;
    const o = m.get(k) ?? { client: e.client, server: e.server, calls: 0, errors: 0, types: new Set() };
    o.calls += e.calls;
    o.errors += e.failed ?? e.errors ?? 0;
    if (e.type) o.types.add(e.type);
    m.set(k, o);
  }
  return m;
}

const out = (m) => [...m.values()].sort((a, b) => (a.client + a.server < b.client + b.server ? -1 : 1)).map((o) => ({ client: o.client, server: o.server, calls: o.calls, errors: o.errors, type: [...o.types].join("+") }));

let report = { spans: null, traces: null, edges: [] };
let folded = null;
if (!values["truth-only"]) {
  const messages = await readTopic(values.brokers, values.topic);
  const dir = mkdtempSync(join(tmpdir(), "tracefold-ref-"));
  const files = messages.map((v, i) => {
    const f = join(dir, `${String(i).padStart(8, "0")}.pb`);
    writeFileSync(f, v);
    return f;
  });
  process.stderr.write(`[reference] ${messages.length} messages from ${values.topic}; folding\n`);
  const fold = spawnSync(process.execPath, [join(ROOT, "bin", "tracefold.mjs"), "fold", "--format", "otlp_proto", "--json", ...files], { encoding: "utf8", maxBuffer: 256 << 20 });
  rmSync(dir, { recursive: true, force: true });
  if (fold.status !== 0) throw new Error(`tracefold fold failed: ${fold.stderr.slice(-2000)}`);
  report = JSON.parse(fold.stdout);
  folded = perPair(report.edges);
}

let truth = null;
if (values.seed && values.spans) {
  const { loadConfig, section } = await dist("pipeline/config.js");
  const { Interner } = await dist("pipeline/intern.js");
  const { ReplayGenerator } = await dist("sources/replay/generator.js");
  const r = section(loadConfig({ env: {}, sets: [`source.replay.seed=${values.seed}`, ...(values.set ?? [])] }), "source.replay");
  // the same construction and chunking as sources/kafka/replay-to-kafka.ts (rate 0)
  const gen = new ReplayGenerator({ seed: r.seed, services: r.services, tracesPerSecond: r.tracesPerSecond, errorRate: r.errorRate, brokenTraceRate: r.brokenTraceRate, duplicateRate: r.duplicateRate, partitions: 1 }, new Interner());
  const total = Number(values.spans);
  let spans = 0;
  while (spans < total) spans += gen.generate(Math.min(20_000, total - spans), () => {});
  truth = perPair([...gen.truth.edges.values()]);
  process.stderr.write(`[reference] truth: ${spans} spans, ${gen.truth.traces} traces\n`);
}

const result = { spans: report.spans, traces: report.traces, fold: folded && out(folded), truth: truth && out(truth) };
if (values.out) writeFileSync(values.out, JSON.stringify(result) + "\n");
if (truth && folded) {
  const diff = [...new Set([...folded.keys(), ...truth.keys()])].filter((k) => folded.get(k)?.calls !== truth.get(k)?.calls || folded.get(k)?.errors !== truth.get(k)?.errors);
  process.stdout.write(`fold vs truth: ${folded.size} / ${truth.size} client->server pairs, ${diff.length} differ\n`);
}

// ---- peers against the fold (or the truth) ------------------------------------------------------
const base = folded ?? truth;
const baseName = folded ? "tracefold fold" : "truth";
if (!base) throw new Error("nothing to compare with: give --brokers/--topic, or --truth-only with --seed and --spans");
for (const file of positionals) {
  const peer = JSON.parse(readFileSync(file, "utf8").trim().split("\n").pop());
  const theirs = perPair(peer.edges);
  const rows = [];
  const byType = {};
  for (const k of new Set([...base.keys(), ...theirs.keys()])) {
    const a = base.get(k), b = theirs.get(k);
    if (a && b && a.calls === b.calls && a.errors === b.errors) continue;
    const type = a ? [...a.types].join("+") : "(peer only)";
    const t = (byType[type] ??= { pairs: 0, callsOurs: 0, callsTheirs: 0, errorsOurs: 0, errorsTheirs: 0 });
    t.pairs++;
    t.callsOurs += a?.calls ?? 0;
    t.callsTheirs += b?.calls ?? 0;
    t.errorsOurs += a?.errors ?? 0;
    t.errorsTheirs += b?.errors ?? 0;
    rows.push({ client: (a ?? b).client, server: (a ?? b).server, type, ours: a ? [a.calls, a.errors] : null, theirs: b ? [b.calls, b.errors] : null });
  }
  const same = [...base.keys()].filter((k) => !rows.some((r) => `${r.client}\u0000${r.server}` === k)).length;
  const sum = (m, f) => [...m.values()].reduce((n, o) => n + o[f], 0);
  process.stdout.write(`\n== ${peer.peer} (${file}): ${peer.spans ?? "-"} spans, ${theirs.size} pairs (${baseName} ${base.size}), ${same} identical; calls ${sum(theirs, "calls")} vs ${sum(base, "calls")}, errors ${sum(theirs, "errors")} vs ${sum(base, "errors")}\n`);
  for (const [type, t] of Object.entries(byType)) process.stdout.write(`   differ [${type}]: ${t.pairs} pairs, calls ${t.callsTheirs} (peer) vs ${t.callsOurs} (${baseName}), errors ${t.errorsTheirs} vs ${t.errorsOurs}\n`);
  for (const r of rows.slice(0, Number(process.env.SHOW_ROWS ?? 12))) process.stdout.write(`     ${r.client} -> ${r.server} [${r.type}] ${baseName} ${JSON.stringify(r.ours)} peer ${JSON.stringify(r.theirs)}\n`);
  if (rows.length > Number(process.env.SHOW_ROWS ?? 12)) process.stdout.write(`     ... ${rows.length - Number(process.env.SHOW_ROWS ?? 12)} more\n`);
}
