/**
 * The HBase sink against a real HBase (scripts/services.sh starts HBase 2.6 standalone with its
 * Thrift2 and REST gateways, or HBASE_THRIFT / HBASE_REST point at your own): tables created if
 * absent, spans read back equal to the generator's rows (both gateways, both cell layouts),
 * idempotent rewrites, the entry-span index with its time, duration and error filters, transient
 * faults retried (refused connections, sockets killed mid-batch by a proxy) and a non-transient
 * error surfaced.
 */
import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Interner } from "../pipeline/intern.js";
import { F_ERROR, F_HAS_LINK, F_HAS_PARENT, F_SHARED, KIND_CLIENT, KIND_SERVER, spanIdHex, traceIdHex, type SpanBatch } from "../pipeline/span-batch.js";
import { ReplayGenerator } from "../sources/replay/generator.js";
import { decodeTraceRow, traceRowKey, type HBaseSpan } from "../sinks/hbase/codec.js";
import { HBaseSink, type HBaseSinkConfig } from "../sinks/hbase/sink.js";
import { Thrift2Client, parseHostPort } from "../sinks/hbase/thrift2.js";
import { serviceEnv } from "./support/services.js";

const THRIFT = serviceEnv("HBASE_THRIFT");
const REST = serviceEnv("HBASE_REST");
const RUN = `${process.pid}_${Date.now() % 100000}`;
const created = new Set<string>();
let admin: Thrift2Client;

function tables(tag: string): { table: string; indexTable: string } {
  const t = { table: `tf_test_${RUN}_${tag}`, indexTable: `tf_test_${RUN}_${tag}_ix` };
  created.add(t.table);
  created.add(t.indexTable);
  return t;
}

function endpoint(client: "thrift2" | "rest"): Partial<HBaseSinkConfig> {
  return client === "thrift2" ? { client, thrift: THRIFT } : { client, rest: REST };
}

let reachable: Promise<boolean>;
beforeAll(() => {
  admin = new Thrift2Client(THRIFT);
  reachable = admin.healthcheck();
});
// every test fails (none is skipped) when HBase is not there
beforeEach(async () => {
  if (!(await reachable)) throw new Error(`HBase Thrift2 gateway at ${THRIFT} does not answer: start HBase with \`bash scripts/services.sh up hbase\` (or point HBASE_THRIFT / HBASE_REST at yours)`);
});

afterAll(async () => {
  await Promise.all([...created].map((t) => admin.deleteTable(t).catch(() => {})));
  await admin?.close();
});

interface Input {
  interner: Interner;
  batches: SpanBatch[];
  rows: number;
}

/** Generator traffic (copied batches), plus one Zipkin shared pair (a SERVER half reusing its CLIENT's id). */
function generate(seed: number, spans: number, tracesPerSecond = 200): Input {
  const interner = new Interner();
  const gen = new ReplayGenerator({ seed, services: 12, partitions: 2, batchSize: 1500, tracesPerSecond }, interner);
  const batches: SpanBatch[] = [];
  gen.generate(spans, (b) => batches.push(b.clone()));
  const last = batches[batches.length - 1];
  const src = last.clone();
  for (let i = 0; i < src.length; i++) {
    if (src.kind[i] !== KIND_CLIENT) continue;
    const j = last.copyRowFrom(src, i);
    last.kind[j] = KIND_SERVER;
    last.flags[j] |= F_SHARED;
    last.service[j] = interner.internString("shared-server");
    last.name[j] = interner.internString("GET /shared");
    break;
  }
  return { interner, batches, rows: batches.reduce((n, b) => n + b.length, 0) };
}

interface Expected {
  spanId: string;
  parentSpanId: string | null;
  kind: number;
  error: boolean;
  service: string;
  name: string;
  startUs: number;
  durationUs: number;
  peer: string | null;
  route: string | null;
  shared: boolean;
}

