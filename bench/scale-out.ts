/**
 * Scale-out throughput (issue 6, "Kubernetes"): one 12-partition topic read by 1, then 2, then 3
 * `tracefold run` processes in one consumer group (one worker each), as pods of a Deployment
 * would, with the exactness settings a multi-process group needs (sinks.meta=mysql: offsets,
 * deltas and pending state in one MySQL transaction per checkpoint, epoch-fenced; DECISIONS 15).
 * test/scale-out.test.ts proves exactness while members join and leave; this measures how fast
 * the group drains a backlog per member count, and checks the totals of every round.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/scale-out.js [--spans 2000000] [--rounds 2]
 *       [--members 1,2,3] [--partitions 12] [--services 40] [--seed 42] [--traces-per-second 50]
 *       [--checkpoint-ms 10000] [--session-timeout-ms 10000] [--start backlog|settled]
 *       [--brokers B --mysql-url URL] [--out DIR] [--logs DIR]
 *
 * Per member count k and round: a fresh consumer group and a fresh MySQL database; k processes
 * started at once, NOT bounded (a bounded member ends on its own and then rebalances the others);
 * "processed" is when, summed over the members' /metrics, fold_spans_in - fold_spans_reprocessed
 * (spans folded and not discarded by a rollback) reaches N; "committed" is when the sum of the
 * offsets checkpointed in MySQL (consumed_offsets: with sinks.meta=mysql tracefold commits there,
 * not to the group) equals the messages in the topic (up to one checkpoint interval later).
 * Member logs go to --logs (default /tmp/tracefold-scale-out-logs).
 * Then every member gets SIGTERM (it saves its open windows with a last checkpoint), a bounded
 * one-worker run closes those windows, and `tracefold topology --json` is checked against the
 * generator's full truth (checkAgainstTruth, as test/scale-out.test.ts does).
 *
 * --start backlog (default): the topic is filled once, before any member starts. Two windows:
 *   - "stable": from the group's last join (the final assignment; every rebalance rolls the
 *     members back to the last checkpoint, so the work left is the messages not yet committed
 *     then) to every span processed (also printed: to all committed). spans = N x (messages left / messages), the replay's mean spans per
 *     message; messages/s are exact.
 *   - "from first join": the first member's join to all committed (start-up rebalances and the
 *     input they make the members read again included).
 * --start settled: a fresh empty topic per round; the members start, the group settles (every
 *   member joined, every partition assigned, no join for 3 s), then the backlog is produced at
 *   full speed from this process: window = first send to all committed (the producer shares the
 *   cores, its CPU is reported).
 *
 * CPU: /proc/<pid>/stat of each member, of the private broker and MariaDB, this process, and
 * /proc/stat for the machine (the rest is "other": the machine is shared), sampled every 200 ms.
 *
 * Without --brokers / --mysql-url it starts a private Kafka and MariaDB (scripts/services.sh,
 * state in /tmp/tracefold-scale-out-state, ports 49092-49095 and 43306) and stops them at the end.
 * Writes bench/results/scale-out-<ISO time>.json.
 */
