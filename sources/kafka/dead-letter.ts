/**
 * The dead-letter topic: a message that fails to decode is produced, unchanged and keyed as it was
 * (when known), to `deadLetterTopic` with headers naming where it came from and why. The runtime
 * awaits these writes before a checkpoint commits offsets past the message, so no malformed
 * message is lost: it is either in the dead-letter topic or read again.
 */
import { Kafka, type Producer } from "kafkajs";
import type { DeadLetter, RuntimeContext, Sink } from "../../pipeline/contracts.js";
import { kafkajsConfig, type KafkaConnection } from "./config.js";

export interface DeadLetterConfig extends KafkaConnection {
  /** Topic the dead letters go to. */
  deadLetterTopic: string;
  /** Topic the messages were read from (a header). */
  sourceTopic: string;
}

export class KafkaDeadLetters implements Sink {
  private producer!: Producer;
  sent = 0;

  constructor(readonly config: DeadLetterConfig) {}

  async open(_ctx?: RuntimeContext): Promise<void> {
    this.producer = new Kafka(kafkajsConfig(this.config)).producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
  }

  async write(letter: unknown): Promise<void> {
    const l = letter as DeadLetter;
    await this.producer.send({
      topic: this.config.deadLetterTopic,
      acks: -1,
      messages: [{
        value: Buffer.from(l.message.buffer, l.message.byteOffset, l.message.byteLength),
        headers: {
          "tracefold.source.topic": this.config.sourceTopic,
          "tracefold.source.partition": String(l.partition),
          "tracefold.source.offset": String(l.offset),
          "tracefold.error.code": l.code,
          "tracefold.error.reason": l.reason,
        },
      }],
    });
    this.sent++;
  }

  async flush(): Promise<void> {}
  async close(): Promise<void> {
    await this.producer?.disconnect();
  }
  async healthcheck(): Promise<boolean> {
    return true;
  }
  metrics(): Record<string, number> {
    return { dead_letters_sent: this.sent };
  }
}
