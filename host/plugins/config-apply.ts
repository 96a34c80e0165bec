import { isDeepStrictEqual } from 'node:util';
import type { PluginEntry } from '../config/schema.js';
import type { TrustSettings } from './integrity.js';

// What a new config's plugin list means for the running chain. The rule is
// "entry changed -> new version": any difference in a plugin's entry (config,
// on_error, timeout_ms, memory_limit_mb, version, path, limits...) loads it
// again as a new version that goes through the same swap, drain and retire as
// a changed file. Some keys (on_error, timeout_ms, circuit_breaker) could in
// principle be patched onto the running version, but a new version is always
// correct: a request keeps the exact settings it started with (its lease holds
// the old LoadedPlugin), the breaker starts fresh, and a reload costs one init
// per worker, the same as a file swap. Changed trust settings reload every
// plugin, so each is verified again against the keys now trusted.

export interface ChainPlan {
  /** The enabled entries of the new config, in chain order. */
  entries: PluginEntry[];
  /** Plugins whose running version stays as it is. */
  keep: Set<string>;
  /** Entries that need a new version loaded (new, changed, or not running now). */
  load: PluginEntry[];
  /** Plugins running or configured now that the new config removes or disables. */
  remove: string[];
}

/** Whether two trust settings verify plugins the same way. */
export function sameTrust(a: TrustSettings, b: TrustSettings): boolean {
  return a.require_signature === b.require_signature && isDeepStrictEqual(a.trusted_keys, b.trusted_keys);
}

/**
 * Compares the configured entries (and which of them are running) with a new plugin list.
 *
 * @example
 * const plan = planChainChange(current, new Set(['auth']), newConfig.plugins, true);
 * // plan.load: entries to load as new versions; plan.keep: versions that stay
 */
export function planChainChange(current: ReadonlyMap<string, PluginEntry>, running: ReadonlySet<string>, next: readonly PluginEntry[], trustUnchanged: boolean): ChainPlan {
  const entries = next.filter((e) => e.enabled);
  const keep = new Set<string>();
  const load: PluginEntry[] = [];
  for (const entry of entries) {
    const before = current.get(entry.name);
    if (trustUnchanged && running.has(entry.name) && before && isDeepStrictEqual(before, entry)) keep.add(entry.name);
    else load.push(entry);
  }
  const names = new Set(entries.map((e) => e.name));
  const remove = [...new Set([...current.keys(), ...running])].filter((n) => !names.has(n));
  return { entries, keep, load, remove };
}