import { spawn, spawnSync, execSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import mysqlClient from "mysql2/promise";
import type mysql from "mysql2/promise";
import { checkAgainstTruth } from "../pipeline/truth-check.js";
import type { TopologyReport } from "../operators/fold/report.js";
import type { ReplayTruth } from "../sources/replay/truth.js";
import { createTopic, freePort, kafka, produce } from "./harness/kafka.js";
import { replayTruth } from "./harness/stores.js";
import { compareEdges, loadReplay, pairEdges, type ReplayMeta, type ReplaySpec, type WireMessage } from "./harness/replay-cache.js";
import { committedMessages, databaseUrl, serverConnection, sleep } from "../test/support/stream.js";

const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "tracefold.mjs");
const { values } = parseArgs({
  options: {
    spans: { type: "string" }, rounds: { type: "string" }, members: { type: "string" }, partitions: { type: "string" },
    services: { type: "string" }, seed: { type: "string" }, "checkpoint-ms": { type: "string" }, "session-timeout-ms": { type: "string" },
    start: { type: "string" }, brokers: { type: "string" }, "mysql-url": { type: "string" }, out: { type: "string" },
    "traces-per-second": { type: "string" }, logs: { type: "string" },
  },
});
const spec: ReplaySpec = {
  seed: Number(values.seed ?? 42),
  services: Number(values.services ?? 40),
  spans: Number(values.spans ?? 2_000_000),
  shape: "trace",
  partitions: Number(values.partitions ?? 12),
  // event time of the backlog: at 50 traces/s (~1,600 spans/s) 2 M spans are ~20 min of traffic.
  // The pending fold state, and so every checkpoint, holds the last ~60 s of event time
  // (fold.outOfOrdernessMs + fold.traceGapMs): with the generator's 20,000 traces/s all of a
  // 2 M-span input would stay pending and each checkpoint would write all of it (DEPLOYMENT.md,
  // "the checkpoint volume"), which measures MySQL, not the group.
  tracesPerSecond: Number(values["traces-per-second"] ?? 50),
};
const rounds = Number(values.rounds ?? 2);
const memberCounts = (values.members ?? "1,2,3").split(",").map(Number);
const checkpointMs = Number(values["checkpoint-ms"] ?? 10_000); // k8s/base/config.yaml
// heartbeats every sessionTimeout / 10: at 10 s a running member notices a joining one within ~1 s
// (at tracefold's default 30 s, ~3 s: the joins spread over more of a short drain)
const sessionTimeoutMs = Number(values["session-timeout-ms"] ?? 10_000);
const logDir = values.logs ?? "/tmp/tracefold-scale-out-logs";
const startMode = values.start ?? "backlog";
if (startMode !== "backlog" && startMode !== "settled") throw new Error(`--start must be backlog or settled, got ${startMode}`);
const outDir = values.out ?? join(ROOT, "bench", "results");
const command = `node dist/bench/scale-out.js ${process.argv.slice(2).join(" ")}`.trim();
const SAMPLE_MS = 200;
/** Seconds without a committed offset moving after which a round is given up. */
const STALL_S = 120;

// ---- progress on stderr -----------------------------------------------------------------------
const t0 = Date.now();
const tty = process.stderr.isTTY;
let lastPlain = 0;
function progress(msg: string, final = false): void {
  const el = Math.round((Date.now() - t0) / 1000);
  const line = `[scale-out ${Math.floor(el / 60)}:${String(el % 60).padStart(2, "0")}] ${msg}`;
  if (tty) process.stderr.write(`\r\x1b[K${line}${final ? "\n" : ""}`);
  else if (final || Date.now() - lastPlain > 5000) (process.stderr.write(line + "\n"), (lastPlain = Date.now()));
}
const fmt = (n: number | null | undefined, digits = 0) => (n === null || n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }));

// ---- private services ---------------------------------------------------------------------------
const PRIVATE_ENV = {
  TRACEFOLD_STATE_DIR: "/tmp/tracefold-scale-out-state",
  TRACEFOLD_KAFKA_PORT: "49092",
  TRACEFOLD_KAFKA_CONTROLLER_PORT: "49093",
  TRACEFOLD_KAFKA_SASL_PORT: "49094",
  TRACEFOLD_KAFKA_TLS_PORT: "49095",
  TRACEFOLD_MYSQL_PORT: "43306",
};
const privateServices: string[] = [];

function services(verb: "up" | "down", names: string[]): void {
  const env: NodeJS.ProcessEnv = { ...process.env, ...PRIVATE_ENV };
  delete env.KAFKA_BROKERS; // else services.sh treats them as external and starts nothing
  delete env.MYSQL_URL;
  const r = spawnSync("bash", [join(ROOT, "scripts", "services.sh"), verb, ...names], { env, encoding: "utf8" });
  if (r.status !== 0 && verb === "up") throw new Error(`services.sh up ${names.join(" ")} failed: ${(r.stderr || r.stdout).slice(-2000)}`);
}

function privateEndpoint(name: "KAFKA_BROKERS" | "MYSQL_URL"): string {
  const text = readFileSync(join(PRIVATE_ENV.TRACEFOLD_STATE_DIR, "services.env"), "utf8");
  const m = new RegExp(`${name}=(\\S+)`).exec(text);
  if (!m) throw new Error(`${name} missing from ${PRIVATE_ENV.TRACEFOLD_STATE_DIR}/services.env`);
  return m[1];
}

/** pid of a private service (its pid file), for its CPU time; null when the service is given. */
function servicePid(name: "kafka" | "mysql"): number | null {
  if (!privateServices.includes(name)) return null;
  const f = join(PRIVATE_ENV.TRACEFOLD_STATE_DIR, name === "kafka" ? "kafka/kafka.pid" : "mariadb/mysql.pid");
  return existsSync(f) ? Number(readFileSync(f, "utf8").trim()) || null : null;
}

