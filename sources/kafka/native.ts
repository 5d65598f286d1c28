/**
 * node-rdkafka, the native Kafka client behind `source.kafka.client=node-rdkafka`: never a
 * dependency of the project (a plain `npm install` compiles nothing), installed on demand by
 * `scripts/ensure-native-kafka.sh` into a per-user cache and loaded from there, lazily, only when
 * selected. The addon loads in one thread per process and aborts the process when its callbacks
 * run inside a worker_thread (docs/DECISIONS.md 14): only the main thread may load it.
 *
 * Where it is loaded from: TRACEFOLD_NODE_RDKAFKA_DIR (a node_modules directory), else
 * ${XDG_CACHE_HOME:-~/.cache}/tracefold/native/node-rdkafka-<version>/node_modules.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import { isMainThread } from "node:worker_threads";
import { TracefoldError } from "../../pipeline/errors.js";

/** The version scripts/ensure-native-kafka.sh installs (exact). */
export const NODE_RDKAFKA_VERSION = "3.6.1";

/** The node_modules directory node-rdkafka is loaded from. */
export function nodeRdkafkaDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TRACEFOLD_NODE_RDKAFKA_DIR) return env.TRACEFOLD_NODE_RDKAFKA_DIR;
  const cache = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "tracefold", "native", `node-rdkafka-${NODE_RDKAFKA_VERSION}`, "node_modules");
}

// ---- the part of node-rdkafka's API tracefold uses (the package is not installed at build time)

export interface RdTopicPartition {
  topic: string;
  partition: number;
  /** A number; absent: the group's committed offset, else auto.offset.reset. */
  offset?: number;
}

export interface RdMessage {
  value: Buffer | null;
  size: number;
  topic: string;
  partition: number;
  offset: number;
}

export interface RdError extends Error {
  code: number;
  isFatal?: boolean;
}

export interface RdMetadata {
  topics: Array<{ name: string; partitions: Array<{ id: number }> }>;
}

export interface RdKafkaConsumer {
  connect(options: { timeout?: number; topic?: string; allTopics?: boolean }, cb: (err: RdError | null) => void): void;
  subscribe(topics: string[]): void;
  setDefaultConsumeTimeout(ms: number): void;
  consume(n: number, cb: (err: RdError | null, messages: RdMessage[]) => void): void;
  assign(assignment: RdTopicPartition[]): void;
  unassign(): void;
  assignments(): RdTopicPartition[];
  rebalanceProtocol(): string;
  pause(tps: RdTopicPartition[]): void;
  resume(tps: RdTopicPartition[]): void;
  commitSync(tps: RdTopicPartition[]): void;
  committed(tps: RdTopicPartition[], timeoutMs: number, cb: (err: RdError | null, tps: RdTopicPartition[]) => void): void;
  queryWatermarkOffsets(topic: string, partition: number, timeoutMs: number, cb: (err: RdError | null, o: { highOffset: number; lowOffset: number }) => void): void;
  getMetadata(options: { topic?: string; timeout?: number }, cb: (err: RdError | null, m: RdMetadata) => void): void;
  isConnected(): boolean;
  disconnect(cb?: (err: unknown) => void): void;
  on(event: "event.error" | "rebalance.error", fn: (err: RdError) => void): void;
}

export interface NodeRdkafka {
  KafkaConsumer: new (conf: Record<string, unknown>, topicConf: Record<string, unknown>) => RdKafkaConsumer;
  CODES: { ERRORS: Record<string, number> };
  librdkafkaVersion: string;
  features: string[];
}

let loaded: NodeRdkafka | null = null;

/** node-rdkafka from the cache (or TRACEFOLD_NODE_RDKAFKA_DIR); a clear error when it is absent. */
export function loadNodeRdkafka(env: NodeJS.ProcessEnv = process.env): NodeRdkafka {
  if (loaded) return loaded;
  if (!isMainThread)
    throw new TracefoldError("TF_CONFIG_INVALID", "source.kafka.client=node-rdkafka: the native client runs only in the main thread (it aborts the process inside a worker thread)", "config");
  const dir = nodeRdkafkaDir(env);
  const pkg = join(dir, "node-rdkafka");
  if (!existsSync(join(pkg, "package.json")) || !existsSync(join(pkg, "build", "Release", "node-librdkafka.node")))
    throw new TracefoldError("TF_CONFIG_INVALID", "source.kafka.client=node-rdkafka: node-rdkafka is not installed; run bash scripts/ensure-native-kafka.sh", "config");
  const require = createRequire(join(dir, "tracefold-loader.cjs"));
  try {
    loaded = require("node-rdkafka") as NodeRdkafka;
  } catch (err) {
    throw new TracefoldError(
      "TF_CONFIG_INVALID",
      `source.kafka.client=node-rdkafka: node-rdkafka in ${dir} does not load (${(err as Error).message}); run bash scripts/ensure-native-kafka.sh`,
      "config",
    );
  }
  return loaded;
}
