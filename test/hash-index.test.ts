import { describe, expect, it } from "vitest";
import { HashIndex } from "../operators/fold/hash-index.js";

describe("HashIndex", () => {
  it("agrees with a Map through random inserts and removals (backward-shift deletion keeps chains whole)", () => {
    const ix = new HashIndex(3, 2, 8);
    const model = new Map<string, number>();
    let s = 12345;
    let mismatches = 0;
    const rnd = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
    for (let step = 0; step < 200_000; step++) {
      // few distinct first words so probe chains collide a lot
      const k = [rnd(50), rnd(40), rnd(3)];
      ix.key.set(k);
      const name = k.join(",");
      const e = ix.find();
      if (e >= 0 !== model.has(name)) mismatches++;
      if (e >= 0) {
        if (e !== model.get(name)) mismatches++;
        if (rnd(2) === 0) {
          ix.remove(e);
          model.delete(name);
        }
      } else if (rnd(3) !== 0) model.set(name, ix.insert());
      if (ix.size !== model.size) mismatches++;
    }
    expect(mismatches).toBe(0);
    // every live key is still found after all that churn
    for (const [name, e] of model) {
      ix.key.set(name.split(",").map(Number));
      expect(ix.find()).toBe(e);
    }
  });

  it("finds an entry by a key prefix covering the hashed words", () => {
    const ix = new HashIndex(4, 3, 4);
    ix.key.set([1, 2, 3, 9]);
    const e = ix.insert();
    ix.key.set([1, 2, 3, 0]);
    expect(ix.find()).toBe(-1);
    expect(ix.findPrefix(3)).toBe(e);
  });
});