function expectedByTrace(input: Input): Map<string, Expected[]> {
  const out = new Map<string, Expected[]>();
  const name = (id: number) => (id ? input.interner.name(id) : null);
  for (const b of input.batches)
    for (let i = 0; i < b.length; i++) {
      const t = traceIdHex(b.tid, i * 4);
      let l = out.get(t);
      if (!l) out.set(t, (l = []));
      l.push({
        spanId: spanIdHex(b.sid, i * 2),
        parentSpanId: b.flags[i] & F_HAS_PARENT ? spanIdHex(b.pid, i * 2) : null,
        kind: b.kind[i],
        error: (b.flags[i] & F_ERROR) !== 0,
        service: input.interner.name(b.service[i]),
        name: input.interner.name(b.name[i]),
        startUs: b.startUs[i],
        durationUs: b.durUs[i],
        peer: name(b.peer[i]),
        route: name(b.route[i]),
        shared: (b.flags[i] & F_SHARED) !== 0,
      });
    }
  for (const l of out.values()) l.sort(bySpan);
  return out;
}

function bySpan(a: { spanId: string; kind: number }, b: { spanId: string; kind: number }): number {
  return a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : a.kind - b.kind;
}

function view(s: HBaseSpan): Expected {
  return { spanId: s.spanId, parentSpanId: s.parentSpanId, kind: s.kind, error: s.error, service: s.service, name: s.name, startUs: s.startUs, durationUs: s.durationUs, peer: s.peer, route: s.route, shared: s.shared };
}

async function writeAll(sink: HBaseSink, input: Input): Promise<void> {
  for (const b of input.batches) await sink.write(b);
  await sink.flush();
}

/** Every trace read back equals its input rows. */
async function checkReadBack(sink: HBaseSink, expected: Map<string, Expected[]>, sample = Infinity): Promise<number> {
  let n = 0;
  const todo = [...expected].slice(0, sample);
  for (let i = 0; i < todo.length; i += 8) {
    const part = todo.slice(i, i + 8);
    const got = await Promise.all(part.map(([tid]) => sink.getTrace(tid)));
    part.forEach(([tid, rows], k) => {
      expect(got[k].map(view).sort(bySpan), `trace ${tid}`).toEqual(rows);
      n += got[k].length;
    });
  }
  return n;
}

