/**
 * The `kafka` source on node-rdkafka (librdkafka), `source.kafka.client=node-rdkafka`: the same
 * contract and semantics as KafkaSource (kafkajs), for the one consumer the thread shuffle runs
 * on the main thread (pipeline/shuffle.ts; the addon aborts the process inside a worker thread,
 * docs/DECISIONS.md 14). node-rdkafka is loaded from the per-user cache only when selected
 * (sources/kafka/native.ts, scripts/ensure-native-kafka.sh).
 *
 * How the contract maps to librdkafka:
 * - Reading: a non-flowing `consume(n)` loop (one call in flight), messages grouped per partition
 *   into MessageBatches. Back-pressure: no consume() while `maxQueuedBatches` batches wait (what
 *   is prefetched stays in librdkafka's queue, bounded by queued.max.messages.kbytes). librdkafka
 *   serves its callbacks (the rebalance) only inside consume(), so when the queue stays full the
 *   partitions are paused and the loop keeps polling.
 * - Rebalance (eager): rebalance_cb ASSIGN -> assign() (the group's committed offsets), hold
 *   (pause every partition, drop what is queued, generation + 1) and the onAssigned handler,
 *   which rolls back and calls rewind(); REVOKE -> hold and unassign() at once (the checkpoint is
 *   MySQL's, fenced by owner epochs: nothing to finish first).
 * - rewind(): assign() again with explicit offsets, not seek(): librdkafka refuses a seek on a
 *   partition whose fetcher has not started yet ("Local: Erroneous state", the state right after
 *   an assign), and a re-assign also drops everything prefetched (a new fetch version). The
 *   pause flag survives an assign, so the partitions are resumed explicitly afterwards. Every
 *   assign waits until no consume() is in flight (see assign()): one in flight goes on pulling
 *   messages of the new assignment, and dropping those left a partition short of its end.
 * - Commit: commitSync with explicit next offsets (auto commit and auto offset store are off; an
 *   async commit would complete only inside a later consume(), which a bounded run at its end no
 *   longer makes).
 */
import { readFileSync } from "node:fs";
import type { AssignmentChange, MessageBatch, Position, RuntimeContext, Source } from "../../pipeline/contracts.js";
import { TracefoldError } from "../../pipeline/errors.js";
import type { KafkaConnection } from "./config.js";
import { KafkaMember, type KafkaSourceConfig } from "./member.js";
import { loadNodeRdkafka, type NodeRdkafka, type RdError, type RdKafkaConsumer, type RdMessage, type RdTopicPartition } from "./native.js";

/**
 * What the thread shuffle's main thread uses of a Kafka source: the Source contract with every
 * optional member present, plus the consumer-group state. KafkaSource and RdkafkaSource both fit.
 */
export interface MainThreadKafkaSource extends Source {
  readonly joined: boolean;
  readonly ended: boolean;
  readonly holding: boolean;
  readonly generation: number;
  next(): Promise<MessageBatch | null>;
  interrupt(): void;
  positions(): Position[];
  commit(positions: Position[], committedBySink?: boolean): Promise<void>;
  onAssigned(handler: (change: AssignmentChange) => void): void;
  pausePartitions(partitions: number[]): void;
  resumePartitions(partitions: number[]): void;
  assignment(): { topic: string; partitions: number[] };
  hold(): void;
  rewind(offsets: Map<number, number>): void;
  ready(): boolean;
  metrics(): Record<string, number>;
}

export interface RdkafkaSourceConfig extends KafkaSourceConfig {
  /** Messages per consume() call (grouped per partition into batches). */
  consumeBatchMessages?: number;
  /** Extra librdkafka properties (tests, tuning); never logged. */
  librdkafka?: Record<string, unknown>;
}

const SASL_MECHANISMS = { plain: "PLAIN", "scram-sha-256": "SCRAM-SHA-256", "scram-sha-512": "SCRAM-SHA-512" } as const;

