/**
 * HBase write benchmark: realistic replay spans through the `hbase` sink, over the Thrift2 and the
 * REST gateway, in both cell layouts, plus the CPU cost of encoding alone and LZ4 on the real
 * values. Needs a running HBase (`bash scripts/services.sh up hbase`; endpoints from HBASE_THRIFT /
 * HBASE_REST or .state/services.env).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/hbase-clients.js [--spans=N] [--quick] [--only=thrift2,chunk]
 *
 * Each case: a fresh table pair, one untimed warm-up round, then 3 timed rounds, best kept; every
 * round writes spans it has not written before (the generator continues), through
 * `HBaseSink.write` for every batch and one `flush` (all acknowledged) inside the clock. Reported:
 * spans/s, cells/s (traces + index cells), requests, bytes per span stored (row + qualifier +
 * value, traces table and index), bytes per span on the wire.
 */
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { Interner } from "../pipeline/intern.js";
import type { SpanBatch } from "../pipeline/span-batch.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { lz4Compress, lz4Uncompress, MutationList, TraceEncoder, type CellLayout } from "../sinks/hbase/codec.js";
import { RestClient } from "../sinks/hbase/rest.js";
import { HBaseSink } from "../sinks/hbase/sink.js";
import { Thrift2Client } from "../sinks/hbase/thrift2.js";

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const SPANS = Number(args.find((a) => a.startsWith("--spans="))?.slice(8) ?? (QUICK ? 25_000 : 100_000));
const ONLY = args.find((a) => a.startsWith("--only="))?.slice(7).split(",").filter(Boolean);
const ROUNDS = 3;
const BATCH = 4096;

