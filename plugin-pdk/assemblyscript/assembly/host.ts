// The only door to the host: Sandgate's fast path (ABI.md §4.2).
//
// Extism's own input_load_u64/output_set move 8 bytes per wasm->JS call
// (~24 us per KiB); these four imports move a whole envelope in one call each.

import { Reader } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";

@external("sandgate:host/v1", "input_length")
declare function input_length(): i32;
@external("sandgate:host/v1", "input_read")
declare function input_read(dst: i32): void;
@external("sandgate:host/v1", "output_write")
declare function output_write(src: i32, len: i32): void;
@external("sandgate:host/v1", "log")
declare function host_log(level: i32, src: i32, len: i32): void;

export enum LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 }

// Buffers above this size are released after use, so one 8 MiB body does not
// pin 8 MiB of linear memory for the rest of the instance's life.
const KEEP_BYTES: i32 = 1 << 20;

/**
 * Reads this call's input envelope into a fresh managed buffer. Lazy views
 * (headers, context, params) and bodies point into it without copying, and
 * keep it alive as long as they are referenced, also beyond this call.
 */
export function readInput(): Reader {
  const n = input_length();
  const buf = new Uint8Array(n);
  if (n > 0) input_read(<i32>buf.dataStart);
  return Reader.of(buf);
}

// One output writer per instance, reused by every call (an instance serves
// one call at a time).
// @ts-ignore: decorator
@lazy let out: Writer | null = null;

/** The writer the hook runners encode their output into (reset to empty). */
export function outputWriter(): Writer {
  let w: Writer | null = out;
  if (w === null) {
    w = new Writer();
    out = w;
  }
  w.reset();
  return w;
}

/** Hands the writer's bytes to the host as this call's output. */
export function writeOutput(w: Writer): void {
  output_write(<i32>w.ptr, <i32>w.len);
  w.trim(KEEP_BYTES);
}

/** Hands raw bytes to the host as this call's output. */
export function writeOutputBytes(bytes: Uint8Array): void {
  output_write(<i32>bytes.dataStart, bytes.length);
}

// Scratch space for log messages: encoding into it allocates nothing. Created
// on first use, as abort() may log before the module's globals are initialized.
// @ts-ignore: decorator
@lazy let logBuf: Writer | null = null;

/** Writes a UTF-8 message to the gateway log (tagged with request id and plugin name by the host). */
export function log(level: LogLevel, message: string): void {
  let w: Writer | null = logBuf;
  if (w === null) {
    w = new Writer();
    logBuf = w;
  }
  w.reset();
  w.utf8(message);
  host_log(<i32>level, <i32>w.ptr, <i32>w.len);
  w.trim(KEEP_BYTES);
}

export function logDebug(message: string): void { log(LogLevel.Debug, message); }
export function logInfo(message: string): void { log(LogLevel.Info, message); }
export function logWarn(message: string): void { log(LogLevel.Warn, message); }
export function logError(message: string): void { log(LogLevel.Error, message); }