/** KafkaConnection as librdkafka properties (the password is read from its file here). */
export function rdkafkaConnectionConfig(c: KafkaConnection): Record<string, string | number | boolean> {
  const brokers = Array.isArray(c.brokers) ? c.brokers.join(",") : c.brokers.split(",").map((b) => b.trim()).filter(Boolean).join(",");
  const sasl = !!c.saslMechanism;
  const out: Record<string, string | number | boolean> = {
    "metadata.broker.list": brokers,
    "client.id": c.clientId ?? "tracefold",
    "socket.connection.setup.timeout.ms": Math.max(1000, c.connectionTimeoutMs ?? 5_000),
    "security.protocol": c.tls ? (sasl ? "sasl_ssl" : "ssl") : sasl ? "sasl_plaintext" : "plaintext",
  };
  if (c.tls && c.tlsCaFile) out["ssl.ca.location"] = c.tlsCaFile;
  if (c.saslMechanism) {
    out["sasl.mechanisms"] = SASL_MECHANISMS[c.saslMechanism];
    out["sasl.username"] = c.saslUsername ?? "";
    out["sasl.password"] = c.saslPasswordFile ? readFileSync(c.saslPasswordFile, "utf8").trim() : (c.saslPassword ?? "");
  }
  return out;
}

/** How long the queue may stay full before the partitions are paused to keep polling (ms). */
const FULL_QUEUE_POLL_MS = 2_000;
const CONSUME_TIMEOUT_MS = 100;

export class RdkafkaSource extends KafkaMember<RdkafkaSourceConfig> implements MainThreadKafkaSource {
  private kafka!: NodeRdkafka;
  private consumer: RdKafkaConsumer | null = null;
  private readonly queue: MessageBatch[] = [];
  private closing = false;
  private ctx!: RuntimeContext;
  /** The assignment before the last revoke: what an assignment reports as revoked. */
  private previous: number[] = [];

  protected queuedBatches(): number {
    return this.queue.length;
  }

