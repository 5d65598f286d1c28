/**
 * The benchmark's input: replay traffic (ReplayGenerator) encoded once as OTLP protobuf messages in
 * one of the producer message shapes (DESIGN 2), cached on disk, with the generator's truth beside
 * it so every run can be checked, not only timed.
 *
 * Cache: ${XDG_CACHE_HOME:-~/.cache}/tracefold/bench/replay-<key>.bin + .json, keyed by everything
 * that changes the bytes (seed, services, spans, shape, partitions, event-time rate).
 * .bin is a sequence of records: u16 partition, u16 key length, u32 value length, key, value.
 *
 * Each message goes to the partition the generator put its trace in (`partitionOfTrace`: Kafka's
 * default murmur2 partitioner over the hex trace id), keyed by that trace id, so the topic is
 * keyed by trace id whatever the shape. A `batch` message holds ~200 consecutive rows of one
 * partition (an SDK/Collector export); its key is its first trace's id.
 */
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { Interner } from "../../pipeline/intern.js";
import { traceIdHex } from "../../pipeline/span-batch.js";
import { ReplayGenerator } from "../../sources/replay/generator.js";
import { encodeOtlp, messagesFromBatch, type MessageShape } from "../../sources/replay/otlp-encode.js";
import { traceMessages } from "../../sources/kafka/replay-to-kafka.js";

export interface ReplaySpec {
  seed: number;
  services: number;
  spans: number;
  shape: MessageShape;
  partitions: number;
  /** Traces per second of event time (the generator's default is 20,000). */
  tracesPerSecond: number;
}

/** Calls and failed calls per client -> server, summed over edge types (the peers' edge shape). */
export interface PairEdge {
  client: string;
  server: string;
  calls: number;
  errors: number;
}

export interface ReplayMeta {
  spec: ReplaySpec;
  spans: number;
  messages: number;
  bytes: number;
  traces: number;
  brokenTraces: number;
  truth: PairEdge[];
  generatedS: number;
}

export interface WireMessage {
  partition: number;
  key: Buffer;
  value: Buffer;
}

/** Spans per `batch`-shape message (what the micro-benchmarks and DESIGN 2 use). */
export const SPANS_PER_BATCH_MESSAGE = 200;

export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "tracefold", "bench");
}

function cacheKey(s: ReplaySpec): string {
  return `replay-seed${s.seed}-svc${s.services}-n${s.spans}-${s.shape}-p${s.partitions}-tps${s.tracesPerSecond}`;
}

export function pairEdges(edges: Iterable<{ client: string; server: string; calls: number; failed?: number; errors?: number }>): PairEdge[] {
  const m = new Map<string, PairEdge>();
  for (const e of edges) {
    const k = `${e.client}\u0000${e.server}`;
    const o = m.get(k) ?? { client: e.client, server: e.server, calls: 0, errors: 0 };
    o.calls += e.calls;
    o.errors += e.failed ?? e.errors ?? 0;
    m.set(k, o);
  }
  return [...m.values()].sort((a, b) => (a.client + "\u0000" + a.server < b.client + "\u0000" + b.server ? -1 : 1));
}

/** Returns the cached replay (generating and writing it first if absent). */
export async function loadReplay(spec: ReplaySpec, progress: (msg: string) => void): Promise<{ meta: ReplayMeta; messages: WireMessage[] }> {
  const dir = cacheDir();
  const base = join(dir, cacheKey(spec));
  if (existsSync(base + ".json") && existsSync(base + ".bin")) {
    const meta = JSON.parse(readFileSync(base + ".json", "utf8")) as ReplayMeta;
    return { meta, messages: readRecords(readFileSync(base + ".bin")) };
  }
  mkdirSync(dir, { recursive: true });
  const t0 = Date.now();
  const gen = new ReplayGenerator({ seed: spec.seed, services: spec.services, partitions: spec.partitions, tracesPerSecond: spec.tracesPerSecond }, new Interner());
  const messages: WireMessage[] = [];
  const out = createWriteStream(base + ".bin.tmp");
  let bytes = 0;
  let spans = 0;
  while (spans < spec.spans) {
    spans += gen.generate(Math.min(100_000, spec.spans - spans), (b) => {
      const p = b.partition;
      const add = (key: string, value: Uint8Array) => {
        const m = { partition: p, key: Buffer.from(key), value: Buffer.from(value) }; // a copy: the encoder may reuse its buffer
        messages.push(m);
        bytes += m.value.length;
        const head = Buffer.alloc(8);
        head.writeUInt16LE(p, 0);
        head.writeUInt16LE(m.key.length, 2);
        head.writeUInt32LE(m.value.length, 4);
        out.write(head);
        out.write(m.key);
        out.write(m.value);
      };
      if (spec.shape === "trace") for (const m of traceMessages(b)) add(m.key as string, m.value as Buffer);
      else if (spec.shape === "span") for (let i = 0; i < b.length; i++) add(traceIdHex(b.tid, i * 4), encodeOtlp(b, [i]));
      else {
        const values = messagesFromBatch(b, "batch", SPANS_PER_BATCH_MESSAGE);
        values.forEach((v, k) => add(traceIdHex(b.tid, k * SPANS_PER_BATCH_MESSAGE * 4), v));
      }
    });
    progress(`generating ${spec.shape} replay: ${spans.toLocaleString("en-US")} / ${spec.spans.toLocaleString("en-US")} spans`);
  }
  out.end();
  await once(out, "finish");
  const t = gen.truth;
  const meta: ReplayMeta = {
    spec,
    spans,
    messages: messages.length,
    bytes,
    traces: t.traces,
    brokenTraces: t.brokenTraces,
    truth: pairEdges(t.edges.values()),
    generatedS: (Date.now() - t0) / 1000,
  };
  renameSync(base + ".bin.tmp", base + ".bin");
  writeFileSync(base + ".json", JSON.stringify(meta));
  return { meta, messages };
}

function readRecords(buf: Buffer): WireMessage[] {
  const out: WireMessage[] = [];
  for (let at = 0; at < buf.length; ) {
    const partition = buf.readUInt16LE(at);
    const kl = buf.readUInt16LE(at + 2);
    const vl = buf.readUInt32LE(at + 4);
    at += 8;
    const key = buf.subarray(at, at + kl);
    const value = buf.subarray(at + kl, at + kl + vl);
    at += kl + vl;
    out.push({ partition, key, value });
  }
  return out;
}

/** Edges compared per client -> server: identical pairs, differing pairs, call totals. */
export interface EdgeCheck {
  pairs: number;
  truthPairs: number;
  identical: number;
  differing: number;
  calls: number;
  truthCalls: number;
  errors: number;
  truthErrors: number;
}

export function compareEdges(theirs: PairEdge[], truth: PairEdge[]): EdgeCheck {
  const a = new Map(pairEdges(theirs).map((e) => [`${e.client}\u0000${e.server}`, e]));
  const t = new Map(truth.map((e) => [`${e.client}\u0000${e.server}`, e]));
  let identical = 0;
  for (const [k, e] of t) {
    const o = a.get(k);
    if (o && o.calls === e.calls && o.errors === e.errors) identical++;
  }
  const keys = new Set([...a.keys(), ...t.keys()]);
  const sum = (m: Map<string, PairEdge>, f: "calls" | "errors") => [...m.values()].reduce((n, e) => n + e[f], 0);
  return {
    pairs: a.size,
    truthPairs: t.size,
    identical,
    differing: keys.size - identical,
    calls: sum(a, "calls"),
    truthCalls: sum(t, "calls"),
    errors: sum(a, "errors"),
    truthErrors: sum(t, "errors"),
  };
}
