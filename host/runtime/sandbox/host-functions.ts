// The `sandgate:host/v1` fast-path host functions (ABI.md §4.2), the one
// implementation of them: the plugin workers (worker/entry.ts), the in-thread
// benchmark (bench/inthread.ts) and the AssemblyScript kit's tests
// (plugin-pdk/assemblyscript/harness.mjs) all use this module, so the kit is
// tested against the very functions the gateway gives a plugin.

import { guestBytes } from './guest-memory.js';

/** A guest wrote an output over its limit (max_output_bytes): plugin_output_too_large. */
export class OutputTooLarge extends Error {
  constructor(size: number, limit: number) {
    super(`output of ${size} bytes is over the limit of ${limit}`);
    this.name = 'OutputTooLarge';
  }
}

/** What the host functions read from and hand to their caller, for the call in progress. */
export interface HostSide {
  /** The current call's input (empty outside a call). */
  input(): Uint8Array;
  /** The most bytes one output_write may pass. */
  maxOutputBytes: number;
  /** The guest's output: a view into guest memory, valid until the guest runs again (copy what you keep). */
  output(bytes: Uint8Array): void;
  /** A log line at level 0 (debug) .. 3 (error): a view into guest memory, valid until the guest runs again. */
  log(level: 0 | 1 | 2 | 3, bytes: Uint8Array): void;
}

/**
 * The fast-path host functions for one guest, in the shape Extism wants
 * (each takes Extism's call context first). Bulk copies straight into and out
 * of guest memory; every pointer and length is checked against the memory
 * (guestBytes): out of range, the call fails as plugin_trap.
 *
 * @example
 * Guest.create({ ..., hostFunctions: (memory) => sandgateHostFunctions(memory, {
 *   input: () => input, maxOutputBytes: 1 << 20, output: (b) => (out = b.slice()), log: () => {} }) })
 */
export function sandgateHostFunctions(memory: () => WebAssembly.Memory, host: HostSide) {
  return {
    input_length: (_cc: unknown): number => host.input().length,
    input_read: (_cc: unknown, dst: number): void => {
      const input = host.input();
      guestBytes(memory(), 'input_read', dst, input.length).set(input);
    },
    output_write: (_cc: unknown, src: number, len: number): void => {
      const size = len >>> 0; // an i32 arrives signed: -1 is a length of 4 GiB, not of nothing
      if (size > host.maxOutputBytes) throw new OutputTooLarge(size, host.maxOutputBytes);
      host.output(guestBytes(memory(), 'output_write', src, size));
    },
    log: (_cc: unknown, level: number, src: number, len: number): void => {
      // Checked before any level filter, so a bad pointer fails whatever the gateway's log level.
      const text = guestBytes(memory(), 'log', src, len);
      const known = Math.min(3, Math.max(0, level)) as 0 | 1 | 2 | 3; // others read as the nearest
      host.log(known, text);
    },
  };
}