describe.each(["thrift2", "rest"] as const)("hbase sink via %s (real HBase)", (client) => {
  it("creates its tables if absent, and opens again on existing ones", async () => {
    const t = tables(`create_${client}`);
    expect(await admin.tableExists(t.table)).toBe(false);
    expect(await admin.tableExists(t.indexTable)).toBe(false);
    const sink = new HBaseSink({ ...endpoint(client), ...t, ttlSeconds: 3600 });
    await sink.open();
    expect(await admin.tableExists(t.table)).toBe(true);
    expect(await admin.tableExists(t.indexTable)).toBe(true);
    expect(await sink.healthcheck()).toBe(true);
    await sink.close();
    const again = new HBaseSink({ ...endpoint(client), ...t });
    await again.open();
    await again.close();
  });

  for (const layout of ["chunk", "span"] as const) {
    it(`stores generator spans and reads every trace back (${layout} layout)`, async () => {
      const input = generate(client === "thrift2" ? 11 : 12, 4000);
      const expected = expectedByTrace(input);
      const sink = new HBaseSink({ ...endpoint(client), ...tables(`rt_${client}_${layout}`), layout, maxBatchRows: 37, maxInFlight: 3 });
      await sink.open();
      await writeAll(sink, input);
      expect(sink.metrics().hbase_spans_written).toBe(input.rows);
      expect(sink.metrics().hbase_failures).toBe(0);
      expect(await checkReadBack(sink, expected)).toBe(input.rows);
      // the Zipkin shared pair: one span id, two halves
      const shared = [...expected.values()].find((l) => l.some((s) => s.shared))!;
      const pair = shared.filter((s) => s.spanId === shared.find((x) => x.shared)!.spanId);
      expect(pair.map((s) => s.kind).sort()).toEqual([KIND_SERVER, KIND_CLIENT].sort());
      expect(await sink.getTrace("00000000000000000000000000000001")).toEqual([]);
      await sink.close();
    });
  }

  it("writing the same batches again is harmless: same cells, same spans", async () => {
    const input = generate(21, 2000);
    const expected = expectedByTrace(input);
    const t = tables(`idem_${client}`);
    const sink = new HBaseSink({ ...endpoint(client), ...t });
    await sink.open();
    await writeAll(sink, input);
    const tids = [...expected.keys()].slice(0, 20);
    const cellsOnce = await Promise.all(tids.map((tid) => admin.getRow(t.table, traceRowKey(tid, 16))));
    await writeAll(sink, input);
    const cellsTwice = await Promise.all(tids.map((tid) => admin.getRow(t.table, traceRowKey(tid, 16))));
    const shape = (r: Awaited<ReturnType<Thrift2Client["getRow"]>>) => r!.cells.map((c) => [Buffer.from(c.qualifier).toString("hex"), Buffer.from(c.value).toString("hex")]);
    expect(cellsTwice.map(shape)).toEqual(cellsOnce.map(shape));
    for (const r of cellsTwice) expect(decodeTraceRow(r!).length).toBeGreaterThan(0);
    expect(await checkReadBack(sink, expected)).toBe(input.rows);
    await sink.close();
  });

  it("maxBytesPerTrace cuts a trace across writes: a prefix within the limit is stored, the rest counted", async () => {
    const input = generate(client === "thrift2" ? 41 : 42, 3000);
    const limit = 1200;
    // the documented size of a span record: 29 bytes, + 8 with a parent, + 24 with a link, + each
    // name's UTF-8 bytes + 1
    const rec = (b: SpanBatch, i: number) => {
      let n = 29 + (b.flags[i] & F_HAS_PARENT ? 8 : 0) + (b.flags[i] & F_HAS_LINK ? 24 : 0);
      for (const id of [b.service[i], b.name[i], b.peer[i], b.addr[i], b.dbSystem[i], b.dbNamespace[i], b.msgDest[i], b.route[i]]) if (id > 0) n += Buffer.byteLength(input.interner.name(id)) + 1;
      return n;
    };
    // expected per trace, in arrival order over all writes
    const kept = new Map<string, Set<string>>();
    const used = new Map<string, number>();
    let over = 0;
    let cut = 0;
    for (const b of input.batches)
      for (let i = 0; i < b.length; i++) {
        const t = traceIdHex(b.tid, i * 4);
        if (!kept.has(t)) kept.set(t, new Set());
        const u = used.get(t) ?? 0;
        if (u <= limit && u + rec(b, i) <= limit) {
          used.set(t, u + rec(b, i));
          kept.get(t)!.add(`${spanIdHex(b.sid, i * 2)}/${b.kind[i]}`);
        } else {
          if (u <= limit) cut++;
          used.set(t, limit + 1);
          over++;
        }
      }
    expect(cut, "the input has traces over the limit").toBeGreaterThan(3);
    expect([...used.values()].filter((u) => u <= limit).length, "and traces within it").toBeGreaterThan(3);
    const sink = new HBaseSink({ ...endpoint(client), ...tables(`cut_${client}`), maxBytesPerTrace: limit });
    await sink.open();
    await writeAll(sink, input);
    const m = sink.metrics();
    expect(m.hbase_traces_cut_by_bytes).toBe(cut);
    expect(m.hbase_spans_over_trace_bytes).toBe(over);
    expect(m.hbase_spans_written).toBe(input.rows - over);
    const tids = [...kept.keys()];
    for (let i = 0; i < tids.length; i += 8) {
      const part = tids.slice(i, i + 8);
      const got = await Promise.all(part.map((t) => sink.getTrace(t)));
      part.forEach((t, k) => expect(new Set(got[k].map((s) => `${s.spanId}/${s.kind}`)), `trace ${t}`).toEqual(kept.get(t)));
    }
    await sink.close();
  });

  it("finds traces through the entry-span index by service and time; duration and error filters work", async () => {
    const input = generate(31, 6000, 50); // ~6 s of event time
    const t = tables(`index_${client}`);
    const sink = new HBaseSink({ ...endpoint(client), ...t, indexSaltBuckets: 4 });
    await sink.open();
    await writeAll(sink, input);
    // the entry spans, as the index should hold them
    const entries: Array<{ traceId: string; spanId: string; service: string; startUs: number; durationUs: number; error: boolean }> = [];
    for (const b of input.batches)
      for (let i = 0; i < b.length; i++)
        if ((b.flags[i] & F_HAS_PARENT) === 0 || b.kind[i] === KIND_SERVER)
          entries.push({ traceId: traceIdHex(b.tid, i * 4), spanId: spanIdHex(b.sid, i * 2), service: input.interner.name(b.service[i]), startUs: b.startUs[i], durationUs: b.durUs[i], error: (b.flags[i] & F_ERROR) !== 0 });
    const counts = new Map<string, number>();
    for (const e of entries) counts.set(e.service, (counts.get(e.service) ?? 0) + 1);
    const service = [...counts].sort((a, b) => b[1] - a[1])[0][0];
    const mine = entries.filter((e) => e.service === service);
    const starts = mine.map((e) => e.startUs).sort((a, b) => a - b);
    const from = starts[Math.floor(starts.length / 4)];
    const to = starts[Math.floor((starts.length * 3) / 4)];
    const key = (e: { traceId: string; spanId: string }) => `${e.traceId}/${e.spanId}`;

    // one trace by its own start
    const one = mine[7];
    const hit = await sink.searchIndex(service, one.startUs, one.startUs + 1, { limit: 50 });
    expect(hit.map(key)).toContain(key(one));
    expect(await sink.getTrace(hit[0].traceId)).not.toEqual([]);

    // a time range: exactly the entries in [from, to), newest first
    const inRange = mine.filter((e) => e.startUs >= from && e.startUs < to);
    const got = await sink.searchIndex(service, from, to, { limit: 100_000 });
    expect(got.map(key).sort()).toEqual(inRange.map(key).sort());
    for (let i = 1; i < got.length; i++) expect(got[i - 1].startUs).toBeGreaterThanOrEqual(got[i].startUs);
    expect(got.every((e) => e.service === service && e.name.length > 0)).toBe(true);

    // limit: the newest ones
    const top = await sink.searchIndex(service, from, to, { limit: 5 });
    expect(top.map((e) => e.startUs)).toEqual(inRange.map((e) => e.startUs).sort((a, b) => b - a).slice(0, 5));

    // duration filter
    const durs = inRange.map((e) => e.durationUs).sort((a, b) => a - b);
    const minDur = durs[Math.floor(durs.length * 0.8)] + 0.5;
    const slow = await sink.searchIndex(service, from, to, { minDurationUs: minDur, limit: 100_000 });
    expect(slow.map(key).sort()).toEqual(inRange.filter((e) => e.durationUs >= minDur).map(key).sort());
    expect(slow.length).toBeGreaterThan(0);

    // error filter, alone and with the duration filter
    const all = await sink.searchIndex(service, 0, Number.MAX_SAFE_INTEGER, { errorOnly: true, limit: 100_000 });
    expect(all.map(key).sort()).toEqual(mine.filter((e) => e.error).map(key).sort());
    expect(all.length).toBeGreaterThan(0);
    const minErrDur = all.map((e) => e.durationUs).sort((a, b) => a - b)[Math.floor(all.length / 2)];
    const slowErr = await sink.searchIndex(service, 0, Number.MAX_SAFE_INTEGER, { errorOnly: true, minDurationUs: minErrDur, limit: 100_000 });
    expect(slowErr.map(key).sort()).toEqual(mine.filter((e) => e.error && e.durationUs >= minErrDur).map(key).sort());

    expect(await sink.searchIndex("no-such-service", 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
    await sink.close();
  });

  it("retries transient faults (refused connections, sockets killed mid-batch) and the data arrives", async () => {
    const target = client === "thrift2" ? parseHostPort(THRIFT) : { host: new URL(REST).hostname, port: Number(new URL(REST).port) };
    const port = await freePort();
    const input = generate(41, 3000);
    const expected = expectedByTrace(input);
    const sink = new HBaseSink({ ...endpoint(client), thrift: `127.0.0.1:${port}`, rest: `http://127.0.0.1:${port}`, ...tables(`fault_${client}`), retryBaseMs: 20, retryMaxMs: 400, maxAttempts: 12 });
    // nothing listens yet: open() keeps retrying until the proxy comes up
    const opening = sink.open();
    await new Promise((r) => setTimeout(r, 400));
    // then the first two connections are killed once they carried 20 kB: in the middle of a put
    const proxy = await startProxy(port, target, { killFirst: 2, afterBytes: 20_000 });
    try {
      await opening;
      await writeAll(sink, input);
      expect(proxy.killed).toBe(2);
      const m = sink.metrics();
      expect(m.hbase_retries).toBeGreaterThanOrEqual(3);
      expect(m.hbase_failures).toBe(0);
      expect(m.hbase_spans_written).toBe(input.rows);
      expect(await checkReadBack(sink, expected)).toBe(input.rows);
    } finally {
      await sink.close();
      await proxy.close();
    }
  });

  it("surfaces a non-transient error: a table that does not exist", async () => {
    const t = tables(`missing_${client}`);
    const sink = new HBaseSink({ ...endpoint(client), ...t, createTables: false, retryBaseMs: 10, maxAttempts: 3 });
    await sink.open();
    const input = generate(51, 500);
    for (const b of input.batches) await sink.write(b).catch(() => {});
    const err = await sink.flush().then(
      () => null,
      (e: Error & { code?: string; retriable?: boolean }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe("TF_SINK_FATAL");
    expect(err!.retriable).toBe(false);
    expect(err!.message).toMatch(/does not exist|TableNotFound|Not found/);
    expect(err!.message).toContain(t.table);
    // sticky: the next write and flush say so too, and health is down
    await expect(sink.write(input.batches[0])).rejects.toThrow(err!.message);
    expect(await sink.healthcheck()).toBe(false);
    expect(sink.metrics().hbase_failures).toBeGreaterThan(0);
    await sink.close();
  });
});

describe("hbase sink configuration", () => {
  it("names the missing endpoint", () => {
    expect(() => new HBaseSink({ client: "thrift2" })).toThrow(/thrift: host:port/);
    expect(() => new HBaseSink({ client: "rest" })).toThrow(/rest: http/);
    expect(() => new HBaseSink({ client: "thrift2", thrift: THRIFT, saltBuckets: 0 })).toThrow(/saltBuckets/);
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A TCP proxy to `target` on `port`; its first `killFirst` connections die after `afterBytes` from the client. */
async function startProxy(port: number, target: { host: string; port: number }, opts: { killFirst: number; afterBytes: number }) {
  const sockets = new Set<net.Socket>();
  const state = { killed: 0, connections: 0 };
  const server = net.createServer((c) => {
    const doomed = state.connections++ < opts.killFirst;
    const up = net.connect(target.port, target.host);
    sockets.add(c);
    sockets.add(up);
    let bytes = 0;
    c.on("data", (d: Buffer) => {
      bytes += d.length;
      if (doomed && bytes > opts.afterBytes) {
        state.killed++;
        up.write(d.subarray(0, d.length >> 1));
        c.destroy();
        up.destroy();
        return;
      }
      up.write(d);
    });
    up.on("data", (d: Buffer) => c.write(d));
    const end = () => {
      c.destroy();
      up.destroy();
      sockets.delete(c);
      sockets.delete(up);
    };
    c.on("error", end);
    up.on("error", end);
    c.on("close", end);
    up.on("close", end);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    get killed() {
      return state.killed;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
