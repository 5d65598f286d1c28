/**
 * The `repartition` sink (runtime.shuffle=topic, stage 1): re-keys decoded spans by trace id
 * into the repartition topic, exactly once.
 *
 * Every input batch's rows are routed by the hash of their trace id to a partition of the
 * repartition topic (the same key-group hash as the thread shuffle, pipeline/exchange.ts) and
 * sent as one standalone exchange batch per target partition, LZ4-compressed by Kafka (record
 * batch compression).
 *
 * Exactly once, Kafka Streams' way before KIP-447: one transactional producer per INPUT
 * partition (transactional.id = "<group>.<topic>.<partition>"), so the member that takes a
 * partition over fences the previous owner's producer. What an input partition produced since
 * the last checkpoint is one open transaction; the checkpoint adds the input offsets to it
 * (sendOffsetsToTransaction) and commits, so the repartitioned records and the consumed offsets
 * become visible together. A rollback aborts the open transactions; the fold (stage 2) reads
 * the topic read_committed and never sees an aborted record.
 */
import { CompressionTypes, Kafka, type Producer, type Transaction } from "kafkajs";
import type { Position, RuntimeContext, SavedPartition, Sink } from "../pipeline/contracts.js";
import { TracefoldError } from "../pipeline/errors.js";
import { ExchangeRouter } from "../pipeline/exchange.js";
import type { SpanBatch } from "../pipeline/span-batch.js";
import { kafkajsConfig, type KafkaConnection } from "../sources/kafka/config.js";

export interface RepartitionSinkConfig extends KafkaConnection {
  /** The repartition topic (keyed by trace id). */
  topic: string;
  /** Its partition count. */
  partitions: number;
  /** The input: its topic and the stage's consumer group (offsets go into the transactions). */
  sourceTopic: string;
  groupId: string;
  compression?: "none" | "lz4";
}

interface Open {
  producer: Producer;
  txn: Transaction | null;
}

const FENCED = /ProducerFenced|INVALID_PRODUCER_EPOCH|fenced|CONCURRENT_TRANSACTIONS|INVALID_TXN_STATE|TRANSACTIONAL_ID_AUTHORIZATION/i;

export class RepartitionSink implements Sink {
  private kafka!: Kafka;
  private router!: ExchangeRouter;
  private readonly byInput = new Map<number, Open>();
  private ctx!: RuntimeContext;
  records = 0;
  bytes = 0;
  transactions = 0;
  aborted = 0;

  constructor(readonly config: RepartitionSinkConfig) {}

  async open(ctx: RuntimeContext): Promise<void> {
    this.ctx = ctx;
    this.kafka = new Kafka(kafkajsConfig(this.config));
    this.router = new ExchangeRouter(ctx.interner, this.config.partitions, this.config.partitions);
  }

  private async producerFor(p: number, begin = true): Promise<Open> {
    let o = this.byInput.get(p);
    if (!o) {
      const producer = this.kafka.producer({
        transactionalId: `${this.config.groupId}.${this.config.sourceTopic}.${p}`,
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      o = { producer, txn: null };
      this.byInput.set(p, o);
      // connecting initializes the transactional id: the previous owner's producer is fenced
      await producer.connect();
    }
    if (!o.txn && begin) o.txn = await o.producer.transaction();
    return o;
  }

  async write(batch: unknown): Promise<void> {
    const b = batch as SpanBatch;
    if (b.length === 0) return;
    const o = await this.producerFor(b.partition).catch((err) => this.fenced(err));
    this.router.route(b);
    // where the records came from: the input partition and offsets (tracing a record back)
    const headers = { "tracefold.source.partition": String(b.partition), "tracefold.source.offsets": `${b.firstOffset}-${b.lastOffset}` };
    const messages: Array<{ partition: number; value: Buffer; headers: Record<string, string> }> = [];
    for (let p = 0; p < this.config.partitions; p++) {
      const buf = this.router.encode(p, true);
      if (buf === null) continue;
      messages.push({ partition: p, value: Buffer.from(buf), headers });
      this.bytes += buf.byteLength;
    }
    this.records += messages.length;
    await o.txn!
      .send({ topic: this.config.topic, acks: -1, compression: this.config.compression === "none" ? CompressionTypes.None : CompressionTypes.LZ4, messages })
      .catch((err) => this.fenced(err));
  }

  private fenced(err: unknown): never {
    const msg = `${(err as { type?: string }).type ?? ""} ${(err as Error).message}`;
    if (FENCED.test(msg)) throw new TracefoldError("TF_FENCED", `repartition producer fenced: ${msg.trim()}`, "repartition");
    throw err;
  }

  async flush(): Promise<void> {}

  /** The checkpoint: every open transaction gets its input offsets and commits. */
  async commitPositions(positions: Position[]): Promise<void> {
    for (const pos of positions) {
      if (pos.topic !== this.config.sourceTopic) continue;
      const o = await this.producerFor(pos.partition).catch((err) => this.fenced(err));
      try {
        await o.txn!.sendOffsets({ consumerGroupId: this.config.groupId, topics: [{ topic: pos.topic, partitions: [{ partition: pos.partition, offset: String(pos.nextOffset) }] }] });
        await o.txn!.commit();
        this.transactions++;
      } catch (err) {
        o.txn = null;
        this.fenced(err);
      }
      o.txn = null;
    }
  }

  /**
   * The input offsets committed with the transactions: where a rollback resumes. The partitions'
   * producers are initialized first: that fences the previous owner, whose open transaction is
   * completed or aborted before this reads the offsets (no commit of it can come after).
   */
  async loadCheckpoint(topic: string, partitions: number[]): Promise<SavedPartition[]> {
    for (const p of partitions) await this.producerFor(p, false).catch((err) => this.fenced(err));
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const got = await admin.fetchOffsets({ groupId: this.config.groupId, topics: [topic] });
      const out: SavedPartition[] = [];
      for (const t of got) for (const p of t.partitions) if (partitions.includes(p.partition) && Number(p.offset) >= 0) out.push({ partition: p.partition, nextOffset: Number(p.offset), state: null });
      return out;
    } finally {
      await admin.disconnect();
    }
  }

  /** A rollback: what the open transactions hold is aborted (it is produced again). */
  async reset(): Promise<void> {
    for (const [p, o] of this.byInput) {
      if (o.txn) {
        await o.txn.abort().catch(() => {});
        this.aborted++;
        o.txn = null;
      }
      // a producer fenced by a new owner is useless: the next write makes a new one
      await o.producer.disconnect().catch(() => {});
      this.byInput.delete(p);
    }
    this.router.resetChannels();
  }

  async close(): Promise<void> {
    // transactions still open were not checkpointed: abort them (their input is read again)
    await this.reset();
  }

  async healthcheck(): Promise<boolean> {
    return true;
  }

  metrics(): Record<string, number> {
    return { repartition_records: this.records, repartition_bytes: this.bytes, repartition_transactions: this.transactions, repartition_aborted_transactions: this.aborted };
  }
}
