/**
 * The `kafka` source: a consumer-group member reading batches (kafkajs `eachBatch`), handing them
 * to the runtime as MessageBatches. Back-pressure: eachBatch does not return before the runtime
 * has taken the batch, and at most `maxQueuedBatches` wait, so a slow pipeline stops the fetching
 * for its partitions instead of buffering (kafkajs fetches a partition again only after its
 * eachBatch resolved). Offsets are not auto-committed: `commit()` is called with what is durable.
 */
import { registerBeforeRejoin, unregisterBeforeRejoin } from "./kafkajs-patch.js";
import { Kafka, type Consumer, type EachBatchPayload } from "kafkajs";
import type { AssignmentChange, MessageBatch, Position, RuntimeContext, Source } from "../../pipeline/contracts.js";
import { kafkajsConfig } from "./config.js";
import { KafkaMember, type KafkaSourceConfig } from "./member.js";

export type { KafkaSourceConfig } from "./member.js";

interface Pending {
  batch: MessageBatch;
  /** true: the runtime took it; false: dropped at close (its offsets stay unconsumed). */
  taken: (ok: boolean) => void;
}

export class KafkaSource extends KafkaMember implements Source {
  private consumer!: Consumer;
  private readonly queue: Pending[] = [];
  private ctx!: RuntimeContext;

  protected queuedBatches(): number {
    return this.queue.length;
  }

