/**
 * The contracts every component implements. Operators are synchronous per batch (the hot path);
 * only sources and sinks are async. Lifecycle (Flink's): open -> processBatch / onTimer ->
 * finish (end of input only: close windows, may emit) -> close (release, never emits). Every
 * phase is safe to call twice. The runtime opens sinks first and sources last, and stops in
 * reverse.
 */
import type { Interner } from "./intern.js";

/** What flows on an edge of the topology, by name. */
export type StreamKind = "messages" | "spans" | "deltas";

/** Raw messages from a source, all of one input partition. */
export interface MessageBatch {
  kind: "messages";
  partition: number;
  /** Message bodies. */
  messages: Uint8Array[];
  /** Where each message came from, for error reports (file#index, topic/partition@offset). */
  origins: string[];
  /** Source offset of each message (file: message index). */
  offsets: number[];
  /**
   * The source's generation when it handed the batch over: a batch from before a rollback
   * (hold) is dropped unprocessed, its messages are read again from the rewound position.
   */
  generation?: number;
}

export interface RuntimeContext {
  /** The worker's interner: names are ids inside one worker. */
  interner: Interner;
  /** Worker index and count (parallelism), for keyed partitioning. */
  workerIndex: number;
  workers: number;
  /** Structured logger. */
  log: Logger;
  /** Processing clock (ms); a test driver substitutes a manual one. */
  now(): number;
  /** Side output for messages that cannot be processed (the dead-letter stream). */
  deadLetter(letter: DeadLetter): void;
}

export interface DeadLetter {
  origin: string;
  partition: number;
  offset: number;
  code: string;
  reason: string;
  message: Uint8Array;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Receives an operator's output: `emit(port, item)`; port "out" is the default stream. */
export interface Collector {
  emit(item: unknown): void;
}

export interface Operator {
  open(ctx: RuntimeContext): void;
  processBatch(batch: unknown, out: Collector): void;
  /** Processing-time tick (flushes, idle watermarks). */
  onTimer?(nowMs: number, out: Collector): void;
  /** End of input: close windows and emit what they hold. */
  finish(out: Collector): void;
  close(): void;
  /** Operator-specific numbers for progress and /metrics. */
  metrics?(): Record<string, number>;
  /**
   * Checkpoint (never closes a window): emit what was accumulated together with the input
   * positions it covers and the pending state, as one item (a Checkpoint) for the sinks.
   */
  checkpoint?(out: Collector, positions: Position[]): void;
  /** Installs pending state saved by an earlier checkpoint (partition -> blob). */
  restore?(states: Array<{ partition: number; state: Uint8Array }>): void;
  /**
   * Whether the last checkpoint item this operator emitted was stored (true) or not (false): an
   * operator with incremental state writes its next checkpoint complete after a false, or when it
   * never heard back.
   */
  checkpointStored?(ok: boolean): void;
  /**
   * Rollback to the last checkpoint: forget ALL state and every delta not yet emitted (the
   * runtime then restores the checkpointed state and rewinds the sources to its offsets).
   */
  reset?(): void;
}

/** How far a source's partition has been handed to the pipeline. */
export interface Position {
  topic: string;
  partition: number;
  /** The next offset to read (Kafka's committed-offset convention). */
  nextOffset: number;
}

/** What a stateful operator emits at a checkpoint; a sink stores all of it atomically. */
export interface Checkpoint {
  kind: "checkpoint";
  deltas: unknown;
  offsets: Position[];
  states: Array<{ partition: number; state: Uint8Array }>;
}

/** A source's partitions changed. */
export interface AssignmentChange {
  topic: string;
  assigned: number[];
  revoked: number[];
}

/** Saved per partition by a checkpoint. */
export interface SavedPartition {
  partition: number;
  nextOffset: number;
  state: Uint8Array | null;
}

export interface Source {
  open(ctx: RuntimeContext): Promise<void>;
  /** Next batch, or null at end of input. Awaiting it is the back-pressure point. */
  next(): Promise<unknown | null>;
  /** Stop waiting for input: a pending or later next() resolves with null (graceful stop). */
  interrupt?(): void;
  /** Positions handed to the pipeline so far (sources with offsets). */
  positions?(): Position[];
  /**
   * Tells the source's system the positions are durable (e.g. commits Kafka offsets);
   * `committedBySink`: a sink already committed them (in a Kafka transaction), only note them.
   */
  commit?(positions: Position[], committedBySink?: boolean): Promise<void>;
  /**
   * Called after every change of the partitions assigned to this member (a rebalance), once the
   * source holds (see hold()); the runtime rolls back to the last checkpoint and rewinds.
   */
  onAssigned?(handler: (change: AssignmentChange) => void): void;
  /**
   * Called when a rebalance starts, before this member rejoins the group (its partitions are
   * about to be revoked); the source waits for the promise (bounded) before rejoining. The
   * runtime checkpoints there, so the rollback that follows the new assignment (onAssigned)
   * resumes from state that is current, not from the previous checkpoint.
   */
  onRevoking?(handler: () => Promise<void>): void;
  /** Memory budget: stop (and restart) fetching these partitions; what is queued still comes. */
  pausePartitions?(partitions: number[]): void;
  resumePartitions?(partitions: number[]): void;
  /** The partitions assigned now. */
  assignment?(): { topic: string; partitions: number[] };
  /**
   * Stop handing batches over until rewind(): batches queued or handed over but not yet taken
   * are dropped (the generation moves on), fetching pauses.
   */
  hold?(): void;
  /**
   * Resume every assigned partition at the given next offset (from the checkpoint); a partition
   * without one goes back to the first offset this member read from it, if any. Ends a hold.
   */
  rewind?(offsets: Map<number, number>): void;
  /** Increases at every hold(); batches carry the generation they were handed over in. */
  readonly generation?: number;
  /** Between hold() and rewind(). */
  readonly holding?: boolean;
  /** Ready to serve (e.g. joined the consumer group); absent: always. */
  ready?(): boolean;
  close(): Promise<void>;
  metrics?(): Record<string, number>;
}

export interface Sink {
  open(ctx: RuntimeContext): Promise<void>;
  write(batch: unknown): Promise<void>;
  /** Everything written so far is durable when this resolves. */
  flush(): Promise<void>;
  close(): Promise<void>;
  healthcheck(): Promise<boolean>;
  metrics?(): Record<string, number>;
  /** Sinks that store checkpoints: what was saved for these partitions of a topic. */
  loadCheckpoint?(topic: string, partitions: number[]): Promise<SavedPartition[]>;
  /**
   * Sinks that commit the input positions themselves, atomically with what they wrote (Kafka
   * transactions): called at every checkpoint after flush(); TF_FENCED rolls back.
   */
  commitPositions?(positions: Position[]): Promise<void>;
  /** A rollback: drop what was written since the last checkpoint where possible (abort). */
  reset?(): Promise<void>;
}

export const consoleLogger = (json: boolean, stream: NodeJS.WritableStream = process.stderr): Logger => {
  const write = (level: string, msg: string, fields?: Record<string, unknown>) => {
    if (json) stream.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
    else stream.write(`${level}: ${msg}${fields && Object.keys(fields).length ? " " + JSON.stringify(fields) : ""}\n`);
  };
  return {
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
};

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
