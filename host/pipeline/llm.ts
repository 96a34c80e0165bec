import type { HookName, LlmError, LlmPostOutput, LlmRequest, LlmRequestPatch, LlmResponse } from '../abi/types.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { CtxKey } from './context.js';
import { type Exchange, invokeHook } from './invoke.js';

export type LlmResult = { response: LlmResponse; error?: undefined } | { error: LlmError; response?: undefined };

/** Calls the provider named in req.provider. Injected by the gateway: the pipeline knows no HTTP client. */
export type ProviderCall = (req: LlmRequest) => Promise<LlmResult>;

export interface LlmOutcome {
  result: LlmResult;
  /** Every attempt's error, primary first, when all attempts failed. */
  attemptErrors: LlmError[];
  attempts: number;
}

/** The hook to call for a phase: the current name, or the legacy one if only that is exported. */
export function hookFor<C extends HookName, L extends HookName>(p: LoadedPlugin, current: C, legacy: L): C | L | null {
  if (p.has(current)) return current;
  if (p.has(legacy)) return legacy;
  return null;
}

function applyLlmPatch(req: LlmRequest, patch: LlmRequestPatch | undefined): void {
  if (!patch) return;
  if (patch.provider) req.provider = patch.provider;
  if (patch.model) req.model = patch.model;
  if (patch.messages) req.messages = patch.messages;
  if (patch.params) {
    for (const [k, v] of Object.entries(patch.params)) {
      if (v === null || v === undefined) delete req.params[k];
      else req.params[k] = v;
    }
  }
  if (patch.headers) {
    for (const [k, v] of Object.entries(patch.headers)) {
      if (v === null) delete req.headers[k.toLowerCase()];
      else req.headers[k.toLowerCase()] = v;
    }
  }
}

/** Splits "provider/model" at the first slash; the model part may contain more slashes. */
export function parseTarget(target: string): { provider: string; model: string } | null {
  const slash = target.indexOf('/');
  if (slash <= 0 || slash === target.length - 1) return null;
  return { provider: target.slice(0, slash), model: target.slice(slash + 1) };
}

/** One attempt: pre-hooks 1..N (until one short-circuits at k), the provider unless short-circuited, post-hooks k..1. */
async function runAttempt(plugins: readonly LoadedPlugin[], req: LlmRequest, callProvider: ProviderCall, ex: Exchange): Promise<LlmResult> {
  let ran = plugins.length;
  let result: LlmResult | undefined;

  for (let i = 0; i < plugins.length && !result; i++) {
    const p = plugins[i];
    const hook = hookFor(p, 'pre_llm_hook', 'pre_hook');
    if (!hook) continue;
    const out = await invokeHook(p, hook, { ctx: ex.ctx.values, req }, ex);
    if (!out) continue;
    applyLlmPatch(req, out.req);
    if (out.req?.provider || out.req?.model) {
      // The reserved keys name the attempt's current target, also after a plugin retargets it.
      ex.ctx.setReserved(CtxKey.provider, req.provider);
      ex.ctx.setReserved(CtxKey.model, req.model);
    }
    if (out.response) result = { response: out.response };
    else if (out.error) result = { error: out.error };
    if (result) ran = i + 1; // the short-circuiting plugin gets its post-hook too (symmetry)
  }

  result ??= await callProvider(req);

  for (let i = ran - 1; i >= 0; i--) {
    const p = plugins[i];
    const hook = hookFor(p, 'post_llm_hook', 'post_hook');
    if (!hook) continue;
    const envelope: unknown = result.response ? { ctx: ex.ctx.values, response: result.response } : { ctx: ex.ctx.values, error: result.error };
    const out: LlmPostOutput | null = await invokeHook(p, hook, envelope, ex);
    if (!out) continue;
    if (out.response) result = { response: out.response };
    else if (out.error) result = { error: out.error };
  }
  return result;
}

/**
 * Runs the LLM layer with fallbacks: each target gets a full attempt (pre-hooks,
 * provider, post-hooks) with its index in the context; an error moves on to the
 * next target unless its allow_fallbacks is false. When all fail, the primary's
 * error is the result and every attempt's error is reported.
 */
export async function runLlm(
  plugins: readonly LoadedPlugin[],
  base: LlmRequest,
  fallbacks: readonly { provider: string; model: string }[],
  callProvider: ProviderCall,
  ex: Exchange,
): Promise<LlmOutcome> {
  const targets = [{ provider: base.provider, model: base.model }, ...fallbacks];
  const errors: LlmError[] = [];
  for (let index = 0; index < targets.length; index++) {
    // Each attempt starts from the client's request, not from what the previous attempt's hooks made of it;
    // the last attempt may use (and change) the original.
    const last = index === targets.length - 1;
    const req: LlmRequest = { ...(last ? base : structuredClone(base)), ...targets[index] };
    ex.ctx.setReserved(CtxKey.fallbackIndex, index);
    ex.ctx.setReserved(CtxKey.provider, req.provider);
    ex.ctx.setReserved(CtxKey.model, req.model);
    const result = await runAttempt(plugins, req, callProvider, ex);
    if (result.response) return { result, attemptErrors: errors, attempts: index + 1 };
    errors.push(result.error);
    if (result.error.allow_fallbacks === false) break;
    if (index + 1 < targets.length) {
      ex.log.info({ rid: ex.ctx.requestId, from: `${req.provider}/${req.model}`, to: `${targets[index + 1].provider}/${targets[index + 1].model}`, status: result.error.status }, 'falling back');
    }
  }
  return { result: { error: errors[0] }, attemptErrors: errors, attempts: errors.length };
}
