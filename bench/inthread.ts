// A plugin called on the benchmark's own thread, without the worker pool: the
// cost of the Extism call and the guest's work alone. It uses the same guest
// wrapper and host functions as a plugin worker (host/runtime/sandbox/guest.ts,
// host-functions.ts) minus the thread crossing, deadline, log budget and
// failure handling.

import { encode } from '../host/abi/codec.js';
import { ABI_VERSION } from '../host/abi/version.js';
import { compilePlugin } from '../host/runtime/compile.js';
import { sandgateHostFunctions } from '../host/runtime/sandbox/host-functions.js';

export interface InThreadPlugin {
  call(hook: string, input: Uint8Array): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

/**
 * The Extism SDK loads node:wasi, which prints an ExperimentalWarning (the plugin
 * workers start with --disable-warning=ExperimentalWarning; this process cannot).
 * Loaded lazily, with that one warning silenced.
 */
async function loadGuest(): Promise<typeof import('../host/runtime/sandbox/guest.js').Guest> {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(typeof warning === 'string' ? warning : warning.message).includes('WASI')) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return (await import('../host/runtime/sandbox/guest.js')).Guest;
  } finally {
    process.emitWarning = emit;
  }
}

export async function inThreadPlugin(name: string, file: string): Promise<InThreadPlugin> {
  const Guest = await loadGuest();
  const compiled = await compilePlugin(name, file, 64);
  let input: Uint8Array = new Uint8Array(0);
  let output: Uint8Array | null = null;
  const guest = await Guest.create({
    module: compiled.module,
    hasInitialize: compiled.hasInitialize,
    maxVarBytes: 1 << 20,
    kernelBytesPerCall: 64 << 20,
    hostFunctions: (memory) =>
      sandgateHostFunctions(memory, { input: () => input, maxOutputBytes: 64 << 20, output: (bytes) => void (output = bytes.slice()), log: () => {} }),
    write: () => {},
    logger: console,
  });

  const call = async (hook: string, bytes: Uint8Array): Promise<Uint8Array | null> => {
    input = bytes;
    output = null;
    const out = await guest.call(hook, compiled.usesExtismInput ? bytes : undefined);
    return output ?? out;
  };
  if (compiled.hooks.has('init')) await call('init', encode({ abi: ABI_VERSION, name, config: {} }));
  return { call, close: () => guest.close() };
}
