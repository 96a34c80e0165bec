// The shared-memory channel between the main thread (worker-pool.ts) and one
// plugin worker (worker/entry.ts). A hook call needs no postMessage at all:
// the main thread writes the request into the worker's SharedArrayBuffer and
// rings a doorbell (Atomics.notify); the worker, blocked in Atomics.wait
// between calls, runs the hook, writes the raw output bytes and the call's
// log lines back and notifies; the main thread, waiting with
// Atomics.waitAsync, decodes and validates the output. A postMessage crossing
// costs a worker event-loop wake-up and a structured clone each way; this
// costs a futex wake each way.
//
// Control messages (load, unload, create, discard) and anything that does not fit
// (an input over INPUT_CAP, an output over OUTPUT_CAP, failures) still go by
// postMessage; the main thread rings the doorbell after every message so the
// blocked worker drains its port (receiveMessageOnPort).

import { OUTPUT_PARSERS } from '../abi/outputs.js';

/** Int32 word indexes in the header. */
export const W = {
  /** main -> worker: bumped for every call and every control message; the worker waits on it. */
  DOORBELL: 0,
  /** main -> worker: sequence number of the call described by the next words (the worker runs it once). */
  CALL_SEQ: 1,
  /** Plugin slot (the pool numbers loaded plugins). */
  CALL_SLOT: 2,
  /** Index into HOOK_NAMES. */
  CALL_HOOK: 3,
  CALL_LEN: 4,
  RID_LEN: 5,
  /** worker -> main: sequence number of the call whose output is in OUTPUT; the main thread waits on it. */
  DONE_SEQ: 6,
  /** Output length in bytes; -1 when the hook returned no output. */
  DONE_LEN: 7,
  /** Bytes of log records written during the current call. */
  LOG_USED: 8,
  /** main -> worker: the call's timeout_ms; the worker stops the guest there itself (worker/entry.ts). */
  CALL_TIMEOUT: 9,
} as const;

const HEADER_BYTES = 64;
export const RID_CAP = 256;
export const INPUT_CAP = 64 * 1024;
export const OUTPUT_CAP = 64 * 1024;
export const LOG_CAP = 16 * 1024;

export const RID_OFF = HEADER_BYTES;
export const INPUT_OFF = RID_OFF + RID_CAP;
export const OUTPUT_OFF = INPUT_OFF + INPUT_CAP;
export const LOG_OFF = OUTPUT_OFF + OUTPUT_CAP;
export const CHANNEL_BYTES = LOG_OFF + LOG_CAP;
/** A log record: level (1 byte), length (u32 little-endian), UTF-8 bytes. */
export const LOG_RECORD_HEADER = 5;

/** Hooks by index; both threads load this module, so the order is the same on both sides. */
export const HOOK_NAMES: readonly string[] = Object.keys(OUTPUT_PARSERS);
export const HOOK_INDEX: ReadonlyMap<string, number> = new Map(HOOK_NAMES.map((h, i) => [h, i]));

/** Views of one worker's channel. */
export class Channel {
  readonly i32: Int32Array;
  readonly u8: Uint8Array;
  /** For UTF-8 decoding and encoding (TextDecoder refuses shared memory). */
  readonly buf: Buffer;

  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab, 0, HEADER_BYTES / 4);
    this.u8 = new Uint8Array(sab);
    this.buf = Buffer.from(sab);
  }

  /** Wakes the worker (a new call or a control message is waiting). */
  ring(): void {
    Atomics.add(this.i32, W.DOORBELL, 1);
    Atomics.notify(this.i32, W.DOORBELL);
  }

  /** Reads the log records of the call that just ended (or was given up on) and clears them. */
  takeLogs(each: (level: number, msg: string) => void): void {
    const used = Math.min(Atomics.load(this.i32, W.LOG_USED), LOG_CAP);
    if (used <= 0) return;
    Atomics.store(this.i32, W.LOG_USED, 0);
    const u8 = this.u8;
    const end = LOG_OFF + used;
    let p = LOG_OFF;
    while (p + LOG_RECORD_HEADER <= end) {
      const len = (u8[p + 1] | (u8[p + 2] << 8) | (u8[p + 3] << 16) | (u8[p + 4] << 24)) >>> 0;
      const start = p + LOG_RECORD_HEADER;
      if (start + len > end) break;
      each(u8[p], this.buf.toString('utf8', start, start + len));
      p = start + len;
    }
  }
}
