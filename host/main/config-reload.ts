import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/schema.js';
import { isGatewayError } from '../errors/codes.js';
import type { Logger } from '../log/logger.js';
import type { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { PluginFileWatcher } from '../plugins/file-watch.js';
import type { ConfigApplyResult, PluginRegistry } from '../plugins/registry.js';
import type { ProviderSet } from '../providers/registry.js';

// Config reload: the config file read again (on its change, SIGHUP, or POST
// /admin/reload) and applied without a restart. Plugins (the registry decides
// what each change means, host/plugins/config-apply.ts), providers, trust
// settings and the admin token apply live; the sections below are read once
// at start-up (the listening socket, the worker pool, the logger and the
// request limits are built from them), so a change there is logged as needing
// a restart and the rest applies. An invalid config is refused whole, with
// the message start-up would give, and the running one stays.

/** Config sections that apply only at start-up. */
const RESTART_ONLY_SECTIONS = ['server', 'limits', 'runtime'] as const;

export interface ConfigReloadReport {
  result: 'ok' | 'refused';
  trigger: string;
  /** Why it was refused: the error code and the same message start-up gives. */
  error?: { code: string; message: string };
  plugins?: ConfigApplyResult;
  providers?: { added: string[]; changed: string[]; removed: string[] };
  trust_changed?: boolean;
  /** Keys that changed but apply only after a restart, as JSON paths (server.port). */
  restart_required?: string[];
  [k: string]: unknown;
}

/** The keys that differ between two configs in the parts read only at start-up. */
export function restartOnlyChanges(running: Config, next: Config): string[] {
  const changed: string[] = [];
  for (const section of RESTART_ONLY_SECTIONS) {
    const a = running[section] as Record<string, unknown>;
    const b = next[section] as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) if (!isDeepStrictEqual(a[key], b[key])) changed.push(`${section}.${key}`);
  }
  if (running.log_level !== next.log_level) changed.push('log_level');
  return changed;
}

export interface ConfigReloaderDeps {
  registry: PluginRegistry;
  providers: ProviderSet;
  log: Logger;
  metrics: GatewayMetrics;
  /** Reads and validates the config again (throws GatewayError config_invalid as start-up does); absent: nothing to reload from. */
  load?: () => Config;
}

/**
 * Applies a new config to the running gateway, one reload at a time.
 *
 * @example
 * const reloader = new ConfigReloader(config, { registry, providers, log, metrics, load: () => loadConfigFile(file) });
 * process.on('SIGHUP', () => void reloader.reload('sighup'));
 */
export class ConfigReloader {
  private running: Config;
  private queue: Promise<unknown> = Promise.resolve();
  private watcher: PluginFileWatcher | null = null;
  private closed = false;

  constructor(
    private readonly startup: Config,
    private readonly deps: ConfigReloaderDeps,
  ) {
    this.running = startup;
  }

  /** The config in force: start-up values for the restart-only sections, the latest applied for the rest. */
  get current(): Config {
    return this.running;
  }

  /** Reads the config again and applies it; resolves with what happened (never throws). */
  reload(trigger: string): Promise<ConfigReloadReport> {
    const run = this.queue.then(() => this.doReload(trigger));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Reloads when the file changes (debounced; a rename over it counts; a half-written file is waited for). */
  watch(file: string): void {
    const rt = this.startup.runtime;
    this.watcher = new PluginFileWatcher(
      { debounceMs: rt.reload_debounce_ms, settleMs: rt.reload_settle_ms, isComplete: isJson },
      () => void this.reload('file'),
      (dir, err) => this.deps.log.warn({ dir, err: err.message }, 'cannot watch the config file directory; use SIGHUP or POST /admin/reload to reload'),
    );
    this.watcher.watch(file);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    await this.queue;
  }

  private async doReload(trigger: string): Promise<ConfigReloadReport> {
    const { log, metrics, registry, providers } = this.deps;
    if (this.closed) return { result: 'refused', trigger, error: { code: 'internal_error', message: 'the gateway is shutting down' } };
    let next: Config;
    try {
      if (!this.deps.load) throw new Error('this gateway was not started from a config file; there is nothing to reload');
      next = this.deps.load();
      const restartRequired = restartOnlyChanges(this.startup, next);
      const trustChanged = !isDeepStrictEqual([next.trusted_keys, next.require_signature], [this.running.trusted_keys, this.running.require_signature]);
      let providerChanges: ConfigReloadReport['providers'];
      const plugins = await registry.applyConfig(next.plugins, next, () => {
        providerChanges = providers.replace(next.providers);
      });
      // Restart-only sections keep their start-up values: `current` says what is in force.
      this.running = { ...next, ...pick(this.startup, RESTART_ONLY_SECTIONS), log_level: this.startup.log_level };
      metrics.onConfigReload('ok');
      log.info({ trigger, plugins, providers: providerChanges, trust_changed: trustChanged }, 'config reloaded');
      if (restartRequired.length > 0) log.warn({ trigger, keys: restartRequired }, `config changes need a restart to apply: ${restartRequired.join(', ')}; the rest applied`);
      return { result: 'ok', trigger, plugins, providers: providerChanges, trust_changed: trustChanged, restart_required: restartRequired };
    } catch (e) {
      const code = isGatewayError(e) ? e.code : 'internal_error';
      const message = (e as Error).message;
      metrics.onConfigReload('refused');
      // One line: the message may span several (one per invalid key); a log line keeps them in one field.
      log.error({ trigger, code, err: message }, 'config reload refused; the running config stays');
      return { result: 'refused', trigger, error: { code, message } };
    }
  }
}

function pick<K extends keyof Config>(c: Config, keys: readonly K[]): Pick<Config, K> {
  return Object.fromEntries(keys.map((k) => [k, c[k]])) as Pick<Config, K>;
}

function isJson(bytes: Buffer): boolean {
  try {
    JSON.parse(bytes.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}
