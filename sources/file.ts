/**
 * The `file` source: capture files in one of the input formats, cut into messages (see
 * frameFile) and handed on in batches. All files feed partition 0, so spans of one trace split
 * over several files still meet in the same fold state.
 */
import { readFile } from "node:fs/promises";
import type { MessageBatch, RuntimeContext, Source } from "../pipeline/contracts.js";
import { TracefoldError } from "../pipeline/errors.js";
import { frameFile, isFormat } from "../operators/decode/index.js";
import type { FormatName } from "../operators/decode/types.js";

export interface FileSourceConfig {
  paths: string[];
  format: FormatName;
  /** Messages per batch. */
  batchMessages?: number;
}

export class FileSource implements Source {
  private queue: MessageBatch[] = [];
  private loaded = false;
  messages = 0;
  bytes = 0;

  constructor(readonly config: FileSourceConfig) {
    if (!isFormat(config.format)) throw new TracefoldError("TF_CONFIG_INVALID", `unknown format "${config.format}"`, "file");
  }

  async open(_ctx: RuntimeContext): Promise<void> {}

  private async load(): Promise<void> {
    const per = this.config.batchMessages ?? 256;
    for (const path of this.config.paths) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (err) {
        throw new TracefoldError("TF_IO", `cannot read ${path}: ${(err as Error).message}`, "file");
      }
      this.bytes += bytes.length;
      const frames = frameFile(this.config.format, bytes);
      for (let k = 0; k < frames.length; k += per) {
        const part = frames.slice(k, k + per);
        this.queue.push({
          kind: "messages",
          partition: 0,
          messages: part.map((f) => bytes.subarray(f.start, f.end)),
          origins: part.map((f, j) => (frames.length === 1 ? path : `${path}#${k + j} (byte ${f.start})`)),
          offsets: part.map((_f, j) => k + j),
        });
        this.messages += part.length;
      }
    }
    this.loaded = true;
  }

  async next(): Promise<MessageBatch | null> {
    if (!this.loaded) await this.load();
    return this.queue.shift() ?? null;
  }

  async close(): Promise<void> {
    this.queue = [];
  }

  metrics(): Record<string, number> {
    return { file_messages: this.messages, file_bytes: this.bytes };
  }
}
