import { sameValue } from '../abi/same-value.js';
import type { HookName, LlmChunk, LlmError, LlmPostOutput, LlmRequest, LlmRequestPatch } from '../abi/types.js';
import { type Encoded, encoded, encodeEnvelope, LastEncoded } from '../abi/codec.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import type { LlmResult } from '../providers/contract.js';
import { asChunk, chunkForPostLlm } from './chunks.js';
import { CtxKey } from './context.js';
import { type Exchange, invokeHook } from './invoke.js';

/**
 * A stream the provider call opened for an attempt, its first chunk read: the
 * attempt's post_llm hooks see that chunk as a delta (and may replace it, in
 * `first`); close() ends the upstream when they turn it into an error or fail.
 */
export interface OpenedStream {
  first: LlmChunk;
  close(): void;
}

/** What the provider call of an attempt answers: a response, an error, or (streaming only) the opened stream. */
export type Answer<S extends OpenedStream = never> =
  | (LlmResult & { stream?: undefined })
  | ([S] extends [never] ? never : { stream: S; response?: undefined; error?: undefined });

/**
 * Calls the provider named in req.provider. Injected by the gateway (the
 * pipeline knows no HTTP client), or by runLlmStream, whose call opens a stream.
 *
 * @example const call: ProviderCall = (r) => providers.get(r.provider)!.complete(r, headers);
 */
export type ProviderCall<S extends OpenedStream = never> = (req: LlmRequest) => Promise<Answer<S>>;

export interface LlmOutcome<S extends OpenedStream = never> {
  result: Answer<S>;
  /** Every attempt's error, primary first, when all attempts failed. */
  attemptErrors: LlmError[];
  attempts: number;
}

type PostHookName = 'post_llm_hook' | 'post_hook';

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

/**
 * One plugin's post_llm_hook on a streamed delta (ABI.md §5.5): the chunk goes in
 * as an LlmResponse; out comes a replacement chunk, an error (which ends the
 * stream), or null for "unchanged" (also a fail-open failure). Unchanged is
 * decided by value (ABI.md §5.5), so a plugin that decodes and re-encodes the
 * chunk it was given leaves the upstream's own chunk in place.
 *
 * @example const out = await postLlmOnDelta(plugin, 'post_llm_hook', chunk, ex); // out?.chunk ?? chunk goes on
 */
export async function postLlmOnDelta(
  plugin: LoadedPlugin,
  hook: PostHookName,
  chunk: LlmChunk,
  ex: Exchange,
): Promise<{ chunk: LlmChunk; error?: undefined } | { error: LlmError; chunk?: undefined } | null> {
  const sent = chunkForPostLlm(chunk);
  const out = await invokeHook(plugin, hook, encodeEnvelope({ ctx: ex.ctx.encoded(), response: sent }), ex);
  if (!out) return null;
  if (out.error) return { error: out.error };
  if (out.response && !sameValue(out.response, sent)) return { chunk: asChunk(out.response) };
  return null;
}

/**
 * The post_llm hooks that see streamed deltas, in the order they run (N..1): every
 * plugin exporting one, unless its init said `stream_deltas: false`.
 *
 * @example for (const { plugin, hook } of deltaHooks(chain)) await postLlmOnDelta(plugin, hook, chunk, ex);
 */
export function deltaHooks(plugins: readonly LoadedPlugin[]): { plugin: LoadedPlugin; hook: PostHookName }[] {
  const hooks: { plugin: LoadedPlugin; hook: PostHookName }[] = [];
  for (let i = plugins.length - 1; i >= 0; i--) {
    const plugin = plugins[i];
    const hook = hookFor(plugin, 'post_llm_hook', 'post_hook');
    if (hook && plugin.wantsStreamDeltas) hooks.push({ plugin, hook });
  }
  return hooks;
}

/** One attempt: pre-hooks 1..N (until one short-circuits at k), the provider unless short-circuited, post-hooks k..1. */
async function runAttempt<S extends OpenedStream>(plugins: readonly LoadedPlugin[], req: LlmRequest, callProvider: ProviderCall<S>, ex: Exchange): Promise<Answer<S>> {
  let ran = plugins.length;
  let result: Answer<S> | undefined;
  // The request encoded once for the plugins that see it unchanged (a patch changes it in place).
  let reqBytes: Encoded | null = null;

  for (let i = 0; i < plugins.length && !result; i++) {
    const p = plugins[i];
    const hook = hookFor(p, 'pre_llm_hook', 'pre_hook');
    if (!hook) continue;
    reqBytes ??= encoded(req);
    const out = await invokeHook(p, hook, encodeEnvelope({ ctx: ex.ctx.encoded(), req: reqBytes }), ex);
    if (!out) continue;
    if (out.req) reqBytes = null;
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
  // What the post-hooks see, encoded once while it stays the same object (a plugin's change is a new one).
  const seen = new LastEncoded();

  try {
    for (let i = ran - 1; i >= 0; i--) {
      const p = plugins[i];
      const hook = hookFor(p, 'post_llm_hook', 'post_hook');
      if (!hook) continue;
      if (result.stream) {
        // A stream's first chunk is a delta: only for the plugins that take deltas. An error here is
        // the attempt's (nothing was sent yet): the stream is closed and the next fallback may run.
        if (!p.wantsStreamDeltas) continue;
        const out = await postLlmOnDelta(p, hook, result.stream.first, ex);
        if (out?.error) {
          result.stream.close();
          result = { error: out.error };
        } else if (out?.chunk) result.stream.first = out.chunk;
        continue;
      }
      const envelope: Encoded = result.response
        ? encodeEnvelope({ ctx: ex.ctx.encoded(), response: seen.of(result.response) })
        : encodeEnvelope({ ctx: ex.ctx.encoded(), error: seen.of(result.error) });
      const out: LlmPostOutput | null = await invokeHook(p, hook, envelope, ex);
      if (!out) continue;
      if (out.response) result = { response: out.response };
      else if (out.error) result = { error: out.error };
    }
  } catch (e) {
    // A fail-closed plugin failure ends the request: the stream it was looking at goes with it.
    result.stream?.close();
    throw e;
  }
  return result;
}

/**
 * Runs the LLM layer with fallbacks: each target gets a full attempt (pre-hooks,
 * provider, post-hooks) with its index in the context; an error moves on to the
 * next target unless its allow_fallbacks is false. When all fail, the primary's
 * error is the result and every attempt's error is reported.
 */
export async function runLlm<S extends OpenedStream = never>(
  plugins: readonly LoadedPlugin[],
  base: LlmRequest,
  fallbacks: readonly { provider: string; model: string }[],
  callProvider: ProviderCall<S>,
  ex: Exchange,
): Promise<LlmOutcome<S>> {
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
    if (!result.error) return { result, attemptErrors: errors, attempts: index + 1 };
    errors.push(result.error);
    if (result.error.allow_fallbacks === false) break;
    if (index + 1 < targets.length) {
      ex.log.info({ rid: ex.ctx.requestId, from: `${req.provider}/${req.model}`, to: `${targets[index + 1].provider}/${targets[index + 1].model}`, status: result.error.status }, 'falling back');
    }
  }
  return { result: { error: errors[0] }, attemptErrors: errors, attempts: errors.length };
}
