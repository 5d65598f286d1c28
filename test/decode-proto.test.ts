/**
 * otlp_proto edge cases, with a minimal protobuf writer so each case is exactly the bytes it names.
 */
import { describe, expect, it } from "vitest";
import { Interner } from "../pipeline/intern.js";
import { F_HAS_PARENT, KIND_UNSPECIFIED, SpanBatch } from "../pipeline/span-batch.js";
import { decodeOtlpProto } from "../operators/decode/otlp-proto.js";
import { DecodeStats } from "../operators/decode/types.js";

const enc = new TextEncoder();
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const tag = (field: number, wt: number) => varint((field << 3) | wt);
const len = (field: number, body: number[]) => [...tag(field, 2), ...varint(body.length), ...body];
const str = (field: number, s: string) => len(field, [...enc.encode(s)]);
const hex = (h: string) => h.match(/../g)!.map((x) => parseInt(x, 16));
const fixed64 = (field: number, lo: number, hi: number) => [...tag(field, 1), lo & 255, (lo >>> 8) & 255, (lo >>> 16) & 255, lo >>> 24, hi & 255, (hi >>> 8) & 255, (hi >>> 16) & 255, hi >>> 24];
const kv = (k: string, v: string) => len(9, [...str(1, k), ...len(2, str(1, v))]);

function request(span: number[], service = "checkout"): Uint8Array {
  const resource = len(1, len(1, [...str(1, "service.name"), ...len(2, str(1, service))]));
  return new Uint8Array(len(1, [...resource, ...len(2, len(2, span))]));
}

const TID = len(1, hex("4bf92f3577b34da6a3ce929d0e0e4736"));
const SID = len(2, hex("00f067aa0ba90001"));

function decode(bytes: Uint8Array) {
  const b = new SpanBatch(new Interner());
  const stats = new DecodeStats();
  decodeOtlpProto(bytes, b, stats);
  return { b, stats };
}

describe("otlp_proto decoder edge cases", () => {
  it("does not let an empty newer attribute wipe its older twin (order independence)", () => {
    for (const attrs of [[kv("peer.service", "payments-ext"), kv("service.peer.name", "")], [kv("service.peer.name", ""), kv("peer.service", "payments-ext")]]) {
      const { b } = decode(request([...TID, ...SID, ...tag(6, 0), 3, ...attrs.flat()]));
      expect(b.interner.name(b.peer[0])).toBe("payments-ext");
    }
  });

  it("counts and skips a span whose parent id is present but not 8 bytes", () => {
    const { b, stats } = decode(request([...TID, ...SID, ...len(4, [1, 2, 3, 4]), ...tag(6, 0), 2]));
    expect(b.length).toBe(0);
    expect(stats.spansWithInvalidId).toBe(1);
  });

  it("treats an all-zero or empty parent id as a root", () => {
    for (const parent of [len(4, [0, 0, 0, 0, 0, 0, 0, 0]), len(4, [])]) {
      const { b } = decode(request([...TID, ...SID, ...parent]));
      expect(b.length).toBe(1);
      expect(b.flags[0] & F_HAS_PARENT).toBe(0);
    }
  });

  it("reads an unknown kind as UNSPECIFIED", () => {
    const { b } = decode(request([...TID, ...SID, ...tag(6, 0), 7]));
    expect(b.kind[0]).toBe(KIND_UNSPECIFIED);
  });

  it("skips fields it does not need whatever their wire type (Span.flags fixed32, unknown varints and groups of bytes)", () => {
    const span = [...TID, ...tag(16, 5), 1, 2, 0, 0, ...tag(99, 0), ...varint(123456), ...tag(98, 1), 1, 2, 3, 4, 5, 6, 7, 8, ...SID, ...str(5, "GET /x"), ...fixed64(7, 0x5e6c2a00, 0x188a8e6c), ...fixed64(8, 0x5e7ad000, 0x188a8e6c)];
    const { b } = decode(request(span));
    expect(b.length).toBe(1);
    expect(b.interner.name(b.name[0])).toBe("GET /x");
    // ns -> us exactly: (0x188a8e6c << 32 | 0x5e6c2a00) ns
    const ns = (BigInt(0x188a8e6c) << 32n) | BigInt(0x5e6c2a00);
    expect(b.startUs[0]).toBe(Number(ns / 1000n));
    expect(b.durUs[0]).toBeCloseTo((0x5e7ad000 - 0x5e6c2a00) / 1000, 6);
  });

  it("interns a service name once and allocates no string for it again", () => {
    const interner = new Interner();
    const b = new SpanBatch(interner);
    const msg = request([...TID, ...SID, ...str(5, "op")]);
    decodeOtlpProto(msg, b, new DecodeStats());
    const size = interner.size;
    for (let k = 0; k < 100; k++) decodeOtlpProto(msg, b, new DecodeStats());
    expect(interner.size).toBe(size);
    expect(b.length).toBe(101);
    expect(new Set(Array.from(b.service.subarray(0, b.length))).size).toBe(1);
  });
});