function stopServices(): void {
  if (!privateServices.length) return;
  progress(`stopping the private ${privateServices.join(" + ")}`, true);
  services("down", privateServices);
  rmSync(PRIVATE_ENV.TRACEFOLD_STATE_DIR, { recursive: true, force: true });
  privateServices.length = 0;
}

// ---- CPU from /proc -----------------------------------------------------------------------------
const TICK = (() => {
  try {
    return Number(execSync("getconf CLK_TCK", { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** user + sys CPU seconds of a process (all its threads), or null once it is gone. */
function procCpu(pid: number | null | undefined): number | null {
  if (!pid) return null;
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICK; // fields 14 and 15 (utime, stime)
  } catch {
    return null;
  }
}

/** The machine's busy and total CPU seconds (all cores) since boot. */
function machineCpu(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4];
  return { busy: (total - idle) / TICK, total: total / TICK };
}

interface Tick {
  /** ms since the epoch (when the sample started). */
  at: number;
  committed: number;
  /** Spans folded and kept (sum over members of fold_spans_in - fold_spans_reprocessed): N = all processed. */
  processed: number | null;
  /** Pending fold state (sum of tracefold_fold_state_bytes), what each checkpoint writes. */
  stateBytes: number | null;
  members: Array<number | null>;
  broker: number | null;
  mysqld: number | null;
  self: number;
  machine: { busy: number; total: number };
}

// ---- members ------------------------------------------------------------------------------------
interface Member {
  child: ChildProcess;
  port: number;
  log: string;
  stdout: string;
}

interface Join {
  member: number;
  at: number;
  partitions: number[];
}

function joinsOf(members: Member[]): Join[] {
  const out: Join[] = [];
  members.forEach((m, i) => {
    for (const line of m.log.split("\n")) {
      if (!line.includes('"joined the consumer group"')) continue;
      try {
        const j = JSON.parse(line) as { time: string; partitions: number[] };
        out.push({ member: i, at: Date.parse(j.time), partitions: j.partitions });
      } catch {
        /* a line cut by the pipe: the next read has it whole */
      }
    }
  });
  return out.sort((a, b) => a.at - b.at);
}

/** Every member's last assignment, and whether together they cover every partition once. */
function lastAssignments(members: Member[], joins: Join[]): { parts: number[][]; covered: boolean } {
  const parts = members.map((_, i) => joins.filter((j) => j.member === i).at(-1)?.partitions ?? []);
  const all = parts.flat().sort((a, b) => a - b);
  return { parts, covered: parts.every((p) => p.length > 0) && all.join(",") === Array.from({ length: spec.partitions }, (_, i) => i).join(",") };
}

function incidentsOf(members: Member[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of members) {
    for (const line of (m.log + m.stdout).split("\n")) {
      const lvl = /"level":"(warn|error)","msg":"([^"]+)"(?:.*?"error":"([^"]{0,80}))?/.exec(line);
      const crash = /^worker \d+: (\w+: .{0,80})/.exec(line);
      const key = lvl ? `${lvl[1]}: ${lvl[2]}${lvl[3] ? ` (${lvl[3].replace(/vm:\d+:\w+|epoch \d+, ours \d+|backlog\/\d+/g, "..")})` : ""}` : crash ? `crash: ${crash[1]}` : "";
      if (key) out[key] = (out[key] ?? 0) + 1;
    }
  }
  return out;
}

async function metricsOf(port: number, timeoutMs = 3000): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })).text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const name = line.slice(0, line.search(/[ {]/));
    out[name] = (out[name] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return out;
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.exitCode) : c.once("exit", (code) => r(code))));
const live = new Set<ChildProcess>();

function memberArgs(o: { brokers: string; topic: string; group: string; url: string; bounded: boolean; port: number | null }): string[] {
  return [
    BIN, "run", "--log-format", "json",
    "--set", "source.type=kafka", "--set", `source.kafka.brokers=${o.brokers}`, "--set", `source.kafka.topic=${o.topic}`, "--set", `source.kafka.groupId=${o.group}`,
    "--set", `source.kafka.bounded=${o.bounded}`, "--set", `source.kafka.sessionTimeoutMs=${sessionTimeoutMs}`, "--set", "source.kafka.keyedByTraceId=true",
    "--set", "sinks.meta=mysql", "--set", `sinks.mysql.url=${o.url}`, "--set", "sinks.traces=blackhole",
    "--set", `runtime.checkpointIntervalMs=${checkpointMs}`, "--set", "runtime.workers=1",
    "--set", `http.listen=${o.port === null ? "off" : `127.0.0.1:${o.port}`}`,
  ];
}

