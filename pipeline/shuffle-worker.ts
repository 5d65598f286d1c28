/**
 * A worker thread of the shuffled job (pipeline/shuffle.ts): input not keyed by trace id.
 *
 *   stage 1  message batches from the main thread's consumer -> decode -> trace details to the
 *            traces sink (HBase) -> keyBy(traceId) -> one exchange batch per owner worker
 *   stage 2  exchange batches from every worker (itself included) -> the fold, whose state is
 *            kept per key group
 *
 * Flow control is credit-based in both hops (Flink's): the main thread hands this worker an
 * input batch only against a credit this worker returns once the batch is decoded, its trace
 * details written and its exchange batches sent; and a worker sends an exchange batch to a peer
 * only against a credit that peer returns once it folded one. Nothing waits unbounded: a slow
 * fold stops its senders, which stop returning input credits, which stops the consumer, which
 * pauses the Kafka partitions.
 *
 * Checkpoints are aligned barriers: a barrier from the main thread follows the input batches in
 * order; stage 1 flushes the traces sink and the dead letters, then sends the barrier behind its
 * data to every peer; stage 2, once it has the barrier from every worker, snapshots its key
 * groups and hands its deltas to the main thread, which stores everything in one transaction.
 * A rollback (rebalance, fenced checkpoint, a worker died) starts a new generation: everything of
 * an older one still in flight is dropped.
 */
// before anything loads kafkajs: its read_committed filter lets aborted records through
import "../sources/kafka/kafkajs-patch.js";
import { MessagePort, parentPort, workerData } from "node:worker_threads";
import type { Config } from "./config.js";
import { section } from "./config.js";
import { consoleLogger, type Collector, type Checkpoint, type DeadLetter, type Logger, type MessageBatch, type RuntimeContext, type Sink } from "./contracts.js";
import { ExchangeReader, ExchangeRouter, compressBatch, uncompressBatch } from "./exchange.js";
import { Interner } from "./intern.js";
import { buildJob } from "./job.js";
import { registry } from "./registry.js";
import { SpanBatch } from "./span-batch.js";
import { DecodeOperator } from "../operators/decode/index.js";
import { FoldOperator } from "../operators/fold/fold-operator.js";
import type { FoldDeltas } from "../operators/fold/deltas.js";

export interface ShuffleWorkerData {
  cfg: Config;
  workerIndex: number;
  workers: number;
  keyGroups: number;
  /** Exchange credits per channel (batches in flight from one worker to another). */
  credits: number;
  compression: "none" | "lz4";
  incarnation: number;
  /** Port to each peer worker (null at this worker's own index). */
  peers: Array<MessagePort | null>;
  statusIntervalMs: number;
}

/** An input batch as the main thread sends it: the messages in one transferred buffer. */
export interface PackedInput {
  t: "input";
  gen: number;
  partition: number;
  buf: ArrayBuffer;
  /** ends[i]: end of message i in buf. */
  ends: Uint32Array;
  offsets: Float64Array;
  topic: string;
}

type FromMain =
  | PackedInput
  | { t: "barrier"; gen: number; id: number; final: boolean }
  | { t: "reset"; gen: number }
  | { t: "stored"; gen: number; ok: boolean }
  | { t: "restore"; gen: number; states: Array<{ partition: number; state: Uint8Array }> }
  | { t: "report" }
  | { t: "exit" };

type PeerMsg = { t: "data"; gen: number; buf: ArrayBuffer; lz4: boolean } | { t: "credit"; gen: number } | { t: "barrier"; gen: number; id: number; final: boolean };

export interface ShuffleSnapshot {
  t: "snapshot";
  gen: number;
  id: number;
  worker: number;
  deltas: FoldDeltas;
  states: Array<{ partition: number; state: Uint8Array }>;
}

function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  return {
    info: (m, f) => log.info(m, { ...fields, ...f }),
    warn: (m, f) => log.warn(m, { ...fields, ...f }),
    error: (m, f) => log.error(m, { ...fields, ...f }),
  };
}

