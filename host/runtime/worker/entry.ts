// A plugin worker thread. It holds one foreground Extism instance of every
// loaded plugin and runs one call at a time; the main thread watches the
// deadline and terminates this whole thread if a call overruns, which is the
// only way to stop a WASM loop (EXTISM-NOTES.md, "Timeouts").

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import createPlugin, { type Plugin } from '@extism/extism';
import { parseInitOutput, parseNameOutput } from '../../abi/outputs.js';
import type { InitOutput } from '../../abi/types.js';
import { GatewayError } from '../../errors/codes.js';
import { HOST_MODULE } from '../../abi/version.js';
import { Channel, HOOK_NAMES, INPUT_OFF, LOG_CAP, LOG_OFF, LOG_RECORD_HEADER, OUTPUT_CAP, OUTPUT_OFF, RID_OFF, W } from '../channel.js';
import type { FailureKind } from '../failure.js';
import type { FromWorker, PluginSpec, ToWorker, WorkerInit } from '../messages.js';

const PAGE = 64 * 1024;
/** 4 MiB: the largest step a common guest allocator grows by. */
const MEMORY_STEP_PAGES = 64;
const port = parentPort!;
const init = workerData as WorkerInit;
const minLogLevel = init.minLogLevel;
const channel = new Channel(init.channel);
const { i32, u8 } = channel;

interface Instance {
  spec: PluginSpec;
  plugin: Plugin;
  memory: WebAssembly.Memory | null;
}

/** The call in progress. One at a time per thread, so a module-level slot is exact. */
interface CurrentCall {
  pid: string;
  /** The request id, or null when it is still only in the channel (decoded if a log line needs it). */
  rid: string | null;
  input: Uint8Array;
  output: Uint8Array | null;
  /** A hook call: its output and log lines go through the channel. */
  viaChannel: boolean;
  /** Length of the output already written into the channel's OUTPUT area (-1: none). */
  channelOutput: number;
  /** Bytes of log records written into the channel during this call. */
  logUsed: number;
  /**
   * Some of this call's log lines were posted (the channel's log area filled
   * up): its answer is then posted too, after them, so that the main thread
   * still sees every line, in order, before the answer.
   */
  posted: boolean;
}

class OutputTooLarge extends Error {}

const specs = new Map<string, PluginSpec>();
const instances = new Map<string, Instance>();
/** Plugin ids by slot (channel calls name the plugin by slot). */
const slots = new Map<number, string>();
let current: CurrentCall | null = null;
// A replacement worker starts knowing the plugins loaded so far.
for (const { spec, slot } of init.plugins) register(spec, slot);

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function ridOf(c: CurrentCall | null): string {
  if (!c) return '';
  if (c.rid === null) c.rid = channel.buf.toString('utf8', RID_OFF, RID_OFF + Atomics.load(i32, W.RID_LEN));
  return c.rid;
}

/**
 * A log line. During a hook call it is appended to the channel (the main
 * thread reads it with the call's answer, or at its deadline); otherwise, or
 * when the channel's log area is full, it is posted.
 */
function postLog(level: number, pid: string, msg: string | Uint8Array): void {
  if (level < minLogLevel) return;
  const c = current;
  if (c?.viaChannel) {
    const len = typeof msg === 'string' ? Buffer.byteLength(msg) : msg.length;
    if (c.logUsed + LOG_RECORD_HEADER + len > LOG_CAP && c.logUsed > 0) {
      // Full: post what the channel holds (the older lines first), then start over.
      const rid = ridOf(c);
      channel.takeLogs((lv, text) => post({ t: 'log', level: lv, pid, rid, msg: text }));
      c.logUsed = 0;
      c.posted = true;
    }
    const at = LOG_OFF + c.logUsed;
    if (c.logUsed + LOG_RECORD_HEADER + len <= LOG_CAP) {
      u8[at] = level;
      u8[at + 1] = len & 0xff;
      u8[at + 2] = (len >>> 8) & 0xff;
      u8[at + 3] = (len >>> 16) & 0xff;
      u8[at + 4] = (len >>> 24) & 0xff;
      if (typeof msg === 'string') channel.buf.write(msg, at + LOG_RECORD_HEADER, len, 'utf8');
      else u8.set(msg, at + LOG_RECORD_HEADER);
      c.logUsed += LOG_RECORD_HEADER + len;
      Atomics.store(i32, W.LOG_USED, c.logUsed);
      return;
    }
  }
  const text = typeof msg === 'string' ? msg : Buffer.from(msg.buffer, msg.byteOffset, msg.length).toString('utf8');
  if (c) c.posted = true;
  post({ t: 'log', level, pid, rid: ridOf(c), msg: text });
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
      const c = current;
      if (!c) return;
      if (c.viaChannel && len <= OUTPUT_CAP) {
        // Straight from guest memory into the channel: no intermediate copy.
        u8.set(new Uint8Array(mem(), src, len), OUTPUT_OFF);
        c.channelOutput = len;
        c.output = null;
      } else {
        c.output = new Uint8Array(mem().slice(src, src + len));
        c.channelOutput = -1;
      }
    },
    log: (_cc: unknown, level: number, src: number, len: number) => {
      if (level < minLogLevel) return;
      postLog(level, inst.spec.id, new Uint8Array(mem(), src, len));
    },
  };
}

