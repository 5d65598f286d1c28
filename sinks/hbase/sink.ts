/**
 * The `hbase` sink: trace details and the entry-span index in HBase (DESIGN 5-6), through the
 * Thrift2 gateway (default) or the REST gateway. Layout and encodings: codec.ts.
 *
 * - open(): creates the traces and index tables if absent (one family, TTL, compression NONE
 *   since values are LZ4 already, pre-split per salt bucket on thrift2), retrying while HBase is
 *   still starting.
 * - write(batch): encodes the SpanBatch synchronously (the batch may be reused as soon as write
 *   returns), cuts the rows into put requests of at most maxBatchRows rows / maxBatchBytes, and
 *   hands them out with at most maxInFlight requests outstanding: write() resolves once its
 *   requests are all sent or queued within that bound (back-pressure), not when they are
 *   acknowledged. A request that fails transiently (connection refused/reset, timeout, region
 *   moving, server busy) is resent with exponential backoff and jitter; puts are idempotent.
 * - flush(): resolves when every request of every earlier write() is acknowledged, or rejects
 *   with the first request that failed for good (non-transient, or out of attempts). That failure
 *   is sticky: later write()/flush() calls reject with it too (the data is not stored).
 * - getTrace / searchIndex: the read side, for `tracefold trace ID` and trace search.
 */
import type { RuntimeContext, Sink } from "../../pipeline/contracts.js";
import { silentLogger, type Logger } from "../../pipeline/contracts.js";
import { TracefoldError } from "../../pipeline/errors.js";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import {
  decodeIndexRow,
  decodeTraceRow,
  HBaseError,
  indexFilter,
  indexScanRange,
  isRetriable,
  MutationList,
  saltSplitKeys,
  TraceEncoder,
  traceRowKey,
  toBytes,
  type CellLayout,
  type EncodedPuts,
  type HBaseClient,
  type HBaseSpan,
  type IndexEntry,
} from "./codec.js";
import { RestClient } from "./rest.js";
import { parseHostPort, Thrift2Client } from "./thrift2.js";

export interface HBaseSinkConfig {
  /** Which gateway to talk to (default "thrift2"). */
  client?: "thrift2" | "rest";
  /** Thrift2 gateway, "host:port" (binary protocol, unframed). */
  thrift?: string;
  /** REST gateway, "http://host:port". */
  rest?: string;
  /** Traces table (default "tracefold_traces"); "namespace:name" works. */
  table?: string;
  /** Entry-span index table (default "tracefold_trace_index"). */
  indexTable?: string;
  /** The one column family (default "d"). */
  family?: string;
  /** Cell TTL in seconds, both tables (default 7 days). */
  ttlSeconds?: number;
  /** Salt buckets of the traces table (default 16, at most 256). */
  saltBuckets?: number;
  /** Salt buckets of the index (default: saltBuckets); a search scans each bucket. */
  indexSaltBuckets?: number;
  /** "chunk" (default): one LZ4 cell per trace per write; "span": one cell per span. */
  layout?: CellLayout;
  /** "lz4" (default) or "none". */
  compression?: "lz4" | "none";
  /** Write the entry-span index (default true). */
  index?: boolean;
  /** Rows per put request (default 1000). */
  maxBatchRows?: number;
  /** Row+qualifier+value bytes per put request (default 4 MiB). */
  maxBatchBytes?: number;
  /** Put requests outstanding at most (default 4). */
  maxInFlight?: number;
  /** Thrift2 sockets (default: maxInFlight). */
  connections?: number;
  /** Attempts per request before giving up on a transient error (default 0: until it succeeds). */
  maxAttempts?: number;
  /** Backoff: base * 2^(attempt-1), capped, with jitter (defaults 50 ms, 5 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Per call timeout (default 30 s). */
  timeoutMs?: number;
  /**
   * Cut a trace whose details pass this many bytes (the span records' uncompressed size): its
   * later spans are not written, and counted (default 8 MiB; 0: no limit).
   */
  maxBytesPerTrace?: number;
  /** Create missing tables at open() (default true). */
  createTables?: boolean;
}