function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.TRACEFOLD_HTTP_LISTEN; // http.listen is set per member
  return env;
}

function startMember(o: Parameters<typeof memberArgs>[0] & { port: number }): Member {
  const child = spawn(process.execPath, memberArgs(o), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: childEnv() });
  live.add(child);
  child.once("exit", () => live.delete(child));
  const m: Member = { child, port: o.port, log: "", stdout: "" };
  child.stderr!.on("data", (d) => (m.log += d));
  child.stdout!.on("data", (d) => (m.stdout += d));
  return m;
}


// ---- truth --------------------------------------------------------------------------------------
let truthCache: ReplayTruth | null = null;

/** The generator's full truth (stores.ts replayTruth), checked against the cached replay's pairs. */
function fullTruth(meta: ReplayMeta): ReplayTruth {
  if (truthCache) return truthCache;
  const truth = replayTruth(spec);
  const check = compareEdges(pairEdges(truth.edges.values()), meta.truth);
  if (check.differing !== 0) throw new Error(`regenerated truth differs from the cached replay's (${check.differing} pairs differ)`);
  truthCache = truth;
  return truthCache;
}

// ---- one round ----------------------------------------------------------------------------------
interface Window {
  definition: string;
  seconds: number;
  messages: number;
  spans: number;
  spansPerS: number;
  messagesPerS: number;
  /** CPU seconds in the window. */
  cpu: { members: number; perMember: number[]; broker: number | null; mysqld: number | null; self: number; machineBusy: number; other: number | null; machineTotal: number };
  cpuSPerMSpans: number;
  brokerCpuSPerMSpans: number | null;
}

interface RoundResult {
  members: number;
  round: number;
  startMode: string;
  topic: string;
  group: string;
  database: string;
  partitionsPerMember: number[][];
  assignedFromMetrics: number[];
  joins: Array<{ member: number; atS: number; partitions: number[] }>;
  stable: Window | null;
  fromFirstJoin: Window | null;
  committedWindow: Window | null;
  peakStateMb: number;
  logs: string[];
  /** Errors and warnings of the members (worker deaths, failed restores, fenced checkpoints), counted by message. */
  incidents: Record<string, number>;
  produceS?: number;
  spansReRead: number;
  rollbacks: number;
  checkpoints: number;
  fencedCheckpoints: number;
  lastCheckpointMs: number[];
  memberExitCodes: Array<number | null>;
  finalRunExit: number | null;
  totals: string;
  differences: string[];
  exact: boolean;
  load: number[];
  error?: string;
}

function windowBetween(ticks: Tick[], from: number, to: Tick, messages: number, totalMessages: number, definition: string): Window | null {
  const a = ticks.find((t) => t.at >= from);
  if (!a || a === to || to.at <= a.at) return null;
  const seconds = (to.at - a.at) / 1000;
  const sub = (x: number | null, y: number | null) => (x === null || y === null ? null : x - y);
  const perMember = to.members.map((c, i) => sub(c, a.members[i]) ?? 0);
  const membersCpu = perMember.reduce((s, x) => s + x, 0);
  const broker = sub(to.broker, a.broker);
  const mysqld = sub(to.mysqld, a.mysqld);
  const self = to.self - a.self;
  const machineBusy = to.machine.busy - a.machine.busy;
  const machineTotal = to.machine.total - a.machine.total;
  const spans = (meta.spans * messages) / totalMessages;
  return {
    definition,
    seconds,
    messages,
    spans: Math.round(spans),
    spansPerS: spans / seconds,
    messagesPerS: messages / seconds,
    cpu: { members: membersCpu, perMember, broker, mysqld, self, machineBusy, machineTotal, other: broker === null || mysqld === null ? null : machineBusy - membersCpu - broker - mysqld - self },
    cpuSPerMSpans: membersCpu / (spans / 1e6),
    brokerCpuSPerMSpans: broker === null ? null : broker / (spans / 1e6),
  };
}

