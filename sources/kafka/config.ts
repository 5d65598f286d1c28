/** Kafka connection settings shared by the source, the dead-letter producer and `produce`. */
import { readFileSync } from "node:fs";
import type { KafkaConfig, SASLOptions } from "kafkajs";

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