export interface SearchOptions {
  minDurationUs?: number;
  errorOnly?: boolean;
  /** Entries to return at most (default 20). */
  limit?: number;
}

export const DEFAULTS = {
  table: "tracefold_traces",
  indexTable: "tracefold_trace_index",
  family: "d",
  ttlSeconds: 7 * 24 * 3600,
  saltBuckets: 16,
  maxBatchRows: 1000,
  maxBatchBytes: 4 << 20,
  maxInFlight: 4,
  maxAttempts: 0,
  retryBaseMs: 50,
  retryMaxMs: 5_000,
  timeoutMs: 30_000,
  maxBytesPerTrace: 8 << 20,
} as const;

export class HBaseSink implements Sink {
  readonly table: string;
  readonly indexTable: string;
  readonly family: string;
  readonly encoder: TraceEncoder;
  client: HBaseClient | null = null;

  private readonly traceList: MutationList;
  private readonly indexList: MutationList;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private readonly waiters: Array<() => void> = [];
  private readonly pending = new Set<Promise<void>>();
  private failure: Error | null = null;
  private log: Logger = silentLogger;
  private closed = false;

  // metrics
  spansWritten = 0;
  cellsWritten = 0;
  rowsWritten = 0;
  indexRowsWritten = 0;
  /** Row + qualifier + value bytes acknowledged: traces table, index table. */
  dataBytesWritten = 0;
  indexDataBytesWritten = 0;
  requests = 0;
  retries = 0;
  failures = 0;
  spansAccepted = 0;

  constructor(readonly config: HBaseSinkConfig) {
    this.table = config.table ?? DEFAULTS.table;
    this.indexTable = config.indexTable ?? DEFAULTS.indexTable;
    this.family = config.family ?? DEFAULTS.family;
    this.maxInFlight = Math.max(1, config.maxInFlight ?? DEFAULTS.maxInFlight);
    this.encoder = new TraceEncoder({
      layout: config.layout,
      saltBuckets: config.saltBuckets ?? DEFAULTS.saltBuckets,
      indexSaltBuckets: config.indexSaltBuckets,
      compression: config.compression,
      index: config.index,
      maxBytesPerTrace: config.maxBytesPerTrace ?? DEFAULTS.maxBytesPerTrace,
    });
    const fam = toBytes(this.family);
    this.traceList = new MutationList(fam);
    this.indexList = new MutationList(fam);
    const which = config.client ?? "thrift2";
    if (which !== "thrift2" && which !== "rest") throw new TracefoldError("TF_CONFIG_INVALID", `client must be "thrift2" or "rest" (got "${which}")`, "hbase");
    if (which === "thrift2" && !config.thrift) throw new TracefoldError("TF_CONFIG_INVALID", "client thrift2 needs `thrift: host:port` (e.g. HBASE_THRIFT)", "hbase");
    if (which === "rest" && !config.rest) throw new TracefoldError("TF_CONFIG_INVALID", "client rest needs `rest: http://host:port` (e.g. HBASE_REST)", "hbase");
    if (config.layout !== undefined && config.layout !== "chunk" && config.layout !== "span") throw new TracefoldError("TF_CONFIG_INVALID", `layout must be "chunk" or "span" (got "${config.layout}")`, "hbase");
  }

  private makeClient(): HBaseClient {
    const timeoutMs = this.config.timeoutMs ?? DEFAULTS.timeoutMs;
    if ((this.config.client ?? "thrift2") === "rest") return new RestClient({ url: this.config.rest!, timeoutMs });
    return new Thrift2Client({ ...parseHostPort(this.config.thrift!), connections: this.config.connections ?? this.maxInFlight, timeoutMs });
  }

