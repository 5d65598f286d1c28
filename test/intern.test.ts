/**
 * The interner (pipeline/intern.ts): one id per distinct UTF-8 name, whether it comes as bytes
 * inside a message or as a string, through its table's growth; and the hash it probes with.
 */
import { describe, expect, it } from "vitest";
import { hashBytes, Interner, NONE_ID, OTHER_ID, OTHER_NAME } from "../pipeline/intern.js";

const utf8 = new TextEncoder();

describe("Interner", () => {
  it("gives each distinct name one id: bytes at any offset, strings, lookups, past many table growths", () => {
    const it = new Interner();
    // names that differ only in their tail, their length, or a byte inside a 4-byte word
    const names: string[] = ["a", "a\0", "ab", "abc", "abcd", "abcde", "abcdf", "bbcd", "abce", "checkout", "checkouT", "ünïcödé", "数据库"];
    for (let i = 0; i < 5000; i++) names.push(`svc-${i}`, `GET /api/v${i % 7}/items/${i}`);
    const ids = new Map<string, number>();
    for (const n of names) {
      // inside a bigger buffer, at an odd offset, as the protobuf decoder sees it
      const b = utf8.encode(n);
      const msg = new Uint8Array(b.length + 7);
      msg.set(b, 5);
      const id = it.internBytes(msg, 5, 5 + b.length);
      expect(id).toBeGreaterThan(OTHER_ID);
      if (ids.has(n)) expect(id).toBe(ids.get(n));
      ids.set(n, id);
    }
    expect(new Set(ids.values()).size).toBe(ids.size); // distinct names, distinct ids
    expect(it.size).toBe(ids.size + 2); // plus "" and __other__
    for (const [n, id] of ids) {
      expect(it.internString(n)).toBe(id);
      expect(it.lookup(n)).toBe(id);
      expect(it.name(id)).toBe(n);
    }
    expect(it.lookup("never-interned")).toBe(-1);
    expect(it.internString("")).toBe(NONE_ID);
    expect(it.internString(OTHER_NAME)).toBe(OTHER_ID);
  });

  it("past maxNames, new names go to __other__ and are counted", () => {
    const it = new Interner(10);
    const ids = Array.from({ length: 12 }, (_, i) => it.internString(`n${i}`));
    expect(ids.slice(0, 8).every((id) => id > OTHER_ID)).toBe(true);
    expect(ids.slice(8)).toEqual([OTHER_ID, OTHER_ID, OTHER_ID, OTHER_ID]);
    expect(it.overflowed).toBe(4);
    expect(it.internString("n3")).toBe(ids[3]); // known names still resolve
  });
});

describe("hashBytes", () => {
  it("depends on the bytes in range only, on every byte, and on the length", () => {
    const b = utf8.encode("xxGET /checkout/cartyy");
    const h = hashBytes(b, 2, b.length - 2);
    expect(hashBytes(utf8.encode("GET /checkout/cart"), 0, 18)).toBe(h);
    for (let i = 2; i < b.length - 2; i++) {
      const c = b.slice();
      c[i] ^= 1;
      expect(hashBytes(c, 2, b.length - 2)).not.toBe(h);
    }
    expect(hashBytes(new Uint8Array([97, 0]), 0, 2)).not.toBe(hashBytes(new Uint8Array([97]), 0, 1));
  });

  it("spreads similar names over the low bits the table uses", () => {
    // 4096 names that differ in one counter, into 8192 slots: close to uniform, no pile-up
    const slots = new Map<number, number>();
    for (let i = 0; i < 4096; i++) {
      const b = utf8.encode(`service-${i}`);
      const s = hashBytes(b, 0, b.length) & 8191;
      slots.set(s, (slots.get(s) ?? 0) + 1);
    }
    // a uniform hash leaves ~3,190 distinct slots (8192 x (1 - e^-0.5)) with a max load of ~6
    expect(slots.size).toBeGreaterThan(3000);
    expect(Math.max(...slots.values())).toBeLessThan(10);
  });
});
