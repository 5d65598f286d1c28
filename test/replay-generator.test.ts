import { describe, expect, it } from "vitest";
import { Interner } from "../pipeline/intern.js";
import {
  F_ERROR,
  F_HAS_PARENT,
  KIND_CLIENT,
  KIND_CONSUMER,
  KIND_INTERNAL,
  KIND_PRODUCER,
  KIND_SERVER,
  SpanBatch,
  spanIdHex,
  traceIdHex,
} from "../pipeline/span-batch.js";
import { ReplayGenerator, type ReplayOptions } from "../sources/replay/generator.js";
import { murmur2, partitionOfTrace, Rng } from "../sources/replay/rng.js";
import type { TruthEdge, TruthService } from "../sources/replay/truth.js";

/** A row copied out of a batch (test-side only: objects and strings are fine here). */
interface Row {
  partition: number;
  batch: number;
  tid: string;
  sid: string;
  pid: string;
  hasParent: boolean;
  kind: number;
  failed: boolean;
  start: number;
  dur: number;
  service: string;
  name: string;
  peer: string;
  addr: string;
  dbSystem: string;
  dbNamespace: string;
  msgDest: string;
  route: string;
}

function collect(opts: ReplayOptions, spans: number): { gen: ReplayGenerator; rows: Row[]; batchSizes: number[] } {
  const interner = new Interner();
  const gen = new ReplayGenerator(opts, interner);
  const rows: Row[] = [];
  const batchSizes: number[] = [];
  const n = (id: number): string => interner.name(id);
  gen.generate(spans, (b: SpanBatch) => {
    const batch = batchSizes.length;
    batchSizes.push(b.length);
    for (let i = 0; i < b.length; i++) {
      rows.push({
        partition: b.partition,
        batch,
        tid: traceIdHex(b.tid, i * 4),
        sid: spanIdHex(b.sid, i * 2),
        pid: spanIdHex(b.pid, i * 2),
        hasParent: (b.flags[i] & F_HAS_PARENT) !== 0,
        kind: b.kind[i],
        failed: (b.flags[i] & F_ERROR) !== 0,
        start: b.startUs[i],
        dur: b.durUs[i],
        service: n(b.service[i]),
        name: n(b.name[i]),
        peer: n(b.peer[i]),
        addr: n(b.addr[i]),
        dbSystem: n(b.dbSystem[i]),
        dbNamespace: n(b.dbNamespace[i]),
        msgDest: n(b.msgDest[i]),
        route: n(b.route[i]),
      });
    }
  });
  return { gen, rows, batchSizes };
}

/** FNV-style checksum over every column of every emitted row, in emission order. */
function checksum(opts: ReplayOptions, spans: number): { sum: number; rows: number; gen: ReplayGenerator } {
  const gen = new ReplayGenerator(opts, new Interner());
  let h = 0x811c9dc5;
  const mix = (x: number): void => {
    h = Math.imul(h ^ (x >>> 0), 0x01000193);
    h = Math.imul(h ^ Math.floor(x / 4294967296), 0x01000193);
  };
  const rows = gen.generate(spans, (b) => {
    mix(b.partition);
    for (let i = 0; i < b.length; i++) {
      for (let k = 0; k < 4; k++) mix(b.tid[i * 4 + k]);
      for (let k = 0; k < 2; k++) mix(b.sid[i * 2 + k]), mix(b.pid[i * 2 + k]);
      mix(b.startUs[i]);
      mix(b.durUs[i]);
      mix(b.kind[i] * 256 + b.flags[i]);
      for (const col of [b.service, b.name, b.peer, b.addr, b.dbSystem, b.dbNamespace, b.msgDest, b.route]) mix(col[i]);
    }
  });
  return { sum: h >>> 0, rows, gen };
}

/**
 * A deliberately naive reference fold of DESIGN.md section 3 over the whole stream (no windows:
 * the stream is shorter than any window and never late). Written independently of truth.ts.
 */