  async open(ctx?: RuntimeContext): Promise<void> {
    if (ctx) this.log = ctx.log;
    if (this.client) return;
    this.closed = false;
    const client = this.makeClient();
    if (this.config.createTables !== false) {
      const ttlSeconds = this.config.ttlSeconds ?? DEFAULTS.ttlSeconds;
      try {
        for (const [table, buckets] of [
          [this.table, this.encoder.saltBuckets],
          [this.indexTable, this.encoder.indexSaltBuckets],
        ] as const) {
          await this.retry(`create ${table}`, async () => {
            if (await client.tableExists(table)) return;
            await client.createTable({ table, family: this.family, ttlSeconds, splitKeys: saltSplitKeys(buckets) });
            this.log.info("hbase table created", { table, family: this.family, ttlSeconds, regions: buckets });
          });
        }
      } catch (e) {
        await client.close();
        throw e;
      }
    }
    this.client = client;
  }

  async write(batch: unknown): Promise<void> {
    if (this.failure) throw this.failure;
    const client = this.client;
    if (!client) throw new TracefoldError("TF_SINK_FATAL", "write before open()", "hbase");
    const b = batch as SpanBatch;
    if (!b || b.length === 0) return;
    // everything is encoded before the first await: the caller may reuse the batch afterwards
    this.encoder.encode(b, this.traceList, this.indexList);
    const reqs: EncodedPuts[] = [];
    this.split(client, this.table, this.traceList, reqs);
    this.split(client, this.indexTable, this.indexList, reqs);
    this.spansAccepted += b.length;
    for (const r of reqs) {
      if (this.inFlight >= this.maxInFlight) await new Promise<void>((res) => this.waiters.push(res));
      if (this.failure) throw this.failure;
      this.dispatch(client, r);
    }
  }

  private split(client: HBaseClient, table: string, list: MutationList, out: EncodedPuts[]): void {
    const maxRows = Math.max(1, this.config.maxBatchRows ?? DEFAULTS.maxBatchRows);
    const maxBytes = Math.max(1, this.config.maxBatchBytes ?? DEFAULTS.maxBatchBytes);
    let from = 0;
    let bytes = 0;
    for (let r = 0; r < list.rows; r++) {
      let rb = list.rowLen[r];
      const c0 = list.rowCell0[r];
      for (let c = c0; c < c0 + list.rowCells[r]; c++) rb += list.qLen[c] + list.vLen[c];
      if (r > from && (r - from >= maxRows || bytes + rb > maxBytes)) {
        out.push(client.encodePuts(table, list, from, r));
        from = r;
        bytes = 0;
      }
      bytes += rb;
    }
    if (list.rows > from) out.push(client.encodePuts(table, list, from, list.rows));
  }

  private dispatch(client: HBaseClient, r: EncodedPuts): void {
    this.inFlight++;
    const p: Promise<void> = this.retry(`put ${r.table} (${r.rows} rows)`, () => client.sendPuts(r))
      .then(
        () => {
          this.requests++;
          this.spansWritten += r.spans;
          this.cellsWritten += r.cells;
          if (r.table === this.indexTable) {
            this.indexRowsWritten += r.rows;
            this.indexDataBytesWritten += r.dataBytes;
          } else {
            this.rowsWritten += r.rows;
            this.dataBytesWritten += r.dataBytes;
          }
        },
        (e: Error) => {
          this.failures++;
          this.failure ??= e;
          this.log.error("hbase put failed", { table: r.table, rows: r.rows, error: e.message });
        },
      )
      .finally(() => {
        this.inFlight--;
        this.pending.delete(p);
        this.waiters.shift()?.();
      });
    this.pending.add(p);
  }

