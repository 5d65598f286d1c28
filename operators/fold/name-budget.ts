/**
 * Per-owner budgets of distinct names (operations per service, virtual peers per service): the
 * first N distinct names of an owner are kept, the rest fold into `__other__` and are counted.
 * Admitted names are remembered for the life of the job (a later issue shares them through the
 * store so every worker agrees).
 */
import { OTHER_ID } from "../../pipeline/intern.js";
import { HashIndex, growI32 } from "./hash-index.js";

export class NameBudget {
  private readonly admitted = new HashIndex(2, 2, 1024);
  private perOwner = new Int32Array(256);
  /** Names refused because their owner's budget was full. */
  overBudget = 0;

  constructor(readonly budget: number) {}

  /** The id to use for `name` under `owner`: the name itself, or OTHER_ID past the budget. */
  admit(owner: number, name: number): number {
    // names are dense intern ids: a direct-mapped cache of the last owner seen with each name
    if (name < this.cacheOwner.length && this.cacheOwner[name] === owner + 1) return this.cacheResult[name];
    const result = this.admitSlow(owner, name);
    if (name >= this.cacheOwner.length) {
      const n = Math.max(name + 1, this.cacheOwner.length * 2);
      this.cacheOwner = growI32(this.cacheOwner, n);
      this.cacheResult = growI32(this.cacheResult, n);
    }
    this.cacheOwner[name] = owner + 1;
    this.cacheResult[name] = result;
    return result;
  }

  private cacheOwner = new Int32Array(1024);
  private cacheResult = new Int32Array(1024);

  private admitSlow(owner: number, name: number): number {
    const key = this.admitted.key;
    key[0] = owner;
    key[1] = name;
    if (this.admitted.find() >= 0) return name;
    if (owner >= this.perOwner.length) this.perOwner = growI32(this.perOwner, Math.max(owner + 1, this.perOwner.length * 2));
    if (this.perOwner[owner] >= this.budget) {
      this.overBudget++;
      return OTHER_ID;
    }
    this.perOwner[owner]++;
    this.admitted.insert();
    return name;
  }

  /** Every admitted (owner, name) pair (output path). */
  pairs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    this.admitted.forEach((e) => out.push([this.admitted.keys[e * 2], this.admitted.keys[e * 2 + 1]]));
    return out;
  }
}
