// Part 1: what one hook call costs, from LoadedPlugin.call to the output bytes
// back on the main thread (msgpack encode + copy + postMessage to a plugin
// worker + Extism call + guest work + postMessage back). Sequential calls, one
// at a time, so the figures are latencies, not throughput. Reference rows take
// the call apart: encoding alone, the Extism call on this thread without a
// worker, and the thread crossing alone.

import { Worker } from 'node:worker_threads';
import { encode } from '../../host/abi/codec.js';
import type { HookName } from '../../host/abi/types.js';
import { PluginEntrySchema } from '../../host/config/schema.js';
import { loadPlugin } from '../../host/plugins/load-plugin.js';
import type { LoadedPlugin } from '../../host/plugins/loaded-plugin.js';
import { InThreadRuntime } from '../../host/runtime/in-thread/in-thread-runtime.js';
import { WorkerPool } from '../../host/runtime/worker-pool.js';
import { pinSelf, selfAffinity } from '../children.js';
import { type InThreadPlugin, inThreadPlugin } from '../inthread.js';
import { type LoopOptions, type LoopResult, timeLoop } from '../measure.js';
import { llmEnvelope, transportEnvelope } from '../payloads.js';
import { minimalPlugin, samplePlugin } from '../plugins.js';
import { fmt, fmtInt, fmtSigned } from '../stats.js';
import type { BenchPart, Cell, PartContext, Section, Table, TargetResult } from '../types.js';

const TARGET_P50_US = 50;
/** How much a p50 of these rows moves between runs on this machine (observed while writing the harness). */
const NOISE_US = 10;
/** The core the first table runs on (the load generator's core in the throughput part). */
const ONE_CORE = '0';

interface Row {
  key: string;
  label: string;
  bytes: number;
  result: LoopResult | null;
  /** Plugin log messages posted to the main thread per call. */
  logsPerCall?: number;
  why?: string;
}

/** A worker that answers at once: the same message shape and buffer handling as the plugin pool, nothing else. */
async function echoWorker(): Promise<{ call(input: Uint8Array): Promise<unknown>; close(): Promise<number> }> {
  const worker = new Worker(new URL('../echo-worker.js', import.meta.url));
  let seq = 0;
  let pending: ((v: unknown) => void) | null = null;
  worker.on('message', (m: unknown) => {
    const p = pending;
    pending = null;
    p?.(m);
  });
  const call = (input: Uint8Array) =>
    new Promise((resolve) => {
      pending = resolve;
      const copy = new Uint8Array(input);
      worker.postMessage({ t: 'call', seq: ++seq, pid: 'echo', hook: 'echo', input: copy, rid: 'bench' }, [copy.buffer as ArrayBuffer]);
    });
  return { call, close: () => worker.terminate() };
}