  /** Runs `fn`, retrying transient HBaseErrors with exponential backoff. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    // 0: until the gateway is back (the pipeline waits, Kafka pauses, nothing is dropped)
    const max = this.config.maxAttempts ?? DEFAULTS.maxAttempts;
    const base = this.config.retryBaseMs ?? DEFAULTS.retryBaseMs;
    const cap = this.config.retryMaxMs ?? DEFAULTS.retryMaxMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (!isRetriable(e) || (max > 0 && attempt >= max) || this.closed) {
          if (e instanceof HBaseError) throw new HBaseError(`${e.message.replace(/^hbase: /, "")}${attempt > 1 ? ` (after ${attempt} attempts)` : ""}`, e.retriable, e.kind);
          throw e;
        }
        this.retries++;
        if (attempt === 1 || attempt % 20 === 0) this.log.warn("hbase call failed, retrying (the pipeline waits)", { what, attempt, error: (e as Error).message });
        const ms = Math.min(cap, base * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        await new Promise((r) => setTimeout(r, ms));
      }
    }
  }

  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    this.closed = true;
    const c = this.client;
    this.client = null;
    await c?.close();
  }

  async healthcheck(): Promise<boolean> {
    return this.client !== null && this.failure === null && (await this.client.healthcheck());
  }

  /** The stored spans of a trace (one per span id and kind, by start), [] when none. */
  async getTrace(traceIdHex: string): Promise<HBaseSpan[]> {
    const client = this.requireClient();
    const key = traceRowKey(traceIdHex, this.encoder.saltBuckets);
    const row = await this.retry(`get ${this.table}`, () => client.getRow(this.table, key));
    return row ? decodeTraceRow(row) : [];
  }

  /**
   * Entry spans (roots and server spans) of `service` that started in [fromUs, toUs), at least
   * minDurationUs long, failed if errorOnly: newest first, at most `limit`. Scans every index salt
   * bucket (in parallel, maxInFlight at a time) with the filters evaluated by the region server.
   */
  async searchIndex(service: string, fromUs: number, toUs: number, q: SearchOptions = {}): Promise<IndexEntry[]> {
    const client = this.requireClient();
    const limit = Math.max(1, q.limit ?? 20);
    const filter = indexFilter(q.minDurationUs, q.errorOnly);
    const accept = (e: IndexEntry) =>
      e.service === service && e.startUs >= fromUs && e.startUs < toUs && (q.minDurationUs === undefined || e.durationUs >= q.minDurationUs) && (!q.errorOnly || e.error);
    const bucket = async (salt: number): Promise<IndexEntry[]> => {
      const range = indexScanRange(salt, service, fromUs, toUs);
      const got: IndexEntry[] = [];
      let start = range.startRow;
      for (;;) {
        const rows = await this.retry(`scan ${this.indexTable}`, () => client.scan(this.indexTable, { startRow: start, stopRow: range.stopRow, limit, filter }));
        for (const r of rows) {
          const e = decodeIndexRow(r);
          if (e && accept(e)) got.push(e);
        }
        if (rows.length < limit || got.length >= limit) return got;
        const last = rows[rows.length - 1].row;
        start = new Uint8Array(last.length + 1);
        start.set(last);
      }
    };
    const salts = Array.from({ length: this.encoder.indexSaltBuckets }, (_, i) => i);
    const all: IndexEntry[] = [];
    for (let i = 0; i < salts.length; i += this.maxInFlight) {
      const parts = await Promise.all(salts.slice(i, i + this.maxInFlight).map(bucket));
      for (const p of parts) all.push(...p);
    }
    all.sort((a, b) => b.startUs - a.startUs || (a.traceId < b.traceId ? -1 : a.traceId > b.traceId ? 1 : 0));
    return all.slice(0, limit);
  }

  private requireClient(): HBaseClient {
    if (!this.client) throw new TracefoldError("TF_SINK_FATAL", "hbase sink is not open", "hbase");
    return this.client;
  }

  metrics(): Record<string, number> {
    return {
      hbase_spans_accepted: this.spansAccepted,
      hbase_spans_written: this.spansWritten,
      hbase_cells_written: this.cellsWritten,
      hbase_rows_written: this.rowsWritten,
      hbase_index_rows_written: this.indexRowsWritten,
      hbase_data_bytes_written: this.dataBytesWritten,
      hbase_index_data_bytes_written: this.indexDataBytesWritten,
      hbase_value_bytes_raw: this.encoder.rawValueBytes,
      hbase_value_bytes_stored: this.encoder.storedValueBytes,
      hbase_requests: this.requests,
      hbase_retries: this.retries,
      hbase_failures: this.failures,
      hbase_in_flight: this.inFlight,
      hbase_spans_over_trace_bytes: this.encoder.spansOverTraceBytes,
      hbase_traces_cut_by_bytes: this.encoder.tracesCutByBytes,
    };
  }
}
