/**
 * Incremental checkpoints against complete snapshots, at steady state (docs/DECISIONS.md 19).
 *
 * One partition of replay traffic is folded in event-time order with the default windows. Every
 * `--every` spans it takes an increment (chain length `--chain`) and keeps the chain as a store
 * would. Every third checkpoint it also restores the chain into a fresh fold and takes a complete
 * snapshot of that, for comparison. Generation is not timed.
 *
 *   npx tsc -p tsconfig.json && node --max-old-space-size=12000 dist/bench/checkpoints.js --spans 5000000 --chain 9 --every 250000 --tps 300
 */
import { parseArgs } from "node:util";
import { cpus, loadavg } from "node:os";
import { Interner } from "../pipeline/intern.js";
import { Fold } from "../operators/fold/fold.js";
import { restorePartition, snapshotPartition, type IncrementInfo } from "../operators/fold/snapshot.js";
import { ReplayGenerator } from "../sources/replay/generator.js";

const { values } = parseArgs({
  options: {
    spans: { type: "string", default: "5000000" },
    chain: { type: "string", default: "9" },
    every: { type: "string", default: "250000" },
    tps: { type: "string", default: "300" },
    services: { type: "string", default: "300" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  console.log("node dist/bench/checkpoints.js [--spans N] [--chain N] [--every SPANS] [--tps TRACES_PER_S] [--services N]");
  process.exit(0);
}
const spans = Number(values.spans);
const chainLength = Number(values.chain);
const every = Number(values.every);
console.log(`${cpus()[0]?.model ?? "?"} x${cpus().length}, Node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
console.log(`spans ${spans}, checkpoint every ${every} spans, chain ${chainLength}, ${values.tps} traces/s of event time, ${values.services} services`);

const interner = new Interner();
const gen = new ReplayGenerator({ seed: 42, services: Number(values.services), partitions: 1, batchSize: 4096, tracesPerSecond: Number(values.tps) }, interner);
const fold = new Fold(interner);
const chain: Array<{ seq: number; blob: Uint8Array }> = [];
let since = 0;
let n = 0;
gen.generate(spans, (b) => {
  fold.processBatch(b, 0);
  since += b.length;
  if (since < every) return;
  since = 0;
  const P = fold.partitions[0];
  const info = {} as IncrementInfo;
  let t = performance.now();
  const blob = snapshotPartition(fold, P.partition, chainLength, info);
  const ms = performance.now() - t;
  while (chain.length > 0 && chain[0].seq < info.keepFrom) chain.shift();
  chain.push({ seq: info.seq, blob });
  let line = `checkpoint ${info.seq}: pending ${P.spans.size}, increment ${(blob.length / 1e6).toFixed(1)} MB (${info.complete ? "complete" : "partial"}, ${info.entries} entries) in ${ms.toFixed(0)} ms`;
  if (++n % 3 === 0) {
    const bytes = Buffer.concat(chain.map((c) => c.blob));
    const other = new Fold(new Interner());
    t = performance.now();
    restorePartition(other, bytes);
    const restoreMs = performance.now() - t;
    t = performance.now();
    const whole = snapshotPartition(other, 0, 1);
    const wholeMs = performance.now() - t;
    line += ` | chain ${chain.length} increments, ${(bytes.length / 1e6).toFixed(0)} MB, restored in ${restoreMs.toFixed(0)} ms | complete snapshot ${(whole.length / 1e6).toFixed(0)} MB in ${wholeMs.toFixed(0)} ms`;
  }
  console.log(line);
});
