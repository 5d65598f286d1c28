/**
 * The same operations as thrift2.ts through HBase's REST gateway, with fetch and JSON:
 *
 *   table exists     GET    /<table>/exists            200 / 404
 *   create table     PUT    /<table>/schema            {"name", "ColumnSchema": [{name, TTL, VERSIONS, COMPRESSION}]}
 *   delete table     DELETE /<table>/schema
 *   put (many rows)  PUT    /<table>/batch             CellSet {"Row": [{"key": b64, "Cell": [{"column": b64, "$": b64}]}]}
 *   get row          GET    /<table>/<b64url key>?e=b64  (binary keys survive the path)
 *   scan             POST   /<table>/scanner           {"startRow", "endRow" (b64), "batch", "filter": JSON filter}
 *                    GET    <location>?n=rows ... until 204, then DELETE <location>
 *
 * Keys and values are base64 in JSON. A request body is built once per put request (kept for
 * retries). Socket errors, timeouts and 502/503/504 (or a 500 naming a transient HBase condition)
 * are retriable; 4xx and the rest are not, and carry the gateway's message.
 */
import {
  HBaseError,
  isTransientHBaseMessage,
  MutationList,
  splitTableName,
  toBytes,
  type EncodedPuts,
  type HBaseCell,
  type HBaseClient,
  type HBaseRow,
  type Put,
  type ScanSpec,
  type TableSpec,
  type ValueFilter,
} from "./codec.js";

export interface RestOptions {
  /** http://host:port */
  url: string;
  /** Per request, ms (default 30 s); table DDL gets ddlTimeoutMs (default 120 s). */
  timeoutMs?: number;
  ddlTimeoutMs?: number;
}

interface CellJson {
  column: string;
  timestamp?: number;
  $: string;
}
interface RowJson {
  key: string;
  Cell: CellJson[];
}

const TRANSIENT_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/** Reads a response body to its end, so the keep-alive connection is free again. */
async function drain(res: Response): Promise<void> {
  await res.arrayBuffer().catch(() => undefined);
}

function b64(b: Uint8Array, off = 0, len = b.length): string {
  return Buffer.from(b.buffer, b.byteOffset + off, len).toString("base64");
}

