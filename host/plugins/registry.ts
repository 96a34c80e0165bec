import path from 'node:path';
import type { PluginEntry } from '../config/schema.js';
import { ErrorCode, GatewayError, isGatewayError } from '../errors/codes.js';
import type { Logger } from '../log/logger.js';
import type { InThreadRuntime } from '../runtime/in-thread/in-thread-runtime.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import type { CircuitState } from './circuit-breaker.js';
import { planChainChange, sameTrust } from './config-apply.js';
import type { TrustSettings } from './integrity.js';
import { PluginFileWatcher } from './file-watch.js';
import { loadPlugin } from './load-plugin.js';
import type { LoadedPlugin } from './loaded-plugin.js';

// The one owner of the plugin lifecycle. It loads a version (compile, ABI
// check, init in every worker), makes it active, and when a newer version
// replaces it, lets the old one drain: requests that started on it finish on
// it, then its cleanup runs once per instance and the pool drops it. Nothing
// else in the host creates or drops plugin instances.
//
// A request takes a lease on the active chain when it starts (acquire) and
// keeps that exact chain for every hook it runs, every streamed chunk
// included; the lease counts the request in flight on each version it holds.
// A swap replaces the chain array, so a request never mixes versions.

/** A request's hold on one chain of plugin versions. */
export interface ChainLease {
  readonly plugins: readonly LoadedPlugin[];
  /** Ends the hold; calling it again does nothing. */
  release(): void;
}

export type ReloadResult = 'ok' | 'refused';

/** What one reload did: swapped in a new version, refused it, found the same bytes, or did nothing (unknown, disabled, closing). */
export interface ReloadOutcome {
  result: ReloadResult | 'unchanged' | 'skipped';
  error?: string;
}

/** What applying a new config's plugin list did. */
export interface ConfigApplyResult {
  /** Plugins that got a new version (added, changed, re-enabled). */
  loaded: string[];
  /** Plugins taken out of the chain (removed or disabled in the config). */
  removed: string[];
  /** Fail-open plugins that could not load and were left out, as at start-up. */
  skipped: { name: string; error: string }[];
}

/** What the registry knows of one plugin name, for /health and the admin API. */
export interface PluginStatus {
  name: string;
  active: LoadedPlugin | null;
  /** Disabled at run time (admin API) until enabled again or the next config reload. */
  disabled: boolean;
  /** Older versions still finishing requests. */
  draining: number;
  lastReload: { result: ReloadResult; trigger: string; at: string; error?: string } | null;
}

export interface RegistryEvents {
  onCircuitChange(plugin: string, state: CircuitState): void;
  onReload(plugin: string, result: ReloadResult): void;
  /** A version became active (start-up or a swap). */
  onActivated(plugin: LoadedPlugin): void;
  /** A version's calls left the main thread for the workers (loaded-plugin.ts). */
  onMovedToWorkers?(plugin: string, reason: string): void;
}

export interface RegistryOptions {
  /** Watch every enabled plugin's file and swap in a new version when it changes. */
  watch: boolean;
  debounceMs: number;
  settleMs: number;
  /** Bound on each plugin version's cleanup when it is retired. */
  cleanupMs: number;
  /** Which keys sign plugins, and whether a signature is required (integrity.ts). */
  trust: TrustSettings;
  /** Runs plugins that can on the main thread (runtime.in_thread_budget_ms); absent or null: every call goes to the workers. */
  inThread?: InThreadRuntime | null;
}

