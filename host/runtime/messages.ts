// The message protocol between the main thread (worker-pool.ts) and plugin
// workers (worker/entry.ts). Most hook calls do not use it: they go through
// the shared-memory channel (channel.ts). Byte payloads are fresh Uint8Arrays
// that are transferred, never copied twice.

import type { InitOutput } from '../abi/types.js';
import type { FailureKind } from './failure.js';

/** What a worker needs to create (and re-create) instances of one plugin. */
export interface PluginSpec {
  /** Unique per loaded plugin version: name@version#generation. */
  id: string;
  name: string;
  module: WebAssembly.Module;
  /** MessagePack InitInput, sent to every new instance's init. */
  initInput: Uint8Array;
  /** A WASI reactor: run `_initialize` once per instance. */
  hasInitialize: boolean;
  /** The module reads its input through Extism's kernel (input_load_*), so the input must be stored there. */
  usesExtismInput: boolean;
  hasInit: boolean;
  hasCleanup: boolean;
  /** Guest linear memory cap, in 64 KiB pages (also baked into the module's limits). */
  memoryPages: number;
  maxOutputBytes: number;
  /** Extism variables one instance may hold (max_var_bytes). */
  maxVarBytes: number;
  /** Log text (log calls, stdout, stderr) one call may write (max_log_bytes_per_call). */
  maxLogBytesPerCall: number;
  /** Log text the plugin may write per second in one worker, across calls (max_log_bytes_per_second). */
  maxLogBytesPerSecond: number;
}

/** What a worker is started with. */
export interface WorkerInit {
  minLogLevel: number;
  /** The thread's CPU scheduling niceness (runtime.worker_nice; 0: left as it is). */
  nice: number;
  /** The shared-memory channel (channel.ts). */
  channel: SharedArrayBuffer;
  /**
   * Plugins already loaded when a replacement worker starts (slot: the plugin's
   * number in channel calls). Registered only: each instance is created when the plugin is first called here.
   */
  plugins: { spec: PluginSpec; slot: number }[];
}

export type ToWorker =
  /** slot: the plugin's number in channel calls. */
  | { t: 'load'; seq: number; spec: PluginSpec; slot: number; wantName: boolean }
  /** A call that does not fit the channel (input too large, unknown hook or plugin). */
  | { t: 'call'; seq: number; pid: string; hook: string; input: Uint8Array; rid: string; timeoutMs: number }
  | { t: 'unload'; seq: number; pid: string }
  /**
   * The first step of a hook call when the plugin has no working instance in
   * this worker: discard any old one, create a new one (running init), answer 'created'.
   */
  | { t: 'create'; seq: number; pid: string }
  /** The main thread refused the instance's output: free it (no answer; the next call creates a new one). */
  | { t: 'discard'; pid: string }
  /** To a spare: a plugin loaded after it started (no instance, no answer; created when first called). */
  | { t: 'register'; spec: PluginSpec; slot: number }
  /** To a spare: a plugin unloaded (it has no instance of it, so no cleanup; no answer). */
  | { t: 'forget'; pid: string };

export type FromWorker =
  | { t: 'loaded'; seq: number; init: InitOutput; name: string | undefined }
  /**
   * A call's raw output (the main thread decodes and validates it), sent this
   * way only when it does not fit the channel; also the answer to 'unload'.
   */
  | { t: 'done'; seq: number; bytes: Uint8Array | null }
  /** A hook call (or its instance creation) failed; the worker has discarded the instance. */
  | { t: 'failed'; seq: number; kind: FailureKind; message: string }
  | { t: 'created'; seq: number }
  /**
   * The worker's thread runs and may take calls. tid: its OS thread id (null
   * where unknown); priorityRefused: why its niceness could not be set.
   */
  | { t: 'ready'; tid: number | null; priorityRefused?: string }
  | { t: 'log'; level: number; pid: string; rid: string; msg: string }
  /** A call's log text went over max_log_bytes_per_call or max_log_bytes_per_second: this much was dropped (rare: only a flooding plugin). */
  | { t: 'log_dropped'; pid: string; bytes: number };
