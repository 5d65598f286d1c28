/**
 * The shuffled job (input not keyed by trace id, runtime.shuffle=thread): one process owns the
 * topic. The main thread is its consumer-group member and checkpoint coordinator; N worker
 * threads (pipeline/shuffle-worker.ts) decode, write trace details, and re-key the compact fold
 * records to the worker owning each trace's key group, which folds them.
 *
 *   Kafka --(main: consumer)--> worker p % N: decode -> HBase -> keyBy(traceId) ==> worker g % N: fold
 *                                                                               (MessagePorts,
 *   checkpoint: barrier after the input batches, aligned in every fold;          transferred,
 *   main stores all deltas + key-group states + offsets in one MySQL             LZ4 optional)
 *   transaction, then commits the offsets.
 *
 * Exactness (docs/ARCHITECTURE.md "The guarantee"): the key groups' pending state and the input
 * offsets are one consistent cut (aligned barriers), stored with the deltas in one transaction
 * whose owner epochs fence out a previous owner; any rebalance, refused checkpoint or dead
 * worker rolls the whole process back to the last stored cut (a new generation: everything of
 * an older one still in flight is dropped).
 *
 * A trace's spans meet only if one process reads every partition: with a second process in the
 * group, this one holds (not ready, an error in the log) until it owns the whole topic again;
 * across processes use runtime.shuffle=topic.
 */
import { availableParallelism } from "node:os";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { workerCount, type Config } from "./config.js";
import { closeServer, onStopSignals, serveHealth } from "./lifecycle.js";
import type { Logger, MessageBatch, Position, RuntimeContext } from "./contracts.js";
import { TracefoldError } from "./errors.js";
import { Interner } from "./intern.js";
import { buildJob } from "./job.js";
import { isGauge } from "./metrics.js";
import { registry } from "./registry.js";
import { RunWindow, topicPartitions as topicPartitionCount, type ProcessResult } from "./process.js";
import type { PackedInput, ShuffleSnapshot, ShuffleWorkerData } from "./shuffle-worker.js";
import { KafkaSource } from "../sources/kafka/source.js";
import type { MainThreadKafkaSource } from "../sources/kafka/rdkafka-source.js";
import type { MysqlSink, MetaWrite } from "../sinks/mysql/sink.js";

interface Slot {
  index: number;
  worker: Worker | null;
  incarnation: number;
  metrics: Record<string, number>;
  ready: boolean;
  reasons: string[];
  opened: Promise<void>;
  /** Input batches this worker may still be handed. */
  credits: number;
}

function workerFile(): string {
  const here = fileURLToPath(new URL("./shuffle-worker.js", import.meta.url));
  if (existsSync(here)) return here;
  return fileURLToPath(new URL("../dist/pipeline/shuffle-worker.js", import.meta.url));
}

/** The key groups' rows in the checkpoint tables live under this pseudo-topic. */
export const keyGroupTopic = (topic: string) => `${topic}#kg`;

