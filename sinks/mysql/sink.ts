/**
 * The `mysql` sink (mysql2): topology, stats and connectivity deltas added to per-minute rows,
 * and the consumed offsets, in ONE transaction per write, so the offsets stored are exactly those
 * whose deltas are stored (exactly-once aggregates under at-least-once delivery, DESIGN 5).
 *
 * Upserts are `INSERT ... ON DUPLICATE KEY UPDATE c = c + VALUES(c)`: MariaDB 10.11 and MySQL 8
 * both accept it (MySQL 8's row alias form is not in MariaDB). Statements are prepared (execute)
 * in chunks of a fixed row count, rows sorted by key so concurrent writers lock in one order.
 * Transient errors (deadlock, lock wait, lost connection) retry the whole transaction with backoff.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import mysql from "mysql2/promise";
import type { Pool, PoolConnection } from "mysql2/promise";
import { silentLogger, type Checkpoint, type Logger, type RuntimeContext, type SavedPartition, type Sink } from "../../pipeline/contracts.js";
import { TracefoldError } from "../../pipeline/errors.js";
import type { FoldDeltas } from "../../operators/fold/deltas.js";
import type { HistogramData } from "../../operators/fold/histogram.js";
import { incrementOf } from "../../operators/fold/snapshot.js";
import { MIGRATIONS, MIGRATIONS_TABLE } from "./schema.js";

export interface MysqlSinkConfig {
  /** mysql://user:password@host:port/database */
  url: string;
  /** File holding the password (overrides the URL's); never logged. */
  passwordFile?: string;
  /** TLS: `true` for the system CAs, or a CA file. */
  tls?: boolean;
  tlsCaFile?: string;
  /** Rows per prepared multi-row statement. */
  chunkRows?: number;
  /** Fold state is stored in chunks of this many bytes (default 1 MiB). */
  stateChunkBytes?: number;
  /** Chunk bytes per INSERT statement at most (default 4 MiB; keep below max_allowed_packet). */
  statementBytes?: number;
  /**
   * Attempts for a transaction that fails transiently (0: until it succeeds, the default: the
   * pipeline waits, Kafka pauses, lag grows, nothing is dropped).
   */
  maxAttempts?: number;
  consumerGroup?: string;
  /** This member's name in partition_owners (default host:pid:random). */
  memberId?: string;
}

export interface OffsetCommit {
  topic: string;
  partition: number;
  /** The next offset to consume (Kafka's committed-offset convention). */
  nextOffset: number;
}

/** What the sink accepts: fold deltas, optionally with the offsets they complete. */
export interface MetaWrite {
  deltas: FoldDeltas;
  offsets?: OffsetCommit[];
  /**
   * Pending fold state per partition, saved with the offsets (a checkpoint); with `topic`, only
   * for that topic's row (the key groups of a shuffled fold live under "<topic>#kg").
   */
  states?: Array<{ partition: number; state: Uint8Array; topic?: string }>;
  /** More deltas stored in the same transaction (one per worker of a shuffled fold). */
  moreDeltas?: FoldDeltas[];
}

