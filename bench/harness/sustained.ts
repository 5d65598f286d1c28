/**
 * The sustained-rate search and the end-to-end latency (issue 5; bench/README.md, "Sustained rate
 * and end-to-end latency").
 *
 * One step: a fresh, empty topic; `tracefold run` unbounded on it (blackhole sinks; keyed with 1
 * worker unless the caller's sets say otherwise: run.ts --sustained-topologies); once every
 * partition is assigned, the harness produces the cached replay messages paced at an
 * offered rate R spans/s for D seconds (timestamps shifted to the send time; looping over the
 * replay with new trace ids when R x D is more than it holds), then stops tracefold with SIGTERM.
 * - Lag: about once a second, spans acked by Kafka minus spans the fold took in (its /metrics).
 *   Checkpoints hold the pipeline and make the lag jump, so the verdict uses the lag's floor (its
 *   minimum) in the third and the last quarter of D: R is sustained when the floor rises by at most
 *   5% of R per second between them and the last quarter's floor is at most 2 s of input. The
 *   producer's achieved rate is reported beside R; a producer that cannot keep up makes a
 *   sustained result "at least the achieved rate".
 * - Latency: the producer keeps, per message, its partition and offset (from the acks) and when it
 *   was handed to the producer. Every ~150 ms the harness reads the group's committed offsets.
 *   tracefold commits them only after the checkpoint that made the message's deltas durable
 *   (docs/DECISIONS.md 11/15), so a message's latency is the first sample at which the committed
 *   offset passed it, minus its send time. Resolution: one sample interval.
 * Search: geometric, from a start rate (default half the measured drain rate), x1.6 up after a
 * sustained step and /1.6 down after a failed one until both sides are known, then the geometric
 * mean of the bracket, until it is within 10% or the steps run out. Then latency points at the
 * highest sustained rate with other checkpoint intervals (at a quarter of it if not sustained).
 */
import { loadavg } from "node:os";
import { join } from "node:path";
import type { Admin } from "kafkajs";
import { createTopic, freePort, kafka, metric, type Sample } from "./kafka.js";
import { recordBytes } from "../../sources/kafka/send-chunks.js";
import type { WireMessage } from "./replay-cache.js";
import { killChild, timed, type Timed } from "./scenarios.js";

// ---- the replay, loopable ------------------------------------------------------------------------

export interface LoopableReplay {
  messages: WireMessage[];
  /** Spans per message. */
  spans: Uint32Array;
  totalSpans: number;
  /** Byte positions in each message's value of the 16-byte trace ids (spans and links), and of the fixed64 timestamps. */
  tidAt: Int32Array;
  tidFrom: Int32Array;
  tsAt: Int32Array;
  tsFrom: Int32Array;
  /** The earliest timestamp in each message (ns; 0 without one). */
  baseNs: BigInt64Array;
}

function varint(b: Buffer, at: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const x = b[at++];
    v += (x & 0x7f) * mul;
    if (x < 0x80) return [v, at];
    mul *= 128;
  }
}

/** Calls `field(number, wireType, start, end)` for each field of the message in b[from, to). */
function fields(b: Buffer, from: number, to: number, field: (n: number, wt: number, start: number, end: number) => void): void {
  let at = from;
  while (at < to) {
    let tag: number;
    [tag, at] = varint(b, at);
    const n = Math.floor(tag / 8), wt = tag & 7;
    let start = at, end: number;
    if (wt === 0) {
      while (b[at] >= 0x80) at++;
      end = ++at;
    } else if (wt === 1) end = at += 8;
    else if (wt === 5) end = at += 4;
    else if (wt === 2) {
      let len: number;
      [len, start] = varint(b, at);
      end = at = start + len;
    } else throw new Error(`unexpected protobuf wire type ${wt}`);
    field(n, wt, start, end);
  }
}

