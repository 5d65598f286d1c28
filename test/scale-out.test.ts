/**
 * Scale-out as Kubernetes does it (issue 6), with the real Kafka, MariaDB and HBase: a
 * 12-partition topic read by 1, then 2, then 3 tracefold processes in one consumer group (one
 * worker each: the two cores are shared with the services), then members removed with SIGTERM
 * (a rolling scale-down). At every step every message sent so far is committed exactly once
 * (the offsets stored with the checkpoints equal the messages sent), each member's partitions
 * are what the group assigned, and at the end MySQL's totals equal the generator's truth and
 * HBase holds every span.
 *
 * It prints, per step, the members, partitions per member and spans/s (a backlog of the step's
 * spans, from send to committed): docs/DEPLOYMENT.md "Scale-out, measured" quotes that output.
 * Throughput is printed, not asserted (speed is measured in benchmarks, not in timed tests).
 */
import { afterAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { Scenario, cleanupScenarios, exited } from "./support/scenario.js";
import { sleep } from "./support/stream.js";

afterAll(cleanupScenarios);

type Member = { child: ChildProcess; log: () => string };

/** The partitions a member was last assigned (from its "joined the consumer group" log line). */
function partitionsOf(m: Member): number[] {
  const all = [...m.log().matchAll(/"msg":"joined the consumer group"[^\n]*"partitions":\[([\d,]*)\]/g)];
  const last = all.at(-1)?.[1] ?? "";
  return last ? last.split(",").map(Number) : [];
}

describe("scale-out: 1 -> 2 -> 3 members and back, one worker each (real services)", () => {
  it("every step exact; partitions spread; spans/s per member count printed", async () => {
    const s = new Scenario("scaleout", 606, 12);
    await s.create();
    const members: Member[] = [];
    const rows: string[] = [];
    const step = async (label: string, spans: number) => {
      // the group settles on the new membership first: every member's last join covers the topic
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const parts = members.map(partitionsOf);
        if (parts.every((p) => p.length > 0) && parts.flat().sort((a, b) => a - b).join(",") === Array.from({ length: 12 }, (_, i) => i).join(",")) break;
        await sleep(250);
      }
      const t0 = Date.now();
      await s.send(spans);
      const got = await s.waitCommitted(s.sent, 120_000);
      const seconds = (Date.now() - t0) / 1000;
      expect(got, members.map((m) => m.log().slice(-3000)).join("\n----\n")).toBe(s.sent);
      const parts = members.map(partitionsOf);
      rows.push(`${label} | ${members.length} | ${parts.map((p) => p.length).join(" + ")} | ${Math.round(spans / seconds).toLocaleString("en-US")} | ${s.sent} messages committed once`);
      return parts;
    };
    members.push(s.start(1));
    await s.waitCommitted(0, 1000);
    let parts = await step("1 member", 20_000);
    expect(parts[0]).toHaveLength(12);
    members.push(s.start(1));
    parts = await step("2 members", 20_000);
    expect(parts.map((p) => p.length).sort()).toEqual([6, 6]);
    members.push(s.start(1));
    parts = await step("3 members", 20_000);
    expect(parts.map((p) => p.length).sort()).toEqual([4, 4, 4]);
    // scale down, as a rolling update or KEDA would: SIGTERM, drain, leave
    const third = members.pop()!;
    third.child.kill("SIGTERM");
    expect(await exited(third.child), third.log()).toBe(0);
    parts = await step("3 -> 2 (SIGTERM)", 20_000);
    expect(parts.map((p) => p.length).sort()).toEqual([6, 6]);
    const second = members.pop()!;
    second.child.kill("SIGTERM");
    expect(await exited(second.child), second.log()).toBe(0);
    parts = await step("2 -> 1 (SIGTERM)", 20_000);
    expect(parts[0]).toHaveLength(12);
    const last = members.pop()!;
    last.child.kill("SIGTERM");
    expect(await exited(last.child), last.log()).toBe(0);
    console.log(["step | members | partitions per member | spans/s (backlog of 20,000 spans) | exactly once", ...rows].join("\n"));
    // the windows still open were saved with the last checkpoints: a bounded run closes them
    await s.finishExact(1);
  }, 600_000);
});
