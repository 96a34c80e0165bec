import path from 'node:path';
import type { PluginEntry } from '../config/schema.js';
import { ErrorCode, GatewayError, isGatewayError } from '../errors/codes.js';
import type { Logger } from '../log/logger.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import type { CircuitState } from './circuit-breaker.js';
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

/** What the registry knows of one plugin name, for /health and the admin API. */
export interface PluginStatus {
  name: string;
  active: LoadedPlugin | null;
  /** Older versions still finishing requests. */
  draining: number;
  lastReload: { result: ReloadResult; trigger: string; at: string; error?: string } | null;
}

export interface RegistryEvents {
  onCircuitChange(plugin: string, state: CircuitState): void;
  onReload(plugin: string, result: ReloadResult): void;
  /** A version became active (start-up or a swap). */
  onActivated(plugin: LoadedPlugin): void;
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
}

export class PluginRegistry {
  private chain: readonly LoadedPlugin[] = [];
  private readonly entries = new Map<string, PluginEntry>();
  private readonly draining = new Set<LoadedPlugin>();
  private readonly retiring = new Set<Promise<void>>();
  private readonly lastReload = new Map<string, PluginStatus['lastReload']>();
  /** One reload at a time per plugin name. */
  private readonly reloads = new Map<string, Promise<void>>();
  private generation = 0;
  private readonly watcher: PluginFileWatcher | null;
  private closed = false;

  constructor(
    private readonly pool: WorkerPool,
    private readonly log: Logger,
    private readonly events: RegistryEvents,
    private readonly opts: RegistryOptions,
  ) {
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
        this.log.info({ plugin: p.name, version: entry.version, hooks: [...p.hooks], sha256: p.sha256.slice(0, 12) }, 'plugin loaded');
        loaded.push(p);
      } catch (e) {
        const err = isGatewayError(e) ? e : new GatewayError(ErrorCode.pluginLoadFailed, (e as Error).message, { plugin: entry.name });
        if (entry.on_error === 'fail-open') {
          this.log.warn({ plugin: entry.name, code: err.code, err: err.message }, 'plugin could not load; skipped because on_error is fail-open');
          continue;
        }
        await Promise.all(loaded.map((p) => this.pool.unload(p.key, this.opts.cleanupMs)));
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
      draining: [...this.draining].filter((p) => p.name === entry.name).length,
      lastReload: this.lastReload.get(entry.name) ?? null,
    }));
  }

  /**
   * Loads the plugin's file again as a new version and swaps it in; on any
   * failure the running version stays and the refusal is recorded. Resolves
   * when done either way (it never throws).
   */
  reload(name: string, trigger: string): Promise<void> {
    const previous = this.reloads.get(name) ?? Promise.resolve();
    const next = previous.then(() => this.doReload(name, trigger));
    this.reloads.set(name, next);
    void next.finally(() => {
      if (this.reloads.get(name) === next) this.reloads.delete(name);
    });
    return next;
  }

  /** Stops watching, drops every version (cleanup runs after its in-flight calls), waits for retirements. */
  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    await Promise.allSettled(this.reloads.values());
    const all = [...this.chain, ...this.draining];
    this.chain = [];
    this.draining.clear();
    await Promise.all(all.map((p) => this.pool.unload(p.key, this.opts.cleanupMs)));
    await Promise.all(this.retiring);
  }

  private load(entry: PluginEntry): Promise<LoadedPlugin> {
    return loadPlugin(entry, this.pool, ++this.generation, this.opts.trust, (plugin, state) => this.events.onCircuitChange(plugin, state));
  }

  private onFileChanged(file: string): void {
    for (const entry of this.entries.values()) {
      if (path.resolve(entry.path) === file) void this.reload(entry.name, 'file');
    }
  }

  private async doReload(name: string, trigger: string): Promise<void> {
    const entry = this.entries.get(name);
    if (!entry || this.closed) return;
    const old = this.chain.find((p) => p.name === name) ?? null;
    let next: LoadedPlugin;
    try {
      next = await this.load(entry);
    } catch (e) {
      const error = (e as Error).message;
      this.record(name, 'refused', trigger, error);
      this.log.warn({ plugin: name, trigger, code: isGatewayError(e) ? e.code : undefined, err: error }, old ? 'plugin reload refused; the running version keeps serving' : 'plugin reload refused');
      return;
    }
    if (this.closed) {
      await this.pool.unload(next.key, this.opts.cleanupMs);
      return;
    }
    if (old && old.sha256 === next.sha256 && trigger === 'file') {
      // Same bytes (a touch, or a copy of the same build): keep the running version.
      await this.pool.unload(next.key, this.opts.cleanupMs);
      return;
    }
    this.chain = old ? this.chain.map((p) => (p === old ? next : p)) : this.withNewPlugin(next);
    this.events.onActivated(next);
    this.record(name, 'ok', trigger);
    this.log.info({ plugin: name, trigger, version: entry.version, generation: next.id.generation, sha256: next.sha256.slice(0, 12), previous: old?.sha256.slice(0, 12) }, 'plugin reloaded');
    if (old) {
      this.draining.add(old);
      if (old.inFlight === 0) this.retire(old);
    }
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
    const done = this.pool
      .unload(p.key, this.opts.cleanupMs)
      .then(() => this.log.info({ plugin: p.name, generation: p.id.generation, sha256: p.sha256.slice(0, 12) }, 'plugin version retired'))
      .catch((e: Error) => this.log.warn({ plugin: p.name, err: e.message }, 'retiring a plugin version failed'))
      .finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }
}
