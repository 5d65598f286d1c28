/**
 * The per-trace byte budget of the HBase sink (sinks/hbase/trace-budget.ts): counts survive
 * generation rotations while a trace stays active; an idle trace is forgotten after two.
 */
import { describe, expect, it } from "vitest";
import { TraceByteBudget } from "../sinks/hbase/trace-budget.js";

const id = (n: number) => Uint32Array.of(n, n ^ 0x9e3779b9, 7, n * 3);

describe("TraceByteBudget", () => {
  it("keeps an active trace's bytes across rotations and forgets an idle one after two", () => {
    const b = new TraceByteBudget(1000, 64);
    expect(b.perGeneration).toBe(64);
    const active = id(1);
    const idle = id(2);
    b.setBytes(b.slot(active, 0), 300);
    b.setBytes(b.slot(idle, 0), 500);
    // fill three generations with other traces; touch the active one in between
    for (let n = 0; n < 3 * 64; n++) {
      b.setBytes(b.slot(id(1000 + n), 0), n);
      if (n % 50 === 0) {
        const s = b.slot(active, 0);
        b.setBytes(s, b.bytesAt(s) + 1);
      }
    }
    expect(b.rotations).toBeGreaterThanOrEqual(2);
    expect(b.bytesAt(b.slot(active, 0))).toBe(300 + 4);
    expect(b.bytesAt(b.slot(idle, 0))).toBe(0);
  });

  it("tells traces apart by all 128 bits", () => {
    const b = new TraceByteBudget(1000, 64);
    const a = Uint32Array.of(1, 2, 3, 4);
    const c = Uint32Array.of(1, 2, 3, 5);
    b.setBytes(b.slot(a, 0), 10);
    expect(b.bytesAt(b.slot(c, 0))).toBe(0);
    expect(b.bytesAt(b.slot(a, 0))).toBe(10);
  });
});
