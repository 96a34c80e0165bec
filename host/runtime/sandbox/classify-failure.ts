import { GatewayError } from '../../errors/codes.js';
import type { FailureKind } from '../failure.js';
import { DeadlineExceeded } from './deadline-clock.js';
import { GuestReportedError } from './extism-errors.js';
import { GuestLimitExceeded } from './guest.js';
import { GuestExit } from './guest-wasi.js';
import { OutputTooLarge } from './host-functions.js';

const PAGE = 64 * 1024;

/** What a failed call's instance tells about the failure. */
export interface FailedInstance {
  /** Raised when a memory.grow was refused during the call (module/grow-watch.ts). */
  growRefused: WebAssembly.Global | null;
  memory: WebAssembly.Memory | null;
  /** The plugin's memory cap, in pages. */
  memoryPages: number;
}

/**
 * The kind of a guest call's failure (failure.ts), wherever the call ran (a
 * plugin worker or the main thread), and its message.
 *
 * @example
 * const { kind, message } = classifyFailure(e, { growRefused, memory, memoryPages: 1024 });
 */
export function classifyFailure(e: unknown, inst: FailedInstance | undefined): { kind: FailureKind; message: string } {
  const message = (e as Error)?.message ?? String(e);
  if (e instanceof OutputTooLarge) return { kind: 'output_too_large', message };
  if (e instanceof GuestLimitExceeded) return { kind: 'memory', message };
  if (e instanceof GuestExit) return { kind: 'trap', message };
  if (e instanceof DeadlineExceeded) return { kind: 'timeout', message };
  if (e instanceof GatewayError && e.code === 'plugin_bad_output') return { kind: 'bad_output', message };
  if (e instanceof GuestReportedError) return { kind: 'hook_error', message };
  // A guest that hits its cap sees memory.grow fail and traps (AssemblyScript aborts, Rust panics).
  // Only a refused grow during this call makes the trap a memory failure, however full the memory is.
  if (inst?.growRefused?.value) {
    const pages = inst.memory ? inst.memory.buffer.byteLength / PAGE : '?';
    return { kind: 'memory', message: `memory.grow refused at ${pages} of ${inst.memoryPages} pages (memory_limit_mb): ${message}` };
  }
  return { kind: 'trap', message };
}