/** Extism's own log_* imports (used by other PDKs) land in the gateway log too. */
function extismLogger(pid: string): Console {
  const at = (level: number) => (...args: unknown[]) => postLog(level, pid, args.map(String).join(' '));
  return { trace: at(0), debug: at(0), info: at(1), log: at(1), warn: at(2), error: at(3) } as unknown as Console;
}

/** Runs an export outside a hook call (init, get_name, cleanup): the output comes back as bytes. */
async function invoke(inst: Instance, hook: string, input: Uint8Array, rid: string): Promise<Uint8Array | null> {
  current = { pid: inst.spec.id, rid, input, output: null, viaChannel: false, channelOutput: -1, logUsed: 0, posted: false };
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
  if (e instanceof OutputTooLarge) return { kind: 'output_too_large', message };
  if (e instanceof GatewayError && e.code === 'plugin_bad_output') return { kind: 'bad_output', message };
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

function register(spec: PluginSpec, slot: number): void {
  specs.set(spec.id, spec);
  slots.set(slot, spec.id);
}

/** Drops a plugin's instance and frees what it holds (Extism's WASI file handles); no guest code runs. */
async function discard(pid: string): Promise<void> {
  const inst = instances.get(pid);
  instances.delete(pid);
  await inst?.plugin.close().catch((e: Error) => postLog(2, pid, `closing a discarded instance failed: ${e.message}`));
}

/**
 * A hook call's first step when the plugin has no working instance here: a new
 * one, its init run. The main thread bounds this by init_timeout_ms; the hook
 * runs (and its timeout_ms starts) only after 'created'.
 */
async function recreate(seq: number, pid: string): Promise<void> {
  await discard(pid);
  const spec = specs.get(pid);
  if (!spec) {
    post({ t: 'failed', seq, kind: 'unavailable', message: 'the plugin is not loaded in this worker' });
    return;
  }
  try {
    const { inst } = await createInstance(spec);
    instances.set(pid, inst);
    post({ t: 'created', seq });
  } catch (e) {
    const { kind, message } = classify(e, undefined);
    post({ t: 'failed', seq, kind, message: `could not create a new instance: ${message}` });
  }
}

/**
 * Runs one hook call. The raw output goes back through the channel when it
 * fits (the main thread decodes and validates it), otherwise in a 'done'
 * message; a failure goes back in a 'failed' message.
 */
async function runHook(seq: number, pid: string, hook: string, input: Uint8Array, rid: string | null): Promise<void> {
  const inst = instances.get(pid);
  if (!inst) {
    // The main thread asks for a 'create' first; this heals a disagreement: it now knows there is none.
    post({ t: 'failed', seq, kind: 'unavailable', message: 'the plugin has no instance in this worker' });
    return;
  }
  const c: CurrentCall = { pid, rid, input, output: null, viaChannel: true, channelOutput: -1, logUsed: 0, posted: false };
  Atomics.store(i32, W.LOG_USED, 0);
  current = c;
  try {
    const out = await inst.plugin.call(hook, inst.spec.usesExtismInput ? input.slice() : undefined);
    let bytes = c.output;
    if (c.channelOutput < 0 && !bytes && out) {
      bytes = out.bytes();
      if (bytes.length > inst.spec.maxOutputBytes) throw new OutputTooLarge(`output of ${bytes.length} bytes is over the limit of ${inst.spec.maxOutputBytes}`);
      if (bytes.length <= OUTPUT_CAP) {
        u8.set(bytes, OUTPUT_OFF);
        c.channelOutput = bytes.length;
        bytes = null;
      } else {
        bytes = bytes.slice();
      }
    }
    current = null;
    if (c.posted && !bytes && c.channelOutput >= 0) bytes = u8.slice(OUTPUT_OFF, OUTPUT_OFF + c.channelOutput);
    if (bytes || c.posted) {
      post({ t: 'done', seq, bytes }, bytes ? [bytes.buffer as ArrayBuffer] : []);
    } else {
      Atomics.store(i32, W.DONE_LEN, c.channelOutput);
      Atomics.store(i32, W.DONE_SEQ, seq);
      Atomics.notify(i32, W.DONE_SEQ);
    }
  } catch (e) {
    current = null;
    // The instance's globals and heap may be inconsistent after a trap: never reuse it. The worker
    // is free at once; the plugin's next call here creates a new instance (bounded, as part of that call).
    post({ t: 'failed', seq, ...classify(e, inst) });
    await discard(pid);
  }
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.t) {
    case 'load': {
      register(msg.spec, msg.slot);
      try {
        const { inst, init } = await createInstance(msg.spec);
        instances.set(msg.spec.id, inst);
        const name = msg.wantName && (await inst.plugin.functionExists('get_name')) ? parseNameOutput(await invoke(inst, 'get_name', new Uint8Array(0), '')) : undefined;
        post({ t: 'loaded', seq: msg.seq, init, name });
      } catch (e) {
        specs.delete(msg.spec.id);
        slots.delete(msg.slot);
        post({ t: 'failed', seq: msg.seq, ...classify(e, undefined) });
      }
      return;
    }
    case 'call':
      await runHook(msg.seq, msg.pid, msg.hook, msg.input, msg.rid);
      return;
    case 'create':
      await recreate(msg.seq, msg.pid);
      return;
    case 'discard':
      await discard(msg.pid);
      return;
    case 'unload': {
      const inst = instances.get(msg.pid);
      specs.delete(msg.pid);
      instances.delete(msg.pid);
      for (const [slot, pid] of slots) if (pid === msg.pid) slots.delete(slot);
      if (inst?.spec.hasCleanup) {
        try {
          await invoke(inst, 'cleanup', new Uint8Array(0), '');
        } catch (e) {
          postLog(2, msg.pid, `cleanup failed: ${(e as Error).message}`);
        }
      }
      await inst?.plugin.close();
      post({ t: 'done', seq: msg.seq, bytes: null });
      return;
    }
  }
}

