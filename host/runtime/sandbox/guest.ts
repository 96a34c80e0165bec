import createPlugin, { type CallContext, type Plugin } from '@extism/extism';
import { HOST_MODULE } from '../../abi/version.js';
import { START_EXPORT } from '../module/deadline-watch.js';
import { growRefusedFlag } from '../module/grow-watch.js';
import { GUEST_INITIALIZE, GUEST_WASI_MODULE } from '../module/sandbox-module.js';
import { DeadlineClock } from './deadline-clock.js';
import { fromExtismError } from './extism-errors.js';
import { guestWasi } from './guest-wasi.js';

// One instance of a plugin: an Extism foreground plugin over a sandboxed
// module (sandbox-module.ts), with the gateway's WASI and bounds on what the
// guest can make the host hold outside its linear memory:
// - Extism kernel blocks (`alloc`): at most `kernelBytesPerCall` per call, and
//   released when the call ends rather than at the next call;
// - Extism variables (`var_set`): at most `maxVarBytes` per instance.
// Going over either fails the call with GuestLimitExceeded (plugin_memory).

const EXTISM_ENV = 'extism:host/env';

export interface GuestOptions {
  module: WebAssembly.Module;
  /** Run the module's `_initialize` (renamed GUEST_INITIALIZE) once, after instantiation. */
  hasInitialize: boolean;
  maxVarBytes: number;
  kernelBytesPerCall: number;
  /**
   * The Sandgate fast-path host functions (HOST_MODULE), made for this guest's
   * memory (available from instantiation on, so during `_initialize` too).
   */
  hostFunctions(memory: () => WebAssembly.Memory): Record<string, (...args: never[]) => unknown>;
  /** Bytes the guest wrote to WASI stdout or stderr (a view: copy what you keep). */
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /** Where Extism's own log_* imports go. */
  logger: Console;
}

/** A guest went over a limit on host memory it does not own (kernel blocks, variables). */
export class GuestLimitExceeded extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestLimitExceeded';
  }
}

/** Extism binds every imported function to its call context as first argument; WASI functions do not want it. */
function dropContextArg<F extends (...args: never[]) => unknown>(fns: Record<string, F>): Record<string, (cc: unknown, ...args: never[]) => unknown> {
  return Object.fromEntries(Object.entries(fns).map(([name, f]) => [name, (_cc: unknown, ...args: never[]) => f(...args)]));
}

export class Guest {
  /** The guest's exported linear memory, or null if it exports none. */
  memory: WebAssembly.Memory | null = null;
  /** Raised when a memory.grow was refused during the current call (module/grow-watch.ts); null if the module never grows. */
  growRefused: WebAssembly.Global | null = null;
  /** Stops a call at its deadline from inside the guest (module/deadline-watch.ts); null if the module has no checks. */
  clock: DeadlineClock | null = null;
  private plugin!: Plugin;
  private kernelBytes = 0;
  private readonly varSizes = new Map<string, number>();
  private varBytes = 0;

  private constructor(private readonly opts: GuestOptions) {}

  /**
   * Instantiates the module and runs its `_initialize`, if any.
   *
   * @example
   * const guest = await Guest.create({ module, hasInitialize, maxVarBytes: 1 << 20, kernelBytesPerCall: 64 << 20, hostFunctions, write, logger: console });
   * const out = await guest.call('get_name');
   */
  static async create(opts: GuestOptions): Promise<Guest> {
    const g = new Guest(opts);
    g.plugin = await createPlugin(opts.module, {
      useWasi: false,
      logger: opts.logger,
      logLevel: 'info',
      functions: {
        [GUEST_WASI_MODULE]: dropContextArg(guestWasi({ memory: () => g.requireMemory(), write: opts.write, clock: () => g.clock })),
        [HOST_MODULE]: opts.hostFunctions(() => g.requireMemory()),
        [EXTISM_ENV]: { alloc: (cc: CallContext, n: bigint) => g.alloc(cc, n), var_set: (cc: CallContext, k: bigint, v: bigint) => g.varSet(cc, k, v) },
      } as never,
    });
    const exports = (await g.plugin.getInstance()).exports;
    // The Memory object is stable; its ArrayBuffer is replaced on growth, so readers take .buffer each time.
    g.memory = exports.memory instanceof WebAssembly.Memory ? exports.memory : null;
    g.growRefused = growRefusedFlag(exports);
    g.clock = DeadlineClock.attach(exports);
    // The deferred start function first (it would have run during instantiation), then a reactor's _initialize.
    if (typeof exports[START_EXPORT] === 'function') await g.call(START_EXPORT);
    if (opts.hasInitialize) await g.call(GUEST_INITIALIZE);
    return g;
  }

  requireMemory(): WebAssembly.Memory {
    if (!this.memory) throw new Error('the module exports no "memory"');
    return this.memory;
  }

  /**
   * Calls an export. `input` is stored in Extism's kernel (only for guests that read it there).
   * An error the guest set with error_set throws GuestReportedError (extism-errors.ts).
   * Given a `deadline` (performance.now() of this thread), the guest stops there with DeadlineExceeded.
   */
  async call(name: string, input?: Uint8Array, deadline?: number): Promise<Uint8Array | null> {
    this.kernelBytes = 0;
    // The flag tells of this call only: a refusal an earlier call survived does not count.
    if (this.growRefused) this.growRefused.value = 0;
    if (deadline !== undefined) this.clock?.arm(deadline);
    try {
      const out = await this.plugin.call(name, input);
      return out ? out.bytes() : null;
    } catch (e) {
      throw fromExtismError(e);
    } finally {
      this.clock?.disarm();
      // Release the call's kernel blocks now (Extism would keep them until the next call).
      await this.plugin.reset();
    }
  }

  hasExport(name: string): Promise<boolean> {
    return this.plugin.functionExists(name);
  }

  close(): Promise<void> {
    return this.plugin.close();
  }

  private alloc(cc: CallContext, n: bigint): bigint {
    this.kernelBytes += Number(n);
    if (this.kernelBytes > this.opts.kernelBytesPerCall) {
      throw new GuestLimitExceeded(`Extism kernel allocations reached ${this.kernelBytes} bytes in one call, over the limit of ${this.opts.kernelBytesPerCall} (memory_limit_mb)`);
    }
    return cc.alloc(n);
  }

  private varSet(cc: CallContext, keyAddr: bigint, valueAddr: bigint): void {
    const key = cc.read(keyAddr)?.string();
    if (key === undefined) throw new Error('var_set: the key address is not a kernel block');
    const old = this.varSizes.get(key) ?? 0;
    if (valueAddr === 0n) {
      cc.deleteVariable(key);
      this.varSizes.delete(key);
      this.varBytes -= old;
      return;
    }
    const value = cc.read(valueAddr)?.bytes();
    if (!value) throw new Error('var_set: the value address is not a kernel block');
    const size = Buffer.byteLength(key) + value.length;
    if (this.varBytes - old + size > this.opts.maxVarBytes) {
      throw new GuestLimitExceeded(`Extism variables would take ${this.varBytes - old + size} bytes, over the limit of ${this.opts.maxVarBytes} (max_var_bytes)`);
    }
    cc.setVariable(key, value.slice());
    this.varSizes.set(key, size);
    this.varBytes += size - old;
  }
}