async function runRound(k: number, round: number, topicOf: () => Promise<string>, settledProduce: ((topic: string) => Promise<number>) | null): Promise<RoundResult> {
  const id = `${process.pid}_${k}_${round}`;
  const group = `scaleout-${id}-${Date.now()}`;
  const database = `tracefold_scaleout_${id}`;
  const url = databaseUrl(server, database);
  await conn.query(`DROP DATABASE IF EXISTS ${database}`);
  await conn.query(`CREATE DATABASE ${database}`);
  const topic = await topicOf();
  const load = loadavg();
  const total = meta.messages;
  const label = `${k} member(s), round ${round}`;
  const res: RoundResult = {
    members: k, round, startMode, topic, group, database, partitionsPerMember: [], assignedFromMetrics: [], joins: [], stable: null, fromFirstJoin: null, committedWindow: null, peakStateMb: 0, logs: [], incidents: {},
    spansReRead: 0, rollbacks: 0, checkpoints: 0, fencedCheckpoints: 0, lastCheckpointMs: [], memberExitCodes: [], finalRunExit: null, totals: "not checked", differences: [], exact: false, load,
  };
  const members: Member[] = [];
  const brokerPid = servicePid("kafka");
  const mysqlPid = servicePid("mysql");
  const ticks: Tick[] = [];
  const sampleOnce = async (): Promise<Tick> => {
    const at = Date.now();
    const cpu = { members: members.map((m) => procCpu(m.child.pid)), broker: procCpu(brokerPid), mysqld: procCpu(mysqlPid), self: (process.cpuUsage().user + process.cpuUsage().system) / 1e6, machine: machineCpu() };
    const [committed, ms] = await Promise.all([
      committedMessages(conn, database, topic),
      Promise.all(members.map((m) => metricsOf(m.port, 1000).catch(() => null))),
    ]);
    const ok = ms.every((x) => x && x.tracefold_fold_spans_in_total !== undefined);
    const sum = (f: (x: Record<string, number>) => number) => (ok ? ms.reduce((a, x) => a + f(x!), 0) : null);
    const processed = sum((x) => x.tracefold_fold_spans_in_total - (x.tracefold_fold_spans_reprocessed_total ?? 0));
    const stateBytes = sum((x) => x.tracefold_fold_state_bytes ?? 0);
    const t: Tick = { at, committed, processed, stateBytes, ...cpu };
    ticks.push(t);
    return t;
  };
  try {
    for (let i = 0; i < k; i++) members.push(startMember({ brokers, topic, group, url, bounded: false, port: await freePort() }));
    let windowStart = 0;
    if (settledProduce) {
      // the group settles on the empty topic first
      let lastJoinAt = 0;
      const deadline = Date.now() + 120_000;
      for (;;) {
        const joins = joinsOf(members);
        const { covered } = lastAssignments(members, joins);
        lastJoinAt = joins.at(-1)?.at ?? 0;
        if (covered && Date.now() - lastJoinAt > 3000) break;
        if (Date.now() > deadline) throw new Error(`the group did not settle in 120 s: ${members.map((m) => m.log.slice(-1500)).join("\n----\n")}`);
        for (const m of members) if (m.child.exitCode !== null) throw new Error(`a member exited (${m.child.exitCode}) before the group settled: ${m.log.slice(-2000)}`);
        progress(`${label}: waiting for the group to settle (${joins.length} joins)`);
        await sleep(250);
      }
      windowStart = Date.now();
      await sampleOnce();
      // produced concurrently with the sampling below
      void settledProduce(topic).then((s) => (res.produceS = s), (err) => (res.error = `produce failed: ${err}`));
    }
    // sample until every message is committed
    let last = await sampleOnce();
    let movedAt = Date.now();
    let processedEnd: Tick | null = null;
    while (last.committed < total) {
      await sleep(Math.max(0, SAMPLE_MS - (Date.now() - last.at)));
      const prev = last;
      last = await sampleOnce();
      if (last.committed !== prev.committed || last.processed !== prev.processed) movedAt = Date.now();
      if (!processedEnd && last.processed !== null && last.processed >= meta.spans) processedEnd = last;
      for (const m of members) if (m.child.exitCode !== null) throw new Error(`a member exited (${m.child.exitCode}) while draining: ${m.log.slice(-2000)}`);
      // tracefold restarts a dead worker itself (it rejoins, rolls back): recorded, not fatal;
      // a member that never recovers trips the stall guard
      if (Date.now() - movedAt > STALL_S * 1000) throw new Error(`stalled: no offset committed for ${STALL_S} s at ${last.committed} of ${total} messages`);
      const s1 = ticks.find((t) => t.at >= last.at - 1000) ?? prev;
      const rate = (last.committed - s1.committed) / Math.max(0.001, (last.at - s1.at) / 1000);
      progress(`${label}: processed ${fmt(last.processed)} / ${fmt(meta.spans)} spans, committed ${fmt(last.committed)} / ${fmt(total)} messages (${fmt(rate)}/s), state ${fmt((last.stateBytes ?? 0) / 1e6, 1)} MB, ${joinsOf(members).length} joins`);
    }
    res.incidents = incidentsOf(members);
    const end = processedEnd ?? last;
    const committedEnd = last;
    res.peakStateMb = Math.max(0, ...ticks.map((t) => (t.stateBytes ?? 0) / 1e6));
    const joins = joinsOf(members);
    const firstJoin = joins[0]?.at ?? ticks[0].at;
    const lastJoin = joins.at(-1)?.at ?? firstJoin;
    res.joins = joins.map((j) => ({ member: j.member, atS: (j.at - firstJoin) / 1000, partitions: j.partitions }));
    res.partitionsPerMember = lastAssignments(members, joins).parts;
    if (settledProduce) {
      res.stable = windowBetween(ticks, windowStart, end, total, total, "first send of the backlog (group settled on the empty topic) to every span processed");
      res.committedWindow = windowBetween(ticks, windowStart, committedEnd, total, total, "first send of the backlog to all committed in MySQL");
      if (lastJoin > windowStart) res.error = `a member joined again ${((lastJoin - windowStart) / 1000).toFixed(1)} s into the window`;
    } else {
      // every rebalance rolls back to the last checkpoint: what is left then is what is committed
      const base = ticks.find((t) => t.at >= lastJoin)?.committed ?? 0;
      res.stable = windowBetween(ticks, lastJoin, end, total - base, total, "last group join (final assignment) to every span processed; spans = N x messages not committed at that join / messages");
      res.committedWindow = windowBetween(ticks, lastJoin, committedEnd, total - base, total, "last group join to all committed in MySQL (up to one checkpoint interval later)");
      res.fromFirstJoin = windowBetween(ticks, firstJoin, end, total, total, "first member's group join to every span processed (start-up rebalances included)");
    }
    for (const m of members) {
      const x = await metricsOf(m.port).catch(() => ({}) as Record<string, number>);
      res.spansReRead += x.tracefold_fold_spans_reprocessed_total ?? 0;
      res.rollbacks += x.tracefold_runtime_rollbacks_total ?? 0;
      res.checkpoints += x.tracefold_runtime_checkpoints_total ?? 0;
      res.fencedCheckpoints += x.tracefold_runtime_fenced_checkpoints_total ?? 0;
      res.assignedFromMetrics.push(x.tracefold_kafka_assigned_partitions ?? -1);
      res.lastCheckpointMs.push(x.tracefold_runtime_last_checkpoint_ms ?? -1);
    }
  } catch (err) {
    res.error = String((err as Error).message ?? err).slice(0, 4000);
  } finally {
    // SIGTERM: every member saves its open windows with a last checkpoint and leaves
    for (const m of members) if (m.child.exitCode === null) m.child.kill("SIGTERM");
    const codes = await Promise.race([Promise.all(members.map((m) => exited(m.child))), sleep(60_000).then(() => null)]);
    if (!codes) for (const m of members) if (m.child.exitCode === null) m.child.kill("SIGKILL");
    res.memberExitCodes = codes ?? members.map((m) => m.child.exitCode);
    mkdirSync(logDir, { recursive: true });
    members.forEach((m, i) => {
      const f = join(logDir, `${group}-member${i + 1}.log`);
      writeFileSync(f, m.log + m.stdout);
      res.logs.push(f);
    });
  }
  if (!res.error) {
    // the windows still open were saved with the last checkpoints: a bounded run closes them
    progress(`${label}: closing the saved windows (bounded run), checking the totals`, true);
    const fin = spawnSync(process.execPath, memberArgs({ brokers, topic, group, url, bounded: true, port: null }), { cwd: ROOT, encoding: "utf8", timeout: 300_000, env: childEnv(), maxBuffer: 256 << 20 });
    res.finalRunExit = fin.status;
    const finLog = join(logDir, `${group}-final-bounded-run.log`);
    writeFileSync(finLog, (fin.stderr ?? "") + (fin.stdout ?? ""));
    res.logs.push(finLog);
    const committed = await committedMessages(conn, database, topic);
    const out = spawnSync(process.execPath, [BIN, "topology", "--mysql-url", url, "--json"], { cwd: ROOT, encoding: "utf8", maxBuffer: 256 << 20 });
    if (fin.status !== 0 || out.status !== 0) {
      res.totals = `not checked: final run exit ${fin.status}, topology exit ${out.status}`;
      res.error = (fin.stderr + out.stderr).slice(-2000);
    } else {
      const check = checkAgainstTruth(JSON.parse(out.stdout) as TopologyReport, fullTruth(meta));
      res.differences = check.differences.slice(0, 50);
      res.exact = check.ok && committed === total;
      res.totals = res.exact
        ? `exact (${check.edgesChecked} edges, ${check.servicesChecked} services, traces; ${fmt(committed)} messages committed once)`
        : `${check.differences.length} differences${committed !== total ? `, ${committed} committed of ${total}` : ""}: ${check.differences.slice(0, 3).join("; ")}`;
    }
  }
  await conn.query(`DROP DATABASE IF EXISTS ${database}`).catch(() => {});
  const st = res.stable;
  if (Object.keys(res.incidents).length) progress(`${label}: member incidents: ${Object.entries(res.incidents).map(([k, n]) => `${n} x ${k}`).join("; ")}`, true);
  progress(res.error && !st ? `${label}: FAILED ${res.error.slice(0, 300)}` : `${label}: ${fmt(st?.spansPerS)} spans/s stable (${fmt(st?.seconds, 1)} s), ${fmt(res.fromFirstJoin?.spansPerS)} from first join; partitions ${res.partitionsPerMember.map((p) => p.length).join("+")}; re-read ${fmt(res.spansReRead)}; totals ${res.totals.split(" (")[0]}${res.error ? `; ${res.error.slice(0, 200)}` : ""}`, true);
  return res;
}

