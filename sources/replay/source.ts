/**
 * The `replay` source: realistic microservice traffic from the seeded generator, with the ground
 * truth of what it generated (for the run's truth check). Two ways to hand it on:
 *
 *   encoded=none (default)     generator -> SpanBatch per partition -> fold          (no decode)
 *   encoded=batch|trace|span   at open: generator -> OTLP protobuf messages in that shape
 *                              (sources/replay/otlp-encode.ts messagesFromBatch), kept in memory;
 *                              then MessageBatch per partition -> decode -> fold      (as from Kafka)
 *
 * As fast as the pipeline takes it, or paced at source.replay.rate spans/s (a batch goes out when
 * it is due; how far the replay falls behind its schedule is measured).
 *
 * With runtime.workers=N each worker thread runs its own ReplaySource on its share of the
 * partitions (partition p on worker p % N, as pipeline/replay-workers.ts describes). Every worker
 * generates the whole stream (the generator's PRNG is sequential: a trace's partition is known only
 * once it is built) and keeps its own partitions, so the union over the workers is exactly the
 * one-thread stream and every worker holds the whole truth.
 */
import type { Logger, MessageBatch, RuntimeContext, Source } from "../../pipeline/contracts.js";
import { TracefoldError } from "../../pipeline/errors.js";
import type { Interner } from "../../pipeline/intern.js";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import { ReplayGenerator, type ReplayOptions } from "./generator.js";
import { messagesFromBatch, type MessageShape } from "./otlp-encode.js";

export type ReplayEncoding = "none" | MessageShape;

export interface ReplaySourceConfig extends Partial<ReplayOptions> {
  /** Spans to generate; 0 = forever (encoded=none only). */
  spans?: number;
  /** none: SpanBatches straight to the fold; batch|trace|span: pre-encoded OTLP protobuf messages. */
  encoded?: ReplayEncoding;
  /**
   * Offered rate in spans/s over every worker (each paces its share of the partitions); 0 = as
   * fast as the pipeline takes them. A batch is handed on when it is due; when the pipeline is
   * slower, the replay runs behind its schedule, and that is measured (replay_behind_spans).
   */
  rate?: number;
}

/**
 * The messages of one generator batch, pre-encoded: one buffer per batch (not one object per
 * message, so 5M span-shaped messages stay ~the size of their bytes), message k is
 * bytes[ends[k-1] .. ends[k]).
 */
interface EncodedBatch {
  partition: number;
  firstOffset: number;
  spans: number;
  bytes: Uint8Array;
  ends: Uint32Array;
}

export class ReplaySource implements Source {
  generator!: ReplayGenerator;
  private queue: SpanBatch[] = [];
  private encodedQueue: Array<EncodedBatch | undefined> = [];
  private head = 0;
  /** Spans generated, every partition (the stop rule: the same on every worker). */
  private produced = 0;
  /** Spans and messages handed to this pipeline (this worker's partitions). */
  private handed = 0;
  private messages = 0;
  private encodedBytes = 0;
  /** Milliseconds spent generating and encoding before the first batch (0 with encoded=none). */
  prepareMs = 0;
  private readonly nextOffset = new Map<number, number>();
  private owns: (partition: number) => boolean = () => true;
  /** This worker's share of source.replay.rate (spans/s), 0 = unpaced. */
  private paceRate = 0;
  private paceStart = 0;
  /** Spans the replay is behind its schedule: when the last batch went out, and at most. */
  private behind = 0;
  private behindPeak = 0;

  constructor(readonly config: ReplaySourceConfig = {}) {}

  get encoding(): ReplayEncoding {
    return this.config.encoded ?? "none";
  }

  private get total(): number {
    return this.config.spans ?? 2_000_000;
  }

  async open(ctx: RuntimeContext): Promise<void> {
    await this.prepare(ctx.interner, ctx.workerIndex, ctx.workers, ctx.log);
  }

  /**
   * Builds the generator for this worker's share and, with an encoding, pre-encodes the whole
   * replay. Called before the measured run (pipeline/assemble.ts prepareSources) so the encoding
   * is not timed; open() then finds it done (safe to call twice).
   */
  async prepare(interner: Interner, workerIndex: number, workers: number, log: Logger): Promise<void> {
    if (this.generator) return;
    const { spans: _spans, encoded: _encoded, rate, ...opts } = this.config;
    this.generator = new ReplayGenerator({ seed: 1, ...opts }, interner);
    const n = Math.max(1, workers);
    const mine = workerIndex % n;
    this.owns = (p) => p % n === mine;
    // the traces spread evenly over the partitions: this worker offers its partitions' share
    let owned = 0;
    for (let p = 0; p < this.generator.partitions; p++) if (this.owns(p)) owned++;
    this.paceRate = rate !== undefined && rate > 0 ? (rate * owned) / this.generator.partitions : 0;
    const shape = this.encoding;
    if (shape === "none") return;
    if (this.total <= 0) throw new TracefoldError("TF_CONFIG_INVALID", "source.replay.encoded needs a bounded replay (source.replay.spans > 0): the messages are encoded before the run", "replay");
    const t0 = performance.now();
    while (this.produced < this.total) this.generateChunk((b) => this.encodedQueue.push(this.encode(b, shape)));
    this.prepareMs = performance.now() - t0;
    log.info("replay: traffic pre-encoded before the run (not timed)", {
      shape, spans: this.encodedQueue.reduce((s, e) => s + (e?.spans ?? 0), 0), messages: this.messagesEncoded(), bytes: this.encodedBytes,
      generatedSpans: this.produced, ms: Math.round(this.prepareMs), worker: workerIndex, workers: n,
    });
  }