function referenceFold(rows: Row[]) {
  const edges = new Map<string, TruthEdge>();
  const edgesByMinute = new Map<number, Map<string, TruthEdge>>();
  const services = new Map<string, TruthService>();
  const svc = (name: string): TruthService => {
    let s = services.get(name);
    if (!s) services.set(name, (s = { spans: 0, orphanSpans: 0, unpairedClient: 0, unpairedServer: 0, duplicateSpans: 0, errorSpans: 0, serverSpans: 0 }));
    return s;
  };
  const seen = new Set<string>();
  const distinct: Row[] = [];
  let duplicates = 0;
  for (const r of rows) {
    const key = `${r.tid}/${r.sid}/${r.kind}`;
    if (seen.has(key)) {
      duplicates++;
      svc(r.service).duplicateSpans++;
      continue;
    }
    seen.add(key);
    distinct.push(r);
  }
  const clientHalf = new Map<string, Row>(); // tid/spanId of CLIENT and PRODUCER
  const serverHalf = new Map<string, Row>(); // tid/parentId of SERVER and CONSUMER
  const spanIds = new Set<string>();
  const traces = new Map<string, { roots: number; orphans: number }>();
  for (const r of distinct) {
    spanIds.add(`${r.tid}/${r.sid}`);
    if (r.kind === KIND_CLIENT || r.kind === KIND_PRODUCER) clientHalf.set(`${r.tid}/${r.sid}`, r);
    if ((r.kind === KIND_SERVER || r.kind === KIND_CONSUMER) && r.hasParent) serverHalf.set(`${r.tid}/${r.pid}`, r);
  }
  const addCall = (client: string, server: string, type: TruthEdge["type"], minuteStart: number, c: Row | undefined, s: Row | undefined, lag: number): void => {
    const key = `${client}|${server}|${type}`;
    const m = Math.floor(minuteStart / 60e6);
    let perMinute = edgesByMinute.get(m);
    if (!perMinute) edgesByMinute.set(m, (perMinute = new Map()));
    for (const map of [edges, perMinute]) {
      let e = map.get(key);
      if (!e) {
        e = { client, server, type, calls: 0, clientCalls: 0, serverCalls: 0, paired: 0, failed: 0, failedClient: 0, failedServer: 0,
          clientDurationSumUs: 0, clientDurationMaxUs: 0, serverDurationSumUs: 0, serverDurationMaxUs: 0, lagCount: 0, lagSumUs: 0, lagMaxUs: 0 };
        map.set(key, e);
      }
      e.calls++;
      if (c) {
        e.clientCalls++;
        e.clientDurationSumUs += c.dur;
        e.clientDurationMaxUs = Math.max(e.clientDurationMaxUs, c.dur);
        if (c.failed) e.failedClient++;
      }
      if (s) {
        e.serverCalls++;
        e.serverDurationSumUs += s.dur;
        e.serverDurationMaxUs = Math.max(e.serverDurationMaxUs, s.dur);
        if (s.failed) e.failedServer++;
      }
      if (c && s) e.paired++;
      if (c?.failed || s?.failed) e.failed++;
      if (lag >= 0) {
        e.lagCount++;
        e.lagSumUs += lag;
        e.lagMaxUs = Math.max(e.lagMaxUs, lag);
      }
    }
  };
  for (const r of distinct) {
    const s = svc(r.service);
    s.spans++;
    if (r.failed) s.errorSpans++;
    let t = traces.get(r.tid);
    if (!t) traces.set(r.tid, (t = { roots: 0, orphans: 0 }));
    if (!r.hasParent) t.roots++;
    else if (!spanIds.has(`${r.tid}/${r.pid}`)) {
      t.orphans++;
      s.orphanSpans++;
    }
    if (r.kind === KIND_SERVER || r.kind === KIND_CONSUMER) {
      s.serverSpans++;
      if (!r.hasParent) addCall("user", r.service, "virtual", r.start, undefined, r, -1);
      else if (!clientHalf.has(`${r.tid}/${r.pid}`)) s.unpairedServer++;
    } else if (r.kind === KIND_CLIENT && (r.dbSystem || r.dbNamespace)) {
      addCall(r.service, r.peer || r.addr || r.dbNamespace || r.dbSystem, "database", r.start, r, undefined, -1);
    } else if (r.kind === KIND_CLIENT || r.kind === KIND_PRODUCER) {
      const server = serverHalf.get(`${r.tid}/${r.sid}`);
      const messaging = r.kind === KIND_PRODUCER;
      if (server) {
        addCall(r.service, server.service, messaging ? "messaging" : "rpc", r.start, r, server, messaging ? Math.max(0, server.start - (r.start + r.dur)) : -1);
      } else {
        s.unpairedClient++;
        const name = messaging ? r.peer || r.msgDest || "unknown" : r.peer || r.addr || "unknown";
        addCall(r.service, name, messaging ? "messaging" : "virtual", r.start, r, undefined, -1);
      }
    }
  }
  let connected = 0;
  for (const t of traces.values()) if (t.roots === 1 && t.orphans === 0) connected++;
  return { edges, edgesByMinute, services, duplicates, traces: traces.size, connected };
}

