/**
 * The fold state of one input partition: its watermark, pending traces, spans and call halves,
 * the memory of assembled traces, and its timers. The partition is the unit of state (DESIGN 5):
 * everything here belongs to exactly one partition, which is what makes exact recovery possible.
 *
 *   traces  (tid)                     -> first span, span count, min start, last end, deadline
 *   spans   (trace, span id, kind)    -> parent, service, operation, peer, times, flags, call, next
 *            \__ a trace's spans form a singly linked list through `sNext`, in arrival order
 *   calls   (tid, span id of the call)-> client half, list of waiting server halves, paired count
 *   assembled (tid)                   -> expiry: spans of an assembled trace are late
 *
 * All columns are typed arrays indexed by the HashIndex entry id.
 */
import { HashIndex, growF64, growI32, growU32, growU8 } from "./hash-index.js";
import { TimerHeap } from "./timer-heap.js";

export class PartitionState {
  /** Largest span end seen (us). */
  maxEndUs = -Infinity;
  /** Event-time watermark (us). Only moves forward. */
  watermarkUs = -Infinity;
  /** Processing time (ms) of the last input or idle advance. */
  lastInputMs = 0;
  /** Paused by the memory budget: no input comes, so the clock must not advance its watermark. */
  held = false;
  /** Smallest deadline among all timers; the hot path compares against this only. */
  nextDeadlineUs = Infinity;

  readonly traces = new HashIndex(4, 4, 1024);
  tFirst = new Int32Array(1024);
  tLast = new Int32Array(1024);
  tCount = new Int32Array(1024);
  tMinStart = new Float64Array(1024);
  tLastEnd = new Float64Array(1024);
  tGen = new Int32Array(1024);

  readonly spans = new HashIndex(4, 3, 4096);
  sNext = new Int32Array(4096);
  sPid = new Uint32Array(4096 * 2);
  sFlags = new Uint8Array(4096);
  sKind = new Uint8Array(4096);
  sState = new Uint8Array(4096);
  sService = new Int32Array(4096);
  sOp = new Int32Array(4096);
  sPeer = new Int32Array(4096);
  sAddr = new Int32Array(4096);
  sMsgDest = new Int32Array(4096);
  sStart = new Float64Array(4096);
  sDur = new Float64Array(4096);
  sCall = new Int32Array(4096);
  sNextHalf = new Int32Array(4096);

  readonly calls = new HashIndex(6, 6, 1024);
  cClient = new Int32Array(1024);
  cServers = new Int32Array(1024);
  cPaired = new Int32Array(1024);
  cDeadline = new Float64Array(1024);
  cGen = new Int32Array(1024);

  readonly assembled = new HashIndex(4, 4, 1024);
  aExpire = new Float64Array(1024);
  /** Assembled entries in expiry order (a ring). */
  aRing = new Int32Array(1024);
  aHead = 0;
  aLen = 0;

  readonly callTimers = new TimerHeap();
  readonly traceTimers = new TimerHeap();

  /** Incremental checkpoints (snapshot.ts): the last increment written for this partition. */
  snapSeq = 0;
  /** The next increment must be complete: new or restored state, or a checkpoint not stored. */
  snapFull = true;

  constructor(readonly partition: number) {
    this.traces.onGrow = (n) => {
      this.tFirst = growI32(this.tFirst, n);
      this.tLast = growI32(this.tLast, n);
      this.tCount = growI32(this.tCount, n);
      this.tMinStart = growF64(this.tMinStart, n);
      this.tLastEnd = growF64(this.tLastEnd, n);
      this.tGen = growI32(this.tGen, n);
    };
    this.spans.onGrow = (n) => {
      this.sNext = growI32(this.sNext, n);
      this.sPid = growU32(this.sPid, n * 2);
      this.sFlags = growU8(this.sFlags, n);
      this.sKind = growU8(this.sKind, n);
      this.sState = growU8(this.sState, n);
      this.sService = growI32(this.sService, n);
      this.sOp = growI32(this.sOp, n);
      this.sPeer = growI32(this.sPeer, n);
      this.sAddr = growI32(this.sAddr, n);
      this.sMsgDest = growI32(this.sMsgDest, n);
      this.sStart = growF64(this.sStart, n);
      this.sDur = growF64(this.sDur, n);
      this.sCall = growI32(this.sCall, n);
      this.sNextHalf = growI32(this.sNextHalf, n);
    };
    this.calls.onGrow = (n) => {
      this.cClient = growI32(this.cClient, n);
      this.cServers = growI32(this.cServers, n);
      this.cPaired = growI32(this.cPaired, n);
      this.cDeadline = growF64(this.cDeadline, n);
      this.cGen = growI32(this.cGen, n);
    };
    this.assembled.onGrow = (n) => {
      this.aExpire = growF64(this.aExpire, n);
      const ring = new Int32Array(n);
      for (let k = 0; k < this.aLen; k++) ring[k] = this.aRing[(this.aHead + k) % this.aRing.length];
      this.aRing = ring;
      this.aHead = 0;
    };
  }

  /** Remembers an assembled trace id (key already in assembled.key) until `expireUs`. */
  rememberAssembled(expireUs: number): void {
    if (this.assembled.find() >= 0) return;
    const e = this.assembled.insert();
    this.aExpire[e] = expireUs;
    this.aRing[(this.aHead + this.aLen) % this.aRing.length] = e;
    this.aLen++;
  }

  /** Forgets assembled traces whose memory expired at watermark `wm`. */
  expireAssembled(wm: number): void {
    while (this.aLen > 0) {
      const e = this.aRing[this.aHead];
      if (this.aExpire[e] > wm) break;
      this.assembled.remove(e);
      this.aHead = (this.aHead + 1) % this.aRing.length;
      this.aLen--;
    }
  }

  get nextAssembledExpiry(): number {
    return this.aLen > 0 ? this.aExpire[this.aRing[this.aHead]] : Infinity;
  }

  /** Bytes held by this partition's tables. */
  get bytesHeld(): number {
    const spanCols = this.spans.capacity * (4 + 8 + 1 + 1 + 1 + 4 * 5 + 8 * 2 + 4 + 4);
    const traceCols = this.traces.capacity * (4 * 4 + 8 * 2);
    const callCols = this.calls.capacity * (4 * 4 + 8);
    return (
      this.spans.bytesHeld + spanCols +
      this.traces.bytesHeld + traceCols +
      this.calls.bytesHeld + callCols +
      this.assembled.bytesHeld + this.aExpire.byteLength + this.aRing.byteLength +
      this.callTimers.bytesHeld + this.traceTimers.bytesHeld
    );
  }
}
