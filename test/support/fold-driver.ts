/**
 * FoldDriver: Kafka Streams' TopologyTestDriver idea for the fold: spans scripted as plain
 * objects, a manual processing clock, and a report read from an embedded store.
 */
import { Interner } from "../../pipeline/intern.js";
import {
  F_ERROR, F_HAS_LINK, F_HAS_PARENT, F_NO_DURATION, F_NO_START, F_SHARED,
  KIND_CLIENT, KIND_CONSUMER, KIND_INTERNAL, KIND_PRODUCER, KIND_SERVER, KIND_UNSPECIFIED,
  SpanBatch, parseHexWords,
} from "../../pipeline/span-batch.js";
import { Fold } from "../../operators/fold/fold.js";
import type { FoldConfig } from "../../operators/fold/config.js";
import { buildReport, type TopologyReport } from "../../operators/fold/report.js";
import { EmbeddedMetaStore } from "../../sinks/embedded/meta-store.js";

export interface TestSpan {
  trace: string;
  id: string;
  parent?: string;
  service: string;
  kind?: "client" | "server" | "producer" | "consumer" | "internal" | "unspecified";
  name?: string;
  /** Start, in seconds after the driver's origin (omit for "no timestamp"). */
  at?: number | null;
  /** Duration in milliseconds. */
  ms?: number | null;
  error?: boolean;
  shared?: boolean;
  link?: { trace: string; id: string };
  attrs?: Record<string, string>;
}

const KINDS = { client: KIND_CLIENT, server: KIND_SERVER, producer: KIND_PRODUCER, consumer: KIND_CONSUMER, internal: KIND_INTERNAL, unspecified: KIND_UNSPECIFIED };
/** 2026-01-01T00:00:00Z */
export const ORIGIN_US = Date.UTC(2026, 0, 1) * 1000;

export class FoldDriver {
  readonly interner = new Interner();
  readonly fold: Fold;
  readonly store = new EmbeddedMetaStore();
  private readonly batch = new SpanBatch(this.interner, 64);
  nowMs = 1_000_000;

  constructor(config: Partial<FoldConfig> = {}) {
    this.fold = new Fold(this.interner, config);
  }

  /** Feeds spans to a partition in the given order, one batch. */
  send(spans: TestSpan[], partition = 0): this {
    const b = this.batch;
    b.reset(partition);
    for (const s of spans) writeRow(b, s);
    this.fold.processBatch(b, this.nowMs);
    this.collect();
    return this;
  }

  /** Advances the processing clock and runs the idle-partition timer. */
  tick(ms: number): this {
    this.nowMs += ms;
    this.fold.onProcessingTime(this.nowMs);
    this.collect();
    return this;
  }

  finish(): this {
    this.fold.finish();
    this.collect();
    return this;
  }

  collect(): void {
    void this.store.write(this.fold.drain());
  }

  report(): TopologyReport {
    return buildReport(this.store);
  }

  edge(client: string, server: string, type?: string) {
    return this.report().edges.find((e) => e.client === client && e.server === server && (type === undefined || e.type === type));
  }

  service(name: string) {
    return this.report().services.find((s) => s.name === name);
  }

  /** Per-minute service rows of one service. */
  serviceMinutes(name: string) {
    return [...this.store.serviceStats.values()].filter((s) => s.service === name).sort((a, b) => a.minute - b.minute);
  }
}

export function writeRow(b: SpanBatch, s: TestSpan): number {
  const i = b.append();
  const ok = parseHexWords(hex(s.trace), b.tid, i * 4, 4) && parseHexWords(hex(s.id), b.sid, i * 2, 2);
  if (!ok) throw new Error(`bad test id ${s.trace}/${s.id}`);
  let flags = 0;
  if (s.parent) {
    parseHexWords(hex(s.parent), b.pid, i * 2, 2);
    flags |= F_HAS_PARENT;
  }
  if (s.link) {
    parseHexWords(hex(s.link.trace), b.lnkTid, i * 4, 4);
    parseHexWords(hex(s.link.id), b.lnkSid, i * 2, 2);
    flags |= F_HAS_LINK;
  }
  if (s.error) flags |= F_ERROR;
  if (s.shared) flags |= F_SHARED;
  if (s.at === null || s.at === undefined) flags |= F_NO_START;
  else b.startUs[i] = ORIGIN_US + Math.round(s.at * 1e6);
  if (s.ms === null) flags |= F_NO_DURATION;
  else b.durUs[i] = Math.round((s.ms ?? 10) * 1000);
  b.flags[i] = flags;
  b.kind[i] = KINDS[s.kind ?? "internal"];
  const n = (x: string | undefined) => (x ? b.interner.internString(x) : 0);
  b.service[i] = n(s.service);
  b.name[i] = n(s.name ?? `${s.kind ?? "op"}-${s.id}`);
  const a = s.attrs ?? {};
  b.peer[i] = n(a["service.peer.name"] ?? a["peer.service"]);
  b.addr[i] = n(a["server.address"]);
  b.dbSystem[i] = n(a["db.system.name"] ?? a["db.system"]);
  b.dbNamespace[i] = n(a["db.namespace"] ?? a["db.name"]);
  b.msgDest[i] = n(a["messaging.destination.name"]);
  b.route[i] = n(a["http.route"]);
  return i;
}

/** Test ids may be readable words ("p1"): non-hex ids become the hex of their characters. */
function hex(id: string): string {
  return /^[0-9a-f]+$/i.test(id) ? id : Buffer.from(id).toString("hex");
}
