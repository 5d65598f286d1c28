/**
 * `tracefold_exchange`: the repartition topic's messages (runtime.shuffle=topic). Each value is
 * one standalone exchange batch (pipeline/exchange.ts): the compact fold records of the traces
 * whose key hashes to the message's partition, with every name they use. Trace details were
 * written to HBase before the re-keying, so only the fold reads these.
 */
import { ExchangeReader } from "../../pipeline/exchange.js";
import type { Interner } from "../../pipeline/intern.js";
import type { SpanBatch } from "../../pipeline/span-batch.js";
import { DecodeError } from "../../pipeline/errors.js";
import type { DecodeStats } from "./types.js";

const readers = new WeakMap<Interner, ExchangeReader>();

export function decodeExchange(bytes: Uint8Array, out: SpanBatch, stats: DecodeStats): void {
  let r = readers.get(out.interner);
  if (!r) readers.set(out.interner, (r = new ExchangeReader(out.interner)));
  let n: number;
  try {
    n = r.read(bytes, out, true);
  } catch (err) {
    throw new DecodeError("tracefold_exchange", 0, (err as Error).message);
  }
  stats.messages++;
  stats.spans += n;
}