const TRANSIENT = new Set(["ER_LOCK_DEADLOCK", "ER_LOCK_WAIT_TIMEOUT", "PROTOCOL_CONNECTION_LOST", "ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "ER_CON_COUNT_ERROR"]);
const MAX_NAME = 255;

export function isTransientMysqlError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code !== undefined && TRANSIENT.has(code);
}

export class MysqlSink implements Sink {
  pool!: Pool;
  writes = 0;
  retries = 0;
  namesTruncated = 0;
  rowsWritten = 0;
  /** Bytes of fold state stored by checkpoints. */
  stateBytesWritten = 0;
  lastWriteMs = 0;

  constructor(readonly config: MysqlSinkConfig) {}

  private log: Logger = silentLogger;

  async open(ctx?: RuntimeContext): Promise<void> {
    if (this.pool) return;
    if (ctx) this.log = ctx.log;
    const u = new URL(this.config.url);
    if (u.protocol !== "mysql:") throw new TracefoldError("TF_CONFIG_INVALID", `MySQL URL must start with mysql:// (got ${u.protocol})`, "mysql");
    const password = this.config.passwordFile ? readFileSync(this.config.passwordFile, "utf8").trim() : decodeURIComponent(u.password);
    this.pool = mysql.createPool({
      host: u.hostname,
      port: Number(u.port || 3306),
      user: decodeURIComponent(u.username),
      password,
      database: u.pathname.replace(/^\//, ""),
      connectionLimit: 4,
      supportBigNumbers: true,
      bigNumberStrings: false,
      ssl: this.config.tls ? (this.config.tlsCaFile ? { ca: readFileSync(this.config.tlsCaFile, "utf8") } : {}) : undefined,
    });
    await this.retry(() => this.migrate());
  }

  /** Applies pending migrations under a named lock (several pods may start at once). */
  async migrate(): Promise<number[]> {
    const conn = await this.pool.getConnection();
    const applied: number[] = [];
    try {
      await conn.query("SELECT GET_LOCK('tracefold_migrations', 60)");
      await conn.query(MIGRATIONS_TABLE);
      const [rows] = await conn.query("SELECT version FROM tracefold_schema_migrations");
      const done = new Set((rows as Array<{ version: number }>).map((r) => Number(r.version)));
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        for (const st of m.statements) await conn.query(st);
        await conn.execute("INSERT INTO tracefold_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", [m.version, m.name, Date.now()]);
        applied.push(m.version);
      }
    } finally {
      await conn.query("SELECT RELEASE_LOCK('tracefold_migrations')").catch(() => {});
      conn.release();
    }
    return applied;
  }

  async write(batch: unknown): Promise<void> {
    const c = batch as Checkpoint;
    const w: MetaWrite =
      c.kind === "checkpoint" ? { deltas: c.deltas as FoldDeltas, offsets: c.offsets, states: c.states }
      : (batch as MetaWrite).deltas ? (batch as MetaWrite)
      : { deltas: batch as FoldDeltas };
    const t0 = Date.now();
    await this.retry(async () => {
      const conn = await this.pool.getConnection();
      try {
        await conn.beginTransaction();
        // fencing first: the owner rows stay locked until commit, so a member claiming one of
        // these partitions waits for this checkpoint and then loads it
        if (w.offsets?.length) await this.checkOwnership(conn, w.offsets);
        await this.writeDeltas(conn, w.deltas);
        for (const d of w.moreDeltas ?? []) await this.writeDeltas(conn, d);
        if (w.offsets?.length) await this.writeOffsets(conn, w.offsets);
        if (w.states) await this.writeStates(conn, w);
        await conn.commit();
      } catch (err) {
        await conn.rollback().catch(() => {});
        throw err;
      } finally {
        conn.release();
      }
    });
    this.writes++;
    this.lastWriteMs = Date.now() - t0;
  }

  /** Claimed epoch per "topic/partition" (loadCheckpoint); a checkpoint must still hold it. */
  private readonly epochs = new Map<string, number>();
  private memberIdValue = "";
  get memberId(): string {
    if (!this.memberIdValue) this.memberIdValue = this.config.memberId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
    return this.memberIdValue;
  }
  fencedWrites = 0;

  private async checkOwnership(conn: PoolConnection, offsets: OffsetCommit[]): Promise<void> {
    const group = this.config.consumerGroup ?? "tracefold";
    const sorted = [...offsets].sort((a, b) => cmp(a.topic, b.topic) || a.partition - b.partition);
    for (const topic of new Set(sorted.map((o) => o.topic))) {
      const parts = sorted.filter((o) => o.topic === topic).map((o) => o.partition);
      const [rows] = await conn.execute(
        `SELECT kafka_partition AS p, epoch AS e, owner AS o FROM partition_owners WHERE consumer_group = ? AND topic = ? AND kafka_partition IN (${parts.map(() => "?").join(", ")}) FOR UPDATE`,
        [group, topic, ...parts],
      );
      const stored = new Map((rows as Array<{ p: number; e: number; o: string }>).map((r) => [Number(r.p), { epoch: Number(r.e), owner: r.o }]));
      for (const p of parts) {
        const mine = this.epochs.get(`${topic}/${p}`);
        const now = stored.get(p);
        if (mine === undefined || now === undefined || now.epoch !== mine) {
          this.fencedWrites++;
          throw new TracefoldError("TF_FENCED", `partition ${topic}/${p} is claimed by ${now?.owner ?? "nobody"} (epoch ${now?.epoch ?? "-"}, ours ${mine ?? "-"})`, "mysql");
        }
      }
    }
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    const max = this.config.maxAttempts ?? 0;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof TracefoldError) throw err;
        if (!isTransientMysqlError(err) || (max > 0 && attempt >= max)) {
          const code = (err as { code?: string }).code ?? "";
          throw new TracefoldError(isTransientMysqlError(err) ? "TF_SINK_TRANSIENT" : "TF_SINK_FATAL", `${code} ${(err as Error).message}`, "mysql", isTransientMysqlError(err));
        }
        this.retries++;
        if (attempt === 3 || attempt % 20 === 0) this.log.warn("mysql unreachable or busy; retrying (the pipeline waits)", { attempt, error: `${(err as { code?: string }).code ?? ""} ${(err as Error).message}` });
        await new Promise((r) => setTimeout(r, Math.min(5_000, 50 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2)));
      }
    }
  }

  private name(s: string): string {
    if (s.length <= MAX_NAME) return s;
    this.namesTruncated++;
    return s.slice(0, MAX_NAME);
  }

  private async writeDeltas(conn: PoolConnection, d: FoldDeltas): Promise<void> {
    const n = (s: string) => this.name(s);
    const lat = (h: HistogramData | null) => (h === null || h.count === 0 ? [0, 0, null, null] : [h.count, h.sum, h.min, h.max]);
    const edges = [...d.edges].sort((a, b) => a.minute - b.minute || cmp(a.client, b.client) || cmp(a.server, b.server) || cmp(a.type, b.type));
    await this.upsert(conn, "edge_minutes",
      ["minute", "client", "server", "type", "calls", "client_calls", "server_calls", "paired", "failed", "failed_client", "failed_server", "negative_lag",
        "client_lat_count", "client_lat_sum", "client_lat_min", "client_lat_max", "server_lat_count", "server_lat_sum", "server_lat_min", "server_lat_max",
        "lag_count", "lag_sum", "lag_min", "lag_max"],
      4,
      edges.map((e) => [e.minute, n(e.client), n(e.server), e.type, e.calls, e.clientCalls, e.serverCalls, e.paired, e.failed, e.failedClient, e.failedServer, e.negativeLag,
        ...lat(e.clientLatency), ...lat(e.serverLatency), ...lat(e.lag)]));
    const eb: unknown[][] = [];
    for (const e of edges)
      for (const [which, h] of [["c", e.clientLatency], ["s", e.serverLatency], ["l", e.lag]] as const)
        if (h) for (const [k, c] of h.buckets) eb.push([e.minute, n(e.client), n(e.server), e.type, which, k, c]);
    await this.upsert(conn, "edge_latency_buckets", ["minute", "client", "server", "type", "which", "bucket", "count"], 6, eb);

    const services = [...d.services].sort((a, b) => a.minute - b.minute || cmp(a.service, b.service));
    await this.upsert(conn, "service_minutes",
      ["minute", "service", "spans", "server_calls", "failures", "error_spans", "orphan_spans", "unpaired_client", "unpaired_server", "duplicate_spans", "late_spans", "traces", "connected_traces",
        "lat_count", "lat_sum", "lat_min", "lat_max"],
      2,
      services.map((s) => [s.minute, n(s.service), s.spans, s.serverCalls, s.failures, s.errorSpans, s.orphanSpans, s.unpairedClient, s.unpairedServer, s.duplicateSpans, s.lateSpans, s.traces, s.connectedTraces, ...lat(s.latency)]));
    const sb: unknown[][] = [];
    for (const s of services) if (s.latency) for (const [k, c] of s.latency.buckets) sb.push([s.minute, n(s.service), k, c]);
    await this.upsert(conn, "service_latency_buckets", ["minute", "service", "bucket", "count"], 3, sb);

    const ops = [...d.operations].sort((a, b) => a.minute - b.minute || cmp(a.service, b.service) || cmp(a.operation, b.operation));
    await this.upsert(conn, "operation_minutes",
      ["minute", "service", "operation", "spans", "server_calls", "failures", "error_spans", "lat_count", "lat_sum", "lat_min", "lat_max"],
      3,
      ops.map((o) => [o.minute, n(o.service), n(o.operation), o.spans, o.serverCalls, o.failures, o.errorSpans, ...lat(o.latency)]));
    const ob: unknown[][] = [];
    for (const o of ops) if (o.latency) for (const [k, c] of o.latency.buckets) ob.push([o.minute, n(o.service), n(o.operation), k, c]);
    await this.upsert(conn, "operation_latency_buckets", ["minute", "service", "operation", "bucket", "count"], 4, ob);

    const traces = [...d.traces].sort((a, b) => a.minute - b.minute);
    await this.upsert(conn, "trace_minutes", ["minute", "traces", "connected", "cut", "evicted"], 1, traces.map((t) => [t.minute, t.traces, t.connected, t.cut, t.evicted]));

    // the catalogue: services and operations with the minutes they were seen
    const seen = new Map<string, [number, number]>();
    for (const s of services) {
      const r = seen.get(s.service);
      seen.set(s.service, r ? [Math.min(r[0], s.minute), Math.max(r[1], s.minute)] : [s.minute, s.minute]);
    }
    await this.upsertCustom(conn, "services", ["name", "first_minute", "last_minute"], "first_minute = LEAST(first_minute, VALUES(first_minute)), last_minute = GREATEST(last_minute, VALUES(last_minute))",
      [...seen.entries()].sort((a, b) => cmp(a[0], b[0])).map(([name, [f, l]]) => [n(name), f, l]));
    const opSeen = new Map<string, [string, string, number]>();
    for (const o of ops) {
      const k = `${o.service}\u0000${o.operation}`;
      const r = opSeen.get(k);
      if (!r || o.minute < r[2]) opSeen.set(k, [o.service, o.operation, o.minute]);
    }
    await this.upsertCustom(conn, "operations", ["service", "name", "first_minute"], "first_minute = LEAST(first_minute, VALUES(first_minute))",
      [...opSeen.values()].sort((a, b) => cmp(a[0], b[0]) || cmp(a[1], b[1])).map(([s, o, m]) => [n(s), n(o), m]));
  }

  private async writeOffsets(conn: PoolConnection, offsets: OffsetCommit[]): Promise<void> {
    const group = this.config.consumerGroup ?? "tracefold";
    const now = Date.now();
    await this.upsertCustom(conn, "consumed_offsets", ["consumer_group", "topic", "kafka_partition", "next_offset", "updated_at"],
      "next_offset = GREATEST(next_offset, VALUES(next_offset)), updated_at = VALUES(updated_at)",
      [...offsets].sort((a, b) => cmp(a.topic, b.topic) || a.partition - b.partition).map((o) => [group, o.topic, o.partition, o.nextOffset, now]));
  }

  /**
   * The fold's pending state per partition: a chain of increments (operators/fold/snapshot.ts),
   * extended at each checkpoint. Each increment is stored in chunks of `stateChunkBytes`
   * (fold_checkpoint_chunks, keyed by its sequence number and the chunk's, several chunks per
   * statement up to `statementBytes`): a member's state can be hundreds of MB, and a row or a
   * statement over the server's max_allowed_packet (MariaDB 16 MB, MySQL 64 MB by default) fails
   * the checkpoint. Increments before the new one's `keepFrom` are deleted (a complete increment
   * deletes all), and so are any at or after its number (left by an earlier attempt of this
   * transaction), so a retry writes the same rows. The fold_checkpoints row keeps the time of the
   * checkpoint; its `state` column (one blob, before migration 4) is cleared.
   */
  private async writeStates(conn: PoolConnection, w: MetaWrite): Promise<void> {
    const group = this.config.consumerGroup ?? "tracefold";
    const byPartition = new Map((w.states ?? []).filter((s) => s.topic === undefined).map((s) => [s.partition, s.state]));
    const byTopic = new Map((w.states ?? []).filter((s) => s.topic !== undefined).map((s) => [`${s.topic}/${s.partition}`, s.state]));
    const stateOf = (o: OffsetCommit) => byTopic.get(`${o.topic}/${o.partition}`) ?? byPartition.get(o.partition);
    const offsets = [...(w.offsets ?? [])].sort((a, b) => cmp(a.topic, b.topic) || a.partition - b.partition);
    const now = Date.now();
    await this.upsertCustom(conn, "fold_checkpoints", ["consumer_group", "topic", "kafka_partition", "state", "updated_at"], "state = VALUES(state), updated_at = VALUES(updated_at)",
      offsets.map((o) => [group, o.topic, o.partition, null, now]));
    const chunkBytes = Math.max(1024, this.config.stateChunkBytes ?? 1 << 20);
    const statementBytes = Math.max(chunkBytes, this.config.statementBytes ?? 4 << 20);
    // per topic and (keepFrom, seq): drop the increments the new one supersedes
    const drops = new Map<string, { topic: string; keepFrom: number; seq: number; partitions: number[] }>();
    for (const o of offsets) {
      const st = stateOf(o);
      const inc = st ? incrementOf(st) : null;
      // no state, or a version-1 blob: the partition's chunks are replaced
      const keepFrom = inc?.keepFrom ?? Number.MAX_SAFE_INTEGER;
      const seq = inc?.seq ?? 0;
      const k = `${o.topic}\u0000${keepFrom}\u0000${seq}`;
      const d = drops.get(k);
      if (d) d.partitions.push(o.partition);
      else drops.set(k, { topic: o.topic, keepFrom, seq, partitions: [o.partition] });
    }
    for (const d of drops.values()) {
      for (let i = 0; i < d.partitions.length; i += 500) {
        const part = d.partitions.slice(i, i + 500);
        await conn.execute(
          `DELETE FROM fold_checkpoint_chunks WHERE consumer_group = ? AND topic = ? AND kafka_partition IN (${part.map(() => "?").join(", ")}) AND (increment < ? OR increment >= ?)`,
          [group, d.topic, ...part, d.keepFrom, d.seq],
        );
      }
    }
    let rows: unknown[][] = [];
    let bytes = 0;
    const insert = async () => {
      if (rows.length === 0) return;
      await conn.execute(`INSERT INTO fold_checkpoint_chunks (consumer_group, topic, kafka_partition, increment, seq, bytes) VALUES ${rows.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`, rows.flat() as never[]);
      this.rowsWritten += rows.length;
      this.stateBytesWritten += bytes;
      rows = [];
      bytes = 0;
    };
    for (const o of offsets) {
      const st = stateOf(o);
      if (!st) continue;
      const increment = incrementOf(st)?.seq ?? 0;
      for (let at = 0, seq = 0; at < st.byteLength; at += chunkBytes, seq++) {
        const len = Math.min(chunkBytes, st.byteLength - at);
        if (bytes + len > statementBytes) await insert();
        rows.push([group, o.topic, o.partition, increment, seq, Buffer.from(st.buffer, st.byteOffset + at, len)]);
        bytes += len;
      }
    }
    await insert();
  }

  /**
   * Claims these partitions for this member (their epoch moves on, fencing out checkpoints of
   * the previous owner still in flight) and returns what the last checkpoint saved for them
   * (offset, and pending state if any), in one transaction.
   */
  async loadCheckpoint(topic: string, partitions: number[]): Promise<SavedPartition[]> {
    if (partitions.length === 0) return [];
    const group = this.config.consumerGroup ?? "tracefold";
    const sorted = [...partitions].sort((a, b) => a - b);
    const marks = sorted.map(() => "?").join(", ");
    return this.retry(async () => {
      const conn = await this.pool.getConnection();
      try {
        await conn.beginTransaction();
        const now = Date.now();
        await conn.execute(
          `INSERT INTO partition_owners (consumer_group, topic, kafka_partition, epoch, owner, claimed_at) VALUES ${sorted.map(() => "(?, ?, ?, 1, ?, ?)").join(", ")}
           ON DUPLICATE KEY UPDATE epoch = epoch + 1, owner = VALUES(owner), claimed_at = VALUES(claimed_at)`,
          sorted.flatMap((p) => [group, topic, p, this.memberId, now]),
        );
        const [owners] = await conn.execute(`SELECT kafka_partition AS p, epoch AS e FROM partition_owners WHERE consumer_group = ? AND topic = ? AND kafka_partition IN (${marks})`, [group, topic, ...sorted]);
        const [rows] = await conn.execute(
          `SELECT o.kafka_partition AS p, o.next_offset AS n, c.state AS s FROM consumed_offsets o
           LEFT JOIN fold_checkpoints c ON c.consumer_group = o.consumer_group AND c.topic = o.topic AND c.kafka_partition = o.kafka_partition
           WHERE o.consumer_group = ? AND o.topic = ? AND o.kafka_partition IN (${marks})`,
          [group, topic, ...sorted],
        );
        // the state's chunks, a partition at a time (each result row is one chunk, far below
        // max_allowed_packet): its chain of increments, in order
        const chunks = new Map<number, Buffer[]>();
        for (const p of sorted) {
          const [cs] = await conn.execute("SELECT bytes FROM fold_checkpoint_chunks WHERE consumer_group = ? AND topic = ? AND kafka_partition = ? ORDER BY increment, seq", [group, topic, p]);
          const list = (cs as Array<{ bytes: Buffer }>).map((c) => c.bytes);
          if (list.length) chunks.set(p, list);
        }
        await conn.commit();
        for (const r of owners as Array<{ p: number; e: number }>) this.epochs.set(`${topic}/${Number(r.p)}`, Number(r.e));
        return (rows as Array<{ p: number; n: number; s: Buffer | null }>).map((r) => {
          const parts = chunks.get(Number(r.p));
          // a checkpoint written before migration 4 has its state in one blob
          const s = parts ? Buffer.concat(parts) : r.s;
          return { partition: Number(r.p), nextOffset: Number(r.n), state: s ? new Uint8Array(s.buffer, s.byteOffset, s.byteLength) : null };
        });
      } catch (err) {
        await conn.rollback().catch(() => {});
        throw err;
      } finally {
        conn.release();
      }
    });
  }

  /** Additive upsert: the first `keyCols` columns are the key; counters add; *_min/*_max merge. */
  private upsert(conn: PoolConnection, table: string, cols: string[], keyCols: number, rows: unknown[][]): Promise<void> {
    const update = cols
      .slice(keyCols)
      .map((c) =>
        c.endsWith("_min") ? `${c} = LEAST(COALESCE(${c}, VALUES(${c})), COALESCE(VALUES(${c}), ${c}))`
        : c.endsWith("_max") ? `${c} = GREATEST(COALESCE(${c}, VALUES(${c})), COALESCE(VALUES(${c}), ${c}))`
        : `${c} = ${c} + VALUES(${c})`)
      .join(", ");
    return this.upsertCustom(conn, table, cols, update, rows);
  }

  private async upsertCustom(conn: PoolConnection, table: string, cols: string[], update: string, rows: unknown[][]): Promise<void> {
    const chunk = this.config.chunkRows ?? 100;
    const one = `(${cols.map(() => "?").join(", ")})`;
    for (let i = 0; i < rows.length; i += chunk) {
      const part = rows.slice(i, i + chunk);
      const sql = `INSERT INTO ${table} (${cols.join(", ")}) VALUES ${part.map(() => one).join(", ")} ON DUPLICATE KEY UPDATE ${update}`;
      await conn.execute(sql, part.flat() as never[]);
      this.rowsWritten += part.length;
    }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.pool) await this.pool.end();
  }

  async healthcheck(): Promise<boolean> {
    try {
      await this.pool.query("SELECT 1");
      return true;
    } catch {
      return false;
    }
  }

  /** The stored next offsets of a consumer group, for seeking on assignment. */
  async committedOffsets(topic: string): Promise<Map<number, number>> {
    const [rows] = await this.pool.execute("SELECT kafka_partition, next_offset FROM consumed_offsets WHERE consumer_group = ? AND topic = ?", [this.config.consumerGroup ?? "tracefold", topic]);
    return new Map((rows as Array<{ kafka_partition: number; next_offset: number }>).map((r) => [Number(r.kafka_partition), Number(r.next_offset)]));
  }

  metrics(): Record<string, number> {
    return { mysql_writes: this.writes, mysql_retries: this.retries, mysql_rows_written: this.rowsWritten, mysql_state_bytes_written: this.stateBytesWritten, mysql_names_truncated: this.namesTruncated, mysql_last_write_ms: this.lastWriteMs, mysql_fenced_writes: this.fencedWrites };
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