// ---- main ---------------------------------------------------------------------------------------
const cpuModel = (() => {
  try {
    return /Model name:\s*(.+)/.exec(execSync("lscpu", { encoding: "utf8" }))?.[1].trim() ?? cpus()[0]?.model ?? "?";
  } catch {
    return cpus()[0]?.model ?? "?";
  }
})();
const loadStart = loadavg();
let brokers = values.brokers ?? "";
let mysqlUrl = values["mysql-url"] ?? "";
const cleanup = () => {
  for (const c of live) c.kill("SIGKILL");
  stopServices();
};
process.on("SIGINT", () => (cleanup(), process.exit(130)));
process.on("SIGTERM", () => (cleanup(), process.exit(143)));

const wanted = [...(brokers ? [] : ["kafka"]), ...(mysqlUrl ? [] : ["mysql"])];
if (wanted.length) {
  progress(`starting a private ${wanted.join(" + ")} (scripts/services.sh, state ${PRIVATE_ENV.TRACEFOLD_STATE_DIR})`, true);
  privateServices.push(...wanted);
  services("up", wanted);
  if (!brokers) brokers = privateEndpoint("KAFKA_BROKERS");
  if (!mysqlUrl) mysqlUrl = privateEndpoint("MYSQL_URL");
}
const server = new URL(mysqlUrl);
if (privateServices.includes("mysql")) {
  // every checkpoint writes the pending state of all a member's partitions in one statement
  // (sinks/mysql/sink.ts, fold_checkpoints): with one member that is the whole group's state, above
  // MariaDB's default 16 MB max_allowed_packet (DEPLOYMENT.md asks for more in production)
  const root = await mysqlClient.createConnection({ socketPath: join(PRIVATE_ENV.TRACEFOLD_STATE_DIR, "mariadb", "mysqld.sock"), user: "root" });
  await root.query("SET GLOBAL max_allowed_packet = 1073741824");
  await root.end();
}
let conn!: mysql.Connection;
let meta: ReplayMeta;
const results: RoundResult[] = [];
const notes: string[] = [];
let messages: WireMessage[] = [];
try {
  conn = await serverConnection(server);
  const loaded = await loadReplay(spec, (m) => progress(m));
  meta = loaded.meta;
  messages = loaded.messages;
  progress(`replay: ${fmt(meta.spans)} spans in ${fmt(meta.messages)} messages (one per trace, keyed by trace id), ${(meta.bytes / 1e6).toFixed(0)} MB`, true);
  progress("regenerating the generator's full truth for the totals check", true);
  fullTruth(meta);
  const admin = kafka(brokers).admin();
  await admin.connect();
  const retention = Math.max(256 << 20, Math.ceil((1.5 * meta.bytes) / spec.partitions));
  const topics: string[] = [];
  const newTopic = async (suffix: string) => {
    const t = `scaleout-${process.pid}-${suffix}`;
    await createTopic(admin, t, spec.partitions, retention);
    topics.push(t);
    return t;
  };
  const fill = async (t: string) => produce(brokers, t, messages, (n) => progress(`producing ${t}: ${fmt(n)} / ${fmt(messages.length)} messages`));
  try {
    let backlogTopic = "";
    if (startMode === "backlog") {
      backlogTopic = await newTopic("backlog");
      const s = await fill(backlogTopic);
      progress(`produced ${backlogTopic} in ${s.toFixed(1)} s (${fmt(meta.spans / s)} spans/s)`, true);
      messages = []; // not needed again
    }
    for (let round = 1; round <= rounds; round++) {
      for (const k of round % 2 ? memberCounts : [...memberCounts].reverse()) {
        const r = startMode === "backlog"
          ? await runRound(k, round, async () => backlogTopic, null)
          : await runRound(k, round, () => newTopic(`${k}-${round}`), fill);
        results.push(r);
      }
    }
  } finally {
    await admin.deleteTopics({ topics }).catch(() => {});
    await admin.disconnect();
  }
} finally {
  for (const c of live) c.kill("SIGKILL");
  await conn?.end().catch(() => {});
  const loadEnd = loadavg();
  if (results.length) report(loadEnd);
  stopServices();
}

