import type { HookOutputs } from '../abi/outputs.js';
import type { ContextPatch, HookName } from '../abi/types.js';
import type { Logger } from '../log/logger.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { PluginFailure } from '../runtime/failure.js';
import type { RequestContext } from './context.js';

/** Observes every hook call (metrics). The pipeline knows nothing of how they are recorded. */
export interface HookObserver {
  /** A call that ran; failure is null when it succeeded. */
  onHookCall(plugin: string, hook: HookName, seconds: number, failure: PluginFailure | null): void;
  /** A call the plugin's open circuit breaker refused. */
  onCircuitReject(plugin: string, hook: HookName): void;
  /** A call shed because no worker was free in time (runtime.queue_timeout_ms). */
  onShed(plugin: string, hook: HookName): void;
}

/** Bounds on what one request may carry through the pipeline (config `limits`). */
export interface RequestLimits {
  /** Nesting of the client's JSON body (limits.max_json_depth). */
  maxJsonDepth: number;
  /** The request context, encoded (limits.max_context_bytes). */
  maxContextBytes: number;
}

/** What a pipeline phase needs about the request it serves. */
export interface Exchange {
  ctx: RequestContext;
  limits: RequestLimits;
  log: Logger;
  observer?: HookObserver;
  /**
   * Aborted when the client disconnects (streaming stops its upstream and hooks with it).
   * A function: making the signal costs (a listener on the response), and only streams need it.
   */
  clientSignal?: () => AbortSignal;
}

/** Applies on_error: fail-open turns a failure into "continue" (null); fail-closed ends the request. */
function onFailure(plugin: LoadedPlugin, failure: PluginFailure): null {
  if (plugin.failOpen) return null;
  throw failure;
}

/**
 * Calls one hook (the worker validates its output), behind the plugin's circuit
 * breaker, and applies its context patch: a patch the context refuses (over
 * its size limit) is a failure of this call like any bad output.
 * On a plugin failure the plugin's on_error policy decides: fail-open returns
 * null (the caller behaves as if the hook said "continue"); fail-closed throws
 * the PluginFailure, which ends the request with a 5xx naming the plugin.
 * A shed call (no worker free in time) is the gateway's load, not the plugin's
 * failure: the breaker does not count it, but on_error applies all the same.
 */
export async function invokeHook<H extends HookName>(plugin: LoadedPlugin, hook: H, envelope: unknown, ex: Exchange): Promise<HookOutputs[H] | null> {
  const rid = ex.ctx.requestId;
  if (!plugin.breaker.admit()) {
    ex.observer?.onCircuitReject(plugin.name, hook);
    ex.log.debug({ rid, plugin: plugin.name, hook, policy: plugin.entry.on_error }, 'circuit open: plugin not called');
    return onFailure(plugin, new PluginFailure('circuit_open', plugin.name, hook, `plugin "${plugin.name}" is not being called: its circuit breaker is open`));
  }
  const started = performance.now();
  try {
    const out = await plugin.call(hook, envelope, rid);
    ex.ctx.apply((out as { ctx?: ContextPatch } | undefined)?.ctx, plugin.name, ex.log);
    plugin.breaker.onSuccess();
    ex.observer?.onHookCall(plugin.name, hook, (performance.now() - started) / 1000, null);
    // Checked first: this runs on every hook call, and the fields object would be made for nothing.
    if (ex.log.isLevelEnabled('debug')) ex.log.debug({ rid, plugin: plugin.name, hook }, 'hook called');
    return out;
  } catch (e) {
    const failure = PluginFailure.from(e, plugin.name, hook);
    if (failure.kind === 'overloaded') {
      plugin.breaker.onNoVerdict();
      ex.observer?.onShed(plugin.name, hook);
      ex.log.warn({ rid, plugin: plugin.name, hook, code: failure.code, policy: plugin.entry.on_error, err: failure.message }, 'plugin call shed: no worker free in time');
      return onFailure(plugin, failure);
    }
    plugin.breaker.onFailure();
    ex.observer?.onHookCall(plugin.name, hook, (performance.now() - started) / 1000, failure);
    ex.log.error(
      { rid, plugin: plugin.name, hook, kind: failure.kind, code: failure.code, policy: plugin.entry.on_error, err: failure.message },
      'plugin failure',
    );
    return onFailure(plugin, failure);
  }
}
