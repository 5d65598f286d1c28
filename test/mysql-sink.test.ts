/**
 * The MySQL sink against a real MySQL-compatible server (MariaDB started by scripts/services.sh,
 * or MYSQL_URL): migrations, additive upserts, histograms stored sparse, offsets in the same
 * transaction as their deltas, and read-back equal to the embedded store.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mysql from "mysql2/promise";
import { Interner } from "../pipeline/intern.js";
import { Fold } from "../operators/fold/fold.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { EmbeddedMetaStore } from "../sinks/embedded/meta-store.js";
import { buildReport } from "../operators/fold/report.js";
import { MysqlSink } from "../sinks/mysql/sink.js";
import { MIGRATIONS } from "../sinks/mysql/schema.js";
import { loadStore } from "../sinks/mysql/read.js";
import { serviceEnv } from "./support/services.js";

const base = new URL(serviceEnv("MYSQL_URL"));
const dbName = `tracefold_test_${process.pid}_${Date.now() % 100000}`;
const url = new URL(base.toString());
url.pathname = `/${dbName}`;
let admin: mysql.Connection;

beforeAll(async () => {
  admin = await mysql.createConnection({ host: base.hostname, port: Number(base.port || 3306), user: decodeURIComponent(base.username), password: decodeURIComponent(base.password) });
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
    // the offsets row violates NOT NULL after the deltas were written in the same transaction
    await expect(sink.write({ deltas, offsets: [{ topic: null as unknown as string, partition: 0, nextOffset: 1 }] })).rejects.toThrow(/mysql/);
    const after = buildReport(await loadStore(sink.pool));
    expect(after.edges.find((e) => e.client === "fault-a")).toBeUndefined();
    expect(after).toEqual(before);
    await sink.close();
  });
});
