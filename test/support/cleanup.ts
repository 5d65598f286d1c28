/**
 * What integration tests leave behind on the shared services, removed after them: HBase tables
 * (each pre-split into regions that hold heap on the one region server) and Kafka topics.
 */
import { Kafka } from "kafkajs";
import { Thrift2Client } from "../../sinks/hbase/thrift2.js";

export async function dropHBaseTables(thrift: string, tables: string[]): Promise<void> {
  const hb = new Thrift2Client(thrift);
  try {
    for (const t of tables) await hb.deleteTable(t).catch(() => {});
  } finally {
    await hb.close();
  }
}

export async function deleteTopics(brokers: string, topics: string[]): Promise<void> {
  const a = new Kafka({ clientId: "tracefold-test-cleanup", brokers: brokers.split(","), logLevel: 0 }).admin();
  await a.connect();
  try {
    await a.deleteTopics({ topics }).catch(() => {});
  } finally {
    await a.disconnect();
  }
}
