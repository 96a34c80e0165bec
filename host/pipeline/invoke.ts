import type { HookName } from '../abi/types.js';
import type { Logger } from '../log/logger.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { PluginFailure } from '../runtime/failure.js';
import type { RequestContext } from './context.js';

/** Observes every hook call (metrics). The pipeline knows nothing of how they are recorded. */
export interface HookObserver {
  onHookCall(plugin: string, hook: HookName, seconds: number, failure: PluginFailure | null): void;
}

/** What a pipeline phase needs about the request it serves. */
export interface Exchange {
  ctx: RequestContext;
  log: Logger;
  observer?: HookObserver;
}

/**
 * Calls one hook and validates its output. On a plugin failure the plugin's
 * on_error policy decides: fail-open returns null (the caller behaves as if the
 * hook said "continue"); fail-closed throws the PluginFailure, which ends the
 * request with a 5xx naming the plugin.
 */
export async function invokeHook<T>(
  plugin: LoadedPlugin,
  hook: HookName,
  envelope: unknown,
  parse: (bytes: Uint8Array | null) => T,
  ex: Exchange,
): Promise<T | null> {
  const rid = ex.ctx.requestId;
  const started = performance.now();
  let failure: PluginFailure | null = null;
  try {
    const out = parse(await plugin.call(hook, envelope, rid));
    ex.log.debug({ rid, plugin: plugin.name, hook }, 'hook called');
    return out;
  } catch (e) {
    failure = PluginFailure.from(e, plugin.name, hook);
    ex.log.error(
      { rid, plugin: plugin.name, hook, kind: failure.kind, code: failure.code, policy: plugin.entry.on_error, err: failure.message },
      'plugin failure',
    );
    if (plugin.failOpen) return null;
    throw failure;
  } finally {
    ex.observer?.onHookCall(plugin.name, hook, (performance.now() - started) / 1000, failure);
  }
}
