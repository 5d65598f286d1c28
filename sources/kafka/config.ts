/** Kafka connection settings shared by the source, the dead-letter producer and `produce`. */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import kafkajs, { type KafkaConfig, type SASLOptions } from "kafkajs";

// kafkajs reads gzip itself; LZ4 (lz4-napi: prebuilt, frame format with independent blocks as
// Kafka requires) and Snappy (snappyjs, pure JS) come as registered codecs.
const require = createRequire(import.meta.url);
const LZ4Codec = require("@2l/kafkajs-lz4") as { default?: new () => { codec: unknown } } & (new () => { codec: unknown });
const SnappyCodec = require("kafkajs-snappy") as () => unknown;
const Lz4 = LZ4Codec.default ?? LZ4Codec;
// (kafkajs is CommonJS: Node's ESM loader does not see CompressionCodecs as a named export)
const { CompressionCodecs, CompressionTypes } = kafkajs;
(CompressionCodecs as Record<number, unknown>)[CompressionTypes.LZ4] = new Lz4().codec;
(CompressionCodecs as Record<number, unknown>)[CompressionTypes.Snappy] = SnappyCodec;

export interface KafkaConnection {
  /** host:port, comma-separated or a list. */
  brokers: string[] | string;
  clientId?: string;
  /** SASL mechanism: plain, scram-sha-256, scram-sha-512. */
  saslMechanism?: "plain" | "scram-sha-256" | "scram-sha-512";
  saslUsername?: string;
  saslPassword?: string;
  /** File holding the SASL password (Kubernetes Secret mounted as a file); never logged. */
  saslPasswordFile?: string;
  tls?: boolean;
  tlsCaFile?: string;
  connectionTimeoutMs?: number;
}

export function kafkajsConfig(c: KafkaConnection): KafkaConfig {
  const brokers = Array.isArray(c.brokers) ? c.brokers : c.brokers.split(",").map((b) => b.trim()).filter(Boolean);
  const cfg: KafkaConfig = {
    clientId: c.clientId ?? "tracefold",
    brokers,
    connectionTimeout: c.connectionTimeoutMs ?? 5_000,
    // kafkajs logs retried, transient conditions (a coordinator still loading) as errors; what does
    // not recover surfaces as an exception to the caller, which logs it once
    logLevel: 0,
  };
  if (c.tls) cfg.ssl = c.tlsCaFile ? { ca: [readFileSync(c.tlsCaFile, "utf8")] } : true;
  if (c.saslMechanism) {
    const password = c.saslPasswordFile ? readFileSync(c.saslPasswordFile, "utf8").trim() : (c.saslPassword ?? "");
    cfg.sasl = { mechanism: c.saslMechanism, username: c.saslUsername ?? "", password } as SASLOptions;
  }
  return cfg;
}

/** The connection part of the source.kafka settings section (config.ts `section`). */
export function connectionFromSettings(k: Record<string, unknown>): KafkaConnection {
  return {
    brokers: k.brokers as string[],
    saslMechanism: (k.saslMechanism || undefined) as KafkaConnection["saslMechanism"],
    saslUsername: k.saslUsername as string,
    saslPasswordFile: (k.saslPasswordFile || undefined) as string | undefined,
    tls: k.tls as boolean,
    tlsCaFile: (k.tlsCaFile || undefined) as string | undefined,
  };
}