function unb64(s: string): Uint8Array {
  const b = Buffer.from(s, "base64");
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The gateway's JSON filter model (ScannerModel.FilterModel). */
export function restFilter(f: ValueFilter): unknown {
  if ("ge" in f) return { type: "ValueFilter", op: "GREATER_OR_EQUAL", comparator: { type: "BinaryComparator", value: b64(f.ge) } };
  if ("prefix" in f) return { type: "ValueFilter", op: "EQUAL", comparator: { type: "BinaryPrefixComparator", value: b64(f.prefix) } };
  const all = "all" in f;
  return { type: "FilterList", op: all ? "MUST_PASS_ALL" : "MUST_PASS_ONE", filters: (all ? f.all : f.any).map(restFilter) };
}

export class RestClient implements HBaseClient {
  readonly protocol = "rest" as const;
  readonly base: string;
  private readonly timeoutMs: number;
  private readonly ddlTimeoutMs: number;
  bytesSent = 0;
  calls = 0;

  constructor(opts: RestOptions | string) {
    const o = typeof opts === "string" ? { url: opts } : opts;
    this.base = o.url.replace(/\/+$/, "");
    if (!/^https?:\/\//.test(this.base)) throw new HBaseError(`REST endpoint must be an http(s) URL (got "${o.url}")`, false, "config");
    this.timeoutMs = o.timeoutMs ?? 30_000;
    this.ddlTimeoutMs = o.ddlTimeoutMs ?? 120_000;
  }

  private tablePath(table: string): string {
    const { ns, name } = splitTableName(table);
    return `${this.base}/${encodeURIComponent(ns === null ? name : `${ns}:${name}`)}`;
  }

  /** One HTTP request; transport failures and 5xx become HBaseError (retriable or not). */
  private async request(method: string, url: string, body: string | undefined, what: string, timeoutMs = this.timeoutMs, okStatuses: number[] = [200, 201]): Promise<Response> {
    this.calls++;
    if (body !== undefined) this.bytesSent += body.length;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: body !== undefined ? { "content-type": "application/json", accept: "application/json" } : { accept: "application/json" },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === "TimeoutError" || err.name === "AbortError") throw new HBaseError(`rest ${what}: no answer within ${timeoutMs} ms from ${this.base}`, true, "timeout");
      const code = err.cause?.code ?? "";
      const detail = `${code} ${err.cause?.message ?? err.message}`.trim();
      throw new HBaseError(`rest ${what}: ${detail} (${this.base})`, TRANSIENT_CODES.has(code) || /other side closed|socket|reset|refused/i.test(detail), "io");
    }
    if (okStatuses.includes(res.status)) return res;
    const text = (await res.text().catch(() => "")).trim().slice(0, 500);
    const transient = res.status === 502 || res.status === 503 || res.status === 504 || res.status === 429 || (res.status >= 500 && isTransientHBaseMessage(text));
    throw Object.assign(new HBaseError(`rest ${what}: HTTP ${res.status}${text ? `: ${text}` : ""}`, transient, "http"), { status: res.status });
  }

  async tableExists(table: string): Promise<boolean> {
    try {
      await drain(await this.request("GET", `${this.tablePath(table)}/exists`, undefined, `tableExists ${table}`));
      return true;
    } catch (e) {
      if ((e as { status?: number }).status === 404) return false;
      throw e;
    }
  }

  async createTable(spec: TableSpec): Promise<void> {
    if (await this.tableExists(spec.table)) return;
    const { ns, name } = splitTableName(spec.table);
    const body = JSON.stringify({
      name: ns === null ? name : `${ns}:${name}`,
      ColumnSchema: [{ name: spec.family, TTL: String(Math.max(1, Math.floor(spec.ttlSeconds))), VERSIONS: String(spec.maxVersions ?? 1), COMPRESSION: "NONE", BLOOMFILTER: "ROW" }],
    });
    try {
      await drain(await this.request("PUT", `${this.tablePath(spec.table)}/schema`, body, `createTable ${spec.table}`, this.ddlTimeoutMs));
    } catch (e) {
      if (/TableExistsException/.test((e as Error).message)) return;
      throw e;
    }
  }

  async deleteTable(table: string): Promise<void> {
    if (!(await this.tableExists(table))) return;
    await drain(await this.request("DELETE", `${this.tablePath(table)}/schema`, undefined, `deleteTable ${table}`, this.ddlTimeoutMs));
  }

  encodePuts(table: string, list: MutationList, from: number, to: number): EncodedPuts {
    const a = list.arena.buf;
    const famPrefix = Buffer.concat([Buffer.from(list.family), Buffer.from(":")]);
    const col = Buffer.allocUnsafe(famPrefix.length + 64);
    famPrefix.copy(col, 0);
    let body = '{"Row":[';
    let cells = 0;
    for (let r = from; r < to; r++) {
      if (r > from) body += ",";
      body += `{"key":"${b64(a, list.rowOff[r], list.rowLen[r])}","Cell":[`;
      const c0 = list.rowCell0[r];
      const nc = list.rowCells[r];
      for (let c = c0; c < c0 + nc; c++) {
        const ql = list.qLen[c];
        let colB64: string;
        if (ql <= 64) {
          col.set(a.subarray(list.qOff[c], list.qOff[c] + ql), famPrefix.length);
          colB64 = col.toString("base64", 0, famPrefix.length + ql);
        } else colB64 = Buffer.concat([famPrefix, a.subarray(list.qOff[c], list.qOff[c] + ql)]).toString("base64");
        body += `${c > c0 ? "," : ""}{"column":"${colB64}","$":"${b64(a, list.vOff[c], list.vLen[c])}"}`;
      }
      cells += nc;
      body += "]}";
    }
    body += "]}";
    return { table, rows: to - from, cells, spans: list.spansIn(from, to), dataBytes: list.dataBytes(from, to), body };
  }

  async sendPuts(p: EncodedPuts): Promise<void> {
    // the path's row is a placeholder: every row of the CellSet carries its own key
    const res = await this.request("PUT", `${this.tablePath(p.table)}/batch`, p.body as string, `put ${p.table} (${p.rows} rows)`);
    await drain(res);
  }

  async putMultiple(table: string, puts: Put[]): Promise<void> {
    const byFamily = new Map<string, Put[]>();
    for (const p of puts)
      for (const c of p.cells) {
        const f = typeof c.family === "string" ? c.family : new TextDecoder().decode(c.family);
        let l = byFamily.get(f);
        if (!l) byFamily.set(f, (l = []));
        l.push({ row: p.row, cells: [c] });
      }
    for (const [f, ps] of byFamily) {
      const list = new MutationList(toBytes(f));
      list.addPuts(ps);
      await this.sendPuts(this.encodePuts(table, list, 0, list.rows));
    }
  }

  private static rows(json: { Row?: RowJson[] }): HBaseRow[] {
    return (json.Row ?? []).map((r) => ({
      row: unb64(r.key),
      cells: (r.Cell ?? []).map((c): HBaseCell => {
        const col = unb64(c.column);
        const colon = col.indexOf(0x3a);
        return { family: col.subarray(0, colon), qualifier: col.subarray(colon + 1), value: unb64(c.$), timestamp: c.timestamp ?? 0 };
      }),
    }));
  }

  async getRow(table: string, row: Uint8Array): Promise<HBaseRow | null> {
    const key = Buffer.from(row.buffer, row.byteOffset, row.byteLength).toString("base64url");
    let res: Response;
    try {
      res = await this.request("GET", `${this.tablePath(table)}/${key}?e=b64`, undefined, `get ${table}`);
    } catch (e) {
      if ((e as { status?: number }).status === 404) return null; // no such row (or table: open() creates it)
      throw e;
    }
    const rows = RestClient.rows((await res.json()) as { Row?: RowJson[] });
    return rows.length === 0 || rows[0].cells.length === 0 ? null : rows[0];
  }

  async scan(table: string, spec: ScanSpec): Promise<HBaseRow[]> {
    const model: Record<string, unknown> = { startRow: b64(spec.startRow), endRow: b64(spec.stopRow), batch: Math.max(1, Math.min(spec.limit, 1000)), maxVersions: 1, cacheBlocks: true };
    if (spec.filter) model.filter = JSON.stringify(restFilter(spec.filter));
    const created = await this.request("POST", `${this.tablePath(table)}/scanner`, JSON.stringify(model), `scan ${table}`);
    await drain(created);
    const loc = created.headers.get("location");
    if (!loc) throw new HBaseError(`rest scan ${table}: no scanner location in the answer`, false, "http");
    const out: HBaseRow[] = [];
    try {
      while (out.length < spec.limit) {
        const res = await this.request("GET", `${loc}?n=${Math.min(1000, spec.limit - out.length)}`, undefined, `scan ${table}`, this.timeoutMs, [200, 204]);
        if (res.status === 204) break;
        const rows = RestClient.rows((await res.json()) as { Row?: RowJson[] });
        if (rows.length === 0) break;
        // a row may come in parts (cells per answer are limited): merge consecutive parts
        for (const r of rows) {
          const last = out[out.length - 1];
          if (last && Buffer.compare(last.row, r.row) === 0) last.cells.push(...r.cells);
          else out.push(r);
        }
      }
    } finally {
      await this.request("DELETE", loc, undefined, `close scanner ${table}`).then(drain, () => undefined);
    }
    return out.slice(0, spec.limit);
  }

  async healthcheck(): Promise<boolean> {
    try {
      await drain(await this.request("GET", `${this.base}/version/cluster`, undefined, "version", 5_000));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {}
}