  async open(ctx: RuntimeContext): Promise<void> {
    this.ctx = ctx;
    const kafka = new Kafka(kafkajsConfig(this.config));
    this.consumer = kafka.consumer({
      groupId: this.config.groupId,
      sessionTimeout: this.config.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.max(500, Math.floor((this.config.sessionTimeoutMs ?? 30_000) / 10)),
      maxBytesPerPartition: this.config.maxBytesPerPartition ?? 4 << 20,
      // also how long kafkajs sleeps while every partition is paused (a hold): keep it short so
      // a rollback resumes at once
      maxWaitTimeInMs: this.config.maxWaitTimeMs ?? 500,
      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      // the revocation hook runs before this member rejoins in the next rebalance
      if (this.memberId !== e.payload.memberId) {
        if (this.memberId) unregisterBeforeRejoin(this.memberId);
        this.memberId = e.payload.memberId;
        registerBeforeRejoin(this.memberId, () => this.beforeRejoin());
      }
      const before = this.assigned;
      this.assigned = (e.payload.memberAssignment[this.config.topic] ?? []).slice().sort((a, b) => a - b);
      const revoked = before.filter((p) => !this.assigned.includes(p));
      this.joined = true;
      for (const p of revoked) this.position.delete(p);
      ctx.log.info("joined the consumer group", { group: this.config.groupId, topic: this.config.topic, partitions: this.assigned, revoked });
      const refreshed = this.fetchCommitted().catch((err) => ctx.log.warn("could not read the group's committed offsets", { error: String(err) }));
      if (this.assignHandler) {
        // every rebalance rolls the member back to its last checkpoint: hold until rewound
        this.hold();
        this.assignHandler({ topic: this.config.topic, assigned: this.assigned, revoked });
      }
      void refreshed.then(() => this.checkBoundedEnd());
    });
    // an admin client per member: end offsets (bounded mode), the group's committed offsets, and
    // the high watermarks the lag is measured against
    const admin = kafka.admin();
    await admin.connect();
    this.closeAdmin = () => admin.disconnect();
    const highWatermarks = async () => {
      for (const o of await admin.fetchTopicOffsets(this.config.topic)) this.highWatermark.set(o.partition, Number(o.high));
    };
    await highWatermarks();
    if (this.config.bounded) for (const [p, high] of this.highWatermark) this.endOffsets.set(p, high);
    this.refreshEndOffsets = async () => {
      await highWatermarks();
      for (const [p, high] of this.highWatermark) if (!this.endOffsets.has(p)) this.endOffsets.set(p, high);
    };
    this.lagTimer = setInterval(() => highWatermarks().catch(() => {}), 5_000);
    this.lagTimer.unref();
    // a partition this member reads nothing from (the group's committed offset is already at its
    // end) still needs a position to tell the end of a bounded input
    this.fetchCommitted = async () => {
      const got = await admin.fetchOffsets({ groupId: this.config.groupId, topics: [this.config.topic] });
      for (const t of got) for (const p of t.partitions) if (Number(p.offset) >= 0) this.committed.set(p.partition, Number(p.offset));
    };
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.config.topic, fromBeginning: this.config.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (p) => this.onBatch(p),
    });
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0 || !isRunning() || isStale() || this.holding) return;
    const mb: MessageBatch = { kind: "messages", partition: batch.partition, messages: [], origins: [], offsets: [], generation: this.generation };
    if (!this.firstRead.has(batch.partition)) this.firstRead.set(batch.partition, Number(batch.firstOffset()));
    // a batch fetched before a seek can still arrive after it: never hand an offset over twice
    const from = this.position.get(batch.partition) ?? -1;
    for (const m of batch.messages) {
      if (Number(m.offset) < from) {
        this.skippedBehindPosition++;
        continue;
      }
      mb.messages.push(m.value ?? new Uint8Array(0));
      mb.origins.push(`${batch.topic}/${batch.partition}@${m.offset}`);
      mb.offsets.push(Number(m.offset));
    }
    if (mb.messages.length === 0) {
      resolveOffset(batch.lastOffset());
      return;
    }
    this.messages += mb.messages.length;
    this.batches++;
    const ok = await new Promise<boolean>((taken) => {
      if (!this.holding && this.wake(mb)) taken(true);
      else this.queue.push({ batch: mb, taken });
    });
    if (!ok) return;
    // taken by the runtime: kafkajs may fetch this partition again
    resolveOffset(batch.lastOffset());
    this.highWatermark.set(batch.partition, Math.max(this.highWatermark.get(batch.partition) ?? 0, Number(batch.highWatermark)));
    this.handedOver.set(batch.partition, Number(batch.lastOffset()));
    this.position.set(batch.partition, Number(batch.lastOffset()) + 1);
    this.checkBoundedEnd();
    await heartbeat();
  }

  private fetchCommitted: () => Promise<void> = async () => {};
  private closeAdmin: () => Promise<void> = async () => {};

  private memberId: string | null = null;
  private revokeHandler: (() => Promise<void>) | null = null;
  /** Revocation hooks that ran (rebalances this member took part in with partitions). */
  revocations = 0;
  /** Kafka offset commits refused because the group was rebalancing (MySQL has the offsets). */
  commitsRefusedByRebalance = 0;

  onRevoking(handler: () => Promise<void>): void {
    this.revokeHandler = handler;
  }

  /** A rebalance started; kafkajs rejoins when this resolves (bounded below the session timeout). */
  private async beforeRejoin(): Promise<void> {
    if (!this.revokeHandler || this.assigned.length === 0 || this.stopped || this.holding) return;
    this.revocations++;
    const bound = Math.min(10_000, Math.floor((this.config.sessionTimeoutMs ?? 30_000) / 2));
    let timer: NodeJS.Timeout | undefined;
    const t0 = Date.now();
    const ok = await Promise.race([
      this.revokeHandler().then(() => true, () => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), bound))),
    ]);
    clearTimeout(timer);
    this.ctx.log.info("rebalance: partitions about to be revoked, checkpoint before rejoining", { partitions: this.assigned, ms: Date.now() - t0, completed: ok });
  }

  private lagTimer: NodeJS.Timeout | null = null;

  hold(): void {
    this.holding = true;
    this.generation++;
    this.consumer.pause([{ topic: this.config.topic }]);
    for (const p of this.queue.splice(0)) p.taken(false);
  }

  pausePartitions(partitions: number[]): void {
    for (const p of partitions) this.budgetPaused.add(p);
    if (partitions.length) this.consumer.pause([{ topic: this.config.topic, partitions }]);
  }

  resumePartitions(partitions: number[]): void {
    for (const p of partitions) this.budgetPaused.delete(p);
    if (partitions.length && !this.holding) this.consumer.resume([{ topic: this.config.topic, partitions }]);
  }

  rewind(offsets: Map<number, number>): void {
    for (const partition of this.assigned) {
      const saved = offsets.get(partition);
      if (saved !== undefined) this.committed.set(partition, saved);
      const offset = saved ?? this.firstRead.get(partition);
      if (offset === undefined) continue;
      this.position.set(partition, offset);
      this.consumer.seek({ topic: this.config.topic, partition, offset: String(offset) });
    }
    // batches fetched before the seek are stale for kafkajs; any that slipped into the queue go
    for (const p of this.queue.splice(0)) p.taken(false);
    this.rollbacks++;
    this.ended = false;
    this.endAfterQueue = false;
    this.holding = false;
    this.consumer.resume([{ topic: this.config.topic }]);
    for (const p of [...this.budgetPaused]) if (!this.assigned.includes(p)) this.budgetPaused.delete(p);
    if (this.budgetPaused.size) this.consumer.pause([{ topic: this.config.topic, partitions: [...this.budgetPaused] }]);
    this.checkBoundedEnd();
  }


  async next(): Promise<MessageBatch | null> {
    const p = this.holding ? undefined : this.queue.shift();
    if (p) {
      p.taken(true);
      return p.batch;
    }
    if (this.stopped || this.ended || this.endAfterQueue) return null;
    return new Promise((resolve) => (this.waiter = resolve));
  }

  /** Commits `next offset` per partition to Kafka (called once what they produced is durable). */
  async commit(offsets: Position[], committedBySink = false): Promise<void> {
    if (offsets.length === 0) return;
    for (const o of offsets) this.committed.set(o.partition, o.nextOffset);
    if (committedBySink) return;
    try {
      await this.consumer.commitOffsets(offsets.map((o) => ({ topic: this.config.topic, partition: o.partition, offset: String(o.nextOffset) })));
    } catch (err) {
      // a checkpoint taken while the group rebalances (the revocation hook): the checkpoint
      // store holds these offsets already, the next checkpoint commits to Kafka again
      if (!/REBALANCE_IN_PROGRESS|ILLEGAL_GENERATION|UNKNOWN_MEMBER_ID|rebalanc/i.test(`${(err as { type?: string }).type ?? ""} ${(err as Error).message}`)) throw err;
      this.commitsRefusedByRebalance++;
    }
  }

  /** Leaves the group. Batches not yet taken are dropped unprocessed: their offsets were never
   * handed over, so the next owner reads them again. */
  async close(): Promise<void> {
    this.interrupt();
    if (this.memberId) unregisterBeforeRejoin(this.memberId);
    for (const p of this.queue.splice(0)) p.taken(false);
    await this.consumer?.disconnect();
    if (this.lagTimer) clearInterval(this.lagTimer);
    await this.closeAdmin().catch(() => {});
  }

  metrics(): Record<string, number> {
    const out: Record<string, number> = {
      kafka_messages: this.messages,
      kafka_batches: this.batches,
      kafka_assigned_partitions: this.assigned.length,
      kafka_queued_batches: this.queue.length,
      // a partition is paused while its batch waits for the pipeline, or while the member holds
      kafka_paused_partitions: this.holding ? this.assigned.length : new Set([...this.queue.map((q) => q.batch.partition), ...this.budgetPaused]).size,
      kafka_partitions_paused_by_memory: this.budgetPaused.size,
      kafka_rollbacks: this.rollbacks,
      kafka_revocation_checkpoints: this.revocations,
      kafka_commits_refused_by_rebalance: this.commitsRefusedByRebalance,
      kafka_messages_behind_position: this.skippedBehindPosition,
    };
    return this.lagMetrics(out);
  }
}