/** Walks every OTLP ExportTraceServiceRequest once: spans per message, where the trace ids and timestamps are. */
export function loopable(messages: WireMessage[]): LoopableReplay {
  const spans = new Uint32Array(messages.length);
  const tid: number[] = [], ts: number[] = [];
  const tidFrom = new Int32Array(messages.length + 1), tsFrom = new Int32Array(messages.length + 1);
  const baseNs = new BigInt64Array(messages.length);
  messages.forEach((m, i) => {
    const v = m.value;
    let n = 0;
    let min = -1n;
    fields(v, 0, v.length, (f, wt, s, e) => {
      if (f !== 1 || wt !== 2) return; // ResourceSpans
      fields(v, s, e, (f, wt, s, e) => {
        if (f !== 2 || wt !== 2) return; // ScopeSpans
        fields(v, s, e, (f, wt, s, e) => {
          if (f !== 2 || wt !== 2) return; // Span
          n++;
          fields(v, s, e, (f, wt, s, e) => {
            if (f === 1 && wt === 2 && e - s === 16) tid.push(s);
            else if ((f === 7 || f === 8) && wt === 1) {
              ts.push(s);
              const t = v.readBigUInt64LE(s);
              if (min < 0n || t < min) min = t;
            } else if (f === 13 && wt === 2) {
              fields(v, s, e, (f, wt, s, e) => {
                if (f === 1 && wt === 2 && e - s === 16) tid.push(s); // Link.trace_id
              });
            }
          });
        });
      });
    });
    spans[i] = n;
    baseNs[i] = min < 0n ? 0n : min;
    tidFrom[i + 1] = tid.length;
    tsFrom[i + 1] = ts.length;
  });
  return {
    messages,
    spans,
    totalSpans: spans.reduce((a, b) => a + b, 0),
    tidAt: Int32Array.from(tid),
    tidFrom,
    tsAt: Int32Array.from(ts),
    tsFrom,
    baseNs,
  };
}

/**
 * Message `i` of the endless replay, as live traffic: its timestamps are shifted so that its
 * earliest one is `eventNs` (the send time: event time follows the wall clock, so the fold's
 * watermark advances and traces are assembled as in production, 60 s after their last span with
 * the default fold.outOfOrdernessMs + fold.traceGapMs), keeping the spans' offsets within the
 * message. Pass `i / n` >= 1 also has its trace ids XOR-ed with a per-pass word (new traces).
 */
export function messageAt(r: LoopableReplay, i: number, eventNs: bigint): WireMessage & { spans: number } {
  const n = r.messages.length;
  const k = Math.floor(i / n), j = i % n;
  const m = r.messages[j];
  const v = Buffer.from(m.value); // a copy
  if (k > 0) {
    const x = Math.imul(k, 0x9e3779b1) >>> 0 || 1;
    for (let p = r.tidFrom[j]; p < r.tidFrom[j + 1]; p++) v.writeUInt32LE((v.readUInt32LE(r.tidAt[p]) ^ x) >>> 0, r.tidAt[p]);
  }
  // the shift as an unsigned 64-bit word (two's complement): added word by word, carry included
  const shift = BigInt.asUintN(64, eventNs - r.baseNs[j]);
  const lo = Number(shift & 0xffffffffn), hi = Number(shift >> 32n);
  for (let p = r.tsFrom[j]; p < r.tsFrom[j + 1]; p++) {
    const at = r.tsAt[p];
    const l = v.readUInt32LE(at) + lo;
    const carry = l >= 2 ** 32 ? 1 : 0;
    v.writeUInt32LE(l - carry * 2 ** 32, at);
    v.writeUInt32LE((v.readUInt32LE(at + 4) + hi + carry) >>> 0, at + 4);
  }
  return { partition: m.partition, key: m.key, value: v, spans: r.spans[j] };
}

// ---- the paced producer -------------------------------------------------------------------------

interface Produced {
  partition: number;
  offset: number;
  spans: number;
  sentAt: number;
  ackedAt: number;
}

const MAX_IN_FLIGHT = 8;
const MAX_REQUEST_BYTES = 900_000;

class PacedProducer {
  sentSpans = 0;
  ackedSpans = 0;
  ackedMessages = 0;
  records: Produced[] = [];
  loops = 0;
  errors: string[] = [];
  /** ms since the epoch when pacing started and when the last ack came. */
  t0 = 0;
  lastAck = 0;
  behindMaxS = 0;

  constructor(private readonly brokers: string, private readonly topic: string, private readonly replay: LoopableReplay) {}

