/**
 * The read_committed filter that replaces kafkajs 2.2.4's (sources/kafka/kafkajs-patch.ts). The
 * end-to-end proof is test/shuffle.test.ts's two-process repartition run (real broker, aborted
 * transactions of stopped and killed members); this pins the algorithm on the case kafkajs got
 * wrong: several producers' aborted transactions in one fetch, listed out of order.
 */
import { describe, expect, it } from "vitest";
import { filterAborted } from "../sources/kafka/kafkajs-patch.js";

const ABORT = Buffer.from([0, 0, 0, 0]);
const COMMIT = Buffer.from([0, 0, 0, 1]);
const rec = (offset: number, producerId: string, key: Buffer | null = null, inTransaction = true) => ({ offset: String(offset), key, batchContext: { producerId, inTransaction } });

describe("read_committed: records of aborted transactions are dropped", () => {
  it("two producers abort interleaved transactions; a third commits", () => {
    const messages = [
      rec(0, "1"), rec(1, "2"), rec(2, "3"), rec(3, "1"), rec(4, "2"),
      rec(5, "1", ABORT), rec(6, "3", COMMIT), rec(7, "2", ABORT),
      rec(8, "1"), rec(9, "1", COMMIT), rec(10, "9", null, false),
    ];
    // the broker's list, not sorted by first offset
    const kept = filterAborted({ messages, abortedTransactions: [{ producerId: "2", firstOffset: "1" }, { producerId: "1", firstOffset: "0" }] });
    const data = kept.filter((m) => m.key === null).map((m) => Number(m.offset));
    // 0, 3 (producer 1) and 1, 4 (producer 2) were aborted; 2 committed; 8 is producer 1's next,
    // committed transaction; 10 is not transactional
    expect(data).toEqual([2, 8, 10]);
  });

  it("kafkajs's own filter lets one of them through (why the patch exists)", async () => {
    const { createRequire } = await import("node:module");
    const req = createRequire(import.meta.url);
    const { readFileSync } = await import("node:fs");
    // load kafkajs's original file as it ships, apart from the module cache the patch replaced
    const src = readFileSync(req.resolve("kafkajs/src/consumer/filterAbortedMessages.js"), "utf8");
    const file = req.resolve("kafkajs/src/consumer/filterAbortedMessages.js");
    const local = createRequire(file);
    const mod = { exports: {} as unknown };
    new Function("module", "exports", "require", src)(mod, mod.exports, local);
    const original = mod.exports as typeof filterAborted;
    const messages = [rec(0, "1"), rec(1, "2"), rec(2, "3"), rec(3, "1"), rec(4, "2"), rec(5, "1", ABORT), rec(6, "3", COMMIT), rec(7, "2", ABORT)];
    const kept = original({ messages, abortedTransactions: [{ producerId: "2", firstOffset: "1" }, { producerId: "1", firstOffset: "0" }] });
    expect(kept.filter((m) => m.key === null).map((m) => Number(m.offset))).not.toEqual([2]);
  });
});