function sortedMap<V>(m: Map<string, V>): [string, V][] {
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

describe("replay rng and partition hash", () => {
  it("murmur2 matches the Java Kafka client", () => {
    const enc = new TextEncoder();
    // vectors generated with the Java client's Utils.murmur2 (as published with kafkajs' Java-compatible partitioner)
    const vectors: [string, number][] = [["0", 971027396], ["1", -1993445489], ["128", -326012175], ["2187", -1508407203], ["100:48069", 1009543857]];
    for (const [k, v] of vectors) expect(murmur2(enc.encode(k))).toBe(v);
  });

  it("partitionOfTrace hashes the lower-case hex id", () => {
    const tid = new Uint32Array([0x0123abcd, 0xdeadbeef, 0, 0xffffffff]);
    const hex = traceIdHex(tid, 0);
    expect(partitionOfTrace(tid, 0, 12)).toBe((murmur2(new TextEncoder().encode(hex)) & 0x7fffffff) % 12);
  });

  it("is seeded", () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const c = new Rng(6);
    const xs = Array.from({ length: 8 }, () => a.u32());
    expect(Array.from({ length: 8 }, () => b.u32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.u32())).not.toEqual(xs);
  });
});

describe("ReplayGenerator", () => {
  it("is deterministic: same seed, same rows and truth; another seed differs", () => {
    const opts: ReplayOptions = { seed: 42, services: 30, duplicateRate: 0.01, brokenTraceRate: 0.02 };
    const a = checksum(opts, 60_000);
    const b = checksum(opts, 60_000);
    expect(b.rows).toBe(a.rows);
    expect(b.sum).toBe(a.sum);
    expect(sortedMap(b.gen.truth.edges)).toEqual(sortedMap(a.gen.truth.edges));
    expect(sortedMap(b.gen.truth.services)).toEqual(sortedMap(a.gen.truth.services));
    expect(b.gen.truth.connectedTraces).toBe(a.gen.truth.connectedTraces);
    const c = checksum({ ...opts, seed: 43 }, 60_000);
    expect(c.sum).not.toBe(a.sum);
    expect(sortedMap(c.gen.truth.edges)).not.toEqual(sortedMap(a.gen.truth.edges));
  }, 120_000);

  it("writes consistent rows: ids, parents, clock order, children before parents, partitions", () => {
    const opts: ReplayOptions = { seed: 7, services: 40, partitions: 6, batchSize: 1000, brokenTraceRate: 0.03 };
    const { gen, rows, batchSizes } = collect(opts, 150_000);
    expect(rows.length).toBe(gen.truth.spans);
    expect(Math.max(...batchSizes)).toBeLessThanOrEqual(1000);
    expect(Math.min(...batchSizes)).toBeGreaterThan(0);

    // per-row expect() is slow: collect the problems and assert once
    const problems: string[] = [];
    const check = (ok: boolean, what: string, r?: Row): void => {
      if (!ok && problems.length < 20) problems.push(`${what}${r ? ` (trace ${r.tid} span ${r.sid})` : ""}`);
    };
    const byTrace = new Map<string, Row[]>();
    for (const r of rows) {
      let list = byTrace.get(r.tid);
      if (!list) byTrace.set(r.tid, (list = []));
      list.push(r);
    }
    expect(byTrace.size).toBe(gen.truth.traces);
    const zeroSpan = "0".repeat(16);
    let broken = 0;
    const kinds = new Set<number>();
    const words = new Uint32Array(4);
    for (const [tid, list] of byTrace) {
      check(tid !== "0".repeat(32), "all-zero trace id");
      // one partition per trace, the hash's
      const p = list[0].partition;
      for (let k = 0; k < 4; k++) words[k] = parseInt(tid.slice(k * 8, k * 8 + 8), 16);
      check(partitionOfTrace(words, 0, 6) === p, "partition is not the trace id's hash", list[0]);
      for (const r of list) check(r.partition === p, "trace split over partitions", r);
      // the spans of a trace are contiguous in their partition: at most two consecutive batches
      check(new Set(list.map((r) => r.batch)).size <= 2, "trace over more than two batches", list[0]);

      const byId = new Map<string, Row>();
      const position = new Map<string, number>();
      list.forEach((r, i) => {
        check(r.sid !== zeroSpan, "all-zero span id", r);
        check(!byId.has(r.sid), "span id repeated", r); // no duplicates in this run
        byId.set(r.sid, r);
        position.set(r.sid, i);
        kinds.add(r.kind);
      });
      const roots = list.filter((r) => !r.hasParent);
      check(roots.length === 1 && roots[0].kind === KIND_SERVER, "not exactly one SERVER root", list[0]);
      let missing = 0;
      const missingIds = new Set<string>();
      let first = Infinity;
      let last = -Infinity;
      for (const r of list) {
        first = Math.min(first, r.start);
        last = Math.max(last, r.start + r.dur);
        check(r.dur > 0 && Number.isInteger(r.start) && Number.isInteger(r.dur), "bad time", r);
        check(r.service !== "", "no service", r);
        if (!r.hasParent) {
          check(r.pid === zeroSpan, "parent id without F_HAS_PARENT", r);
          continue;
        }
        check(r.pid !== zeroSpan, "F_HAS_PARENT with a zero parent id", r);
        const parent = byId.get(r.pid);
        if (!parent) {
          missing++;
          missingIds.add(r.pid);
          continue;
        }
        check(position.get(r.sid)! < position.get(parent.sid)!, "parent emitted before child", r);
        if (r.kind === KIND_SERVER) check(parent.kind === KIND_CLIENT, "SERVER parent is not a CLIENT", r);
        if (r.kind === KIND_CONSUMER) {
          check(parent.kind === KIND_PRODUCER, "CONSUMER parent is not a PRODUCER", r);
          check(r.start > parent.start + parent.dur, "consumer starts before its producer ended", r);
          check(r.msgDest === parent.msgDest && r.msgDest !== "", "consumer destination", r);
        } else {
          check(r.start > parent.start, "child starts before its parent", r);
          check(r.start + r.dur < parent.start + parent.dur, "child ends after its parent", r);
        }
        if (r.kind === KIND_INTERNAL || r.kind === KIND_CLIENT || r.kind === KIND_PRODUCER) check(r.service === parent.service, "in-process child in another service", r);
      }
      check(last - first < 20e6, "trace lasts 20 s or more", list[0]);
      check(first >= gen.startUs, "span before startUs", list[0]);
      if (missing > 0) {
        broken++;
        check(missingIds.size === 1, "more than one span dropped", list[0]);
      }
    }
    expect(problems).toEqual([]);
    expect(broken).toBe(gen.truth.brokenTraces);
    expect(gen.truth.connectedTraces).toBe(gen.truth.traces - broken);
    expect(gen.truth.maxTraceDurationUs).toBeLessThan(20e6);
    for (const k of [KIND_SERVER, KIND_CLIENT, KIND_PRODUCER, KIND_CONSUMER, KIND_INTERNAL]) expect(kinds.has(k)).toBe(true);

    // event time: trace k starts at startUs + floor(k * 1e6 / tracesPerSecond)
    const starts = [...byTrace.values()].map((l) => l.find((r) => !r.hasParent)!.start).sort((x, y) => x - y);
    expect(starts[0]).toBe(gen.startUs);
    expect(starts[starts.length - 1]).toBe(gen.startUs + Math.floor(((gen.truth.traces - 1) * 1e6) / 20000));
  }, 120_000);

  it("truth equals an independent naive fold of the emitted rows (edges, minutes, services, connectivity)", () => {
    const opts: ReplayOptions = { seed: 11, services: 40, brokenTraceRate: 0.05, duplicateRate: 0.01, tracesPerSecond: 40 };
    const { gen, rows } = collect(opts, 200_000);
    const ref = referenceFold(rows);
    const t = gen.truth;
    expect(t.spans).toBe(rows.length);
    expect(t.duplicateSpans).toBe(ref.duplicates);
    expect(t.duplicateSpans).toBeGreaterThan(0);
    expect(t.traces).toBe(ref.traces);
    expect(t.connectedTraces).toBe(ref.connected);
    expect(sortedMap(t.edges)).toEqual(sortedMap(ref.edges));
    expect(sortedMap(t.services)).toEqual(sortedMap(ref.services));
    // at 40 traces/s the run spans several minutes
    const byMinute = t.edgesByMinute();
    expect(byMinute.size).toBeGreaterThan(1);
    expect([...byMinute.keys()]).toEqual([...ref.edgesByMinute.keys()].sort((a, b) => a - b));
    for (const [m, edges] of byMinute) expect(sortedMap(edges)).toEqual(sortedMap(ref.edgesByMinute.get(m)!));
    // service minutes add up to the totals
    const sum = new Map<string, number>();
    for (const services of t.servicesByMinute().values()) for (const [name, s] of services) sum.set(name, (sum.get(name) ?? 0) + s.spans);
    for (const [name, s] of t.services) expect(sum.get(name)).toBe(s.spans);
  }, 120_000);

  it("truth is sane: calls match call-making spans, every edge type occurs, rates are as configured", () => {
    const brokenTraceRate = 0.05;
    const { gen, rows } = collect({ seed: 3, services: 40, brokenTraceRate }, 300_000);
    const t = gen.truth;
    // every CLIENT/PRODUCER makes one call, and so does every root SERVER; nothing else does
    const callMaking = rows.filter((r) => r.kind === KIND_CLIENT || r.kind === KIND_PRODUCER || (r.kind === KIND_SERVER && !r.hasParent)).length;
    let calls = 0;
    let failed = 0;
    let paired = 0;
    const types = new Set<string>();
    for (const e of t.edges.values()) {
      calls += e.calls;
      failed += e.failed;
      paired += e.paired;
      types.add(e.type);
      expect(e.failed).toBeLessThanOrEqual(e.calls);
      expect(e.failedClient + e.failedServer).toBeGreaterThanOrEqual(e.failed);
      if (e.type === "database") expect(e.paired).toBe(0);
      if (e.type === "virtual") expect(e.paired).toBe(0);
    }
    expect(calls).toBe(callMaking);
    expect([...types].sort()).toEqual(["database", "messaging", "rpc", "virtual"]);
    expect(paired).toBeGreaterThan(calls * 0.3);
    // user -> gateway, uninstrumented peers by peer.service / server.address, lone producers by destination
    const keys = [...t.edges.keys()];
    expect(keys.some((k) => k.startsWith("user|") && k.endsWith("|virtual"))).toBe(true);
    for (const x of gen.graph.externals) expect(keys.some((k) => k.endsWith(`|${x}|virtual`))).toBe(true);
    expect(keys.some((k) => k.endsWith(".audit|messaging"))).toBe(true);
    expect([...t.edges.values()].some((e) => e.type === "rpc" && e.client === e.server)).toBe(true);
    const rate = t.brokenTraces / t.traces;
    console.log(
      `replay truth: ${t.traces} traces, ${(t.spans / t.traces).toFixed(1)} spans/trace, ${t.edges.size} edges, ` +
        `broken ${(rate * 100).toFixed(2)}%, failed calls ${((failed / calls) * 100).toFixed(2)}%, ` +
        `error spans ${((rows.filter((r) => r.failed).length / rows.length) * 100).toFixed(2)}%, longest trace ${(t.maxTraceDurationUs / 1e6).toFixed(2)} s`,
    );
    expect(rate).toBeGreaterThan(brokenTraceRate * 0.7);
    expect(rate).toBeLessThan(brokenTraceRate * 1.3);
    expect(t.connectivityRate()).toBeCloseTo(1 - rate, 10);
    expect(failed / calls).toBeGreaterThan(0.003);
    expect(failed / calls).toBeLessThan(0.03);
    // a broken trace produces orphans and unpaired halves; an intact run has none
    let orphans = 0;
    for (const s of t.services.values()) orphans += s.orphanSpans;
    expect(orphans).toBeGreaterThanOrEqual(t.brokenTraces);
  }, 120_000);

  it("with nothing broken every trace is connected and nothing is orphaned or server-unpaired", () => {
    const { gen } = collect({ seed: 5, services: 12, brokenTraceRate: 0 }, 50_000);
    const t = gen.truth;
    expect(t.connectedTraces).toBe(t.traces);
    expect(t.connectivityRate()).toBe(1);
    for (const s of t.services.values()) {
      expect(s.orphanSpans).toBe(0);
      expect(s.unpairedServer).toBe(0);
      expect(s.duplicateSpans).toBe(0);
    }
  });

  it("builds small and large graphs", () => {
    for (const services of [1, 2, 3, 5, 120]) {
      const { gen, rows } = collect({ seed: services, services }, 5_000);
      expect(gen.graph.services.length).toBe(services);
      expect(new Set(gen.graph.services.map((s) => s.name)).size).toBe(services);
      const ref = referenceFold(rows);
      expect(sortedMap(gen.truth.edges)).toEqual(sortedMap(ref.edges));
      expect(sortedMap(gen.truth.services)).toEqual(sortedMap(ref.services));
    }
  });

  it("generates 1,000,000 spans", () => {
    const gen = new ReplayGenerator({ seed: 1 }, new Interner());
    let batches = 0;
    const t0 = performance.now();
    const n = gen.generate(1_000_000, (b) => {
      batches++;
      expect(b.length).toBeLessThanOrEqual(4096);
    });
    const s = (performance.now() - t0) / 1000;
    console.log(`replay generator: ${n} spans in ${batches} batches, ${s.toFixed(2)} s, ${Math.round(n / s).toLocaleString("en-US")} spans/s`);
    expect(n).toBeGreaterThanOrEqual(1_000_000);
    const rate = gen.truth.brokenTraces / gen.truth.traces;
    expect(rate).toBeGreaterThan(0.005 * 0.6);
    expect(rate).toBeLessThan(0.005 * 1.4);
  }, 120_000);
});