export const hookRoundTrip: BenchPart = {
  id: 'hook-roundtrip',
  title: 'Hook round trip',
  async run(ctx: PartContext): Promise<Section> {
    const loop: LoopOptions = ctx.quick
      ? { warmupCalls: 300, warmupMaxMs: 500, calls: 2000, maxMs: 700 }
      : { warmupCalls: 2000, warmupMaxMs: 1500, calls: 20_000, maxMs: 3000 };
    const sample = samplePlugin(ctx.root);
    const minimalPath = await minimalPlugin(ctx.tmpDir);
    const loggingPath = await minimalPlugin(ctx.tmpDir, true);
    const S = sample.label;

    const headersOnly = transportEnvelope(false);
    const withBody = transportEnvelope(true);
    const llm = llmEnvelope();
    const size = (v: unknown) => encode(v).length;
    /** The echo rows send already-encoded bytes: the crossing alone, without the encode. */
    const encodedHeaders = new Uint8Array(encode(headersOnly));

    let logs = 0;
    const pool = new WorkerPool({ onLog: () => void logs++, onLogDropped: () => {}, onWorkerRestart: () => {}, onInstanceCreated: () => {} }, { size: 1 });
    const closers: (() => Promise<unknown>)[] = [() => pool.close()];
    const startAffinity = selfAffinity();
    const oneCore: Row[] = [];
    const allCores: Row[] = [];
    let pinned = false;
    /** Whether LoadedPlugin.call hands back raw output bytes (older hosts) or the decoded, validated output. */
    let returnsBytes: boolean | undefined;
    try {
      const noSigning = { trusted_keys: {}, require_signature: false };
      const hello = await loadPlugin(PluginEntrySchema.parse({ name: 'hello-world', path: sample.path }), pool, 1, noSigning);
      const minimal = await loadPlugin(PluginEntrySchema.parse({ name: 'minimal', path: minimalPath }), pool, 2, noSigning);
      const logging = await loadPlugin(PluginEntrySchema.parse({ name: 'minimal-logging', path: loggingPath }), pool, 3, noSigning);
      // The same plugins placed on the main thread, as the gateway places them (ABI.md §7.6).
      const mainThread = new InThreadRuntime({ budgetMs: 5, minLogLevel: 0 }, { onLog: () => void logs++, onLogDropped: () => {}, onInstanceCreated: () => {} });
      const helloMain = await loadPlugin(PluginEntrySchema.parse({ name: 'hello-world', path: sample.path }), pool, 4, noSigning, { inThread: mainThread });
      const minimalMain = await loadPlugin(PluginEntrySchema.parse({ name: 'minimal', path: minimalPath }), pool, 5, noSigning, { inThread: mainThread });
      closers.push(() => helloMain.unload(1000), () => minimalMain.unload(1000));
      for (const p of [helloMain, minimalMain]) if (p.placement !== 'main-thread') throw new Error(`${p.name} is not on the main thread: ${p.placementReason}`);
      const helloHere = await inThreadPlugin('hello-world', sample.path);
      closers.push(() => helloHere.close());
      const minimalHere = await inThreadPlugin('minimal', minimalPath);
      closers.push(() => minimalHere.close());
      const echo = await echoWorker();
      closers.push(() => echo.close());

      const measure = async (key: string, label: string, bytes: number, fn: () => Promise<unknown> | unknown): Promise<Row> => {
        ctx.log(`  ${label}`);
        return { key, label, bytes, result: await timeLoop(fn, loop) };
      };
      const hookRow = async (key: string, label: string, p: LoadedPlugin, hook: HookName, envelope: unknown): Promise<Row> => {
        if (!p.has(hook)) return { key, label, bytes: size(envelope), result: null, why: `${S} does not export ${hook}` };
        const first: unknown = await p.call(hook, envelope, 'bench'); // a failure here is a broken plugin, not a figure
        if (first != null) returnsBytes = first instanceof Uint8Array;
        const before = logs;
        const row = await measure(key, label, size(envelope), () => p.call(hook, envelope, 'bench'));
        // Warm-up calls log too; count them so the ratio is per call.
        const calls = (row.result?.warmupCalls ?? 0) + (row.result?.latency.count ?? 0);
        return { ...row, logsPerCall: (logs - before) / calls };
      };
      const inThreadRow = async (key: string, label: string, p: InThreadPlugin, has: boolean, hook: HookName, envelope: unknown): Promise<Row> => {
        if (!has) return { key, label, bytes: size(envelope), result: null, why: `${S} does not export ${hook}` };
        return measure(key, label, size(envelope), () => p.call(hook, encode(envelope)));
      };

      // Table 1: everything on one core, as the gateway runs in the throughput part.
      pinned = ctx.taskset && pinSelf(ONE_CORE);
      oneCore.push(await measure('encode', 'msgpack encode only (headers-only envelope)', size(headersOnly), () => encode(headersOnly)));
      oneCore.push(await measure('encode-b', 'msgpack encode only (+ 2 KiB body)', size(withBody), () => encode(withBody)));
      oneCore.push(await inThreadRow('here-min', 'encode + Extism call, no worker: minimal plugin, headers only', minimalHere, true, 'http_transport_pre_hook', headersOnly));
      oneCore.push(await inThreadRow('here-hello', `encode + Extism call, no worker: ${S}, headers only`, helloHere, hello.has('http_transport_pre_hook'), 'http_transport_pre_hook', headersOnly));
      oneCore.push(await hookRow('main-min-h', 'on the main thread: minimal plugin, http_transport_pre_hook, headers only', minimalMain, 'http_transport_pre_hook', headersOnly));
      oneCore.push(await hookRow('main-hello-h', `**on the main thread: ${S}, http_transport_pre_hook, headers only**`, helloMain, 'http_transport_pre_hook', headersOnly));
      oneCore.push(await hookRow('main-hello-llm', `on the main thread: ${S}, pre_llm_hook, 2 KiB LlmRequest`, helloMain, 'pre_llm_hook', llm));
      oneCore.push(await measure('echo', 'thread crossing only (echo worker, headers-only envelope already encoded)', size(headersOnly), () => echo.call(encodedHeaders)));
      oneCore.push(await hookRow('min-h', 'minimal plugin: http_transport_pre_hook, headers only', minimal, 'http_transport_pre_hook', headersOnly));
      oneCore.push(await hookRow('min-b', 'minimal plugin: http_transport_pre_hook, + 2 KiB body', minimal, 'http_transport_pre_hook', withBody));
      oneCore.push(await hookRow('min-log', 'minimal plugin that logs twice per call: http_transport_pre_hook, headers only', logging, 'http_transport_pre_hook', headersOnly));
      oneCore.push(await hookRow('min-llm', 'minimal plugin: pre_llm_hook, 2 KiB LlmRequest', minimal, 'pre_llm_hook', llm));
      oneCore.push(await hookRow('hello-h', `**on a worker: ${S}, http_transport_pre_hook, headers only**`, hello, 'http_transport_pre_hook', headersOnly));
      oneCore.push(await hookRow('hello-b', `${S}: http_transport_pre_hook, + 2 KiB body`, hello, 'http_transport_pre_hook', withBody));
      oneCore.push(await hookRow('hello-llm', `${S}: pre_llm_hook, 2 KiB LlmRequest`, hello, 'pre_llm_hook', llm));

      // Table 2: the main thread and the worker free to run on different cores.
      if (pinned && startAffinity !== 'unknown' && pinSelf(startAffinity)) {
        allCores.push(await measure('echo', 'thread crossing only (echo worker, headers-only envelope already encoded)', size(headersOnly), () => echo.call(encodedHeaders)));
        allCores.push(await hookRow('min-h', 'minimal plugin: http_transport_pre_hook, headers only', minimal, 'http_transport_pre_hook', headersOnly));
        allCores.push(await hookRow('hello-h', `${S}: http_transport_pre_hook, headers only`, hello, 'http_transport_pre_hook', headersOnly));
      }
    } finally {
      for (const close of closers.reverse()) await close().catch(() => {});
      if (pinned && startAffinity !== 'unknown') pinSelf(startAffinity);
    }

    const columns = ['call', 'input bytes', 'p50 us', 'p99 us', 'mean us', 'CPU/call us', 'plugin logs/call', 'calls'];
    const render = (rs: Row[]): Cell[][] =>
      rs.map((r) => {
        const s = r.result?.latency;
        return [
          r.label,
          fmtInt(r.bytes),
          fmt(s?.p50),
          fmt(s?.p99),
          fmt(s?.mean),
          fmt(r.result?.cpuPerCall),
          r.logsPerCall === undefined ? '-' : fmt(r.logsPerCall, 1),
          s ? fmtInt(s.count) : (r.why ?? 'n/a'),
        ];
      });
    const p50 = (rs: Row[], key: string) => rs.find((r) => r.key === key)?.result?.latency.p50;

    const main = p50(oneCore, 'main-hello-h');
    const onWorker = p50(oneCore, 'hello-h');
    const spreadOut = p50(allCores, 'hello-h');
    const targets: TargetResult[] = [
      {
        name: `hook round trip p50 (${S}, http_transport_pre_hook, headers only, on the main thread${pinned ? ', one core' : ''})`,
        target: `<= ${TARGET_P50_US} us`,
        measured: `${main === undefined ? 'n/a' : `${fmt(main)} us`}${onWorker === undefined ? '' : ` (on a worker: ${fmt(onWorker)} us${spreadOut === undefined ? '' : `, ${fmt(spreadOut)} us with threads on different cores`})`}`,
        met: main === undefined || !sample.isHelloWorld ? null : main <= TARGET_P50_US,
      },
    ];

    const notes = [
      `Sequential calls through \`LoadedPlugin.call\` on a pool of 1 plugin worker: ${loop.warmupCalls.toLocaleString('en-US')} warm-up calls, then up to ${loop.calls.toLocaleString('en-US')} timed calls (each loop also capped at ${loop.maxMs / 1000} s, hence fewer calls in slow rows). ${returnsBytes === undefined ? '' : returnsBytes ? 'In the version measured, `call` returns the raw output bytes (decoding and validation happen later, in the pipeline, and are not included).' : 'In the version measured, `call` returns the output already decoded and validated, so that is included.'}`,
      '"CPU/call" is the CPU time of the whole benchmark process (main thread + plugin worker + V8 helpers) divided by the calls: what a hook call costs the machine, whichever thread pays.',
      '"On the main thread" rows are `LoadedPlugin.call` for a version the gateway runs on its main thread (ABI.md §7.6, how the gateway runs the AssemblyScript, Rust and C kits\' plugins): encode, a plain synchronous WebAssembly call under the deadline clock, output decoded and validated; no Extism, no thread crossing. The other `LoadedPlugin.call` rows are versions on the worker pool (Go plugins, and any that moved there).',
      'The **minimal plugin** is a WAT module (written by bench/plugins.ts) whose hooks copy their input into guest memory (fast path) and return nothing: its rows are the host side of a hook call. "No worker" rows call the same Extism plugin on the benchmark\'s own thread (encode + Extism call + guest work, no thread crossing, no deadline).',
    ];
    const e = (key: string) => p50(oneCore, key);
    const has = (...keys: string[]) => keys.every((k) => e(k) !== undefined);
    if (has('encode', 'here-min', 'here-hello', 'echo', 'min-h', 'hello-h', 'min-log')) {
      const d = (a: string, b: string) => e(a)! - e(b)!;
      notes.push(
        `Where the time goes (differences of p50s on one core, so the parts add up only roughly). Minimal plugin through the pool, ${fmt(e('min-h'))} us: thread crossing ${fmt(e('echo'))} us + msgpack encode and Extism call ${fmt(e('here-min'))} us + the rest of the pool's work (queue, deadline timer, copies, promises${returnsBytes === false ? ', output decoding and validation' : ''}) ${fmt(e('min-h')! - e('here-min')! - e('echo')!)} us. ` +
          `${S} costs ${fmtSigned(d('hello-h', 'min-h'), 1)} us more: its guest work (MessagePack decode/encode in the guest, building the output) is ${fmtSigned(d('here-hello', 'here-min'), 1)} us measured without a worker, its two log messages per call ${fmtSigned(d('min-log', 'min-h'), 1)} us (measured on the minimal plugin); the remaining ${fmtSigned(d('hello-h', 'min-h') - d('here-hello', 'here-min') - d('min-log', 'min-h'), 1)} us is not broken down further (it includes producing an output and sending it back${returnsBytes === false ? ', decoded and validated,' : ''} which the minimal plugin does not).`,
      );
    }
    if (has('hello-b', 'hello-h', 'min-b', 'min-h', 'encode-b', 'encode')) {
      const dh = e('hello-b')! - e('hello-h')!;
      const dm = e('min-b')! - e('min-h')!;
      const within = Math.abs(dh) < NOISE_US && Math.abs(dm) < NOISE_US;
      notes.push(
        `A 2 KiB body in the envelope: p50 ${fmtSigned(dh, 1)} us for ${S}, ${fmtSigned(dm, 1)} us for the minimal plugin${within ? ` (within the run-to-run noise of about ${NOISE_US} us on this machine: no measurable cost)` : ''}; encoding it costs ${fmtSigned(e('encode-b')! - e('encode')!, 1)} us. The gateway leaves bodies out for plugins whose init asked for none, as ${S}'s does.`,
      );
    }
    const helloLogs = oneCore.find((r) => r.key === 'hello-h')?.logsPerCall;
    if (helloLogs) notes.push(`${S} logs on every call (${fmt(helloLogs, 1)} messages per transport pre-hook). Each log is one more postMessage from the worker to the main thread, sent even when the gateway's log level then drops it.`);
    if (allCores.length) {
      notes.push(
        `Second table: the same calls with the main thread and the worker free to run on different cores: thread crossing ${fmt(p50(allCores, 'echo'))} us vs ${fmt(e('echo'))} us on one core. On this VM a wake-up across cores is sometimes far dearer than a switch on one core and varies from run to run (while writing this harness a bare echo round trip measured 85-200 us at p50 unpinned against 23-28 us pinned), so compare rows within the first table.`,
      );
    }
    if (!sample.isHelloWorld) notes.push('**hello-world was not built when this ran; a test fixture stood in, so the target is not evaluated.**');

    const tables: Table[] = [
      { title: pinned ? `Benchmark process (main thread + plugin worker) pinned to core ${ONE_CORE}` : 'Benchmark process not pinned (taskset not available)', columns, rows: render(oneCore) },
    ];
    if (allCores.length) tables.push({ title: `The same calls, threads free to use cores ${startAffinity}`, columns, rows: render(allCores) });
    return {
      intro: `One \`${S}\` hook call at a time through \`LoadedPlugin.call\` (msgpack encode + worker crossing + Extism call + output back), with reference rows that take the call apart. Times in microseconds.`,
      tables,
      targets,
      notes,
    };
  },
};
