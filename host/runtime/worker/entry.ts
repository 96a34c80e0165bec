// A plugin worker thread. It holds one foreground Extism instance of every
// loaded plugin and runs one call at a time; the main thread watches the
// deadline and terminates this whole thread if a call overruns, which is the
// only way to stop a WASM loop (EXTISM-NOTES.md, "Timeouts").

import { parentPort, workerData } from 'node:worker_threads';
import createPlugin, { type Plugin } from '@extism/extism';
import { OUTPUT_PARSERS, parseInitOutput, parseNameOutput } from '../../abi/outputs.js';
import type { HookName, InitOutput } from '../../abi/types.js';
import { GatewayError } from '../../errors/codes.js';
import { HOST_MODULE } from '../../abi/version.js';
import type { FailureKind } from '../failure.js';
import type { FromWorker, PluginSpec, ToWorker } from '../messages.js';

const PAGE = 64 * 1024;
/** 4 MiB: the largest step a common guest allocator grows by. */
const MEMORY_STEP_PAGES = 64;
const port = parentPort!;
const minLogLevel: number = (workerData as { minLogLevel?: number } | null)?.minLogLevel ?? 0;

interface Instance {
  spec: PluginSpec;
  plugin: Plugin;
  memory: WebAssembly.Memory | null;
}

/** The call in progress. One at a time per thread, so a module-level slot is exact. */
interface CurrentCall {
  pid: string;
  rid: string;
  input: Uint8Array;
  output: Uint8Array | null;
}

class OutputTooLarge extends Error {}

const specs = new Map<string, PluginSpec>();
const instances = new Map<string, Instance>();
let current: CurrentCall | null = null;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function postLog(level: number, pid: string, msg: string): void {
  if (level < minLogLevel) return;
  post({ t: 'log', level, pid, rid: current?.rid ?? '', msg });
}

/** The fast-path host functions (ABI.md §4.2): bulk copies straight into and out of guest memory. */
function hostFunctions(inst: { memory: WebAssembly.Memory | null; spec: PluginSpec }) {
  const mem = () => {
    if (!inst.memory) throw new Error('the module exports no "memory"');
    return inst.memory.buffer;
  };
  return {
    input_length: () => current?.input.length ?? 0,
    input_read: (_cc: unknown, dst: number) => {
      const input = current?.input ?? new Uint8Array(0);
      new Uint8Array(mem(), dst, input.length).set(input);
    },
    output_write: (_cc: unknown, src: number, len: number) => {
      if (len > inst.spec.maxOutputBytes) throw new OutputTooLarge(`output of ${len} bytes is over the limit of ${inst.spec.maxOutputBytes}`);
      if (current) current.output = new Uint8Array(mem().slice(src, src + len));
    },
    log: (_cc: unknown, level: number, src: number, len: number) => {
      postLog(level, inst.spec.id, Buffer.from(mem(), src, len).toString('utf8'));
    },
  };
}

/** Extism's own log_* imports (used by other PDKs) land in the gateway log too. */
function extismLogger(pid: string): Console {
  const at = (level: number) => (...args: unknown[]) => postLog(level, pid, args.map(String).join(' '));
  return { trace: at(0), debug: at(0), info: at(1), log: at(1), warn: at(2), error: at(3) } as unknown as Console;
}

async function invoke(inst: Instance, hook: string, input: Uint8Array, rid: string): Promise<Uint8Array | null> {
  current = { pid: inst.spec.id, rid, input, output: null };
  try {
    const out = await inst.plugin.call(hook, inst.spec.usesExtismInput ? input : undefined);
    if (current.output) return current.output;
    if (!out) return null;
    const bytes = out.bytes();
    if (bytes.length > inst.spec.maxOutputBytes) throw new OutputTooLarge(`output of ${bytes.length} bytes is over the limit of ${inst.spec.maxOutputBytes}`);
    return bytes.slice();
  } finally {
    current = null;
  }
}