export class PluginRegistry {
  private chain: readonly LoadedPlugin[] = [];
  private readonly entries = new Map<string, PluginEntry>();
  private readonly draining = new Set<LoadedPlugin>();
  private readonly retiring = new Set<Promise<void>>();
  private readonly lastReload = new Map<string, PluginStatus['lastReload']>();
  /** Plugins disabled through the admin API; cleared by a config reload. */
  private readonly disabledAtRuntime = new Set<string>();
  /** One change at a time (file reloads, config applies, enable/disable): each sees the chain the last one left. */
  private queue: Promise<unknown> = Promise.resolve();
  private trust: TrustSettings;
  private generation = 0;
  private readonly watcher: PluginFileWatcher | null;
  private closed = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly log: Logger,
    private readonly events: RegistryEvents,
    private readonly opts: RegistryOptions,
  ) {
    this.trust = { trusted_keys: opts.trust.trusted_keys, require_signature: opts.trust.require_signature };
    this.watcher = opts.watch
      ? new PluginFileWatcher({ debounceMs: opts.debounceMs, settleMs: opts.settleMs }, (file) => this.onFileChanged(file), (dir, err) =>
          this.log.warn({ dir, err: err.message }, 'cannot watch plugin directory; plugins there are not reloaded on change'),
        )
      : null;
  }

  /**
   * Loads the enabled plugins in configured order. A fail-closed plugin that
   * cannot load stops start-up (the operator said it must run): everything
   * loaded so far is dropped and the error is thrown. A fail-open one is
   * skipped with a warning.
   */
  async start(entries: readonly PluginEntry[]): Promise<void> {
    const loaded: LoadedPlugin[] = [];
    for (const entry of entries) {
      if (!entry.enabled) {
        this.log.info({ plugin: entry.name }, 'plugin disabled in config, not loaded');
        continue;
      }
      this.entries.set(entry.name, entry);
      try {
        const p = await this.load(entry);
        this.log.info({ plugin: p.name, version: entry.version, hooks: [...p.hooks], sha256: p.sha256.slice(0, 12), placement: p.placement, ...(p.placementReason ? { placement_reason: p.placementReason } : {}) }, 'plugin loaded');
        loaded.push(p);
      } catch (e) {
        const err = isGatewayError(e) ? e : new GatewayError(ErrorCode.pluginLoadFailed, (e as Error).message, { plugin: entry.name });
        if (entry.on_error === 'fail-open') {
          this.log.warn({ plugin: entry.name, code: err.code, err: err.message }, 'plugin could not load; skipped because on_error is fail-open');
          continue;
        }
        await Promise.all(loaded.map((p) => p.unload(this.opts.cleanupMs)));
        throw err;
      }
    }
    this.chain = loaded;
    for (const p of loaded) this.events.onActivated(p);
    // Every enabled entry is watched, also one that could not load (fail-open): fixing its file loads it.
    for (const entry of this.entries.values()) this.watcher?.watch(entry.path);
  }

  /** The active chain, for one request. Release it when the request's response has ended. */
  acquire(): ChainLease {
    const plugins = this.chain;
    for (const p of plugins) p.inFlight++;
    let held = true;
    return {
      plugins,
      release: () => {
        if (!held) return;
        held = false;
        for (const p of plugins) {
          p.inFlight--;
          if (p.inFlight === 0 && this.draining.has(p)) this.retire(p);
        }
      },
    };
  }

  /** The active versions, in order (a snapshot; for callers that are not requests). */
  active(): readonly LoadedPlugin[] {
    return this.chain;
  }

  status(): PluginStatus[] {
    return [...this.entries.values()].map((entry) => ({
      name: entry.name,
      active: this.chain.find((p) => p.name === entry.name) ?? null,
      disabled: this.disabledAtRuntime.has(entry.name),
      draining: [...this.draining].filter((p) => p.name === entry.name).length,
      lastReload: this.lastReload.get(entry.name) ?? null,
    }));
  }

  /**
   * Loads the plugin's file again as a new version and swaps it in; on any
   * failure the running version stays and the refusal is recorded. Resolves
   * when done either way (it never throws).
   */
  reload(name: string, trigger: string): Promise<ReloadOutcome> {
    return this.serially(() => this.doReload(name, trigger));
  }

  /** Whether the config names this plugin (enabled). */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /**
   * Takes a plugin out of the chain until enable() or the next config reload:
   * new requests skip it, requests holding it finish, then it is retired.
   */
  disable(name: string): Promise<void> {
    return this.serially(async () => {
      if (!this.entries.has(name) || this.disabledAtRuntime.has(name)) return;
      this.disabledAtRuntime.add(name);
      const old = this.chain.find((p) => p.name === name);
      this.chain = this.chain.filter((p) => p !== old);
      if (old) this.drain(old);
      this.log.warn({ plugin: name }, 'plugin disabled at run time; requests skip it until it is enabled or the config is reloaded');
    });
  }

  /** Loads a plugin disabled with disable() again (its file as it is now) and puts it back at its place. */
  enable(name: string): Promise<ReloadOutcome> {
    return this.serially(async () => {
      if (!this.disabledAtRuntime.delete(name)) return { result: 'skipped' };
      this.log.info({ plugin: name }, 'plugin enabled at run time');
      return this.doReload(name, 'enable');
    });
  }

  /**
   * Applies a new config's plugin list and trust settings as one swap: every
   * new version is loaded first, then the chain is replaced at once, so a
   * request sees the old chain or the new one, never a mix. A fail-closed
   * plugin that cannot load refuses the whole change (throws; what was
   * loaded for it is dropped and nothing changed); a fail-open one is left
   * out, as at start-up. Run-time disables end here. `atSwap` runs in the
   * same synchronous step as the chain swap (the config reload swaps the
   * providers there), and only if the change applies.
   */
  applyConfig(next: readonly PluginEntry[], trust: TrustSettings, atSwap: () => void = () => {}): Promise<ConfigApplyResult> {
    return this.serially(() => this.doApplyConfig(next, trust, atSwap));
  }

  /** Stops watching, drops every version (cleanup runs after its in-flight calls), waits for retirements. */
  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    await this.queue;
    const all = [...this.chain, ...this.draining];
    this.chain = [];
    this.draining.clear();
    await Promise.all(all.map((p) => p.unload(this.opts.cleanupMs)));
    await Promise.all(this.retiring);
  }

  private load(entry: PluginEntry, trust = this.trust): Promise<LoadedPlugin> {
    return loadPlugin(entry, this.pool, ++this.generation, trust, {
      inThread: this.opts.inThread ?? null,
      onCircuitChange: (plugin, state) => this.events.onCircuitChange(plugin, state),
      onMovedToWorkers: (plugin, reason) => {
        this.log.warn({ plugin, reason }, 'plugin calls moved off the main thread to the plugin workers');
        this.events.onMovedToWorkers?.(plugin, reason);
      },
    });
  }

  private serially<T>(change: () => Promise<T>): Promise<T> {
    const run = this.queue.then(change);
    this.queue = run.catch(() => {});
    return run;
  }

  private async doApplyConfig(next: readonly PluginEntry[], trust: TrustSettings, atSwap: () => void): Promise<ConfigApplyResult> {
    if (this.closed) throw new GatewayError(ErrorCode.internal, 'the gateway is shutting down');
    const running = new Set(this.chain.map((p) => p.name));
    const plan = planChainChange(this.entries, running, next, sameTrust(trust, this.trust));
    const loaded = new Map<string, LoadedPlugin>();
    const skipped: ConfigApplyResult['skipped'] = [];
    for (const entry of plan.load) {
      try {
        loaded.set(entry.name, await this.load(entry, trust));
      } catch (e) {
        const err = isGatewayError(e) ? e : new GatewayError(ErrorCode.pluginLoadFailed, (e as Error).message, { plugin: entry.name });
        if (entry.on_error === 'fail-open') {
          skipped.push({ name: entry.name, error: err.message });
          this.log.warn({ plugin: entry.name, code: err.code, err: err.message }, 'plugin could not load on config reload; left out because on_error is fail-open');
          continue;
        }
        await Promise.all([...loaded.values()].map((p) => p.unload(this.opts.cleanupMs)));
        throw new GatewayError(err.code, `plugin "${entry.name}" (fail-closed) cannot load: ${err.message}`, { plugin: entry.name, cause: e });
      }
    }
    if (this.closed) {
      await Promise.all([...loaded.values()].map((p) => p.unload(this.opts.cleanupMs)));
      throw new GatewayError(ErrorCode.internal, 'the gateway is shutting down');
    }
    const old = this.chain;
    const byName = new Map(old.map((p) => [p.name, p]));
    const chain = plan.entries.flatMap((e) => {
      const p = loaded.get(e.name) ?? (plan.keep.has(e.name) ? byName.get(e.name) : undefined);
      return p ? [p] : [];
    });
    try {
      atSwap();
    } catch (e) {
      await Promise.all([...loaded.values()].map((p) => p.unload(this.opts.cleanupMs)));
      throw e;
    }
    // The one swap (in the same synchronous step as atSwap's): from here new requests get the new chain.
    this.chain = chain;
    const before = new Map(this.entries);
    this.entries.clear();
    for (const e of plan.entries) this.entries.set(e.name, e);
    this.trust = { trusted_keys: trust.trusted_keys, require_signature: trust.require_signature };
    this.disabledAtRuntime.clear();
    for (const p of loaded.values()) {
      this.events.onActivated(p);
      this.record(p.name, 'ok', 'config');
    }
    for (const s of skipped) this.record(s.name, 'refused', 'config', s.error);
    for (const name of plan.remove) this.lastReload.delete(name);
    for (const p of old) if (!this.chain.includes(p)) this.drain(p);
    // Watch what is configured now, and stop watching files no entry names any more.
    const paths = new Set([...this.entries.values()].map((e) => path.resolve(e.path)));
    for (const e of before.values()) if (!paths.has(path.resolve(e.path))) this.watcher?.unwatch(e.path);
    for (const e of this.entries.values()) this.watcher?.watch(e.path);
    return { loaded: [...loaded.keys()], removed: plan.remove, skipped };
  }

  /** Takes a version out of service: retired now if idle, else when its last request ends. */
  private drain(p: LoadedPlugin): void {
    this.draining.add(p);
    if (p.inFlight === 0) this.retire(p);
  }

  private onFileChanged(file: string): void {
    for (const entry of this.entries.values()) {
      if (path.resolve(entry.path) === file) void this.reload(entry.name, 'file');
    }
  }

  private async doReload(name: string, trigger: string): Promise<ReloadOutcome> {
    const entry = this.entries.get(name);
    // A plugin disabled at run time is not loaded on a file change; enable() loads the file as it is then.
    if (!entry || this.closed || this.disabledAtRuntime.has(name)) return { result: 'skipped' };
    const old = this.chain.find((p) => p.name === name) ?? null;
    let next: LoadedPlugin;
    try {
      next = await this.load(entry);
    } catch (e) {
      const error = (e as Error).message;
      this.record(name, 'refused', trigger, error);
      this.log.warn({ plugin: name, trigger, code: isGatewayError(e) ? e.code : undefined, err: error }, old ? 'plugin reload refused; the running version keeps serving' : 'plugin reload refused');
      return { result: 'refused', error };
    }
    if (this.closed) {
      await next.unload(this.opts.cleanupMs);
      return { result: 'skipped' };
    }
    if (old && old.sha256 === next.sha256 && trigger === 'file') {
      // Same bytes (a touch, or a copy of the same build): keep the running version.
      await next.unload(this.opts.cleanupMs);
      return { result: 'unchanged' };
    }
    this.chain = old ? this.chain.map((p) => (p === old ? next : p)) : this.withNewPlugin(next);
    this.events.onActivated(next);
    this.record(name, 'ok', trigger);
    this.log.info({ plugin: name, trigger, version: entry.version, generation: next.id.generation, sha256: next.sha256.slice(0, 12), previous: old?.sha256.slice(0, 12) }, 'plugin reloaded');
    if (old) this.drain(old);
    return { result: 'ok' };
  }

  /** A plugin that was not running (it could not load at start) joins the chain at its configured place. */
  private withNewPlugin(next: LoadedPlugin): LoadedPlugin[] {
    const order = [...this.entries.keys()];
    return [...this.chain, next].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
  }

  private record(name: string, result: ReloadResult, trigger: string, error?: string): void {
    this.lastReload.set(name, { result, trigger, at: new Date().toISOString(), ...(error ? { error } : {}) });
    this.events.onReload(name, result);
  }

  /** Runs a drained version's cleanup (once per instance) and drops it from the pool. */
  private retire(p: LoadedPlugin): void {
    this.draining.delete(p);
    const done = p
      .unload(this.opts.cleanupMs)
      .then(() => this.log.info({ plugin: p.name, generation: p.id.generation, sha256: p.sha256.slice(0, 12) }, 'plugin version retired'))
      .catch((e: Error) => this.log.warn({ plugin: p.name, err: e.message }, 'retiring a plugin version failed'))
      .finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }
}
