import { encode } from '../abi/codec.js';
import { ABI_VERSION } from '../abi/version.js';
import type { PluginEntry } from '../config/schema.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import { compilePlugin } from '../runtime/compile.js';
import type { InThreadRuntime } from '../runtime/in-thread/in-thread-runtime.js';
import type { PluginSpec } from '../runtime/messages.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import type { CircuitState } from './circuit-breaker.js';
import { type TrustSettings, verifyPluginBytes } from './integrity.js';
import { LoadedPlugin, poolKey } from './loaded-plugin.js';

export interface LoadExtras {
  /** Where plugins that can run on the main thread get their instance there (null: workers only). */
  inThread?: InThreadRuntime | null;
  onCircuitChange?: (plugin: string, state: CircuitState) => void;
  onMovedToWorkers?: (plugin: string, reason: string) => void;
}

/**
 * Verifies (integrity.ts) and compiles one version of a plugin from its file, and creates its instances in
 * every worker (init runs in each). Throws a GatewayError saying why it cannot
 * load; then nothing of it is left in the pool.
 *
 * @example
 * const v = await loadPlugin(entry, pool, 7, { trusted_keys: {}, require_signature: false });
 * await v.call('http_transport_pre_hook', envelope, rid);
 */
export async function loadPlugin(entry: PluginEntry, pool: WorkerPool, generation: number, trust: TrustSettings, extras: LoadExtras = {}): Promise<LoadedPlugin> {
  const compiled = await compilePlugin(entry.name, entry.path, entry.memory_limit_mb, (bytes, sha256) => verifyPluginBytes(entry, trust, bytes, sha256));
  const id = { name: entry.name, version: entry.version, generation };
  const spec: PluginSpec = {
    id: poolKey(id),
    name: entry.name,
    module: compiled.module,
    initInput: encode({ abi: ABI_VERSION, name: entry.name, config: entry.config }),
    hasInitialize: compiled.hasInitialize,
    usesExtismInput: compiled.usesExtismInput,
    hasInit: compiled.hooks.has('init'),
    hasCleanup: compiled.hooks.has('cleanup'),
    memoryPages: Math.floor((entry.memory_limit_mb * 1024 * 1024) / 65536),
    maxOutputBytes: entry.max_output_bytes,
    maxVarBytes: entry.max_var_bytes,
    maxLogBytesPerCall: entry.max_log_bytes_per_call,
    maxLogBytesPerSecond: entry.max_log_bytes_per_second,
  };
  let answer;
  try {
    // The workers first: there init_timeout_ms bounds init whatever it does, so an init that
    // loops is refused there, before it could run on the main thread.
    answer = await pool.load(spec, entry.init_timeout_ms);
  } catch (e) {
    const why = (e as Error).message;
    throw new GatewayError(ErrorCode.pluginInitFailed, `plugin "${entry.name}" failed to initialise: ${why}`, { plugin: entry.name, cause: e });
  }
  // The config name wins (docs/hook-semantics.md); get_name is still called (and validated) so a broken one shows up at load time.
  const init = answer.init;
  const opened = extras.inThread ? extras.inThread.open(spec, compiled.inThreadBlockers, entry.init_timeout_ms) : 'runtime.in_thread_budget_ms is 0';
  return new LoadedPlugin({
    id,
    entry,
    hooks: compiled.hooks,
    wantsRequestBody: init.request_body ?? true,
    wantsResponseBody: init.response_body ?? true,
    wantsStreamDeltas: init.stream_deltas ?? true,
    sha256: compiled.sha256,
    pool,
    inThread: typeof opened === 'string' ? null : opened,
    placementReason: typeof opened === 'string' ? opened : null,
    onCircuitChange: extras.onCircuitChange,
    onMovedToWorkers: extras.onMovedToWorkers,
  });
}
