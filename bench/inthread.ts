// A plugin called on the benchmark's own thread, without the worker pool: the
// cost of the Extism call and the guest's work alone. It mirrors what a plugin
// worker does per call (host/runtime/worker/entry.ts) minus the thread
// crossing, deadline and failure handling.

import { encode } from '../host/abi/codec.js';
import { ABI_VERSION, HOST_MODULE } from '../host/abi/version.js';
import { compilePlugin } from '../host/runtime/compile.js';

export interface InThreadPlugin {
  call(hook: string, input: Uint8Array): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

/**
 * The Extism SDK loads node:wasi, which prints an ExperimentalWarning (the plugin
 * workers start with --disable-warning=ExperimentalWarning; this process cannot).
 * Loaded lazily, with that one warning silenced.
 */
async function loadExtism(): Promise<typeof import('@extism/extism').default> {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(typeof warning === 'string' ? warning : warning.message).includes('WASI')) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return (await import('@extism/extism')).default;
  } finally {
    process.emitWarning = emit;
  }
}

export async function inThreadPlugin(name: string, file: string): Promise<InThreadPlugin> {
  const createPlugin = await loadExtism();
  const compiled = await compilePlugin(name, file, 64);
  let memory: WebAssembly.Memory | null = null;
  let input: Uint8Array = new Uint8Array(0);
  let output: Uint8Array | null = null;
  const mem = () => {
    if (!memory) throw new Error('the module exports no "memory"');
    return memory.buffer;
  };
  const plugin = await createPlugin(compiled.module, {
    useWasi: compiled.useWasi,
    functions: {
      [HOST_MODULE]: {
        input_length: () => input.length,
        input_read: (_cc: unknown, dst: number) => void new Uint8Array(mem(), dst, input.length).set(input),
        output_write: (_cc: unknown, src: number, len: number) => void (output = new Uint8Array(mem().slice(src, src + len))),
        log: () => {},
      },
    },
  });
  const exported = (await plugin.getInstance()).exports.memory;
  memory = exported instanceof WebAssembly.Memory ? exported : null;

  const call = async (hook: string, bytes: Uint8Array): Promise<Uint8Array | null> => {
    input = bytes;
    output = null;
    const out = await plugin.call(hook, compiled.usesExtismInput ? bytes : undefined);
    return output ?? out?.bytes() ?? null;
  };
  if (compiled.hooks.has('init')) await call('init', encode({ abi: ABI_VERSION, name, config: {} }));
  return { call, close: () => plugin.close() };
}