  /** Offers `rate` spans/s for `durationS` seconds; returns when every request is answered. */
  async run(rate: number, durationS: number): Promise<void> {
    const producer = kafka(this.brokers).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const inflight = new Set<Promise<void>>();
    let next = 0;
    this.t0 = Date.now();
    try {
      for (;;) {
        const t = (Date.now() - this.t0) / 1000;
        if (t >= durationS || this.errors.length) break;
        const due = rate * t;
        if (this.sentSpans < due && inflight.size < MAX_IN_FLIGHT) {
          const batch: Array<WireMessage & { spans: number }> = [];
          let bytes = 0;
          while (this.sentSpans < due && bytes < MAX_REQUEST_BYTES) {
            const m = messageAt(this.replay, next++, BigInt(Date.now()) * 1_000_000n);
            batch.push(m);
            bytes += recordBytes(m);
            this.sentSpans += m.spans;
          }
          this.loops = Math.floor((next - 1) / this.replay.messages.length);
          this.behindMaxS = Math.max(this.behindMaxS, (due - this.sentSpans) / rate);
          const p = this.send(producer, batch).finally(() => inflight.delete(p));
          inflight.add(p);
          continue;
        }
        // how far behind the schedule the producer is (spans due but not yet sent)
        if (this.sentSpans < due) this.behindMaxS = Math.max(this.behindMaxS, (due - this.sentSpans) / rate);
        if (inflight.size >= MAX_IN_FLIGHT) await Promise.race(inflight);
        else await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(inflight);
    } finally {
      await producer.disconnect().catch(() => {});
    }
  }

  private async send(producer: ReturnType<ReturnType<typeof kafka>["producer"]>, batch: Array<WireMessage & { spans: number }>): Promise<void> {
    const sentAt = Date.now();
    try {
      const meta = await producer.send({ topic: this.topic, acks: -1, messages: batch.map((m) => ({ partition: m.partition, key: m.key, value: m.value })) });
      const ackedAt = Date.now();
      const base = new Map(meta.map((r) => [r.partition, Number(r.baseOffset)]));
      const k = new Map<number, number>();
      for (const m of batch) {
        const i = k.get(m.partition) ?? 0;
        k.set(m.partition, i + 1);
        this.records.push({ partition: m.partition, offset: (base.get(m.partition) ?? NaN) + i, spans: m.spans, sentAt, ackedAt });
        this.ackedSpans += m.spans;
      }
      this.ackedMessages += batch.length;
      this.lastAck = ackedAt;
    } catch (err) {
      this.errors.push(String(err));
    }
  }
}

// ---- one step -----------------------------------------------------------------------------------

export interface SustainedSample extends Sample {
  /** Spans acked by Kafka so far, and acked minus taken in by the fold. */
  offeredSpans: number;
  lagSpans: number;
  /** Messages past the group's committed offsets (/metrics kafka_partition_lag). */
  committedLag: number | null;
  /** Checkpoints taken so far, and how long the last one held the pipeline (ms). */
  checkpoints: number | null;
  lastCheckpointMs: number | null;
  /** Of which the operators' snapshot and deltas (the sync phase, ms). */
  lastCheckpointSyncMs: number | null;
  /** The sync phase's two parts: the fold's increment (snapshot) and its deltas (drain). */
  lastSnapshotMs?: number | null;
  lastDrainMs?: number | null;
}

export interface Latency {
  /** Messages produced, and those whose offset a commit passed before the step ended. */
  messages: number;
  visibleMessages: number;
  spans: number;
  visibleSpans: number;
  /** Span-weighted percentiles (ms), over the visible messages. */
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** The same, one weight per message. */
  messageP50Ms: number | null;
  messageP99Ms: number | null;
  /** Producer send -> ack, median (ms). */
  ackP50Ms: number | null;
  commitSamples: number;
  sampleIntervalMs: number;
}

export interface Step {
  purpose: "search" | "latency";
  offeredRate: number;
  /** Spans acked by Kafka per second of the offer window. */
  achievedRate: number;
  producerLimited: boolean;
  /** Largest gap behind the schedule, in seconds of offer. */
  producerBehindMaxS: number;
  durationS: number;
  loops: number;
  checkpointIntervalMs: number;
  /** Spans/s the fold took in over the last half of the window. */
  consumedRate: number | null;
  /** Least-squares slope of the lag over the last half (spans/s), and the lag at the end. */
  lagSlope: number | null;
  /** The lag's floor (its minimum) in the third and the last quarter of the window, and its slope between them (spans/s): what the verdict uses. */
  floorQ3: number | null;
  floorQ4: number | null;
  floorSlope: number | null;
  /** Checkpoints during the window and the longest one seen (ms; /metrics shows the last one, sampled). */
  checkpoints: number | null;
  maxCheckpointMs: number | null;
  /** Longest sync phase (operators' snapshot and deltas) among the window's samples. */
  maxCheckpointSyncMs?: number | null;
  /** The median sync phase over the window's checkpoints (each counted once): the longest is most often a process's first, complete and JIT-cold. */
  medianCheckpointSyncMs?: number | null;
  /** Longest increment (snapshot) and deltas (drain) among the window's samples. */
  maxSnapshotMs?: number | null;
  maxDrainMs?: number | null;
  finalLagSpans: number | null;
  finalLagS: number | null;
  maxLagSpans: number | null;
  sustained: boolean;
  verdict: string;
  latency: Latency | null;
  cpuS: number;
  harnessCpuS: number;
  peakRssMb: number;
  load: number;
  samples: SustainedSample[];
  error?: string;
}

export interface StepOptions {
  root: string;
  admin: Admin;
  brokers: string;
  topicPrefix: string;
  partitions: number;
  replay: LoopableReplay;
  bytesPerSpan: number;
  durationS: number;
  /** Sets the run needs besides the Kafka source ones (sinks, workers, ...). */
  sets: string[];
  onSample: (s: SustainedSample) => void;
}

const COMMIT_SAMPLE_MS = 150;
const SLOPE_FRACTION = 0.05;
const MAX_BEHIND_S = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function readMetrics(port: number): Promise<string | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(900) });
    return await res.text();
  } catch {
    return null;
  }
}