function report(loadEnd: number[]): void {
  const machine = { cpuModel, cores: cpus().length, memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version, loadStart, loadEnd };
  const setup = {
    command,
    brokers: privateServices.includes("kafka") || !values.brokers ? `private Kafka 3.9.1 (scripts/services.sh, KRaft, 1 broker) on ${brokers}, same cores` : `given broker ${brokers}`,
    mysql: privateServices.includes("mysql") || !values["mysql-url"] ? `private MariaDB (scripts/services.sh) on ${server.host}, same cores` : `given MySQL ${server.host}`,
    replay: `ReplayGenerator seed ${spec.seed}, ${spec.services} services, ${spec.tracesPerSecond} traces/s of event time, ${fmt(meta.spans)} spans in ${fmt(meta.messages)} OTLP messages (one per trace, keyed by trace id), ${spec.partitions} partitions`,
    members: `tracefold run, one worker each (runtime.workers=1), unbounded, sinks.meta=mysql, sinks.traces=blackhole, runtime.checkpointIntervalMs=${checkpointMs}, source.kafka.sessionTimeoutMs=${sessionTimeoutMs}`,
    startMode,
  };
  const rows = results.map((r) => {
    const st = r.stable;
    const parts = r.partitionsPerMember.map((p) => p.length).join(" + ") || "-";
    const cores = (x: number | null | undefined) => (st && x !== null && x !== undefined ? (x / st.seconds).toFixed(2) : "-");
    return {
      md: `| ${r.members} | ${r.round} | ${parts} | ${fmt(st?.spansPerS)} | ${fmt(st?.seconds, 1)} | ${fmt(r.committedWindow?.spansPerS)} | ${fmt(r.fromFirstJoin?.spansPerS)} | ${fmt(st?.cpuSPerMSpans, 2)} | ${fmt(st?.brokerCpuSPerMSpans, 2)} | ${cores(st?.cpu.members)} / ${cores(st?.cpu.broker)} / ${cores(st?.cpu.mysqld)} / ${cores(st?.cpu.other)} | ${fmt(r.spansReRead)} | ${r.joins.length} (last at ${fmt(r.joins.at(-1)?.atS, 1)} s) | ${fmt(r.peakStateMb, 0)} | ${r.error && !r.exact ? `FAILED: ${r.error.slice(0, 120).replace(/\n/g, " ")}` : r.totals.split(" (")[0]} |`,
    };
  });
  const window = startMode === "backlog" ? "stable = last group join (final assignment) to every span processed (/metrics: fold_spans_in - fold_spans_reprocessed = N)" : "send of the backlog (group settled) to every span processed";
  const md = [
    `machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGb} GB, Node ${machine.node}; load average ${loadStart.map((x) => x.toFixed(2)).join(" ")} at start, ${loadEnd.map((x) => x.toFixed(2)).join(" ")} at end`,
    `${setup.replay}; ${setup.members}; ${setup.brokers}; ${setup.mysql}`,
    `window: ${window}${startMode === "backlog" ? "; 'from first join' includes the start-up rebalances" : ""}; CPU and cores busy over that window (/proc)`,
    "",
    `| members | round | partitions per member | spans/s (${startMode === "backlog" ? "stable" : "window"}) | window s | spans/s to all committed | spans/s from first join | CPU s per M spans (members) | broker CPU s per M spans | cores busy: members / broker / MariaDB / other | spans re-read | group joins | peak state MB | totals |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map((r) => r.md),
  ].join("\n");
  process.stdout.write(`\n${md}\n`);
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `scale-out-${new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z")}.json`);
  writeFileSync(file, JSON.stringify({ machine, setup, notes, results, markdown: md }, null, 2));
  process.stdout.write(`\nwrote ${file}\n`);
}