  async open(ctx: RuntimeContext): Promise<void> {
    this.ctx = ctx;
    const kafka = (this.kafka = loadNodeRdkafka());
    const { ERR__ASSIGN_PARTITIONS, ERR__REVOKE_PARTITIONS } = kafka.CODES.ERRORS;
    const session = this.config.sessionTimeoutMs ?? 30_000;
    const conf: Record<string, unknown> = {
      ...rdkafkaConnectionConfig(this.config),
      "group.id": this.config.groupId,
      "enable.auto.commit": false,
      "enable.auto.offset.store": false,
      "session.timeout.ms": session,
      "heartbeat.interval.ms": Math.max(500, Math.floor(session / 10)),
      "max.partition.fetch.bytes": this.config.maxBytesPerPartition ?? 4 << 20,
      "fetch.wait.max.ms": this.config.maxWaitTimeMs ?? 500,
      // librdkafka's 1 s default backoff when its queue is full halved the throughput on
      // tracefold-sized messages (bench/kafka-clients/REPORT.md: 31k -> 69-89k messages/s)
      "fetch.queue.backoff.ms": 10,
      "queued.max.messages.kbytes": 131_072,
      "allow.auto.create.topics": false,
      ...(this.config.librdkafka ?? {}),
      rebalance_cb: (err: RdError, assignment: RdTopicPartition[]) => {
        try {
          if (err?.code === ERR__ASSIGN_PARTITIONS) this.onAssign(assignment);
          else if (err?.code === ERR__REVOKE_PARTITIONS) this.onRevoke();
          else this.clientError("rebalance", err);
        } catch (e) {
          this.clientError("rebalance", e as RdError);
        }
      },
    };
    const consumer = new kafka.KafkaConsumer(conf, { "auto.offset.reset": (this.config.fromBeginning ?? true) ? "earliest" : "latest" });
    consumer.on("event.error", (err) => this.clientError("client", err));
    await new Promise<void>((resolve, reject) =>
      consumer.connect({ timeout: Math.max(10_000, this.config.connectionTimeoutMs ?? 0), topic: this.config.topic }, (err) =>
        err ? reject(new TracefoldError("TF_IO", `could not connect to Kafka (${conf["metadata.broker.list"]}): ${err.message}`, "kafka", true)) : resolve(),
      ),
    );
    this.consumer = consumer;
    ctx.log.info("kafka client: node-rdkafka", { librdkafka: kafka.librdkafkaVersion, group: this.config.groupId, topic: this.config.topic });
    // the topic's partitions and end offsets (bounded mode), the high watermarks the lag is
    // measured against
    const meta = await new Promise<{ topics: Array<{ name: string; partitions: Array<{ id: number }> }> }>((resolve, reject) =>
      consumer.getMetadata({ topic: this.config.topic, timeout: 10_000 }, (err, m) => (err ? reject(err) : resolve(m))),
    );
    const t = meta.topics.find((x) => x.name === this.config.topic);
    if (!t || t.partitions.length === 0) throw new TracefoldError("TF_IO", `topic ${this.config.topic} does not exist`, "kafka");
    this.partitions = t.partitions.map((p) => p.id).sort((a, b) => a - b);
    await this.highWatermarks(this.partitions);
    if (this.config.bounded) for (const [p, high] of this.highWatermark) this.endOffsets.set(p, high);
    this.refreshEndOffsets = async () => {
      await this.highWatermarks(this.assigned.filter((p) => !this.endOffsets.has(p)));
      for (const [p, high] of this.highWatermark) if (!this.endOffsets.has(p)) this.endOffsets.set(p, high);
    };
    this.lagTimer = setInterval(() => void this.highWatermarks(this.assigned).catch(() => {}), 5_000);
    this.lagTimer.unref();
    consumer.setDefaultConsumeTimeout(CONSUME_TIMEOUT_MS);
    consumer.subscribe([this.config.topic]);
    this.kick();
  }

  private partitions: number[] = [];

  private highWatermarks(partitions: number[]): Promise<void> {
    const c = this.consumer;
    if (!c) return Promise.resolve();
    return Promise.all(
      partitions.map(
        (p) =>
          new Promise<void>((resolve, reject) =>
            c.queryWatermarkOffsets(this.config.topic, p, 5_000, (err, o) => {
              if (err) return reject(err);
              this.highWatermark.set(p, Math.max(this.highWatermark.get(p) ?? 0, Number(o.highOffset)));
              resolve();
            }),
          ),
      ),
    ).then(() => {});
  }