class ShuffleWorker {
  private readonly interner = new Interner();
  private readonly ctx: RuntimeContext;
  private readonly decode: DecodeOperator;
  private readonly fold: FoldOperator;
  private readonly traces: Sink;
  private deadLetters: Sink | null = null;
  private readonly router: ExchangeRouter;
  private readonly readers: ExchangeReader[];
  private readonly folded: SpanBatch;
  private gen = 0;
  /** Per peer: credits left, and what waits for one (exchange batches and barriers, in order). */
  private readonly credit: number[];
  private readonly outbox: Array<Array<PeerMsg>>;
  /** Senders whose barrier arrived for the checkpoint being aligned, and what they sent since. */
  private readonly aligned = new Set<number>();
  private held: PeerMsg[][];
  private chain: Promise<void> = Promise.resolve();
  private writes: Promise<void>[] = [];
  /** Input batches decoded whose credit goes back once every exchange batch left. */
  private owedInputCredits = 0;
  private deadLetterCount = 0;
  private exchangeBatchesOut = 0;
  private exchangeBytesOut = 0;
  private exchangeBytesRaw = 0;
  private exchangeBatchesIn = 0;
  private exchangeWaits = 0;
  private staleMessages = 0;
  private readonly peers: Array<MessagePort | null>;

  constructor(
    private readonly d: ShuffleWorkerData,
    private readonly log: Logger,
  ) {
    this.peers = d.peers;
    this.ctx = {
      interner: this.interner,
      workerIndex: d.workerIndex,
      workers: d.workers,
      log,
      now: () => Date.now(),
      deadLetter: (l: DeadLetter) => {
        this.deadLetterCount++;
        log.warn(l.reason, { code: l.code, origin: l.origin, partition: l.partition, offset: l.offset });
        if (this.deadLetters) this.writes.push(this.deadLetters.write(l));
      },
    };
    const job = buildJob(d.cfg);
    const spec = (name: string) => {
      const s = [...job.sources, ...job.operators, ...job.sinks].find((n) => n.name === name);
      if (!s) throw new Error(`no node ${name} in the job`);
      return s;
    };
    this.decode = registry.createOperator(spec("decode")) as DecodeOperator;
    this.fold = new FoldOperator({ ...section(d.cfg, "fold"), emitOnTimer: false });
    this.traces = registry.createSink(spec("traces"));
    this.router = new ExchangeRouter(this.interner, d.keyGroups, d.workers);
    this.readers = Array.from({ length: d.workers }, () => new ExchangeReader(this.interner));
    this.folded = new SpanBatch(this.interner, 4096);
    this.credit = Array.from({ length: d.workers }, () => d.credits);
    this.outbox = Array.from({ length: d.workers }, () => []);
    this.held = Array.from({ length: d.workers }, () => []);
  }

  async open(): Promise<void> {
    const cfg = this.d.cfg;
    if (cfg["source.kafka.deadLetterTopic"] !== "") {
      const { KafkaDeadLetters } = await import("../sources/kafka/dead-letter.js");
      const { connectionFromSettings } = await import("../sources/kafka/config.js");
      const k = section(cfg, "source.kafka");
      this.deadLetters = new KafkaDeadLetters({ ...connectionFromSettings(k), deadLetterTopic: k.deadLetterTopic as string, sourceTopic: k.topic as string });
      await this.deadLetters.open(this.ctx);
    }
    await this.traces.open(this.ctx);
    this.decode.open(this.ctx);
    this.fold.open(this.ctx);
    for (let i = 0; i < this.peers.length; i++) this.attachPeer(i, this.peers[i]);
  }

  attachPeer(i: number, port: MessagePort | null): void {
    this.peers[i] = port;
    if (!port) return;
    port.on("message", (m: PeerMsg) => this.onPeer(i, m));
  }

  onMain(m: FromMain): void {
    switch (m.t) {
      case "input":
        this.chain = this.chain.then(() => this.input(m)).catch((err) => this.die(err));
        return;
      case "barrier":
        this.chain = this.chain.then(() => this.barrierIn(m.gen, m.id, m.final)).catch((err) => this.die(err));
        return;
      case "reset":
        this.reset(m.gen);
        return;
      case "stored":
        // the main thread stored (or failed to store) the last checkpoint: incremental state
        if (m.gen === this.gen) this.fold.checkpointStored(m.ok);
        return;
      case "restore":
        if (m.gen === this.gen) this.fold.restore(m.states);
        parentPort!.postMessage({ t: "restored", gen: m.gen, worker: this.d.workerIndex });
        return;
      case "report":
        void this.status().then((st) => parentPort!.postMessage({ t: "status", worker: this.d.workerIndex, final: true, ...st }));
        return;
      case "exit":
        void this.close().finally(() => process.exit(0));
        return;
    }
  }