export async function runShuffleProcess(cfg: Config, log: Logger): Promise<ProcessResult> {
  const t0 = Date.now();
  const workers = workerCount(cfg);
  const keyGroups = cfg["runtime.keyGroups"] as number;
  if (keyGroups < workers) throw new TracefoldError("TF_CONFIG_INVALID", `runtime.keyGroups (${keyGroups}) must be at least runtime.workers (${workers})`, "config");
  const credits = cfg["runtime.exchangeCredits"] as number;
  const compression = cfg["runtime.exchangeCompression"] as "none" | "lz4";
  const job = buildJob(cfg);
  const spec = (name: string) => [...job.sources, ...job.sinks].find((n) => n.name === name)!;
  const topic = cfg["source.kafka.topic"] as string;
  const kgTopic = keyGroupTopic(topic);
  const allKeyGroups = Array.from({ length: keyGroups }, (_, g) => g);
  const statusIntervalMs = Math.min(1000, (cfg["runtime.tickMs"] as number) * 4);
  const kafkaClient = (cfg["source.kafka.client"] as string | undefined) ?? "kafkajs";
  log.info("starting the shuffled job: input not keyed by trace id", { workers, keyGroups, exchangeCompression: compression, exchangeCredits: credits, topic, kafkaClient, cores: availableParallelism() });

  // the native client only here, on the main thread, loaded only when selected (DECISIONS 14)
  const source: MainThreadKafkaSource =
    kafkaClient === "node-rdkafka"
      ? new (await import("../sources/kafka/rdkafka-source.js")).RdkafkaSource(spec("kafka").config as never)
      : new KafkaSource(spec("kafka").config as never);

  // ---- workers and the channels between every pair of them
  const slots: Slot[] = [];
  let finalReport: (worker: number) => void = () => {};
  const retired: Record<string, number> = {};
  let restarts = 0;
  let stopping = false;
  let gen = 0;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const acks = new Map<string, Set<number>>();
  const snapshots = new Map<number, ShuffleSnapshot[]>();
  const ack = (key: string, worker: number) => {
    let s = acks.get(key);
    if (!s) acks.set(key, (s = new Set()));
    s.add(worker);
    wake();
  };
  /** Resolves when cond() holds (re-checked on every worker message). */
  const until = (cond: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      if (cond()) return resolve();
      const w = () => {
        if (!cond()) return;
        waiters.delete(w);
        resolve();
      };
      waiters.add(w);
    });

  const start = (index: number, peers: Array<MessagePort | null>): Slot => {
    const prev = slots[index];
    const slot: Slot = prev ?? { index, worker: null, incarnation: 0, metrics: {}, ready: false, reasons: [], opened: Promise.resolve(), credits };
    const data: ShuffleWorkerData = { cfg, workerIndex: index, workers, keyGroups, credits, compression, incarnation: slot.incarnation, peers, statusIntervalMs };
    const w = new Worker(workerFile(), { workerData: data, transferList: peers.filter((p): p is MessagePort => p !== null) });
    slot.worker = w;
    slot.metrics = {};
    slot.ready = false;
    slot.credits = credits;
    let opened!: () => void;
    slot.opened = new Promise((r) => (opened = r));
    type FromWorker = { t: string; worker: number; gen?: number; n?: number; id?: number; metrics?: Record<string, number>; ready?: boolean; reasons?: string[] };
    w.on("message", (m: FromWorker) => {
      if (m.t === "status" || m.t === "opened") {
        slot.metrics = m.metrics!;
        slot.ready = m.ready!;
        slot.reasons = m.reasons!;
        if (m.t === "opened") opened();
        if ((m as { final?: boolean }).final) finalReport(index);
      } else if (m.t === "credit") {
        if (m.gen === gen) slot.credits += m.n!;
      } else if (m.t === "reset-done") ack(`reset:${m.gen}`, m.worker);
      else if (m.t === "restored") ack(`restored:${m.gen}`, m.worker);
      else if (m.t === "snapshot") {
        const list = snapshots.get(m.id!) ?? [];
        list.push(m as unknown as ShuffleSnapshot);
        snapshots.set(m.id!, list);
      }
      wake();
    });
    w.on("error", (err) => log.error("worker failed", { worker: index, error: err.stack ?? String(err) }));
    w.on("exit", (code) => {
      if (slot.worker !== w) return;
      slot.worker = null;
      for (const [k, v] of Object.entries(slot.metrics)) if (!isGauge(k)) retired[k] = (retired[k] ?? 0) + v;
      slot.metrics = {};
      wake();
      if (stopping || ended || restarting) return;
      restarts++;
      log.error("worker died; restarting it, and the process resumes from the last checkpoint", { worker: index, exitCode: code, restarts });
      void restartAll(`worker ${index} died`);
    });
    slots[index] = slot;
    return slot;
  };
  const ports = meshOf(workers);
  for (let i = 0; i < workers; i++) start(i, ports[i]);
  /**
   * Every worker feeds every other (all-to-all), so like Flink's restart of a pipelined region a
   * dead worker restarts them all, on a fresh mesh of channels, from the last checkpoint.
   */
  let restarting = false;
  let backoffMs = cfg["runtime.workerRestartBackoffMs"] as number;
  const restartAll = async (reason: string): Promise<void> => {
    restarting = true;
    if (source.joined) source.hold();
    gen++;
    wake();
    await Promise.all(slots.map((s) => (s.worker ? s.worker.terminate() : undefined)));
    await new Promise((r) => setTimeout(r, backoffMs));
    backoffMs = Math.min(30_000, Math.max(100, backoffMs * 2));
    restarting = false;
    if (stopping || ended) return;
    const mesh = meshOf(workers);
    for (const s of slots) {
      s.incarnation++;
      start(s.index, mesh[s.index]);
    }
    await Promise.all(slots.map((s) => s.opened));
    await rollback(`${reason}: every worker restarted`);
  };
  const broadcast = (m: unknown) => {
    for (const s of slots) s.worker?.postMessage(m);
  };
  let ended = false;

  // ---- the checkpoint store and the consumer
  // MySQL keeps the checkpoints; a blackhole (benchmarks) keeps nothing
  const store = registry.createSink(spec("meta")) as MysqlSink;
  const load = (t: string, parts: number[]) => (store.loadCheckpoint ? store.loadCheckpoint(t, parts) : Promise.resolve([]));
  const noop = () => {};
  const ctx: RuntimeContext = { interner: new Interner(), workerIndex: 0, workers: 1, log, now: () => Date.now(), deadLetter: noop };
  await store.open(ctx);
  await Promise.all(slots.map((s) => s.opened));
  /** Next offset per partition of what was handed to the workers (the checkpoint's positions). */
  const dispatched = new Map<number, number>();
  let topicPartitions = 0;
  let ownsTopic = false;

  // ---- rollback and checkpoint, one at a time
  let chain: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => {});
    return run;
  };
  let rollbacks = 0;
  let checkpoints = 0;
  let fenced = 0;
  let lastCheckpointMs = 0;
  let fatal: Error | null = null;

  const rollbackNow = async (reason: string): Promise<void> => {
    source.hold();
    gen++;
    const g = gen;
    wake(); // the pump drops a batch it holds for the old generation
    await Promise.all(slots.map((s) => s.opened));
    broadcast({ t: "reset", gen: g });
    await until(() => g !== gen || slots.every((s) => !s.worker || acks.get(`reset:${g}`)?.has(s.index)));
    if (g !== gen) return;
    for (const s of slots) s.credits = credits;
    const a = source.assignment();
    ownsTopic = topicPartitions > 0 && a.partitions.length === topicPartitions;
    if (!ownsTopic) {
      // another process reads part of the topic: a trace's spans would not meet; wait for the
      // next rebalance instead of folding a part
      log.error("the thread shuffle needs every partition of the topic in this process; holding until it has them (use runtime.shuffle=topic across processes)", { assigned: a.partitions, partitions: topicPartitions });
      return;
    }
    const saved = await load(topic, a.partitions);
    const kg = await load(kgTopic, allKeyGroups);
    for (const s of slots) {
      const states = kg.filter((x) => x.state !== null && x.partition % workers === s.index).map((x) => ({ partition: x.partition, state: x.state! }));
      s.worker?.postMessage({ t: "restore", gen: g, states });
    }
    await until(() => g !== gen || slots.every((s) => !s.worker || acks.get(`restored:${g}`)?.has(s.index)));
    if (g !== gen) return;
    acks.delete(`reset:${g}`);
    acks.delete(`restored:${g}`);
    dispatched.clear();
    const offsets = new Map(saved.map((x) => [x.partition, x.nextOffset]));
    for (const [p, o] of offsets) dispatched.set(p, o);
    rollbacks++;
    log.info("rolled back to the last checkpoint", { reason, generation: g, resumedFrom: Object.fromEntries(offsets), restoredKeyGroups: kg.filter((x) => x.state !== null).length });
    source.rewind(offsets);
    wake();
  };
  const rollback = (reason: string) =>
    serial(() => rollbackNow(reason)).catch((err) => {
      log.error("restoring the checkpointed state failed; the input stays paused", { error: String(err) });
      fatal = err as Error;
      source.interrupt();
    });

  let checkpointId = 0;
  const checkpointNow = async (final: boolean): Promise<boolean> => {
    if (source.holding || !ownsTopic) return false;
    const ct0 = Date.now();
    const id = ++checkpointId;
    const g = gen;
    const positions: Position[] = [...dispatched].map(([partition, nextOffset]) => ({ topic, partition, nextOffset }));
    broadcast({ t: "barrier", gen: g, id, final });
    await until(() => g !== gen || (snapshots.get(id)?.filter((s) => s.gen === g).length ?? 0) === workers);
    const snaps = (snapshots.get(id) ?? []).filter((s) => s.gen === g);
    snapshots.delete(id);
    if (g !== gen) return false;
    const w: MetaWrite = {
      deltas: snaps[0].deltas,
      moreDeltas: snaps.slice(1).map((s) => s.deltas),
      offsets: [...positions, ...allKeyGroups.map((kg) => ({ topic: kgTopic, partition: kg, nextOffset: 0 }))],
      states: snaps.flatMap((s) => s.states.map((x) => ({ ...x, topic: kgTopic }))),
    };
    try {
      await store.write(w);
      broadcast({ t: "stored", gen: g, ok: true });
    } catch (err) {
      broadcast({ t: "stored", gen: g, ok: false });
      if ((err as TracefoldError).code !== "TF_FENCED") throw err;
      fenced++;
      log.warn("checkpoint fenced: a partition has a newer owner; rolling back", { error: (err as Error).message });
      await rollbackNow("fenced checkpoint");
      return false;
    }
    await source.commit(positions);
    checkpoints++;
    lastCheckpointMs = Date.now() - ct0;
    return true;
  };
  const checkpoint = (final: boolean) => serial(() => checkpointNow(final));

  // ---- health
  const sum = (): Record<string, number> => {
    const out: Record<string, number> = { ...retired };
    for (const s of slots) for (const [k, v] of Object.entries(s.metrics)) out[k] = (out[k] ?? 0) + v;
    Object.assign(out, source.metrics(), store.metrics?.() ?? {});
    const mem = process.memoryUsage();
    Object.assign(out, {
      runtime_checkpoints: checkpoints,
      runtime_last_checkpoint_ms: lastCheckpointMs,
      runtime_rollbacks: rollbacks,
      runtime_fenced_checkpoints: fenced,
      process_workers: slots.filter((s) => s.worker).length,
      process_worker_restarts: restarts,
      process_ready: readiness().ready ? 1 : 0,
      process_rss_bytes: mem.rss,
      process_heap_used_bytes: mem.heapUsed,
      exchange_input_credits: slots.reduce((n, s) => n + s.credits, 0),
    });
    return out;
  };
  const readiness = (): { ready: boolean; reasons: string[] } => {
    if (stopping) return { ready: false, reasons: ["draining after a signal"] };
    const reasons: string[] = [];
    if (!source.ready()) reasons.push("kafka: not in the consumer group");
    else if (!ownsTopic) reasons.push("kafka: the thread shuffle needs every partition of the topic in this process");
    for (const s of slots) {
      if (!s.worker) reasons.push(`worker ${s.index}: restarting`);
      else if (!s.ready) reasons.push(...s.reasons.map((r) => `worker ${s.index}: ${r}`));
    }
    if (fatal) reasons.push(`fatal: ${fatal.message}`);
    return { ready: reasons.length === 0, reasons };
  };
  const server = await serveHealth(cfg, log, { metrics: sum, readiness });
  const uninstall = onStopSignals(
    cfg,
    log,
    () => {
      stopping = true;
      source.interrupt();
      wake();
    },
    () => process.exit(1), // the input resumes from the last checkpoint
  );

  // ---- the pump
  const packed = (b: MessageBatch): { m: PackedInput; transfer: ArrayBuffer[] } => {
    let size = 0;
    for (const x of b.messages) size += x.length;
    const buf = new ArrayBuffer(size);
    const bytes = new Uint8Array(buf);
    const ends = new Uint32Array(b.messages.length);
    let p = 0;
    b.messages.forEach((x, i) => {
      bytes.set(x, p);
      p += x.length;
      ends[i] = p;
    });
    const m: PackedInput = { t: "input", gen, partition: b.partition, buf, ends, offsets: Float64Array.from(b.offsets), topic };
    return { m, transfer: [buf, ends.buffer as ArrayBuffer, m.offsets.buffer as ArrayBuffer] };
  };
  let exitCode = 0;
  let stored = true;
  let metrics: Record<string, number> = {};
  const measured = new RunWindow();
  try {
    topicPartitions = await topicPartitionCount(cfg);
    source.onRevoking?.(async () => {
      if (!stopping) await checkpoint(false).catch((err) => log.warn("the checkpoint before a rebalance failed; the rollback resumes from the previous one", { error: String(err) }));
    });
    source.onAssigned((change) => void rollback(`rebalance: assigned [${change.assigned.join(",")}] revoked [${change.revoked.join(",")}]`));
    // the measured window (as runProcess's): from the consumer's open (the workers are up) to the
    // end of the input loop, its last checkpoint included
    measured.start();
    await source.open(ctx);
    const interval = cfg["runtime.checkpointIntervalMs"] as number;
    let lastCheckpoint = Date.now();
    const timer = setInterval(() => {
      if (!stopping && Date.now() - lastCheckpoint >= interval && !source.holding) {
        lastCheckpoint = Date.now();
        checkpoint(false).catch((err) => log.error("checkpoint failed", { error: String(err) }));
      }
    }, Math.min(interval, 250));
    timer.unref();
    try {
      for (;;) {
        if (stopping || fatal) break;
        const b = await source.next();
        if (b === null) {
          if (stopping || fatal) break;
          // the end of a bounded input; unless a rollback (or a restart) rewinds it again, the
          // last checkpoint closes every window
          await until(() => !restarting);
          await chain;
          if (!source.ended) continue;
          const rollbacksBefore = rollbacks;
          stored = await checkpoint(true);
          if (stored && rollbacks === rollbacksBefore && !restarting) break;
          await new Promise((r) => setTimeout(r, 100));
          await until(() => !restarting);
          await chain;
          continue;
        }
        if (b.generation !== source.generation) continue;
        const target = slots[b.partition % workers];
        await until(() => b.generation !== source.generation || stopping || (target.worker !== null && target.credits > 0));
        if (b.generation !== source.generation || stopping) continue;
        // no await from here to the post: a checkpoint takes its positions and posts its barrier
        // at one moment too, so a batch is either before the barrier and in the positions, or
        // after both
        const { m, transfer } = packed(b);
        target.credits--;
        target.worker!.postMessage(m, transfer);
        dispatched.set(b.partition, b.offsets[b.offsets.length - 1] + 1);
      }
    } finally {
      clearInterval(timer);
    }
    measured.end();
    if (fatal) throw fatal;
    // a stop keeps the open windows: they are saved with this checkpoint
    if (stopping) stored = await checkpoint(false);
    if (!stored) {
      exitCode = 1;
      log.error("the last checkpoint could not be stored (a rebalance was pending); the next start resumes from the previous one");
    }
  } finally {
    ended = true;
    uninstall();
    await source.close().catch((err) => log.warn("leaving the consumer group failed", { error: String(err) }));
    // the workers' last counters, then they exit
    const reported = new Set<number>();
    finalReport = (i) => reported.add(i);
    broadcast({ t: "report" });
    await Promise.race([until(() => slots.every((s) => !s.worker || reported.has(s.index))), new Promise((r) => setTimeout(r, 3000).unref())]);
    metrics = sum();
    await Promise.all(
      slots.map(
        (s) =>
          new Promise<void>((r) => {
            if (!s.worker) return r();
            s.worker.once("exit", () => r());
            s.worker.postMessage({ t: "exit" });
            setTimeout(() => void s.worker?.terminate().then(() => r()), 5000).unref();
          }),
      ),
    );
    await store.close().catch(() => {});
    await closeServer(server);
  }
  return { stopped: stopping, elapsedMs: Date.now() - t0, metrics, exitCode, ...measured.result() };
}

/** A channel between every pair of workers: mesh[i][j] is i's end of the i-j channel. */
function meshOf(workers: number): Array<Array<MessagePort | null>> {
  const ports: Array<Array<MessagePort | null>> = Array.from({ length: workers }, () => Array.from({ length: workers }, () => null));
  for (let i = 0; i < workers; i++)
    for (let j = i + 1; j < workers; j++) {
      const ch = new MessageChannel();
      ports[i][j] = ch.port1;
      ports[j][i] = ch.port2;
    }
  return ports;
}

