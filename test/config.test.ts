import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "./support/tmp.js";
import { envName, loadConfig, section } from "../pipeline/config.js";

describe("configuration", () => {
  const dir = tempDir("tf-config-");

  it("layers file, then environment, then flags", () => {
    const file = join(dir, "a.yaml");
    writeFileSync(file, "fold:\n  traceGapMs: 40000\n  assemblyWindowMs: 5000\nsource:\n  replay:\n    seed: 7\n");
    const cfg = loadConfig({ file, env: { TRACEFOLD_FOLD_TRACE_GAP_MS: "50000", TRACEFOLD_SOURCE_REPLAY_SEED: "8" }, sets: ["source.replay.seed=9"] });
    expect(cfg["fold.traceGapMs"]).toBe(50000);
    expect(cfg["fold.assemblyWindowMs"]).toBe(5000);
    expect(cfg["source.replay.seed"]).toBe(9);
    expect(section(cfg, "fold").traceGapMs).toBe(50000);
  });

  it("reads JSON files too", () => {
    const file = join(dir, "b.json");
    writeFileSync(file, JSON.stringify({ sinks: { meta: "blackhole" }, fold: { linkParentChild: true } }));
    const cfg = loadConfig({ file });
    expect(cfg["sinks.meta"]).toBe("blackhole");
    expect(cfg["fold.linkParentChild"]).toBe(true);
  });

  it("names environment variables after the path in SNAKE_CASE", () => {
    expect(envName("fold.outOfOrdernessMs")).toBe("TRACEFOLD_FOLD_OUT_OF_ORDERNESS_MS");
  });

  it("reports every problem together: unknown keys, wrong types, enums, bounds, cross-field rules", () => {
    const file = join(dir, "c.yaml");
    writeFileSync(file, "fold:\n  traceGapMs: soon\n  trceGap: 1\nsinks:\n  meta: hbase\n");
    let msg = "";
    try {
      loadConfig({ file, env: { TRACEFOLD_SOURCE_REPLAY_SPANS: "-1" }, sets: ["fold.assemblyWindowMs=999999", "nonsense"] });
    } catch (err) {
      msg = (err as Error).message;
    }
    expect(msg).toContain("fold.traceGapMs: expected int");
    expect(msg).toContain("fold.trceGap: unknown setting");
    expect(msg).toContain("sinks.meta: must be one of embedded, mysql, blackhole");
    expect(msg).toContain("TRACEFOLD_SOURCE_REPLAY_SPANS: must be >= 0");
    expect(msg).toContain("--set nonsense: expected path=value");
    expect(msg).toContain("fold.assemblyWindowMs: must not exceed fold.traceGapMs");
  });

  it("the example Kafka -> MySQL + HBase config is valid and says what it means", () => {
    const cfg = loadConfig({ file: join(import.meta.dirname, "..", "examples", "kafka-mysql.yaml") });
    expect(cfg["source.type"]).toBe("kafka");
    expect(cfg["sinks.meta"]).toBe("mysql");
    expect(cfg["sinks.traces"]).toBe("hbase");
    expect(cfg["runtime.workers"]).toBe("auto");
    expect(cfg["http.listen"]).toBe("0.0.0.0:9464");
    expect(cfg["source.kafka.deadLetterTopic"]).toBe("spans-dlq");
  });
});
