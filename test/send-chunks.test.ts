/** Producer requests the broker accepts: sources/kafka/send-chunks.ts. */
import { describe, expect, it } from "vitest";
import { RECORD_OVERHEAD_BYTES, recordBytes, sendChunks } from "../sources/kafka/send-chunks.js";

const msg = (valueBytes: number, key = "0123456789abcdef0123456789abcdef") => ({ key, value: Buffer.alloc(valueBytes) });

describe("sendChunks", () => {
  it("counts keys and record framing, so one-span messages do not overflow a request counted by values", () => {
    // 6,000 one-span messages of 180 B: 1.08 MB of values alone, 1.49 MB as records
    const messages = Array.from({ length: 6000 }, () => msg(180));
    expect(recordBytes(messages[0])).toBe(180 + 32 + RECORD_OVERHEAD_BYTES);
    const chunks = [...sendChunks(messages, 900_000)];
    for (const c of chunks) expect(c.reduce((n, m) => n + recordBytes(m), 0)).toBeLessThanOrEqual(900_000);
    expect(chunks.length).toBe(2);
    expect(chunks.flat()).toEqual(messages); // every message once, in order
  });

  it("sends a message bigger than the limit alone, and keeps the order around it", () => {
    const messages = [msg(100), msg(2000), msg(100), msg(100)];
    const chunks = [...sendChunks(messages, 1000)];
    expect(chunks.map((c) => c.map((m) => m.value.length))).toEqual([[100], [2000], [100, 100]]);
    expect([...sendChunks([], 1000)]).toEqual([]);
  });
});
