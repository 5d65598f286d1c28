/**
 * Errors carry a code, a retriable flag and the component that raised them. Classify by `code`:
 * class identity does not survive crossing a worker thread, a plain { code, ... } object does.
 */
export type ErrorCode =
  | "TF_DECODE_MALFORMED" // input bytes are not a valid message of the declared format
  | "TF_DECODE_TOO_LARGE" // message exceeds a size limit
  | "TF_CONFIG_INVALID" // configuration failed validation (every problem listed)
  | "TF_TOPOLOGY_INVALID" // job description is not a valid graph
  | "TF_IO" // file or socket error
  | "TF_SINK_TRANSIENT" // sink write failed but may succeed on retry
  | "TF_SINK_FATAL" // sink write can never succeed
  | "TF_FENCED"; // a checkpoint names a partition another member claimed since (roll back)

export class TracefoldError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly component = "",
    readonly retriable = false,
  ) {
    super(component ? `${component}: ${message}` : message);
    this.name = "TracefoldError";
  }
}

/**
 * A message that failed to decode. `offset` is the byte offset inside the message where decoding
 * stopped; `source` names the file (and message index) or the topic/partition/offset.
 */
export class DecodeError extends TracefoldError {
  constructor(
    readonly format: string,
    readonly offset: number,
    readonly reason: string,
    public source = "",
  ) {
    super("TF_DECODE_MALFORMED", `malformed message${source ? ` in ${source}` : ""} at byte ${offset}: ${reason}`, format);
  }

  /** Re-labels the error with where the message came from (the decoder does not know). */
  withSource(source: string): DecodeError {
    return new DecodeError(this.format, this.offset, this.reason, source);
  }
}
