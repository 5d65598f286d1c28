import { describe, expect, it } from "vitest";
import { TopologyBuilder } from "../pipeline/topology.js";
import { registry } from "../pipeline/registry.js";
import { buildJob } from "../pipeline/job.js";
import { loadConfig } from "../pipeline/config.js";

describe("topology builder", () => {
  it("describes the job as plain data that survives JSON (and so a thread boundary)", () => {
    const d = buildJob(loadConfig({ sets: ["source.type=kafka", "source.kafka.brokers=127.0.0.1:9", "source.kafka.topic=spans", "runtime.workers=2"] }));
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
    expect(d.operators.map((o) => [o.name, o.type, o.parallelism, o.key])).toEqual([
      ["decode", "decode", 2, "partition"],
      ["fold", "fold", 2, "traceId"],
    ]);
    expect(d.sinks.map((s) => [s.name, s.inputs])).toEqual([["traces", ["decode"]], ["meta", ["fold"]]]);
    // file input runs in one thread whatever runtime.workers says (replay: test/replay-encoded.test.ts)
    const f = buildJob(loadConfig({ sets: ["source.type=file", "source.file.paths=a.bin", "runtime.workers=2"] }));
    expect(f.operators.map((o) => o.parallelism)).toEqual([1, 1]);
  });

  it("chains decode and fold when the source is keyed by trace id, and splits them when it is not", () => {
    const build = (keyed: boolean) =>
      new TopologyBuilder()
        .source("in", "file", { keyedByTraceId: keyed })
        .operator("decode", "decode", {}, { inputs: ["in"] })
        .operator("fold", "fold", {}, { inputs: ["decode"], key: "traceId" })
        .sink("meta", "embedded_meta", {}, { inputs: ["fold"] })
        .sink("traces", "embedded_traces", {}, { inputs: ["decode"] })
        .build(registry.types);
    expect(build(true).chains).toEqual([["decode", "fold"]]);
    expect(build(false).chains).toEqual([["decode"], ["fold"]]);
  });

  it("does not chain across a parallelism change", () => {
    const d = new TopologyBuilder()
      .source("in", "replay")
      .operator("a", "fold", {}, { inputs: ["in"], parallelism: 1 })
      .operator("b", "fold", {}, { inputs: ["a"], parallelism: 2 })
      .sink("s", "blackhole", {}, { inputs: ["b"] })
      .build();
    expect(d.chains).toEqual([["a"], ["b"]]);
  });

  it("reports every problem at once", () => {
    const b = new TopologyBuilder("bad")
      .source("in", "kafkaa")
      .operator("x", "fold", {}, { inputs: ["nope"] })
      .operator("x", "decode", {}, { inputs: ["in"], parallelism: 0 })
      .sink("s", "blackhole");
    let message = "";
    try {
      b.build(registry.types);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('x: duplicate name');
    expect(message).toContain('x: input "nope" is not a source or operator');
    expect(message).toContain("x: parallelism must be a positive integer");
    expect(message).toContain("s: has no inputs");
    expect(message).toContain('in: unknown source type "kafkaa"');
  });

  it("reports a cycle", () => {
    const b = new TopologyBuilder().source("in", "replay").operator("a", "fold", {}, { inputs: ["b"] }).operator("b", "fold", {}, { inputs: ["a"] });
    expect(() => b.build()).toThrow(/cycle among operators: a, b/);
  });
});
