/**
 * A fix for kafkajs 2.2.4's read_committed consumer, installed before kafkajs loads: import this
 * module first in every entry point (the CLI, the worker threads, the test setup).
 *
 * kafkajs drops the records of aborted transactions with `filterAbortedMessages`, which moves
 * past at most ONE aborted transaction per record and assumes the broker's list is sorted. With
 * several producers aborting in the same fetch range (the repartition topic: one transactional
 * producer per input partition, DECISIONS 18) records of aborted transactions came through as if
 * committed: read back, the same topic gave 4-15 more messages to kafkajs than to Kafka's own
 * console consumer with --isolation-level read_committed, and exactly the duplicates the fold saw.
 *
 * The replacement follows the Java consumer: the aborted transactions, ordered by first offset,
 * open for their producer once the record offset reaches them; a producer's ABORT control record
 * closes its range; transactional records of a producer with an open aborted range are dropped.
 */
import { createRequire } from "node:module";

interface Message {
  offset: string;
  key: Buffer | null;
  batchContext: { producerId: string; inTransaction: boolean; isControlBatch?: boolean };
}
interface Aborted {
  firstOffset: string;
  producerId: string;
}

const ABORT_KEY = Buffer.from([0, 0, 0, 0]);

export function filterAborted({ messages, abortedTransactions }: { messages: Message[]; abortedTransactions?: Aborted[] }): Message[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  const pending = [...abortedTransactions].sort((a, b) => (BigInt(a.firstOffset) < BigInt(b.firstOffset) ? -1 : BigInt(a.firstOffset) > BigInt(b.firstOffset) ? 1 : 0));
  const open = new Set<string>();
  let next = 0;
  return messages.filter((m) => {
    const offset = BigInt(m.offset);
    while (next < pending.length && BigInt(pending[next].firstOffset) <= offset) open.add(String(pending[next++].producerId));
    const producer = String(m.batchContext.producerId);
    if (m.key && Buffer.from(m.key).equals(ABORT_KEY) && m.batchContext.isControlBatch !== false) {
      open.delete(producer);
      return true; // a control record: kafkajs drops those itself afterwards
    }
    return !(m.batchContext.inTransaction && open.has(producer));
  });
}

const MARK = Symbol.for("tracefold.kafkajs.filterAborted");
(filterAborted as unknown as Record<symbol, boolean>)[MARK] = true;

const require = createRequire(import.meta.url);
const path = require.resolve("kafkajs/src/consumer/filterAbortedMessages.js");
const cached = require.cache[path];
if (cached === undefined) {
  if (Object.keys(require.cache).some((k) => k.endsWith("kafkajs/src/consumer/batch.js")))
    throw new Error("sources/kafka/kafkajs-patch.js must be imported before kafkajs (read_committed would let aborted records through)");
  const { Module } = require("node:module") as { Module: new (id: string) => { exports: unknown; loaded: boolean; filename: string } };
  const m = new Module(path);
  m.exports = filterAborted;
  m.loaded = true;
  m.filename = path;
  (require.cache as Record<string, unknown>)[path] = m;
} else if (!(cached.exports as Record<symbol, boolean>)[MARK]) {
  throw new Error("sources/kafka/kafkajs-patch.js must be imported before kafkajs (read_committed would let aborted records through)");
}

/**
 * A revocation callback kafkajs lacks (Java's onPartitionsRevoked, eager protocol): before a
 * member rejoins the group in a rebalance, the hook registered under its member id runs and the
 * rejoin waits for it. KafkaSource registers one that checkpoints (docs/DECISIONS.md 15). The
 * first join (no member id yet) has nothing to revoke.
 */
const beforeRejoin = new Map<string, () => Promise<void>>();

export function registerBeforeRejoin(memberId: string, hook: () => Promise<void>): void {
  beforeRejoin.set(memberId, hook);
}

export function unregisterBeforeRejoin(memberId: string): void {
  beforeRejoin.delete(memberId);
}

const REJOIN_MARK = Symbol.for("tracefold.kafkajs.beforeRejoin");
const ConsumerGroup = require("kafkajs/src/consumer/consumerGroup.js") as { prototype: Record<string | symbol, unknown> };
if (!ConsumerGroup.prototype[REJOIN_MARK]) {
  const joinAndSync = ConsumerGroup.prototype.joinAndSync as (this: { memberId: string | null }, ...args: unknown[]) => Promise<unknown>;
  ConsumerGroup.prototype.joinAndSync = async function (this: { memberId: string | null }, ...args: unknown[]) {
    const hook = this.memberId ? beforeRejoin.get(this.memberId) : undefined;
    if (hook) await hook().catch(() => {});
    return joinAndSync.apply(this, args);
  };
  ConsumerGroup.prototype[REJOIN_MARK] = true;
}