function slope(pts: Array<[number, number]>): number | null {
  if (pts.length < 3) return null;
  const n = pts.length;
  const mx = pts.reduce((a, p) => a + p[0], 0) / n, my = pts.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0, sxx = 0;
  for (const [x, y] of pts) (sxy += (x - mx) * (y - my)), (sxx += (x - mx) ** 2);
  return sxx > 0 ? sxy / sxx : null;
}

function weightedPercentile(sorted: Array<[number, number]>, total: number, q: number): number | null {
  if (!sorted.length) return null;
  let acc = 0;
  for (const [v, w] of sorted) if ((acc += w) >= q * total) return v;
  return sorted[sorted.length - 1][0];
}

/** Message latencies: first commit sample that passed each message's offset, minus its send time. */
function latencyOf(records: Produced[], commits: Array<{ t: number; offsets: Map<number, number> }>): Latency {
  const byPartition = new Map<number, Produced[]>();
  for (const r of records) (byPartition.get(r.partition) ?? byPartition.set(r.partition, []).get(r.partition)!).push(r);
  const lat: Array<[number, number]> = [];
  for (const [p, list] of byPartition) {
    list.sort((a, b) => a.offset - b.offset);
    let i = 0;
    for (const c of commits) {
      const off = c.offsets.get(p) ?? -1;
      while (i < list.length && list[i].offset < off) {
        lat.push([Math.max(0, c.t - list[i].sentAt), list[i].spans]);
        i++;
      }
    }
  }
  const bySpans = lat.slice().sort((a, b) => a[0] - b[0]);
  const visibleSpans = bySpans.reduce((a, x) => a + x[1], 0);
  const byMsg = bySpans.map(([v]) => [v, 1] as [number, number]);
  const acks = records.map((r) => r.ackedAt - r.sentAt).sort((a, b) => a - b);
  return {
    messages: records.length,
    visibleMessages: lat.length,
    spans: records.reduce((a, r) => a + r.spans, 0),
    visibleSpans,
    p50Ms: weightedPercentile(bySpans, visibleSpans, 0.5),
    p90Ms: weightedPercentile(bySpans, visibleSpans, 0.9),
    p99Ms: weightedPercentile(bySpans, visibleSpans, 0.99),
    maxMs: bySpans.length ? bySpans[bySpans.length - 1][0] : null,
    messageP50Ms: weightedPercentile(byMsg, byMsg.length, 0.5),
    messageP99Ms: weightedPercentile(byMsg, byMsg.length, 0.99),
    ackP50Ms: acks.length ? acks[Math.floor(acks.length / 2)] : null,
    commitSamples: commits.length,
    sampleIntervalMs: COMMIT_SAMPLE_MS,
  };
}

