/**
 * The topic a writing command (`produce`, `replay --to kafka`) sends to. tracefold's producers
 * never auto-create topics (a typo would otherwise make a one-partition topic the consumer group
 * cannot scale on), so a missing topic is either created with the partitions the user asked for,
 * or reported with the fix, before anything is sent.
 */
import { Kafka } from "kafkajs";
import { TracefoldError } from "../../pipeline/errors.js";
import { kafkajsConfig, type KafkaConnection } from "./config.js";

/**
 * Returns the topic's partition count, creating the topic with `partitions` partitions when it
 * is missing and `partitions` > 0; a missing topic without `partitions` is a TF_CONFIG_INVALID
 * error that names both ways out.
 */
export async function ensureTopic(conn: KafkaConnection, topic: string, partitions = 0): Promise<{ partitions: number; created: boolean }> {
  const admin = new Kafka(kafkajsConfig(conn)).admin();
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    if (existing.includes(topic)) {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      return { partitions: meta.topics[0]?.partitions.length ?? 0, created: false };
    }
    if (partitions <= 0) {
      const brokers = Array.isArray(conn.brokers) ? conn.brokers.join(",") : conn.brokers;
      throw new TracefoldError(
        "TF_CONFIG_INVALID",
        `topic "${topic}" does not exist on ${brokers}: pass --partitions N to create it with N partitions, or create it first (kafka-topics.sh --bootstrap-server ${brokers} --create --topic ${topic} --partitions N)`,
        "cli",
      );
    }
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    return { partitions, created: true };
  } finally {
    await admin.disconnect();
  }
}
