/**
 * The `replay` source: realistic microservice traffic from the seeded generator, as SpanBatches
 * per partition, with the ground truth of what it generated (for the run's truth check).
 */
import type { RuntimeContext, Source } from "../../pipeline/contracts.js";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import { ReplayGenerator, type ReplayOptions } from "./generator.js";

export interface ReplaySourceConfig extends Partial<ReplayOptions> {
  /** Spans to generate; 0 = forever. */
  spans?: number;
}

export class ReplaySource implements Source {
  generator!: ReplayGenerator;
  private queue: SpanBatch[] = [];
  private produced = 0;
  private done = false;

  constructor(readonly config: ReplaySourceConfig = {}) {}

  async open(ctx: RuntimeContext): Promise<void> {
    if (this.generator) return;
    const { spans: _spans, ...opts } = this.config;
    this.generator = new ReplayGenerator({ seed: 1, ...opts }, ctx.interner);
  }

  async next(): Promise<SpanBatch | null> {
    if (this.queue.length === 0) {
      const total = this.config.spans ?? 2_000_000;
      if (this.done || (total > 0 && this.produced >= total)) return null;
      const chunk = this.generator.batchSize * this.generator.partitions;
      const want = total > 0 ? Math.min(chunk, total - this.produced) : chunk;
      this.produced += this.generator.generate(want, (b) => this.queue.push(b.clone()));
      if (this.queue.length === 0) this.done = true;
    }
    return this.queue.shift() ?? null;
  }

  async close(): Promise<void> {
    this.queue = [];
  }

  metrics(): Record<string, number> {
    return { replay_spans: this.produced };
  }
}