  private die(err: unknown): void {
    process.stderr.write(`worker ${this.d.workerIndex}: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }

  private crashAt = 0;
  private inputs = 0;

  setCrashAt(n: number): void {
    this.crashAt = n;
  }

  /** Stage 1: decode, write trace details, route to the key groups' owners. */
  private async input(m: PackedInput): Promise<void> {
    if (m.gen !== this.gen) return; // read again after the rollback
    this.inputs++;
    if (this.inputs === this.crashAt) throw new Error(`injected fault: worker ${this.d.workerIndex} dies at input batch ${this.inputs} (debug.crashWorkerAfterBatches)`);
    const bytes = new Uint8Array(m.buf);
    const mb: MessageBatch = { kind: "messages", partition: m.partition, messages: [], origins: [], offsets: [] };
    let start = 0;
    for (let i = 0; i < m.ends.length; i++) {
      mb.messages.push(bytes.subarray(start, m.ends[i]));
      mb.origins.push(`${m.topic}/${m.partition}@${m.offsets[i]}`);
      mb.offsets.push(m.offsets[i]);
      start = m.ends[i];
    }
    let decoded: SpanBatch | null = null;
    this.decode.processBatch(mb, { emit: (b) => (decoded = b as SpanBatch) } as Collector);
    if (decoded !== null) {
      const b = decoded as SpanBatch;
      // trace details before the shuffle (idempotent; durable before the next barrier passes)
      this.writes.push(this.traces.write(b));
      this.router.route(b);
      for (let w = 0; w < this.d.workers; w++) {
        const raw = this.router.encode(w);
        if (raw === null) continue;
        this.exchangeBytesRaw += raw.byteLength;
        const lz4 = this.d.compression === "lz4";
        const buf = lz4 ? compressBatch(raw) : raw;
        this.exchangeBatchesOut++;
        this.exchangeBytesOut += buf.byteLength;
        this.send(w, { t: "data", gen: this.gen, buf, lz4 });
      }
    }
    // a slow sink slows the source: the credit goes back once the trace details are written
    await this.drainWrites();
    this.owedInputCredits++;
    this.returnInputCredits();
  }

  private returnInputCredits(): void {
    if (this.owedInputCredits === 0 || this.outbox.some((q) => q.some((x) => x.t === "data"))) return;
    parentPort!.postMessage({ t: "credit", gen: this.gen, n: this.owedInputCredits, worker: this.d.workerIndex });
    this.owedInputCredits = 0;
  }

  private async drainWrites(): Promise<void> {
    while (this.writes.length > 0) {
      const w = this.writes;
      this.writes = [];
      await Promise.all(w);
    }
  }

  /** To peer w (or to this worker's own stage 2), in order, data only against a credit. */
  private send(w: number, m: PeerMsg): void {
    // a credit flows the other way and never waits: queued behind this worker's own data to
    // that peer (which waits for the peer's credit) it would deadlock both
    if (m.t === "credit") return this.deliver(w, m);
    const q = this.outbox[w];
    if (q.length > 0 || (m.t === "data" && this.credit[w] === 0)) {
      if (m.t === "data") this.exchangeWaits++;
      q.push(m);
      return;
    }
    this.deliver(w, m);
  }

  private deliver(w: number, m: PeerMsg): void {
    if (m.t === "data") this.credit[w]--;
    if (w === this.d.workerIndex) {
      // this worker's own key groups: no thread crossing, same path (a microtask keeps order)
      queueMicrotask(() => this.onPeer(w, m));
      return;
    }
    const port = this.peers[w];
    if (!port) return; // that worker is restarting: a rollback follows
    if (m.t === "data") port.postMessage(m, [m.buf]);
    else port.postMessage(m);
  }

  private onPeer(from: number, m: PeerMsg): void {
    if (m.gen < this.gen) {
      this.staleMessages++;
      return;
    }
    // alignment: what a sender sent after its barrier belongs to the next checkpoint; it waits
    // until every sender's barrier is in (Flink's aligned checkpoints)
    if (m.t !== "credit" && this.aligned.has(from)) {
      this.held[from].push(m);
      return;
    }
    if (m.t === "credit") {
      this.credit[from]++;
      const q = this.outbox[from];
      while (q.length > 0 && (q[0].t !== "data" || this.credit[from] > 0)) this.deliver(from, q.shift()!);
      this.returnInputCredits();
      return;
    }
    if (m.t === "data") {
      this.exchangeBatchesIn++;
      const buf = m.lz4 ? uncompressBatch(m.buf) : m.buf;
      const r = this.readers[from];
      r.read(buf, this.folded);
      const segs = r.segments;
      const now = Date.now();
      for (let k = 0; k < segs.length; k += 3) this.fold.fold.processBatch(this.folded, now, segs[k + 1], segs[k + 1] + segs[k + 2], segs[k]);
      this.send(from, { t: "credit", gen: m.gen });
      return;
    }
    // a barrier: this sender's data before it is folded
    const got = this.aligned;
    got.add(from);
    if (got.size === this.d.workers) {
      if (m.final) this.fold.fold.finish();
      let item: Checkpoint | null = null;
      this.fold.checkpoint({ emit: (x) => (item = x as Checkpoint) }, []);
      const c = item as unknown as Checkpoint;
      const snap: ShuffleSnapshot = { t: "snapshot", gen: this.gen, id: m.id, worker: this.d.workerIndex, deltas: c.deltas as FoldDeltas, states: c.states };
      parentPort!.postMessage(snap);
      got.clear();
      for (let w = 0; w < this.d.workers; w++) {
        const q = this.held[w];
        this.held[w] = [];
        for (const x of q) this.onPeer(w, x);
      }
    }
  }

  /** Stage 1's part of a barrier: trace details and dead letters durable, then pass it on. */
  private async barrierIn(gen: number, id: number, final: boolean): Promise<void> {
    if (gen !== this.gen) return;
    await this.drainWrites();
    await this.traces.flush();
    await this.deadLetters?.flush();
    for (let w = 0; w < this.d.workers; w++) this.send(w, { t: "barrier", gen, id, final });
  }

  private reset(gen: number): void {
    this.gen = gen;
    this.fold.reset();
    this.router.resetChannels();
    for (const r of this.readers) r.reset();
    for (let w = 0; w < this.d.workers; w++) {
      this.credit[w] = this.d.credits;
      this.outbox[w] = [];
    }
    this.aligned.clear();
    for (let w = 0; w < this.d.workers; w++) this.held[w] = [];
    this.owedInputCredits = 0;
    parentPort!.postMessage({ t: "reset-done", gen, worker: this.d.workerIndex });
  }

  tick(now: number): void {
    this.fold.fold.onProcessingTime(now);
  }

  async status(): Promise<{ metrics: Record<string, number>; ready: boolean; reasons: string[] }> {
    const metrics: Record<string, number> = {
      ...this.decode.metrics(),
      ...this.fold.metrics(),
      ...(this.traces.metrics?.() ?? {}),
      runtime_dead_letters: this.deadLetterCount,
      exchange_batches_out: this.exchangeBatchesOut,
      exchange_bytes_out: this.exchangeBytesOut,
      exchange_bytes_uncompressed: this.exchangeBytesRaw,
      exchange_batches_in: this.exchangeBatchesIn,
      exchange_credit_waits: this.exchangeWaits,
      exchange_stale_messages: this.staleMessages,
      exchange_queue_depth: this.outbox.reduce((n, q) => n + q.length, 0),
    };
    const reasons: string[] = [];
    if (!(await this.traces.healthcheck().catch(() => false))) reasons.push("traces: unreachable");
    return { metrics, ready: reasons.length === 0, reasons };
  }

  async close(): Promise<void> {
    await this.drainWrites().catch(() => {});
    await this.traces.close().catch(() => {});
    await this.deadLetters?.close().catch(() => {});
    for (const p of this.peers) p?.close();
  }
}

async function main(): Promise<void> {
  const d = workerData as ShuffleWorkerData;
  const log = withFields(consoleLogger(d.cfg["log.format"] === "json"), { worker: d.workerIndex });
  const w = new ShuffleWorker(d, log);
  if (d.incarnation === 0) w.setCrashAt(d.cfg["debug.crashWorkerAfterBatches"] as number);
  await w.open();
  parentPort!.on("message", (m: FromMain) => w.onMain(m));
  const tick = setInterval(() => w.tick(Date.now()), d.cfg["runtime.tickMs"] as number);
  const status = setInterval(() => {
    w.status().then(
      (s) => parentPort!.postMessage({ t: "status", worker: d.workerIndex, ...s }),
      (err) => log.warn("status report failed", { error: String(err) }),
    );
  }, d.statusIntervalMs);
  tick.unref();
  status.unref();
  const s = await w.status();
  parentPort!.postMessage({ t: "opened", worker: d.workerIndex, ...s });
}

main().catch((err) => {
  process.stderr.write(`worker ${(workerData as ShuffleWorkerData).workerIndex}: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