  /** One step of the generator, the same cut on every worker and with every encoding. */
  private generateChunk(emit: (b: SpanBatch) => void): number {
    const chunk = this.generator.batchSize * this.generator.partitions;
    const want = this.total > 0 ? Math.min(chunk, this.total - this.produced) : chunk;
    const n = this.generator.generate(want, (b) => {
      if (this.owns(b.partition)) emit(b);
    });
    this.produced += n;
    return n;
  }

  private encode(b: SpanBatch, shape: MessageShape): EncodedBatch {
    const msgs = messagesFromBatch(b, shape, 200, "otlp_proto");
    let size = 0;
    for (const m of msgs) size += m.length;
    const bytes = new Uint8Array(size);
    const ends = new Uint32Array(msgs.length);
    let at = 0;
    for (let k = 0; k < msgs.length; k++) {
      bytes.set(msgs[k], at);
      at += msgs[k].length;
      ends[k] = at;
    }
    this.encodedBytes += size;
    const firstOffset = this.nextOffset.get(b.partition) ?? 0;
    this.nextOffset.set(b.partition, firstOffset + msgs.length);
    return { partition: b.partition, firstOffset, spans: b.length, bytes, ends };
  }

  private messagesEncoded(): number {
    let n = 0;
    for (const v of this.nextOffset.values()) n += v;
    return n;
  }

  async next(): Promise<SpanBatch | MessageBatch | null> {
    if (this.paceRate > 0) await this.pace();
    if (this.encoding !== "none") return this.nextMessages();
    while (this.queue.length === 0) {
      if (this.total > 0 && this.produced >= this.total) return null;
      if (this.generateChunk((b) => this.queue.push(b.clone())) === 0) return null;
    }
    const b = this.queue.shift()!;
    this.handed += b.length;
    return b;
  }

  /**
   * source.replay.rate: waits until the next batch is due (the spans handed so far at the offered
   * rate, from the first batch), or notes how far behind its schedule the replay runs.
   */
  private async pace(): Promise<void> {
    const now = performance.now();
    if (this.paceStart === 0) this.paceStart = now;
    const due = this.paceStart + (this.handed / this.paceRate) * 1000;
    if (due > now + 1) {
      this.behind = 0;
      await new Promise((r) => setTimeout(r, due - now));
      return;
    }
    this.behind = Math.max(0, Math.round(((now - due) * this.paceRate) / 1000));
    if (this.behind > this.behindPeak) this.behindPeak = this.behind;
  }

  /** The next pre-encoded batch as a Kafka source hands one on: views of the bytes, origins, offsets. */
  private nextMessages(): MessageBatch | null {
    const e = this.encodedQueue[this.head];
    if (e === undefined) return null;
    this.encodedQueue[this.head++] = undefined; // its bytes go once decoded
    const n = e.ends.length;
    const messages: Uint8Array[] = new Array(n);
    const origins: string[] = new Array(n);
    const offsets: number[] = new Array(n);
    let start = 0;
    for (let k = 0; k < n; k++) {
      messages[k] = e.bytes.subarray(start, e.ends[k]);
      start = e.ends[k];
      offsets[k] = e.firstOffset + k;
      origins[k] = `replay/${e.partition}@${offsets[k]}`;
    }
    this.handed += e.spans;
    this.messages += n;
    return { kind: "messages", partition: e.partition, messages, origins, offsets };
  }

  async close(): Promise<void> {
    this.queue = [];
    this.encodedQueue = [];
  }

  metrics(): Record<string, number> {
    const out: Record<string, number> = { replay_spans: this.handed };
    if (this.paceRate > 0) Object.assign(out, { replay_offered_spans_per_second: this.paceRate, replay_behind_spans: this.behind, replay_peak_behind_spans: this.behindPeak });
    if (this.encoding !== "none") Object.assign(out, { replay_messages: this.messages, replay_encoded_bytes: this.encodedBytes, replay_prepare_ms: Math.round(this.prepareMs) });
    return out;
  }
}