/**
 * The worker's loop: one thing at a time, in order. Between calls the thread
 * sleeps in Atomics.wait on the doorbell; it drains posted control messages
 * first, then runs the channel call if a new one was written. Awaiting a
 * call or a load returns to the event loop only if that work needs it (a
 * foreground Extism call settles in microtasks).
 */
async function serve(): Promise<void> {
  let lastCall = Atomics.load(i32, W.CALL_SEQ);
  let calls = 0;
  post({ t: 'ready' });
  for (;;) {
    const bell = Atomics.load(i32, W.DOORBELL);
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) await handle(m.message as ToWorker);
    const seq = Atomics.load(i32, W.CALL_SEQ);
    if (seq !== lastCall) {
      lastCall = seq;
      const pid = slots.get(Atomics.load(i32, W.CALL_SLOT));
      const hook = HOOK_NAMES[Atomics.load(i32, W.CALL_HOOK)];
      const len = Atomics.load(i32, W.CALL_LEN);
      if (pid === undefined) post({ t: 'failed', seq, kind: 'unavailable', message: 'the plugin is not loaded in this worker' });
      else await runHook(seq, pid, hook, u8.subarray(INPUT_OFF, INPUT_OFF + len), null);
      if (++calls % YIELD_EVERY_CALLS === 0) await yieldToEventLoop();
      continue;
    }
    if (Atomics.wait(i32, W.DOORBELL, bell, IDLE_YIELD_MS) === 'timed-out') await yieldToEventLoop();
  }
}

/**
 * While the thread sleeps in Atomics.wait its event loop does not turn, so
 * tasks V8 posts to it (GC steps, FinalizationRegistry callbacks) wait. Give
 * them a turn now and then: every so many calls, and when idle.
 */
const YIELD_EVERY_CALLS = 256;
const IDLE_YIELD_MS = 100;
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

// Nothing else keeps this thread's event loop alive while a load awaits (the port has no listener).
setInterval(() => {}, 1 << 30);
void serve().catch((e: Error) => {
  // A bug here would leave the pool waiting for answers that never come: fail loudly, the pool replaces the worker.
  process.nextTick(() => {
    throw e;
  });
});
