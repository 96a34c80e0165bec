// The protocol between the main thread (worker-pool.ts) and plugin workers
// (worker/entry.ts). Byte payloads are fresh Uint8Arrays that are transferred,
// never copied twice.

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
  useWasi: boolean;
  /** The module reads its input through Extism's kernel (input_load_*), so the input must be stored there. */
  usesExtismInput: boolean;
  hasInit: boolean;
  hasCleanup: boolean;
  /** Guest linear memory cap, in 64 KiB pages (also baked into the module's limits). */
  memoryPages: number;
  maxOutputBytes: number;
}

export type ToWorker =
  | { t: 'load'; seq: number; spec: PluginSpec; wantName: boolean }
  | { t: 'call'; seq: number; pid: string; hook: string; input: Uint8Array; rid: string }
  | { t: 'unload'; seq: number; pid: string };

export type FromWorker =
  | { t: 'loaded'; seq: number; init: InitOutput; name: string | undefined }
  /** value: the hook's validated output (abi/outputs.ts), structured-cloned. */
  | { t: 'done'; seq: number; value: unknown }
  | { t: 'failed'; seq: number; kind: FailureKind; message: string; recycling: boolean }
  | { t: 'ready' }
  | { t: 'log'; level: number; pid: string; rid: string; msg: string };