export async function runStep(o: StepOptions, purpose: Step["purpose"], rate: number, checkpointIntervalMs: number, checkpointIsDefault: boolean): Promise<Step> {
  const load = loadavg()[0];
  const topic = `${o.topicPrefix}-${Math.round(rate)}-${checkpointIntervalMs}-${Date.now()}`;
  const group = `bench-sustained-${process.pid}-${Date.now()}`;
  const base = {
    purpose, offeredRate: rate, durationS: o.durationS, checkpointIntervalMs, load,
    achievedRate: 0, producerLimited: false, producerBehindMaxS: 0, loops: 0, consumedRate: null, lagSlope: null, finalLagSpans: null, finalLagS: null, maxLagSpans: null,
    floorQ3: null, floorQ4: null, floorSlope: null, checkpoints: null, maxCheckpointMs: null,
    sustained: false, latency: null, cpuS: 0, harnessCpuS: 0, peakRssMb: 0, samples: [] as SustainedSample[],
  };
  const retention = Math.max(256 << 20, Math.ceil((1.5 * rate * o.durationS * o.bytesPerSpan) / o.partitions));
  // a loaded broker sometimes answers "does not host this topic-partition" while the leaders are elected
  for (let attempt = 1; ; attempt++) {
    try {
      await createTopic(o.admin, topic, o.partitions, retention);
      break;
    } catch (err) {
      if (attempt >= 5) return { ...base, verdict: "failed", error: `could not create ${topic}: ${String(err)}` };
      if (/already exists/i.test(String(err))) break;
      await sleep(2000);
    }
  }
  const port = await freePort();
  let timePid = 0;
  let exited: Timed | null = null;
  const cpu0 = process.cpuUsage();
  const sets = [
    "source.type=kafka", `source.kafka.brokers=${o.brokers}`, `source.kafka.topic=${topic}`, `source.kafka.groupId=${group}`, "source.kafka.bounded=false",
    ...(checkpointIsDefault ? [] : [`runtime.checkpointIntervalMs=${checkpointIntervalMs}`]), ...o.sets,
  ];
  // BENCH_NODE_ARGS: node flags, as for the drain rows (scenarios.ts)
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "").split(/\s+/).filter(Boolean);
  const args = [...nodeArgs, join(o.root, "bin", "tracefold.mjs"), "run", "--log-format", "json", "--set", `http.listen=127.0.0.1:${port}`, ...sets.flatMap((x) => ["--set", x])];
  const run = timed(process.execPath, args, o.root, (pid) => (timePid = pid)).then((t) => (exited = t));
  const stopRun = async (): Promise<Timed> => {
    if (!exited && timePid) killChild(timePid, "SIGTERM");
    const deadline = Date.now() + 30_000;
    while (!exited && Date.now() < deadline) await sleep(100);
    if (!exited && timePid) killChild(timePid, "SIGKILL");
    return (await run) as Timed;
  };
  let done = false; // ends the samplers
  try {
    // ready: the member has its partitions
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (exited) throw new Error(`tracefold exited before joining: ${((exited as Timed).stderr + (exited as Timed).stdout).slice(-1500)}`);
      const text = await readMetrics(port);
      // every partition assigned (summed over the process's members)
      if (text && (metric(text, "tracefold_kafka_assigned_partitions") ?? 0) >= o.partitions) break;
      if (Date.now() > deadline) throw new Error("tracefold did not join its group within 90 s");
      await sleep(250);
    }
    const producer = new PacedProducer(o.brokers, topic, o.replay);
    const samples: SustainedSample[] = [];
    const commits: Array<{ t: number; offsets: Map<number, number> }> = [];
    // the lag, about once a second. A worker thread sends its metrics to the main thread once a
    // second, so /metrics can be up to 1 s old: it is polled every 100 ms and a sample is taken
    // when the count moves (a fresh status) or a second after the last one
    const lagLoop = (async () => {
      let lastSpans = -1;
      let lastAt = 0;
      while (!done) {
        const at = Date.now();
        const text = await readMetrics(port);
        const spans = text === null ? null : metric(text, "tracefold_fold_spans_in_total") ?? metric(text, "tracefold_decode_spans_total") ?? 0;
        if (text && spans !== null && producer.t0 && (spans !== lastSpans || at - lastAt >= 1000)) {
          lastSpans = spans;
          lastAt = at;
          const messages = metric(text, "tracefold_decode_messages_total");
          const s: SustainedSample = {
            t: (at - producer.t0) / 1000, spans, messages,
            lag: messages === null ? null : Math.max(0, producer.ackedMessages - messages),
            offeredSpans: producer.ackedSpans, lagSpans: Math.max(0, producer.ackedSpans - spans),
            committedLag: metric(text, "tracefold_kafka_partition_lag"),
            checkpoints: metric(text, "tracefold_runtime_checkpoints_total"),
            lastCheckpointMs: metric(text, "tracefold_runtime_last_checkpoint_ms"),
            lastCheckpointSyncMs: metric(text, "tracefold_runtime_last_checkpoint_sync_ms"),
            lastSnapshotMs: metric(text, "tracefold_fold_checkpoint_last_snapshot_ms"),
            lastDrainMs: metric(text, "tracefold_fold_checkpoint_last_drain_ms"),
          };
          samples.push(s);
          o.onSample(s);
        }
        await sleep(Math.max(0, 100 - (Date.now() - at)));
      }
    })();
    // the group's committed offsets, every COMMIT_SAMPLE_MS
    const commitLoop = (async () => {
      while (!done) {
        const at = Date.now();
        try {
          const got = await o.admin.fetchOffsets({ groupId: group, topics: [topic] });
          commits.push({ t: Date.now(), offsets: new Map((got[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)])) });
        } catch {
          /* next sample */
        }
        await sleep(Math.max(0, COMMIT_SAMPLE_MS - (Date.now() - at)));
      }
    })();
    await producer.run(rate, o.durationS);
    const offerS = Math.max(0.001, ((producer.lastAck || Date.now()) - producer.t0) / 1000);
    const achievedRate = producer.ackedSpans / Math.max(o.durationS, offerS);
    // the verdict, from the samples of the offer window
    const window = samples.filter((s) => s.t <= o.durationS + 0.5);
    const half = window.filter((s) => s.t >= o.durationS / 2);
    const lagSlope = slope(half.map((s) => [s.t, s.lagSpans]));
    // every checkpoint holds the pipeline for a while (the lag jumps, then falls back): the verdict
    // uses the lag's floor, its minimum over each of the last two quarters of the window
    const q = o.durationS / 4;
    const floor = (from: number, to: number) => {
      const xs = window.filter((s) => s.t >= from && s.t <= to).map((s) => s.lagSpans);
      return xs.length ? Math.min(...xs) : null;
    };
    const floorQ3 = floor(2 * q, 3 * q), floorQ4 = floor(3 * q, 4 * q + 0.5);
    const floorSlope = floorQ3 === null || floorQ4 === null ? null : (floorQ4 - floorQ3) / q;
    const finalLagSpans = floorQ4;
    const consumedRate = half.length >= 2 && half[half.length - 1].t > half[0].t ? ((half[half.length - 1].spans ?? 0) - (half[0].spans ?? 0)) / (half[half.length - 1].t - half[0].t) : null;
    const judged = Math.min(rate, achievedRate);
    const producerLimited = achievedRate < 0.95 * rate;
    const flat = floorSlope !== null && floorSlope <= SLOPE_FRACTION * judged;
    const near = finalLagSpans !== null && finalLagSpans <= MAX_BEHIND_S * judged;
    const sustained = flat && near && !producer.errors.length;
    const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
    const verdict = producer.errors.length
      ? `producer failed: ${producer.errors[0].slice(0, 120)}`
      : `${sustained ? "sustained" : "NOT sustained"}: lag floor rose ${floorSlope === null ? "-" : fmt(floorSlope)} spans/s over the last half (limit ${fmt(SLOPE_FRACTION * judged)}), floor in the last quarter ${finalLagSpans === null ? "-" : (finalLagSpans / judged).toFixed(2)} s of input (limit ${MAX_BEHIND_S})${producerLimited ? (sustained ? `; the producer reached only ${fmt(achievedRate)} spans/s, so the result is >= that` : `; the producer reached only ${fmt(achievedRate)} spans/s (judged at that rate; the cores are saturated)`) : ""}`;
    // sustained: wait until a commit covers everything produced (the next checkpoint), for the latency
    if (sustained) {
      const tail = Date.now() + checkpointIntervalMs + 10_000;
      const ends = new Map<number, number>();
      for (const r of producer.records) ends.set(r.partition, Math.max(ends.get(r.partition) ?? -1, r.offset));
      while (Date.now() < tail) {
        const c = commits[commits.length - 1];
        if (c && [...ends].every(([p, off]) => (c.offsets.get(p) ?? -1) > off)) break;
        await sleep(COMMIT_SAMPLE_MS);
      }
    }
    done = true;
    await Promise.all([lagLoop, commitLoop]);
    const latency = latencyOf(producer.records, commits);
    const cpu = process.cpuUsage(cpu0);
    const t = await stopRun();
    return {
      ...base, achievedRate, producerLimited, producerBehindMaxS: producer.behindMaxS, loops: producer.loops, consumedRate, lagSlope, finalLagSpans,
      finalLagS: finalLagSpans === null ? null : finalLagSpans / judged, maxLagSpans: window.length ? Math.max(...window.map((s) => s.lagSpans)) : null,
      floorQ3, floorQ4, floorSlope,
      checkpoints: window.length ? (window[window.length - 1].checkpoints ?? 0) - (window[0].checkpoints ?? 0) : null,
      maxCheckpointMs: window.some((s) => s.lastCheckpointMs !== null) ? Math.max(...window.map((s) => s.lastCheckpointMs ?? 0)) : null,
      maxCheckpointSyncMs: window.some((s) => s.lastCheckpointSyncMs !== null) ? Math.max(...window.map((s) => s.lastCheckpointSyncMs ?? 0)) : null,
      medianCheckpointSyncMs: medianPerCheckpoint(window, (s) => s.lastCheckpointSyncMs),
      maxSnapshotMs: window.some((s) => s.lastSnapshotMs != null) ? Math.max(...window.map((s) => s.lastSnapshotMs ?? 0)) : null,
      maxDrainMs: window.some((s) => s.lastDrainMs != null) ? Math.max(...window.map((s) => s.lastDrainMs ?? 0)) : null,
      sustained, verdict, latency, cpuS: t.cpu, harnessCpuS: (cpu.user + cpu.system) / 1e6, peakRssMb: t.rssMb, samples,
    };
  } catch (err) {
    done = true;
    const t = await stopRun().catch(() => null);
    return { ...base, verdict: "failed", cpuS: t?.cpu ?? 0, peakRssMb: t?.rssMb ?? 0, error: String((err as Error).message ?? err) };
  } finally {
    await o.admin.deleteTopics({ topics: [topic] }).catch(() => {});
  }
}