function classify(e: unknown, inst: Instance | undefined): { kind: FailureKind; message: string } {
  const message = (e as Error)?.message ?? String(e);
  if (e instanceof OutputTooLarge || (e instanceof GatewayError && e.code === 'plugin_bad_output')) return { kind: 'bad_output', message };
  if (message.startsWith('Plugin-originated error: ')) return { kind: 'hook_error', message: message.slice(25) };
  // A guest that hits its cap sees memory.grow fail and traps (AssemblyScript aborts, Rust panics).
  // Allocators grow in steps (Go by 4 MiB arenas), so "near the cap" means within one such step.
  if (inst?.memory) {
    const pages = inst.memory.buffer.byteLength / PAGE;
    const cap = inst.spec.memoryPages;
    const headroom = Math.min(Math.max(MEMORY_STEP_PAGES, cap / 10), cap / 2);
    if (pages >= cap - headroom) return { kind: 'memory', message: `linear memory at ${pages} of ${cap} pages (memory_limit_mb): ${message}` };
  }
  return { kind: 'trap', message };
}

async function createInstance(spec: PluginSpec): Promise<{ inst: Instance; init: InitOutput }> {
  const holder: { memory: WebAssembly.Memory | null; spec: PluginSpec } = { memory: null, spec };
  const plugin = await createPlugin(spec.module, {
    useWasi: spec.useWasi,
    logger: extismLogger(spec.id),
    logLevel: 'info',
    functions: { [HOST_MODULE]: hostFunctions(holder) },
  });
  const exported = (await plugin.getInstance()).exports.memory;
  holder.memory = exported instanceof WebAssembly.Memory ? exported : null;
  // The Memory object is stable; its ArrayBuffer is replaced on growth, so host functions read .buffer each time.
  const inst: Instance = { spec, plugin, memory: holder.memory };
  const init = parseInitOutput(spec.hasInit ? await invoke(inst, 'init', spec.initInput, '') : null);
  if (init.error !== undefined) throw new Error(`init refused to start: ${init.error}`);
  return { inst, init };
}

/** Returns the instance for a plugin, re-creating it if an earlier failure discarded it. */
async function instanceFor(pid: string): Promise<Instance> {
  const existing = instances.get(pid);
  if (existing) return existing;
  const spec = specs.get(pid);
  if (!spec) throw new Error(`plugin ${pid} is not loaded in this worker`);
  const { inst } = await createInstance(spec);
  instances.set(pid, inst);
  return inst;
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.t) {
    case 'load': {
      specs.set(msg.spec.id, msg.spec);
      try {
        const { inst, init } = await createInstance(msg.spec);
        instances.set(msg.spec.id, inst);
        const name = msg.wantName && (await inst.plugin.functionExists('get_name')) ? parseNameOutput(await invoke(inst, 'get_name', new Uint8Array(0), '')) : undefined;
        post({ t: 'loaded', seq: msg.seq, init, name });
      } catch (e) {
        specs.delete(msg.spec.id);
        post({ t: 'failed', seq: msg.seq, ...classify(e, undefined), recycling: false });
      }
      return;
    }
    case 'call': {
      let inst: Instance | undefined;
      try {
        inst = await instanceFor(msg.pid);
      } catch (e) {
        post({ t: 'failed', seq: msg.seq, kind: 'unavailable', message: (e as Error).message, recycling: false });
        return;
      }
      try {
        const value = OUTPUT_PARSERS[msg.hook as HookName](await invoke(inst, msg.hook, msg.input, msg.rid));
        post({ t: 'done', seq: msg.seq, value });
      } catch (e) {
        // The instance's globals and heap may be inconsistent after a trap: never reuse it.
        instances.delete(msg.pid);
        post({ t: 'failed', seq: msg.seq, ...classify(e, inst), recycling: true });
        try {
          await instanceFor(msg.pid);
        } catch (err) {
          postLog(3, msg.pid, `could not re-create the instance after a failure: ${(err as Error).message}`);
        }
        post({ t: 'ready' });
      }
      return;
    }
    case 'unload': {
      const inst = instances.get(msg.pid);
      specs.delete(msg.pid);
      instances.delete(msg.pid);
      if (inst?.spec.hasCleanup) {
        try {
          await invoke(inst, 'cleanup', new Uint8Array(0), '');
        } catch (e) {
          postLog(2, msg.pid, `cleanup failed: ${(e as Error).message}`);
        }
      }
      await inst?.plugin.close();
      post({ t: 'done', seq: msg.seq, value: undefined });
      return;
    }
  }
}

// Messages are handled strictly one after another, even across awaits.
let chain = Promise.resolve();
port.on('message', (msg: ToWorker) => {
  chain = chain.then(() => handle(msg));
});
