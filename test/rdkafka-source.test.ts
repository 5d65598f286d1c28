/**
 * The node-rdkafka source (source.kafka.client=node-rdkafka) behind the thread shuffle, with the
 * real Kafka, MariaDB and HBase: MySQL's topology equals the generator's truth exactly and HBase
 * holds every span, as with kafkajs.
 *
 * node-rdkafka comes from the per-user cache scripts/ensure-native-kafka.sh fills (scripts/test.mjs
 * runs it before vitest); nothing here points elsewhere.
 *
 * - a bounded run over a topic not keyed by trace id;
 * - kill -9 mid-stream of a node-rdkafka run, then a restart: exact;
 * - a second member joins the group for a while and leaves (two rebalances: the process holds
 *   while it does not own every partition, then rolls back and resumes): exact;
 * - the configuration refuses node-rdkafka where its consumer would not run on the main thread.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../pipeline/config.js";
import { BIN, Scenario, cleanupScenarios, exited } from "./support/scenario.js";
import { serviceEnv } from "./support/services.js";
import { sleep } from "./support/stream.js";

afterAll(cleanupScenarios);

const ROOT = join(import.meta.dirname, "..");
const RD = ["--set", "source.kafka.client=node-rdkafka"];

/** The node_modules dir the ensure script installs into (only printed: nothing is installed here). */
function nativeDir(): string {
  const r = spawnSync("bash", [join(ROOT, "scripts", "ensure-native-kafka.sh"), "--print"], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split("\n").pop()!;
}

describe("node-rdkafka source behind the thread shuffle (real services)", () => {
  it("bounded run, 2 workers: topology equals the truth, HBase holds every span, the log names the client", async () => {
    const s = new Scenario("rd_span", 41, 4, "span");
    await s.create();
    await s.send(12_000);
    const log = await s.finishExact(2, RD);
    expect(log).toContain("starting the shuffled job");
    expect(log).toContain('"kafkaClient":"node-rdkafka"');
    expect(log).toContain("kafka client: node-rdkafka");
    expect(log).not.toContain("kafka client error");
  }, 300_000);

  it("kill -9 mid-stream, then a restart: totals exact", async () => {
    const s = new Scenario("rd_kill", 42, 4, "span");
    await s.create();
    await s.send(16_000);
    const run = s.start(2, RD);
    const before = await s.committed();
    const got = await s.waitCommitted(before + 1, 60_000);
    expect(got, run.log()).toBeGreaterThan(before);
    await sleep(700);
    run.child.kill("SIGKILL");
    await exited(run.child);
    expect(run.log()).toContain("kafka client: node-rdkafka");
    await s.send(6_000);
    await s.finishExact(2, RD);
  }, 300_000);

  it("a second member joins the group and leaves: the process holds, rolls back, resumes; totals exact", async () => {
    const s = new Scenario("rd_rebal", 43, 4, "span");
    await s.create();
    await s.send(12_000);
    const run = s.start(2, RD);
    const got = await s.waitCommitted(1, 60_000);
    expect(got, run.log()).toBeGreaterThan(0);
    // a plain member of the same group (librdkafka too: its assignors are the ones the group
    // already uses), committing nothing, until it is told to leave
    const dir = nativeDir();
    const member = spawn(
      process.execPath,
      [
        "-e",
        `const K = require(${JSON.stringify(join(dir, "node-rdkafka"))});
         const c = new K.KafkaConsumer({ "metadata.broker.list": ${JSON.stringify(serviceEnv("KAFKA_BROKERS"))}, "group.id": ${JSON.stringify(`g-${s.topic}`)},
           "enable.auto.commit": false, "session.timeout.ms": 6000, rebalance_cb: true }, {});
         c.on("rebalance", (e, a) => console.log("rebalance", e.code, JSON.stringify(a.map((t) => t.partition))));
         c.connect({}, (err) => {
           if (err) { console.error(err); process.exit(1); }
           c.subscribe([${JSON.stringify(s.topic)}]);
           c.setDefaultConsumeTimeout(100);
           // what it reads is dropped; it only has to own partitions for a while
           let leaving = false;
           const loop = () => { if (!leaving) c.consume(100, () => setTimeout(loop, 50)); };
           loop();
           process.on("SIGTERM", () => { leaving = true; setTimeout(() => c.disconnect(() => { console.log("left"); process.exit(0); }), 300); });
         });`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let memberLog = "";
    member.stdout!.on("data", (d) => (memberLog += d));
    member.stderr!.on("data", (d) => (memberLog += d));
    try {
      // the process gives up part of the topic and holds
      await s.waitFor("the process to hold", async () => run.log().includes("holding until it has them"), 90_000);
      expect(memberLog).toMatch(/rebalance -175 \[\d/);
      // input arrives while it holds
      await s.send(6_000);
      await sleep(1_000);
    } finally {
      member.kill("SIGTERM");
    }
    expect(await exited(member), memberLog).toBe(0);
    expect(memberLog).toContain("left");
    // the process owns every partition again: it rolls back and reads everything
    const all = await s.waitCommitted(s.sent, 90_000);
    expect(all, run.log()).toBe(s.sent);
    run.child.kill("SIGTERM");
    expect(await exited(run.child), run.log()).toBe(0);
    const log = run.log();
    expect(log).toContain("the thread shuffle needs every partition of the topic in this process");
    expect((log.match(/rolled back to the last checkpoint/g) ?? []).length).toBeGreaterThanOrEqual(2);
    await s.send(4_000);
    await s.finishExact(2, RD);
  }, 300_000);

  it("refuses node-rdkafka where the consumer would not run on the main thread", () => {
    const base = { sets: ["source.type=kafka", "source.kafka.brokers=127.0.0.1:9", "source.kafka.topic=t", "source.kafka.client=node-rdkafka", "sinks.meta=blackhole"] };
    expect(() => loadConfig(base)).toThrow(/source\.kafka\.client: node-rdkafka runs only in the main thread.*set source\.kafka\.keyedByTraceId=false/s);
    expect(() => loadConfig({ sets: [...base.sets, "source.kafka.keyedByTraceId=false", "runtime.shuffle=topic"] })).toThrow(/source\.kafka\.client: node-rdkafka/);
    expect(loadConfig({ sets: [...base.sets, "source.kafka.keyedByTraceId=false"] })["source.kafka.client"]).toBe("node-rdkafka");
    // and the command line says so, with the configuration's exit code
    const r = spawnSync(process.execPath, [BIN, "run", "--set", "source.type=kafka", "--set", "source.kafka.brokers=127.0.0.1:9", "--set", "source.kafka.topic=t", "--set", "source.kafka.client=node-rdkafka"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain("node-rdkafka runs only in the main thread");
    expect(r.stderr).toContain("set source.kafka.keyedByTraceId=false to use the main-thread consumer");
  });
});
