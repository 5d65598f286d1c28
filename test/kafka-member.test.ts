/**
 * The bounded end of a Kafka source (sources/kafka/member.ts), with the broker's answers injected:
 * a real broker cannot be made to return incomplete topic metadata on cue. The end-to-end bounded
 * runs against the real broker are in kafka-pipeline.test.ts and kafka-resume.test.ts.
 */
import { describe, expect, it } from "vitest";
import { KafkaMember } from "../sources/kafka/member.js";

class Probe extends KafkaMember {
  lookups = 0;
  /** What the next end-offset lookup finds. */
  nextEnds = new Map<number, number>();
  constructor() {
    super({ brokers: ["127.0.0.1:1"], topic: "t", groupId: "g", bounded: true } as never);
    this.refreshEndOffsets = async () => {
      this.lookups++;
      for (const [p, e] of this.nextEnds) if (!this.endOffsets.has(p)) this.endOffsets.set(p, e);
    };
  }
  protected queuedBatches(): number {
    return 0;
  }
  setEnd(p: number, end: number): void {
    this.endOffsets.set(p, end);
  }
  reach(p: number, next: number): void {
    this.position.set(p, next);
  }
  check(): void {
    this.checkBoundedEnd();
  }
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("bounded Kafka input: the end", () => {
  it("ends once every assigned partition reached the end offset it had at start", () => {
    const m = new Probe();
    m.assigned = [0, 1];
    m.setEnd(0, 10);
    m.setEnd(1, 0); // an empty partition
    m.reach(0, 9);
    m.check();
    expect(m.ended).toBe(false);
    m.reach(0, 10);
    m.check();
    expect(m.ended).toBe(true);
  });

  it("an assigned partition without a known end offset is looked up, never taken as ended", async () => {
    const m = new Probe();
    m.assigned = [0, 1];
    m.setEnd(0, 10);
    m.reach(0, 10);
    // partition 1's end is unknown (the metadata at start did not list it): not the end
    m.check();
    expect(m.ended).toBe(false);
    await tick(20);
    expect(m.lookups).toBe(1);
    expect(m.ended).toBe(false); // the lookup found nothing either: it tries again later
    m.nextEnds.set(1, 5);
    await tick(1_100);
    expect(m.lookups).toBe(2);
    expect(m.ended).toBe(false); // partition 1 has 5 messages to read
    m.reach(1, 5);
    m.check();
    expect(m.ended).toBe(true);
  });
});
