/** The `blackhole` sink: counts what it is given and keeps nothing (the compute ceiling). */
import type { RuntimeContext, Sink } from "../pipeline/contracts.js";

export class BlackholeSink implements Sink {
  writes = 0;
  async open(_ctx: RuntimeContext): Promise<void> {}
  async write(_batch: unknown): Promise<void> {
    this.writes++;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  async healthcheck(): Promise<boolean> {
    return true;
  }
  metrics(): Record<string, number> {
    return { blackhole_writes: this.writes };
  }
}
