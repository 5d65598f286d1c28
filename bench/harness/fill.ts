/**
 * Fills a topic with the benchmark's cached replay (the same messages `npm run bench` produces),
 * for runs and profiles by hand against a broker that is already up:
 *
 *   node dist/bench/harness/fill.js --brokers 127.0.0.1:19092 --topic prof4m --spans 4000000 [--shape batch]
 *       [--services 300] [--seed 42] [--partitions 4] [--traces-per-second 20000]
 *
 * The topic is created (retention capped as the harness caps it) and must not exist yet.
 */
import { parseArgs } from "node:util";
import { createTopic, kafka, produce, replayRetention } from "./kafka.js";
import { loadReplay } from "./replay-cache.js";
import type { MessageShape } from "../../sources/replay/otlp-encode.js";

const USAGE = `usage: node dist/bench/harness/fill.js --brokers H:P --topic T [--spans N] [--shape batch|trace|span]
       [--services N] [--seed S] [--partitions P] [--traces-per-second N]
Creates topic T and fills it with the benchmark's replay (defaults: 1,000,000 spans, batch shape,
300 services, seed 42, 4 partitions, 20,000 traces/s of event time), keyed by trace id.`;

const { values } = parseArgs({
  options: {
    brokers: { type: "string" }, topic: { type: "string" }, spans: { type: "string" }, shape: { type: "string" },
    services: { type: "string" }, seed: { type: "string" }, partitions: { type: "string" }, "traces-per-second": { type: "string" },
    help: { type: "boolean" },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const fail = (msg: string): never => {
  console.error(`fill: ${msg}\n${USAGE}`);
  process.exit(2);
};
const int = (name: string, v: string | undefined, dflt: number): number => {
  if (v === undefined) return dflt;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : fail(`--${name} must be a positive integer, got "${v}"`);
};
const brokers = values.brokers ?? fail("--brokers is required");
const topic = values.topic ?? fail("--topic is required");
const shape = (values.shape ?? "batch") as MessageShape;
if (!["batch", "trace", "span"].includes(shape)) fail(`--shape must be batch, trace or span, got "${shape}"`);
const spec = {
  seed: int("seed", values.seed, 42), services: int("services", values.services, 300), spans: int("spans", values.spans, 1_000_000),
  partitions: int("partitions", values.partitions, 4), tracesPerSecond: int("traces-per-second", values["traces-per-second"], 20_000), shape,
};
const { meta, messages } = await loadReplay(spec, (m) => console.error(m));
const admin = kafka(brokers).admin();
await admin.connect();
try {
  if ((await admin.listTopics()).includes(topic)) fail(`topic "${topic}" exists already: pick another name or delete it`);
  await createTopic(admin, topic, spec.partitions, replayRetention(meta.bytes, spec.partitions));
} finally {
  await admin.disconnect();
}
const seconds = await produce(brokers, topic, messages, () => {});
console.log(`filled ${topic}: ${meta.spans} spans in ${meta.messages} ${shape}-shaped messages (${(meta.bytes / 1e6).toFixed(0)} MB) in ${seconds.toFixed(1)} s`);
