/**
 * Splitting a producer's messages into requests the broker accepts. kafkajs sends the messages of
 * one partition in one request as one record batch, and the broker refuses a record batch over
 * `message.max.bytes` (1 MiB by default) whole (MESSAGE_TOO_LARGE, not retriable). A batch is its
 * records' values and keys plus each record's own framing, which matters for small messages: one
 * span per message is ~180 B of value and ~40 B of key and framing.
 */

/** A v2 record's framing, rounded up: length, attributes, timestamp and offset deltas, key and value lengths, header count (varints, ~10-25 bytes). */
export const RECORD_OVERHEAD_BYTES = 32;

/** Requests of at most this many record bytes stay well under the broker's default 1 MiB per batch. */
export const MAX_REQUEST_BYTES = 512 << 10;

type Sized = { key?: Buffer | Uint8Array | string | null; value: Buffer | Uint8Array | string | null };

const len = (x: Buffer | Uint8Array | string | null | undefined): number => (x == null ? 0 : typeof x === "string" ? Buffer.byteLength(x) : x.length);

/** What one message adds to its partition's record batch. */
export function recordBytes(m: Sized): number {
  return len(m.value) + len(m.key) + RECORD_OVERHEAD_BYTES;
}

/**
 * Consecutive runs of `messages` whose record bytes total at most `maxBytes` (a message bigger than
 * that goes alone). Counted over all partitions together, so a run is under the limit for any one.
 */
export function* sendChunks<T extends Sized>(messages: T[], maxBytes = MAX_REQUEST_BYTES): Generator<T[]> {
  for (let i = 0; i < messages.length; ) {
    let bytes = recordBytes(messages[i]);
    let j = i + 1;
    while (j < messages.length && bytes + recordBytes(messages[j]) <= maxBytes) bytes += recordBytes(messages[j++]);
    yield messages.slice(i, j);
    i = j;
  }
}