function env(name: string): string {
  const v = process.env[name];
  if (v) return v;
  const path = join(import.meta.dirname, "..", "..", ".state", "services.env");
  if (existsSync(path))
    for (const line of readFileSync(path, "utf8").split("\n")) {
      const m = /^(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m && m[1] === name) return m[2].replace(/^["']|["']$/g, "");
    }
  throw new Error(`${name} is not set and .state/services.env does not name it: start HBase with \`bash scripts/services.sh up hbase\``);
}

const THRIFT = env("HBASE_THRIFT");
const REST = env("HBASE_REST");

function machine(): string {
  const c = cpus();
  return `machine: ${c[0]?.model ?? "?"} x${c.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, HBase standalone via ${THRIFT} (thrift2) / ${REST} (rest), load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`;
}

/** Rounds of fresh spans, generated before any clock starts. */
function makeRounds(n: number, spans: number): { interner: Interner; rounds: SpanBatch[][] } {
  const interner = new Interner();
  const gen = new ReplayGenerator({ seed: 42, services: 40, partitions: 4, batchSize: BATCH, tracesPerSecond: 20_000 }, interner);
  const rounds: SpanBatch[][] = [];
  for (let r = 0; r < n; r++) {
    const bs: SpanBatch[] = [];
    gen.generate(spans, (b) => bs.push(b.clone()));
    rounds.push(bs);
  }
  return { interner, rounds };
}

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

function selected(...names: string[]): boolean {
  return ONLY === undefined || ONLY.every((o) => names.includes(o));
}

async function main(): Promise<void> {
  console.log(machine());
  console.log(`settings: ${SPANS} spans per round (seed 42, 40 services, ~21 spans per trace, ${BATCH}-span batches), best of ${ROUNDS} rounds after a warm-up; sink defaults (maxInFlight 4, maxBatchRows 1000, 16 salt buckets, index on)`);
  const { rounds } = makeRounds(ROUNDS + 1, SPANS);
  const spansPerRound = rounds.map((r) => r.reduce((n, b) => n + b.length, 0));

  // 1. encoding alone (CPU): codec + the client's request encoding, no network
  for (const layout of ["chunk", "span"] as const) {
    for (const client of [new Thrift2Client("127.0.0.1:1"), new RestClient("http://127.0.0.1:1")]) {
      if (!selected(layout, client.protocol) && !selected("encode")) continue;
      const enc = new TraceEncoder({ layout });
      const tl = new MutationList(new TextEncoder().encode("d"));
      const il = new MutationList(new TextEncoder().encode("d"));
      let best = Infinity;
      let wire = 0;
      for (let r = 0; r <= ROUNDS; r++) {
        const t0 = process.hrtime.bigint();
        let w = 0;
        for (const b of rounds[r]) {
          enc.encode(b, tl, il);
          const p1 = client.encodePuts("t", tl, 0, tl.rows);
          const p2 = client.encodePuts("i", il, 0, il.rows);
          w += p1.body.length + p2.body.length;
        }
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        if (r > 0 && ms < best) {
          best = ms;
          wire = w / spansPerRound[r];
        }
      }
      console.log(`encode ${layout} for ${client.protocol}: ${fmt(spansPerRound[1] / best)} k spans/s (${wire.toFixed(1)} request bytes/span, no network)`);
    }
  }

  // 2. LZ4 (lz4-napi block) on the real uncompressed values, one call per cell as the sink does
  for (const layout of ["chunk", "span"] as const) {
    if (!selected(layout, "lz4")) continue;
    const enc = new TraceEncoder({ layout, compression: "none", index: false });
    const tl = new MutationList(new TextEncoder().encode("d"));
    const il = new MutationList(new TextEncoder().encode("d"));
    const values: Uint8Array[] = [];
    for (const b of rounds[0]) {
      enc.encode(b, tl, il);
      for (let c = 0; c < tl.cells; c++) values.push(tl.arena.buf.slice(tl.vOff[c] + 1, tl.vOff[c] + tl.vLen[c]));
    }
    const raw = values.reduce((n, v) => n + v.length, 0);
    let bestC = Infinity;
    let bestD = Infinity;
    let packed = 0;
    let compressed: Uint8Array[] = [];
    for (let r = 0; r <= ROUNDS; r++) {
      const t0 = process.hrtime.bigint();
      compressed = values.map((v) => lz4Compress(v, 0, v.length));
      const t1 = process.hrtime.bigint();
      for (const c of compressed) lz4Uncompress(c);
      const t2 = process.hrtime.bigint();
      if (r > 0) {
        bestC = Math.min(bestC, Number(t1 - t0) / 1e6);
        bestD = Math.min(bestD, Number(t2 - t1) / 1e6);
      }
    }
    packed = compressed.reduce((n, v) => n + v.length, 0);
    console.log(
      `lz4-napi ${layout} values: ${values.length} values of ${fmt(raw / values.length)} B: compress ${fmt(raw / bestC / 1000)} MB/s, decompress ${fmt(raw / bestD / 1000)} MB/s, ` +
        `ratio ${(raw / packed).toFixed(2)} (${fmt(raw / spansPerRound[0])} -> ${fmt(packed / spansPerRound[0])} B/span)`,
    );
  }

  // 3. end to end through the sink
  const admin = new Thrift2Client(THRIFT);
  const cases: Array<[client: "thrift2" | "rest", layout: CellLayout, index: boolean]> = [
    ["thrift2", "chunk", true],
    ["thrift2", "span", true],
    ["rest", "chunk", true],
    ["rest", "span", true],
    ["thrift2", "chunk", false],
    ["rest", "chunk", false],
  ];
  for (const [client, layout, index] of cases) {
    {
      if (!selected(client, layout, index ? "index" : "noindex")) continue;
      const table = `tf_bench_${layout}_${client}`;
      const indexTable = `${table}_ix`;
      await admin.deleteTable(table);
      await admin.deleteTable(indexTable);
      const sink = new HBaseSink({ client, thrift: THRIFT, rest: REST, table, indexTable, layout, index });
      await sink.open();
      let best = Infinity;
      let bestAt = 0;
      const per: Array<{ ms: number; m: Record<string, number> }> = [];
      for (let r = 0; r <= ROUNDS; r++) {
        const m0 = sink.metrics();
        const t0 = process.hrtime.bigint();
        for (const b of rounds[r]) await sink.write(b);
        await sink.flush();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const m1 = sink.metrics();
        const d: Record<string, number> = {};
        for (const k of Object.keys(m1)) d[k] = m1[k] - (m0[k] ?? 0);
        per.push({ ms, m: d });
        if (r > 0 && ms < best) {
          best = ms;
          bestAt = r;
        }
      }
      const { m } = per[bestAt];
      const spans = m.hbase_spans_written;
      const traceBytes = m.hbase_data_bytes_written;
      const indexBytes = m.hbase_index_data_bytes_written;
      const all = per.slice(1).map((p) => fmt(p.m.hbase_spans_written / p.ms)).join(" / ");
      console.log(
        `${client} ${layout}${index ? "" : " (index off)"}: ${fmt(spans / best)} k spans/s, ${fmt(m.hbase_cells_written / best)} k cells/s ` +
          `(${spans} spans, ${m.hbase_cells_written} cells, ${m.hbase_requests} requests, ${best.toFixed(0)} ms; rounds ${all} k spans/s) ` +
          `stored ${(traceBytes / spans).toFixed(1)} + ${(indexBytes / spans).toFixed(1)} B/span (key+qualifier+value: traces + index), retries ${m.hbase_retries}`,
      );
      await sink.close();
      await admin.deleteTable(table);
      await admin.deleteTable(indexTable);
    }
  }
  await admin.close();
  console.log(`load at end: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
