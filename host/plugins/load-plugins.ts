import { encode } from '../abi/codec.js';
import { ABI_VERSION } from '../abi/version.js';
import type { PluginEntry } from '../config/schema.js';
import { ErrorCode, GatewayError, isGatewayError } from '../errors/codes.js';
import type { Logger } from '../log/logger.js';
import { compilePlugin } from '../runtime/compile.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import type { CircuitState } from './circuit-breaker.js';
import { LoadedPlugin } from './loaded-plugin.js';

let generation = 0;

/** Compiles one plugin and creates its instances in every worker (init runs in each). */
export async function loadPlugin(entry: PluginEntry, pool: WorkerPool, onCircuitChange?: (plugin: string, state: CircuitState) => void): Promise<LoadedPlugin> {
  const compiled = await compilePlugin(entry.name, entry.path, entry.memory_limit_mb);
  const id = `${entry.name}@${entry.version}#${++generation}`;
  let answer;
  try {
    answer = await pool.load(
      {
        id,
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
      },
      entry.init_timeout_ms,
    );
  } catch (e) {
    const why = (e as Error).message;
    throw new GatewayError(ErrorCode.pluginInitFailed, `plugin "${entry.name}" failed to initialise: ${why}`, { plugin: entry.name, cause: e });
  }
  // The config name wins (docs/hook-semantics.md); get_name is still called (and validated) so a broken one shows up at load time.
  const init = answer.init;
  return new LoadedPlugin(id, entry.name, entry, compiled.hooks, init.request_body ?? true, init.response_body ?? true, compiled.sha256, pool, onCircuitChange);
}

/**
 * Loads the enabled plugins in configured order. A fail-closed plugin that
 * cannot load stops start-up (the operator said it must run); a fail-open one
 * is skipped with a warning.
 */
export async function loadPlugins(
  entries: PluginEntry[],
  pool: WorkerPool,
  log: Logger,
  onCircuitChange?: (plugin: string, state: CircuitState) => void,
): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  for (const entry of entries) {
    if (!entry.enabled) {
      log.info({ plugin: entry.name }, 'plugin disabled in config, not loaded');
      continue;
    }
    try {
      const p = await loadPlugin(entry, pool, onCircuitChange);
      log.info({ plugin: p.name, version: entry.version, hooks: [...p.hooks], sha256: p.sha256.slice(0, 12) }, 'plugin loaded');
      loaded.push(p);
    } catch (e) {
      const err = isGatewayError(e) ? e : new GatewayError(ErrorCode.pluginLoadFailed, (e as Error).message, { plugin: entry.name });
      if (entry.on_error === 'fail-open') {
        log.warn({ plugin: entry.name, code: err.code, err: err.message }, 'plugin could not load; skipped because on_error is fail-open');
        continue;
      }
      throw err;
    }
  }
  return loaded;
}
