import { encode } from '../abi/codec.js';
import { ABI_VERSION } from '../abi/version.js';
import type { PluginEntry } from '../config/schema.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import { compilePlugin } from '../runtime/compile.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import type { CircuitState } from './circuit-breaker.js';
import { type TrustSettings, verifyPluginBytes } from './integrity.js';
import { LoadedPlugin, poolKey } from './loaded-plugin.js';

/**
 * Verifies (integrity.ts) and compiles one version of a plugin from its file, and creates its instances in
 * every worker (init runs in each). Throws a GatewayError saying why it cannot
 * load; then nothing of it is left in the pool.
 *
 * @example
 * const v = await loadPlugin(entry, pool, 7, { trusted_keys: {}, require_signature: false });
 * await v.call('http_transport_pre_hook', envelope, rid);
 */
export async function loadPlugin(
  entry: PluginEntry,
  pool: WorkerPool,
  generation: number,
  trust: TrustSettings,
  onCircuitChange?: (plugin: string, state: CircuitState) => void,
): Promise<LoadedPlugin> {
  const compiled = await compilePlugin(entry.name, entry.path, entry.memory_limit_mb, (bytes, sha256) => verifyPluginBytes(entry, trust, bytes, sha256));
  const id = { name: entry.name, version: entry.version, generation };
  let answer;
  try {
    answer = await pool.load(
      {
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
      },
      entry.init_timeout_ms,
    );
  } catch (e) {
    const why = (e as Error).message;
    throw new GatewayError(ErrorCode.pluginInitFailed, `plugin "${entry.name}" failed to initialise: ${why}`, { plugin: entry.name, cause: e });
  }
  // The config name wins (docs/hook-semantics.md); get_name is still called (and validated) so a broken one shows up at load time.
  const init = answer.init;
  return new LoadedPlugin({
    id,
    entry,
    hooks: compiled.hooks,
    wantsRequestBody: init.request_body ?? true,
    wantsResponseBody: init.response_body ?? true,
    wantsStreamDeltas: init.stream_deltas ?? true,
    sha256: compiled.sha256,
    pool,
    onCircuitChange,
  });
}
