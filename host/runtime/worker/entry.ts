// A plugin worker thread. It holds one foreground Extism instance of every
// loaded plugin and runs one call at a time. Each hook call runs under its own
// deadline on this thread's clock: the guest checks it (deadline checks the
// loader adds) and stops there with DeadlineExceeded, a 'timeout'; the
// instance is discarded and the thread lives on. The main thread answers the
// call at its deadline regardless, and terminates this whole thread only if it
// does not report back shortly after (a guest that cannot be stopped from
// inside: docs/extism-notes.md, "A foreground call cannot be interrupted").

import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { parseInitOutput, parseNameOutput } from '../../abi/outputs.js';
import type { InitOutput } from '../../abi/types.js';
import { Channel, HOOK_NAMES, INPUT_OFF, LOG_CAP, LOG_OFF, LOG_RECORD_HEADER, OUTPUT_CAP, OUTPUT_OFF, RID_OFF, W } from '../channel.js';
import type { FailureKind } from '../failure.js';
import type { FromWorker, PluginSpec, ToWorker, WorkerInit } from '../messages.js';
import { classifyFailure } from '../sandbox/classify-failure.js';
import { Guest } from '../sandbox/guest.js';
import { OutputTooLarge, sandgateHostFunctions } from '../sandbox/host-functions.js';
import { panicMessage } from '../sandbox/panic-message.js';
import { CallLogBudget, LogRates } from '../sandbox/log-budget.js';
import { setUpPluginThread } from './os-thread.js';

const PAGE = 64 * 1024;
const port = parentPort!;
const init = workerData as WorkerInit;
// Done already by boot.ts, before this module was loaded (this returns its result).
const thread = setUpPluginThread(init.nice);
const minLogLevel = init.minLogLevel;
const channel = new Channel(init.channel);
const { i32, u8 } = channel;