  /** The group's committed offsets: a partition this member reads nothing from (already at its
   * end) still needs a position to tell the end of a bounded input. */
  private fetchCommitted(): Promise<void> {
    const c = this.consumer;
    if (!c || this.partitions.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) =>
      c.committed(
        this.partitions.map((partition) => ({ topic: this.config.topic, partition })),
        10_000,
        (err, tps) => {
          if (err) return reject(err);
          for (const tp of tps) if (tp.topic === this.config.topic && typeof tp.offset === "number" && tp.offset >= 0) this.committed.set(tp.partition, tp.offset);
          resolve();
        },
      ),
    );
  }

  // ---- the rebalance

  private onAssign(assignment: RdTopicPartition[]): void {
    const before = this.previous;
    this.assigned = assignment.filter((tp) => tp.topic === this.config.topic).map((tp) => tp.partition).sort((a, b) => a - b);
    this.previous = this.assigned;
    const revoked = before.filter((p) => !this.assigned.includes(p));
    this.joined = true;
    for (const p of revoked) this.position.delete(p);
    // the group's committed offsets for now; the rollback's rewind() assigns the checkpoint's
    if (this.assignHandler) this.holding = true;
    this.assign(assignment.map((tp) => ({ topic: tp.topic, partition: tp.partition })));
    this.ctx.log.info("joined the consumer group", { group: this.config.groupId, topic: this.config.topic, partitions: this.assigned, revoked, client: "node-rdkafka" });
    const refreshed = this.fetchCommitted().catch((err) => this.ctx.log.warn("could not read the group's committed offsets", { error: String(err) }));
    if (this.assignHandler) {
      // every rebalance rolls the member back to its last checkpoint: hold until rewound
      this.hold();
      this.assignHandler({ topic: this.config.topic, assigned: this.assigned, revoked });
    }
    void refreshed.then(() => this.checkBoundedEnd());
  }

  private onRevoke(): void {
    if (!this.closing) this.hold();
    this.epoch++;
    this.previous = this.assigned;
    this.assigned = [];
    // an assignment not applied yet is void now
    this.pendingAssign = null;
    this.consumer!.unassign();
  }

  /**
   * (Re)assigns, with explicit offsets or the committed ones: never while a consume() is in
   * flight. That call would go on pulling messages of the new assignment after the assign, which
   * its caller cannot tell from stale ones and drops; librdkafka's position would then be past
   * them (a gap: seen as a partition that never reaches its end). So the assign waits for the
   * call to return (at most the consume timeout), and what that call returns is dropped.
   */
  private assign(tps: RdTopicPartition[]): void {
    this.pendingAssign = tps;
    this.epoch++;
    if (!this.consuming) this.applyAssign();
  }

  private pendingAssign: RdTopicPartition[] | null = null;

  private applyAssign(): void {
    const tps = this.pendingAssign;
    this.pendingAssign = null;
    if (!tps || !this.consumer) return;
    try {
      this.consumer.assign(tps);
    } catch (err) {
      this.clientError("assign", err as RdError);
    }
    // the pause flag survives an assign: set what the state says, explicitly
    if (this.holding || this.pausedWhileFull) this.pause(this.assigned);
    else this.applyPauses();
  }

  // ---- reading

  /** Bumped at every hold, assign and rewind: what a consume() started before it returns is stale. */
  private epoch = 0;
  private consuming = false;
  private consumeDone: (() => void) | null = null;
  private fullTimer: NodeJS.Timeout | null = null;
  private pausedWhileFull = false;

  /** Starts a consume() unless one is in flight or the queue is full. */
  private kick(): void {
    if (this.consuming || this.closing || !this.consumer) return;
    if (!this.holding && this.queue.length >= (this.config.maxQueuedBatches ?? 8)) {
      // back-pressure: leave the messages in librdkafka's queue. But its callbacks are served
      // only inside consume(): a queue full for long gets its partitions paused, and polling goes on
      this.fullTimer ??= setTimeout(() => {
        this.fullTimer = null;
        if (this.closing || this.holding || this.queue.length < (this.config.maxQueuedBatches ?? 8)) return this.kick();
        if (!this.pausedWhileFull) {
          this.pausedWhileFull = true;
          this.pause(this.assigned);
        }
        this.poll();
      }, FULL_QUEUE_POLL_MS);
      return;
    }
    if (this.pausedWhileFull && !this.holding) {
      this.pausedWhileFull = false;
      this.applyPauses();
    }
    this.poll();
  }

  private poll(): void {
    if (this.consuming || this.closing || !this.consumer) return;
    this.consuming = true;
    const epoch = this.epoch;
    this.consumer.consume(this.config.consumeBatchMessages ?? 2_000, (err, msgs) => {
      this.consuming = false;
      if (this.closing) {
        this.consumeDone?.();
        return;
      }
      if (err) this.clientError("consume", err);
      // an assign waited for this call: what it returned is from before it, dropped
      if (this.pendingAssign) this.applyAssign();
      else if (!err && msgs && msgs.length) this.receive(msgs, epoch);
      // a failing consume() (broker down) must not spin
      if (err) setTimeout(() => this.kick(), 100).unref();
      else setImmediate(() => this.kick());
    });
  }

  private receive(msgs: RdMessage[], epoch: number): void {
    // fetched before a hold, an assign or a rewind: dropped, read again from the rewound position
    if (epoch !== this.epoch || this.holding || this.stopped) return;
    const byPartition = new Map<number, MessageBatch>();
    for (const m of msgs) {
      if (m.topic !== this.config.topic) continue;
      const p = m.partition;
      let mb = byPartition.get(p);
      if (!mb) {
        mb = { kind: "messages", partition: p, messages: [], origins: [], offsets: [], generation: this.generation };
        byPartition.set(p, mb);
        if (!this.firstRead.has(p)) this.firstRead.set(p, m.offset);
      }
      // never hand an offset over twice (a message fetched before a rewind)
      if (m.offset < (this.position.get(p) ?? -1)) {
        this.skippedBehindPosition++;
        continue;
      }
      mb.messages.push(m.value ?? new Uint8Array(0));
      mb.origins.push(`${m.topic}/${p}@${m.offset}`);
      mb.offsets.push(m.offset);
    }
    for (const mb of byPartition.values()) {
      if (mb.messages.length === 0) continue;
      this.messages += mb.messages.length;
      this.batches++;
      if (this.waiter && this.queue.length === 0) {
        // the waiter first: take() may end a bounded input, which must not resolve it with null
        const w = this.waiter;
        this.waiter = null;
        this.take(mb);
        w(mb);
      } else this.queue.push(mb);
    }
  }

  /** The runtime took the batch: its offsets count as handed over. */
  private take(mb: MessageBatch): void {
    const last = mb.offsets[mb.offsets.length - 1];
    this.handedOver.set(mb.partition, last);
    this.position.set(mb.partition, last + 1);
    this.highWatermark.set(mb.partition, Math.max(this.highWatermark.get(mb.partition) ?? 0, last + 1));
    this.checkBoundedEnd();
  }

  async next(): Promise<MessageBatch | null> {
    const b = this.holding ? undefined : this.queue.shift();
    if (b) {
      this.take(b);
      this.kick();
      return b;
    }
    if (this.stopped || this.ended || this.endAfterQueue) return null;
    this.kick();
    return new Promise((resolve) => (this.waiter = resolve));
  }

  // ---- pausing

  private pause(partitions: number[]): void {
    this.flow("pause", partitions);
  }

  private resume(partitions: number[]): void {
    this.flow("resume", partitions);
  }

  private flow(verb: "pause" | "resume", partitions: number[]): void {
    if (!partitions.length || !this.consumer?.isConnected()) return;
    try {
      this.consumer[verb](partitions.map((partition) => ({ topic: this.config.topic, partition })));
    } catch (err) {
      this.clientError(verb, err as RdError);
    }
  }


  /** Every assigned partition fetching, except those the memory budget paused. */
  private applyPauses(): void {
    for (const p of [...this.budgetPaused]) if (!this.assigned.includes(p)) this.budgetPaused.delete(p);
    this.resume(this.assigned.filter((p) => !this.budgetPaused.has(p)));
    this.pause(this.assigned.filter((p) => this.budgetPaused.has(p)));
  }

  private lagTimer: NodeJS.Timeout | null = null;

  hold(): void {
    this.holding = true;
    this.generation++;
    this.epoch++;
    this.pause(this.assigned);
    this.queue.splice(0);
    // keep polling: the rebalance callbacks arrive only inside consume()
    this.kick();
  }

  pausePartitions(partitions: number[]): void {
    for (const p of partitions) this.budgetPaused.add(p);
    this.pause(partitions.filter((p) => this.assigned.includes(p)));
  }

  resumePartitions(partitions: number[]): void {
    for (const p of partitions) this.budgetPaused.delete(p);
    if (!this.holding && !this.pausedWhileFull) this.resume(partitions.filter((p) => this.assigned.includes(p)));
  }

  rewind(offsets: Map<number, number>): void {
    const tps: RdTopicPartition[] = [];
    for (const partition of this.assigned) {
      const saved = offsets.get(partition);
      if (saved !== undefined) this.committed.set(partition, saved);
      const offset = saved ?? this.firstRead.get(partition);
      if (offset !== undefined) this.position.set(partition, offset);
      // no offset: the group's committed offset (else auto.offset.reset)
      tps.push(offset === undefined ? { topic: this.config.topic, partition } : { topic: this.config.topic, partition, offset });
    }
    this.queue.splice(0);
    this.rollbacks++;
    this.ended = false;
    this.endAfterQueue = false;
    this.holding = false;
    this.pausedWhileFull = false;
    // a re-assign at explicit offsets, not a seek (see the top of the file); it also resumes
    if (tps.length) this.assign(tps);
    else this.epoch++;
    this.checkBoundedEnd();
    this.kick();
  }

  /** Commits `next offset` per partition to Kafka (called once what they produced is durable). */
  async commit(offsets: Position[], committedBySink = false): Promise<void> {
    if (offsets.length === 0) return;
    for (const o of offsets) this.committed.set(o.partition, o.nextOffset);
    if (committedBySink || !this.consumer) return;
    // synchronous: one round trip to the coordinator, on the main thread
    this.consumer.commitSync(offsets.map((o) => ({ topic: this.config.topic, partition: o.partition, offset: o.nextOffset })));
  }

  /** Leaves the group. Batches not yet taken are dropped unprocessed: their offsets were never
   * handed over, so the next owner reads them again. */
  async close(): Promise<void> {
    this.interrupt();
    this.queue.splice(0);
    if (this.lagTimer) clearInterval(this.lagTimer);
    if (this.fullTimer) clearTimeout(this.fullTimer);
    const consumer = this.consumer;
    if (!consumer || this.closing) return;
    this.closing = true;
    // the consume() in flight returns within its timeout; disconnecting under it is not safe
    if (this.consuming) await new Promise<void>((r) => ((this.consumeDone = r), setTimeout(r, 5_000).unref()));
    await new Promise<void>((r) => {
      const t = setTimeout(r, 15_000);
      t.unref();
      consumer.disconnect(() => {
        clearTimeout(t);
        r();
      });
    });
    this.consumer = null;
  }

  /** A client error, logged once per kind (librdkafka retries most by itself). */
  private readonly seenErrors = new Map<string, number>();

  private clientError(where: string, err: RdError | undefined): void {
    if (!err) return;
    const key = `${where}:${err.code}:${err.message}`;
    const n = (this.seenErrors.get(key) ?? 0) + 1;
    if (this.seenErrors.size < 200 || n > 1) this.seenErrors.set(key, n);
    if (n === 1) this.ctx.log.warn("kafka client error (node-rdkafka; logged once per kind)", { where, code: err.code, error: err.message, fatal: err.isFatal ?? false });
  }

  metrics(): Record<string, number> {
    let errors = 0;
    for (const n of this.seenErrors.values()) errors += n;
    const out: Record<string, number> = {
      kafka_messages: this.messages,
      kafka_batches: this.batches,
      kafka_assigned_partitions: this.assigned.length,
      kafka_queued_batches: this.queue.length,
      // a partition is paused while its batch waits for the pipeline, or while the member holds
      kafka_paused_partitions: this.holding || this.pausedWhileFull ? this.assigned.length : new Set([...this.queue.map((q) => q.partition), ...this.budgetPaused]).size,
      kafka_partitions_paused_by_memory: this.budgetPaused.size,
      kafka_rollbacks: this.rollbacks,
      kafka_messages_behind_position: this.skippedBehindPosition,
      kafka_client_errors: errors,
    };
    return this.lagMetrics(out);
  }
}