// ---- the search ---------------------------------------------------------------------------------

export interface SustainedResult {
  scenario: string;
  shape: string;
  topology: string;
  /** The backlog drain rate the search started from, and where it came from. */
  drainRate: number;
  drainSource: string;
  startRate: number;
  durationS: number;
  defaultCheckpointIntervalMs: number;
  /** Highest offered rate judged sustained (null: none), the lowest that was not, and whether the producer bounded the result. */
  sustainedRate: number | null;
  failedRate: number | null;
  atLeast: boolean;
  steps: Step[];
  notes: string[];
}

export interface SearchOptions extends StepOptions {
  shape: string;
  /** Row labels (default: keyed, 1 worker). */
  scenario?: string;
  topology?: string;
  drainRate: number;
  drainSource: string;
  startRate: number;
  maxSteps: number;
  defaultCheckpointIntervalMs: number;
  /** Extra latency points: checkpoint intervals (ms) run at the highest sustained rate. */
  latencyCheckpointsMs: number[];
  onStep: (label: string, s: Step | null) => void;
}

const FACTOR = 1.6;

export async function sustainedSearch(o: SearchOptions): Promise<SustainedResult> {
  const steps: Step[] = [];
  let lo: number | null = null;
  let hi: number | null = null;
  let atLeast = false;
  let rate = o.startRate;
  for (let k = 1; k <= o.maxSteps; k++) {
    o.onStep(`sustained search step ${k}/${o.maxSteps}: offering ${Math.round(rate).toLocaleString("en-US")} spans/s for ${o.durationS} s`, null);
    const s = await runStep(o, "search", rate, o.defaultCheckpointIntervalMs, true);
    steps.push(s);
    o.onStep(`step ${k}: ${Math.round(rate).toLocaleString("en-US")} spans/s offered, ${Math.round(s.achievedRate).toLocaleString("en-US")} achieved: ${s.error ? `failed: ${s.error.slice(0, 200)}` : s.verdict}`, s);
    if (s.error) break;
    if (s.sustained) {
      lo = Math.max(lo ?? 0, Math.min(rate, s.achievedRate));
      if (s.producerLimited) {
        atLeast = true; // the producer cannot offer more here
        break;
      }
    } else hi = Math.min(hi ?? Infinity, rate, s.achievedRate > 0 ? s.achievedRate : rate);
    if (lo !== null && hi !== null && hi / lo <= 1.1) break;
    rate = hi === null ? rate * FACTOR : lo === null ? rate / FACTOR : Math.sqrt(lo * hi);
  }
  // latency points at the highest sustained rate, with other checkpoint intervals
  if (lo !== null) {
    for (const cp of o.latencyCheckpointsMs) {
      if (cp === o.defaultCheckpointIntervalMs) continue; // the search steps ran with it
      // at the highest sustained rate; if that rate is not sustained with this interval (checkpoints
      // cost), once more at a quarter of it, so that the latency is not the backlog's
      for (const rate of [lo, lo / 4]) {
        o.onStep(`latency point: ${Math.round(rate).toLocaleString("en-US")} spans/s, runtime.checkpointIntervalMs=${cp}`, null);
        const s = await runStep(o, "latency", rate, cp, false);
        steps.push(s);
        o.onStep(`latency point, checkpoint ${cp} ms: p50 ${s.latency?.p50Ms ?? "-"} ms, p99 ${s.latency?.p99Ms ?? "-"} ms; ${s.error ? `failed: ${s.error.slice(0, 200)}` : s.verdict}`, s);
        if (s.sustained || s.error) break;
      }
    }
  }
  const notes = [
    "Each step is a fresh topic and a fresh tracefold process (start-up and group join are not in the window); the producer (this harness, kafkajs, 8 requests in flight) shares the cores with tracefold and the broker.",
    `Sustained: lag = spans acked by Kafka - spans taken in by the fold (/metrics, polled every 100 ms, a sample per fresh worker status, about 1/s). Each checkpoint holds the pipeline and the lag jumps, so the verdict uses the lag's floor (minimum) in the third and in the last quarter of the ${o.durationS} s window: the floor may rise by at most ${SLOPE_FRACTION * 100}% of the offered rate per second between them, and the last quarter's floor must be at most ${MAX_BEHIND_S} s of input.`,
    "Live traffic: every message's timestamps are shifted so that its earliest is its send time (event time follows the wall clock, offsets within the message kept). When the offered spans exceed the replay, it is offered again with the trace ids XOR-ed per pass (new traces). The replay's truth no longer holds, which does not matter here: the sinks are blackholes.",
    `Not a steady state: with the default fold.outOfOrdernessMs + fold.traceGapMs (30 + 30 s) a trace stays pending ~60 s after its last span, so during a ${o.durationS} s step nothing is assembled and the pending state (which every checkpoint snapshots) grows all along. In a long run it levels off at ~60 s of input, more than a step ever holds: run --sustained-seconds 90 or more for that.`,
    `Latency: from the message's send to the first sample (every ${COMMIT_SAMPLE_MS} ms) of the group's committed offsets past it. tracefold commits offsets after the checkpoint that made their deltas durable, so this is "visible at the latest with that checkpoint"; span-weighted.`,
  ];
  return {
    scenario: o.scenario ?? "kafka keyed -> blackhole, sustained rate",
    shape: o.shape,
    topology: o.topology ?? "1 process, 1 worker thread, kafkajs",
    drainRate: o.drainRate,
    drainSource: o.drainSource,
    startRate: o.startRate,
    durationS: o.durationS,
    defaultCheckpointIntervalMs: o.defaultCheckpointIntervalMs,
    sustainedRate: lo,
    failedRate: hi,
    atLeast,
    steps,
    notes,
  };
}

/** The median of a per-checkpoint metric over samples: one value per checkpoint (the first sample after it). */
function medianPerCheckpoint(window: SustainedSample[], pick: (s: SustainedSample) => number | null | undefined): number | null {
  const values: number[] = [];
  let seen: number | null = null;
  for (const s of window) {
    const v = pick(s);
    if (v == null || s.checkpoints == null || s.checkpoints === seen) continue;
    seen = s.checkpoints;
    values.push(v);
  }
  if (!values.length) return null;
  values.sort((a, b) => a - b);
  return values[values.length >> 1];
}