interface Instance {
  spec: PluginSpec;
  guest: Guest;
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
  /** How much more log text this call may write (log-budget.ts). */
  log: CallLogBudget;
  /** Text written to WASI stdout (1) and stderr (2) not yet ended by a newline. */
  partial: [string, string, string];
  /** The end of what the guest wrote to stderr, kept even past the budget: a panic's message is usually there. */
  stderrTail: string;
}

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
function emitLog(level: number, pid: string, msg: string | Uint8Array): void {
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

const logRates = new LogRates();

/** A guest's log line: filtered by level, then cut to what is left of the call's budget. */
function postLog(level: number, spec: PluginSpec, msg: string | Uint8Array): void {
  if (level < minLogLevel) return;
  const bytes = typeof msg === 'string' ? Buffer.from(msg) : msg;
  const taken = current ? current.log.allow(bytes.length) : bytes.length;
  if (taken > 0) emitLog(level, spec.id, taken === bytes.length ? msg : bytes.subarray(0, taken));
}

const STREAM_LEVEL = [0, 1, 2] as const; // stdout is info, stderr warn
const STREAM_NAME = ['stdin', 'stdout', 'stderr'] as const;
/** The end of stderr kept for a failure's message: enough for a panic line above a short trace. */
const STDERR_TAIL = 4096;

/** What the guest wrote to WASI stdout or stderr: complete lines go to the log, under the call's budget. */
function guestWrite(spec: PluginSpec, fd: 1 | 2, bytes: Uint8Array): void {
  const c = current;
  if (!c) return; // outside any call (cannot happen: every guest entry runs inside one)
  if (fd === 2) c.stderrTail = (c.stderrTail + Buffer.from(bytes.subarray(Math.max(0, bytes.length - STDERR_TAIL))).toString('utf8')).slice(-STDERR_TAIL);
  const taken = c.log.allow(bytes.length);
  if (taken === 0) return;
  const lines = (c.partial[fd] + Buffer.from(bytes.subarray(0, taken)).toString('utf8')).split('\n');
  c.partial[fd] = lines.pop()!;
  for (const line of lines) if (STREAM_LEVEL[fd] >= minLogLevel) emitLog(STREAM_LEVEL[fd], spec.id, `${STREAM_NAME[fd]}: ${line}`);
}

/** Ends a call's logging: unfinished stdout/stderr lines, and one line for whatever went over the budget. */
function finishLogs(c: CurrentCall, spec: PluginSpec): void {
  for (const fd of [1, 2] as const) {
    if (c.partial[fd] && STREAM_LEVEL[fd] >= minLogLevel) emitLog(STREAM_LEVEL[fd], spec.id, `${STREAM_NAME[fd]}: ${c.partial[fd]}`);
    c.partial[fd] = '';
  }
  const { reports, droppedBytes: dropped } = c.log.end();
  for (const report of reports) emitLog(2, spec.id, report);
  if (dropped > 0) post({ t: 'log_dropped', pid: spec.id, bytes: dropped });
}

function newCall(spec: PluginSpec, rid: string | null, input: Uint8Array, viaChannel: boolean): CurrentCall {
  return {
    pid: spec.id, rid, input, output: null, viaChannel, channelOutput: -1, logUsed: 0, posted: false,
    log: new CallLogBudget(spec, logRates), partial: ['', '', ''], stderrTail: '',
  };
}

/** The fast-path host functions (sandbox/host-functions.ts), wired to the call in progress. */
function hostFunctions(spec: PluginSpec, memory: () => WebAssembly.Memory) {
  return sandgateHostFunctions(memory, {
    input: () => current?.input ?? new Uint8Array(0),
    maxOutputBytes: spec.maxOutputBytes,
    output: (bytes) => {
      const c = current;
      if (!c) return;
      if (c.viaChannel && bytes.length <= OUTPUT_CAP) {
        // Straight from guest memory into the channel: no intermediate copy.
        u8.set(bytes, OUTPUT_OFF);
        c.channelOutput = bytes.length;
        c.output = null;
      } else {
        c.output = bytes.slice();
        c.channelOutput = -1;
      }
    },
    log: (level, text) => postLog(level, spec, text),
  });
}

/** Extism's own log_* imports (used by other PDKs) land in the gateway log too. */
function extismLogger(spec: PluginSpec): Console {
  const at = (level: number) => (...args: unknown[]) => postLog(level, spec, args.map(String).join(' '));
  return { trace: at(0), debug: at(0), info: at(1), log: at(1), warn: at(2), error: at(3) } as unknown as Console;
}

/** Runs an export outside a hook call (init, get_name, cleanup): the output comes back as bytes. */
async function invoke(inst: Instance, hook: string, input: Uint8Array, rid: string): Promise<Uint8Array | null> {
  const c = newCall(inst.spec, rid, input, false);
  current = c;
  try {
    const out = await inst.guest.call(hook, inst.spec.usesExtismInput ? input : undefined);
    if (c.output) return c.output;
    if (!out) return null;
    if (out.length > inst.spec.maxOutputBytes) throw new OutputTooLarge(out.length, inst.spec.maxOutputBytes);
    return out.slice();
  } catch (e) {
    throw withStderr(e, c);
  } finally {
    finishLogs(c, inst.spec);
    current = null;
  }
}

/** Adds why the guest says it failed, from its stderr, to a failure's message (a Go, Rust or C panic says it there). */
function withStderr(e: unknown, c: CurrentCall): unknown {
  const why = panicMessage(c.stderrTail);
  if (why && e instanceof Error) e.message = `${e.message} (stderr: ${why})`;
  return e;
}

function classify(e: unknown, inst: Instance | undefined): { kind: FailureKind; message: string } {
  return classifyFailure(e, inst && { growRefused: inst.guest.growRefused, memory: inst.guest.memory, memoryPages: inst.spec.memoryPages });
}

async function createInstance(spec: PluginSpec): Promise<{ inst: Instance; init: InitOutput }> {
  let guest: Guest;
  // _initialize runs inside Guest.create: it counts as a call, so its logs are bounded and its stderr kept.
  const c = newCall(spec, '', new Uint8Array(0), false);
  current = c;
  try {
    guest = await Guest.create({
      module: spec.module,
      hasInitialize: spec.hasInitialize,
      maxVarBytes: spec.maxVarBytes,
      kernelBytesPerCall: spec.memoryPages * PAGE,
      hostFunctions: (memory) => hostFunctions(spec, memory),
      write: (fd, bytes) => guestWrite(spec, fd, bytes),
      logger: extismLogger(spec),
    });
  } catch (e) {
    throw withStderr(e, c);
  } finally {
    finishLogs(c, spec);
    current = null;
  }
  const inst: Instance = { spec, guest };
  try {
    const init = parseInitOutput(spec.hasInit ? await invoke(inst, 'init', spec.initInput, '') : null);
    if (init.error !== undefined) throw new Error(`init refused to start: ${init.error}`);
    return { inst, init };
  } catch (e) {
    void guest.close();
    throw e;
  }
}

/** Drops an instance for good (after a failure its globals and heap may be inconsistent); no guest code runs. */
async function discard(pid: string): Promise<void> {
  const inst = instances.get(pid);
  instances.delete(pid);
  await inst?.guest.close().catch((e: Error) => postLog(2, inst.spec, `closing a discarded instance failed: ${e.message}`));
}

function register(spec: PluginSpec, slot: number): void {
  specs.set(spec.id, spec);
  slots.set(slot, spec.id);
}

/** Drops what this worker knows of a plugin (its instance is discarded or closed by the caller). */
function forget(pid: string): void {
  specs.delete(pid);
  logRates.forget(pid);
  for (const [slot, id] of slots) if (id === pid) slots.delete(slot);
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
async function runHook(seq: number, pid: string, hook: string, input: Uint8Array, rid: string | null, timeoutMs: number): Promise<void> {
  // This thread's own clock: the guest stops itself here (DeadlineExceeded, a 'timeout'), and the worker
  // lives on. The main thread answers the call at its own deadline, set a moment earlier, either way.
  const deadline = performance.now() + timeoutMs;
  const inst = instances.get(pid);
  if (!inst) {
    // The main thread asks for a 'create' first; this heals a disagreement: it now knows there is none.
    post({ t: 'failed', seq, kind: 'unavailable', message: 'the plugin has no instance in this worker' });
    return;
  }
  const c = newCall(inst.spec, rid, input, true);
  Atomics.store(i32, W.LOG_USED, 0);
  current = c;
  try {
    let bytes = await inst.guest.call(hook, inst.spec.usesExtismInput ? input.slice() : undefined, deadline);
    if (c.channelOutput >= 0 || c.output) bytes = c.output;
    else if (bytes) {
      if (bytes.length > inst.spec.maxOutputBytes) throw new OutputTooLarge(bytes.length, inst.spec.maxOutputBytes);
      if (bytes.length <= OUTPUT_CAP) {
        u8.set(bytes, OUTPUT_OFF);
        c.channelOutput = bytes.length;
        bytes = null;
      } else {
        bytes = bytes.slice();
      }
    }
    finishLogs(c, inst.spec);
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
    withStderr(e, c);
    finishLogs(c, inst.spec);
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
        const name = msg.wantName && (await inst.guest.hasExport('get_name')) ? parseNameOutput(await invoke(inst, 'get_name', new Uint8Array(0), '')) : undefined;
        post({ t: 'loaded', seq: msg.seq, init, name });
      } catch (e) {
        specs.delete(msg.spec.id);
        slots.delete(msg.slot);
        post({ t: 'failed', seq: msg.seq, ...classify(e, undefined) });
      }
      return;
    }
    case 'call':
      await runHook(msg.seq, msg.pid, msg.hook, msg.input, msg.rid, msg.timeoutMs);
      return;
    case 'create':
      await recreate(msg.seq, msg.pid);
      return;
    case 'discard':
      await discard(msg.pid);
      return;
    case 'register':
      register(msg.spec, msg.slot);
      return;
    case 'forget':
      await discard(msg.pid);
      forget(msg.pid);
      return;
    case 'unload': {
      const inst = instances.get(msg.pid);
      instances.delete(msg.pid);
      forget(msg.pid);
      if (inst?.spec.hasCleanup) {
        try {
          await invoke(inst, 'cleanup', new Uint8Array(0), '');
        } catch (e) {
          postLog(2, inst.spec, `cleanup failed: ${(e as Error).message}`);
        }
      }
      await inst?.guest.close();
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
  post(thread.refused ? { t: 'ready', tid: thread.tid, priorityRefused: thread.refused } : { t: 'ready', tid: thread.tid });
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
      else await runHook(seq, pid, hook, u8.subarray(INPUT_OFF, INPUT_OFF + len), null, Atomics.load(i32, W.CALL_TIMEOUT));
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
