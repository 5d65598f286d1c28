/**
 * What both Kafka sources keep the same way (kafkajs: source.ts; node-rdkafka: rdkafka-source.ts):
 * the member's partitions and positions, the hand-over to a waiting next(), the end of a bounded
 * input, and the lag metrics. The clients differ in how they fetch, pause, seek and commit.
 */
import type { AssignmentChange, MessageBatch, Position } from "../../pipeline/contracts.js";
import type { KafkaConnection } from "./config.js";

export interface KafkaSourceConfig extends KafkaConnection {
  topic: string;
  groupId: string;
  /** Start at the earliest offset when the group has no committed offset. */
  fromBeginning?: boolean;
  sessionTimeoutMs?: number;
  /** Batches waiting for the runtime before fetching pauses. */
  maxQueuedBatches?: number;
  /** Longest wait of a fetch on the broker for data (ms). */
  maxWaitTimeMs?: number;
  /** Largest fetch per partition. */
  maxBytesPerPartition?: number;
  /**
   * Bounded (backfill) mode: read up to the end offsets the topic had at start, then end the
   * input, so windows close as in `tracefold fold`. Off: run until stopped.
   */
  bounded?: boolean;
}

export abstract class KafkaMember<C extends KafkaSourceConfig = KafkaSourceConfig> {
  protected waiter: ((b: MessageBatch | null) => void) | null = null;
  protected stopped = false;
  /** Highest offset handed over per partition (the next offset to commit is this + 1). */
  readonly handedOver = new Map<number, number>();
  messages = 0;
  batches = 0;
  assigned: number[] = [];
  /** Bounded mode: the end offsets the topic had at start. */
  protected readonly endOffsets = new Map<number, number>();
  /** The group's committed offsets, read at every assignment and updated by commit(). */
  protected readonly committed = new Map<number, number>();
  /** Next offset per assigned partition: rewound-to or handed over. */
  protected readonly position = new Map<number, number>();
  /** The first offset this member read per partition: where a rollback without checkpoint goes. */
  protected readonly firstRead = new Map<number, number>();
  /** Latest high watermark known per partition (what lag is measured against). */
  protected readonly highWatermark = new Map<number, number>();
  /** Partitions the memory budget paused (kept across holds and rewinds). */
  protected readonly budgetPaused = new Set<number>();
  protected assignHandler: ((change: AssignmentChange) => void) | null = null;
  /** Between hold() and rewind(): nothing is handed over, no checkpoint may be taken. */
  holding = false;
  generation = 0;
  rollbacks = 0;
  joined = false;
  /** Messages fetched before a seek or rewind, behind the position: not handed over again. */
  skippedBehindPosition = 0;
  /** Bounded mode reached the end offsets; a rewind (rollback) opens the input again. */
  ended = false;
  protected endAfterQueue = false;

  constructor(readonly config: C) {}

  /** Batches fetched and waiting for the runtime. */
  protected abstract queuedBatches(): number;

  onAssigned(handler: (change: AssignmentChange) => void): void {
    this.assignHandler = handler;
  }

  ready(): boolean {
    return this.joined && !this.stopped;
  }

  assignment(): { topic: string; partitions: number[] } {
    return { topic: this.config.topic, partitions: this.assigned };
  }

  positions(): Position[] {
    return [...this.position].filter(([p]) => this.assigned.includes(p)).map(([partition, nextOffset]) => ({ topic: this.config.topic, partition, nextOffset }));
  }

  /**
   * Bounded mode: looks the end offsets up again (the subclass's admin client), for a partition
   * assigned with none known, e.g. when the topic's metadata was incomplete at start.
   */
  protected refreshEndOffsets: (() => Promise<void>) | null = null;
  private endLookup: Promise<void> | null = null;

  /** Bounded mode: every assigned partition read up to the end offset it had at start? */
  protected checkBoundedEnd(): void {
    // not while holding: the rollback restores state and positions first (rewind checks again)
    if (!this.config.bounded || this.assigned.length === 0 || this.holding) return;
    for (const p of this.assigned) {
      if (!this.endOffsets.has(p)) {
        // an unknown end is not the end: never end a bounded input without reading it
        this.lookUpEndOffsets();
        return;
      }
      const end = this.endOffsets.get(p)!;
      const next = this.position.get(p) ?? this.committed.get(p) ?? 0;
      if (end > 0 && next < end) return;
    }
    if (this.queuedBatches() === 0) this.endInput();
    else this.endAfterQueue = true;
  }

  private lookUpEndOffsets(): void {
    if (this.endLookup || !this.refreshEndOffsets) return;
    this.endLookup = this.refreshEndOffsets()
      .catch(() => {})
      .then(() => new Promise<void>((r) => setTimeout(r, this.assigned.every((p) => this.endOffsets.has(p)) ? 0 : 1_000).unref()))
      .then(() => {
        this.endLookup = null;
        if (!this.stopped) this.checkBoundedEnd();
      });
  }

  protected endInput(): void {
    this.ended = true;
    this.wake(null);
  }

  /** Stop waiting for input: a pending or later next() resolves with null (graceful stop). */
  interrupt(): void {
    this.stopped = true;
    this.wake(null);
  }

  /** Hands a batch (or the end) to a next() that waits; false when none waits. */
  protected wake(b: MessageBatch | null): boolean {
    const w = this.waiter;
    if (!w) return false;
    this.waiter = null;
    w(b);
    return true;
  }

  /** Lag as Kafka's tools count it: messages past the last durable (committed) offset. */
  protected lagMetrics(out: Record<string, number>): Record<string, number> {
    for (const p of this.assigned) {
      const high = this.highWatermark.get(p) ?? 0;
      out[`kafka_partition_lag{topic="${this.config.topic}",partition="${p}"}`] = Math.max(0, high - (this.committed.get(p) ?? this.firstRead.get(p) ?? high));
    }
    return out;
  }
}
