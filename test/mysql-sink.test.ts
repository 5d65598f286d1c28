/**
 * The MySQL sink against a real MySQL-compatible server (MariaDB started by scripts/services.sh,
 * or MYSQL_URL): migrations, additive upserts, histograms stored sparse, offsets in the same
 * transaction as their deltas, and read-back equal to the embedded store.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mysql from "mysql2/promise";
import { Interner } from "../pipeline/intern.js";
import type { SpanBatch } from "../pipeline/span-batch.js";
import { Fold } from "../operators/fold/fold.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import { buildReport } from "../operators/fold/report.js";
import { MysqlSink } from "../sinks/mysql/sink.js";
import { MIGRATIONS } from "../sinks/mysql/schema.js";
import { incrementOf, restorePartition, snapshotPartition } from "../operators/fold/snapshot.js";
import { loadStore } from "../sinks/mysql/read.js";
import { serviceEnv } from "./support/services.js";
import { serverConnection } from "./support/stream.js";

const base = new URL(serviceEnv("MYSQL_URL"));
const dbName = `tracefold_test_${process.pid}_${Date.now() % 100000}`;
const url = new URL(base.toString());
url.pathname = `/${dbName}`;
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await serverConnection(base);
  await admin.query(`CREATE DATABASE ${dbName}`);
});
afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${dbName}`);
  await admin?.end();
});

describe("mysql sink (real server)", () => {
  it("migrates once, idempotently, and records the versions", async () => {
    const sink = new MysqlSink({ url: url.toString() });
    await sink.open();
    expect(await sink.migrate()).toEqual([]);
    const [rows] = await sink.pool.query("SELECT version FROM tracefold_schema_migrations ORDER BY version");
    expect((rows as Array<{ version: number }>).map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    await sink.close();
  });

  it("stores what the embedded store stores: the same report after many additive writes", async () => {
    const interner = new Interner();
    const gen = new ReplayGenerator({ seed: 21, services: 15, partitions: 2, tracesPerSecond: 300, brokenTraceRate: 0.05, duplicateRate: 0.01 }, interner);
    const fold = new Fold(interner);
    const embedded = new EmbeddedMetaStore();
    const sink = new MysqlSink({ url: url.toString(), chunkRows: 37 });
    await sink.open();
    await sink.loadCheckpoint("spans", [0, 1]); // claims the partitions the offsets are for
    let n = 0;
    const writes: Promise<void>[] = [];
    const next = new Map<number, number>();
    gen.generate(60_000, (b) => {
      fold.processBatch(b);
      next.set(b.partition, ++n);
      if (n % 5 === 0) {
        const d = fold.drain();
        void embedded.write(d);
        writes.push(sink.write({ deltas: d, offsets: [...next].map(([partition, nextOffset]) => ({ topic: "spans", partition, nextOffset })) }));
      }
    });
    fold.finish();
    const last = fold.drain();
    void embedded.write(last);
    writes.push(sink.write(last));
    await Promise.all(writes);
    const fromMysql = buildReport(await loadStore(sink.pool));
    expect(fromMysql).toEqual(buildReport(embedded));
    expect(fromMysql.edges.length).toBeGreaterThan(20);
    expect(fromMysql.edges.some((e) => e.type === "messaging" && e.lag && e.lag.count > 0)).toBe(true);
    const offsets = await sink.committedOffsets("spans");
    expect([...offsets.keys()].sort()).toEqual([0, 1]);
    // the stored offset of a partition is the latest one written with its deltas
    const lastWritten = Math.max(...[...next.values()].filter((v) => v <= n - (n % 5)));
    expect(Math.max(...offsets.values())).toBe(lastWritten);
    await sink.close();
  });

  it("keeps deltas and offsets together: a write that fails inside its transaction stores neither", async () => {
    const sink = new MysqlSink({ url: url.toString() });
    await sink.open();
    const before = buildReport(await loadStore(sink.pool));
    const deltas = { edges: [{ minute: 60_000, client: "fault-a", server: "fault-b", type: "rpc" as const, calls: 5, clientCalls: 5, serverCalls: 5, paired: 5, failed: 0, failedClient: 0, failedServer: 0, negativeLag: 0, clientLatency: null, serverLatency: null, lag: null }], services: [], operations: [], traces: [] };
    await sink.loadCheckpoint("fault-topic", [0]);
    // the offsets row violates NOT NULL after the deltas were written in the same transaction
    await expect(sink.write({ deltas, offsets: [{ topic: "fault-topic", partition: 0, nextOffset: null as unknown as number }] })).rejects.toThrow(/next_offset/);
    const after = buildReport(await loadStore(sink.pool));
    expect(after.edges.find((e) => e.client === "fault-a")).toBeUndefined();
    expect(after).toEqual(before);
    await sink.close();
  });

  it("fences: once another member claimed a partition, the old owner's checkpoint stores nothing", async () => {
    const a = new MysqlSink({ url: url.toString(), consumerGroup: "fence", memberId: "member-a" });
    const b = new MysqlSink({ url: url.toString(), consumerGroup: "fence", memberId: "member-b" });
    await a.open();
    await b.open();
    const edge = (calls: number) => ({ edges: [{ minute: 120_000, client: "fence-a", server: "fence-b", type: "rpc" as const, calls, clientCalls: calls, serverCalls: calls, paired: calls, failed: 0, failedClient: 0, failedServer: 0, negativeLag: 0, clientLatency: null, serverLatency: null, lag: null }], services: [], operations: [], traces: [] });
    const calls = async () => buildReport(await loadStore(a.pool)).edges.find((e) => e.client === "fence-a")?.calls ?? 0;
    // a owns partitions 0 and 1 and checkpoints
    expect(await a.loadCheckpoint("fenced", [0, 1])).toEqual([]);
    await a.write({ deltas: edge(3), offsets: [{ topic: "fenced", partition: 0, nextOffset: 10 }, { topic: "fenced", partition: 1, nextOffset: 20 }], states: [] });
    expect(await calls()).toBe(3);
    // a rebalance gives partition 1 to b, which loads a's checkpoint for it
    expect(await b.loadCheckpoint("fenced", [1])).toEqual([{ partition: 1, nextOffset: 20, state: null }]);
    // a has not noticed: its next checkpoint still names partition 1, and is refused whole
    const err = await a.write({ deltas: edge(5), offsets: [{ topic: "fenced", partition: 0, nextOffset: 15 }, { topic: "fenced", partition: 1, nextOffset: 25 }] }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe("TF_FENCED");
    expect(String(err)).toMatch(/fenced\/1 is claimed by member-b/);
    expect(await calls()).toBe(3);
    expect(Object.fromEntries(await a.committedOffsets("fenced"))).toEqual({ 0: 10, 1: 20 });
    // b's checkpoint goes through; a, rolled back to its own partition 0, goes on too
    await b.write({ deltas: edge(7), offsets: [{ topic: "fenced", partition: 1, nextOffset: 25 }] });
    expect(await a.loadCheckpoint("fenced", [0])).toEqual([{ partition: 0, nextOffset: 10, state: null }]);
    await a.write({ deltas: edge(2), offsets: [{ topic: "fenced", partition: 0, nextOffset: 15 }] });
    expect(await calls()).toBe(12);
    expect(Object.fromEntries(await a.committedOffsets("fenced"))).toEqual({ 0: 15, 1: 25 });
    expect(a.metrics().mysql_fenced_writes).toBe(1);
    await a.close();
    await b.close();
  });

  it("stores a pending state larger than max_allowed_packet in chunks, reads it back byte for byte, and replaces it", async () => {
    const sink = new MysqlSink({ url: url.toString(), consumerGroup: "big", memberId: "member-big" });
    await sink.open();
    const [[{ m }]] = (await sink.pool.query("SELECT @@max_allowed_packet AS m")) as unknown as [[{ m: number }]];
    const big = new Uint8Array(Number(m) + (3 << 20));
    for (let i = 0; i < big.length; i += 4093) big[i] = (i * 31) & 255;
    big[big.length - 1] = 7;
    const small = Uint8Array.of(1, 2, 3);
    const deltas = { edges: [], services: [], operations: [], traces: [] };
    expect(await sink.loadCheckpoint("big", [0, 1])).toEqual([]);
    await sink.write({ deltas, offsets: [{ topic: "big", partition: 0, nextOffset: 5 }, { topic: "big", partition: 1, nextOffset: 6 }], states: [{ partition: 0, state: big }, { partition: 1, state: small }] });
    const got = await sink.loadCheckpoint("big", [0, 1]);
    expect(got.map((g) => [g.partition, g.nextOffset, g.state?.length])).toEqual([[0, 5, big.length], [1, 6, 3]]);
    expect(Buffer.compare(Buffer.from(got[0].state!), Buffer.from(big))).toBe(0);
    expect([...got[1].state!]).toEqual([1, 2, 3]);
    expect(sink.metrics().mysql_state_bytes_written).toBe(big.length + 3);
    // the next checkpoint's smaller state replaces every chunk of the previous one
    await sink.write({ deltas, offsets: [{ topic: "big", partition: 0, nextOffset: 9 }, { topic: "big", partition: 1, nextOffset: 6 }], states: [{ partition: 0, state: small }] });
    const again = await sink.loadCheckpoint("big", [0, 1]);
    expect(again.map((g) => [g.partition, g.nextOffset, g.state === null ? null : [...g.state]])).toEqual([[0, 9, [1, 2, 3]], [1, 6, null]]);
    // a checkpoint written before migration 4 (one blob in fold_checkpoints) is still read
    await sink.pool.query("DELETE FROM fold_checkpoint_chunks WHERE consumer_group = 'big'");
    await sink.pool.query("UPDATE fold_checkpoints SET state = x'0a0b' WHERE consumer_group = 'big' AND kafka_partition = 1");
    expect((await sink.loadCheckpoint("big", [1]))[0].state).toEqual(Uint8Array.of(10, 11));
    await sink.close();
  }, 120_000);

  it("stores incremental checkpoints as a chain: old increments dropped, a retried write idempotent, the chain restores", async () => {
    const sink = new MysqlSink({ url: url.toString(), consumerGroup: "chain", memberId: "member-chain", stateChunkBytes: 64 << 10 });
    await sink.open();
    const interner = new Interner();
    const gen = new ReplayGenerator({ seed: 21, services: 15, partitions: 1, tracesPerSecond: 300, batchSize: 500 }, interner);
    const batches: SpanBatch[] = [];
    gen.generate(60_000, (b) => batches.push(b.clone()));
    const fold = new Fold(interner, { outOfOrdernessMs: 500, traceGapMs: 1500, assemblyWindowMs: 800, assembledMemoryMs: 3000 });
    const deltas = { edges: [], services: [], operations: [], traces: [] };
    const stored = async () => {
      const [rows] = await sink.pool.query("SELECT increment, COUNT(*) AS n FROM fold_checkpoint_chunks WHERE consumer_group = 'chain' GROUP BY increment ORDER BY increment");
      return (rows as Array<{ increment: number }>).map((r) => Number(r.increment));
    };
    expect(await sink.loadCheckpoint("chain", [0])).toEqual([]);
    const per = Math.ceil(batches.length / 12);
    let last = { seq: 0, keepFrom: 0 };
    const chain = 3;
    for (let k = 0, offset = 0; k < batches.length; k += per) {
      for (const b of batches.slice(k, k + per)) fold.processBatch(b);
      const state = snapshotPartition(fold, 0, chain);
      last = incrementOf(state)!;
      offset += per;
      const w = { deltas, offsets: [{ topic: "chain", partition: 0, nextOffset: offset }], states: [{ partition: 0, state }] };
      await sink.write(w);
      if (last.seq === 5) await sink.write(w); // a retried transaction writes the same rows again
      // only the increments the newest one still needs are kept
      const kept = await stored();
      expect(kept).toEqual(Array.from({ length: last.seq - last.keepFrom + 1 }, (_, i) => last.keepFrom + i));
    }
    expect(last.seq).toBeGreaterThanOrEqual(8);
    expect(last.seq - last.keepFrom + 1).toBe(chain);
    // the chain read back restores the partition exactly
    const [got] = await sink.loadCheckpoint("chain", [0]);
    const restored = new Fold(new Interner(), { outOfOrdernessMs: 500, traceGapMs: 1500, assemblyWindowMs: 800, assembledMemoryMs: 3000 });
    restorePartition(restored, got.state!);
    expect(restored.partition(0).spans.size).toBe(fold.partition(0).spans.size);
    expect(restored.partition(0).calls.size).toBe(fold.partition(0).calls.size);
    expect(restored.partition(0).watermarkUs).toBe(fold.partition(0).watermarkUs);
    // a complete increment (after a restore) replaces the whole chain
    fold.partition(0).snapFull = true;
    const complete = snapshotPartition(fold, 0, chain);
    await sink.write({ deltas, offsets: [{ topic: "chain", partition: 0, nextOffset: 999 }], states: [{ partition: 0, state: complete }] });
    expect(await stored()).toEqual([last.seq + 1]);
    await sink.close();
  }, 120_000);
});
