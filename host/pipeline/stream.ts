import { sameValue } from '../abi/same-value.js';
import type { HookError, HookName, LlmChunk, LlmError, LlmRequest, LlmResponse } from '../abi/types.js';
import { ErrorCode, errorFields, GatewayError } from '../errors/codes.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { PluginFailure } from '../runtime/failure.js';
import { asChunk, chunkForPostLlm, EndTracker, expectedChoices, responseToChunk, syntheticEnd } from './chunks.js';
import { CtxKey } from './context.js';
import { type Exchange, invokeHook } from './invoke.js';
import { hookFor, type ProviderCall, runLlm } from './llm.js';

// Streaming ("stream": true). The pre-hooks, the provider call and the
// fallbacks are runLlm's, unchanged: the provider call here opens the upstream
// stream and waits for its first chunk, so a failure before that chunk is an
// ordinary attempt error (post_llm hooks see it, the next fallback is tried).
// Once a first chunk exists the answer is committed; every later chunk is
// pulled one at a time when the client reads, through post_llm_hook (N..1) and
// http_transport_stream_chunk_hook (N..1). Nothing buffers the stream.

/** A provider's stream: chunks pulled one at a time; a thrown error (LlmStreamError) ends it. */
export type ChunkSource = AsyncIterator<LlmChunk, unknown, undefined>;

export type StreamStart = { chunks: ChunkSource; error?: undefined } | { error: LlmError; chunks?: undefined };

/** Opens a streamed completion at req.provider. Aborting the signal aborts the upstream request. */
export type StreamProviderCall = (req: LlmRequest, signal: AbortSignal) => Promise<StreamStart>;

/**
 * Set by a provider on a chunk it parsed from the upstream: the chunk's JSON text
 * exactly as received, on one line. A chain with no hook that sees chunks sends
 * that text on as it is instead of serialising the chunk again. A symbol key, so
 * neither JSON.stringify, the ABI codec nor sameValue ever sees it.
 */
export const RAW_CHUNK_JSON: unique symbol = Symbol('sandgate.rawChunkJson');

/** What a ChunkSource throws when the stream breaks (malformed chunk, idle upstream, early close, ...). */
export class LlmStreamError extends Error {
  constructor(readonly error: LlmError) {
    super(error.message);
    this.name = 'LlmStreamError';
  }
}

/** Why a stream ended early. The gateway turns it into an OpenAI-shaped error event. */
export type StreamFault =
  | { kind: 'llm'; error: LlmError }
  | { kind: 'hook'; error: HookError; plugin: string }
  | { kind: 'plugin'; failure: PluginFailure }
  | { kind: 'internal' };

/** `raw`: the chunk's JSON text to send as it is (RAW_CHUNK_JSON), when no hook could have changed the chunk. */
export type StreamEvent = { type: 'chunk'; chunk: LlmChunk; raw?: string } | { type: 'done' } | { type: 'error'; fault: StreamFault };

/**
 * The processed stream, pull-based: each next() produces at most one chunk
 * (dropped chunks are skipped), `done` after the last, or one `error` that ends
 * it. cancel() (client gone) aborts the upstream and stops every later hook call.
 */
export interface ChunkStream {
  next(): Promise<StreamEvent>;
  cancel(reason?: unknown): void;
}

export type StreamOutcome =
  | { stream: ChunkStream; attempts: number; error?: undefined }
  | { error: LlmError; attemptErrors: LlmError[]; attempts: number; stream?: undefined };

const DONE: StreamEvent = { type: 'done' };

function clientGone(): GatewayError {
  return new GatewayError(ErrorCode.clientClosed, 'the client closed the connection before the stream started');
}

/** Aborts child when parent aborts; returns the unlink. */
function linkAbort(parent: AbortSignal, child: AbortController): () => void {
  if (parent.aborted) {
    child.abort(parent.reason);
    return () => {};
  }
  const onAbort = () => child.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  return () => parent.removeEventListener('abort', onAbort);
}

function closeSource(source: ChunkSource | undefined): void {
  // Lets a generator run its finally blocks (release the upstream body); never throws.
  source?.return?.().catch(() => {});
}

export function toLlmError(e: unknown, req: { provider: string; model: string }): LlmError {
  if (e instanceof LlmStreamError) return { provider: req.provider, model: req.model, ...e.error };
  return {
    message: `provider "${req.provider}": the stream failed: ${(e as Error)?.message ?? String(e)}`,
    ...errorFields(ErrorCode.upstreamStreamError),
    allow_fallbacks: null,
    provider: req.provider,
    model: req.model,
  };
}

// ---- the attempt loop

/** The stream an attempt opened, kept while runLlm's post-hooks look at its first chunk. */
interface Live {
  attempt: number;
  source: ChunkSource;
  controller: AbortController;
  unlink: () => void;
  sourceDone: boolean;
  tracker: EndTracker;
  /** The first chunk as received, and the object handed to the post-hooks for it. */
  first: LlmChunk;
  firstForHooks: LlmChunk;
}

function closeLive(live: Live | undefined): void {
  if (!live) return;
  live.unlink();
  live.controller.abort();
  closeSource(live.source);
}

/**
 * Runs a streaming LLM request: runLlm's attempts (pre-hooks, provider, post-hooks,
 * fallbacks), where the provider call opens the stream and waits for the first
 * chunk. Resolves with the chunk stream, or with the error when every attempt
 * failed before its first chunk. Throws PluginFailure (fail-closed) like runLlm,
 * and GatewayError client_closed when the client left before the stream started.
 */
export async function runLlmStream(
  plugins: readonly LoadedPlugin[],
  base: LlmRequest,
  fallbacks: readonly { provider: string; model: string }[],
  open: StreamProviderCall,
  ex: Exchange,
  signal: AbortSignal,
): Promise<StreamOutcome> {
  let live: Live | undefined;

  const callProvider: ProviderCall = async (req) => {
    // A previous attempt's stream whose first chunk a post-hook turned into an error.
    closeLive(live);
    live = undefined;
    if (signal.aborted) throw clientGone();
    const controller = new AbortController();
    const unlink = linkAbort(signal, controller);
    const fail = (source?: ChunkSource) => {
      unlink();
      controller.abort();
      closeSource(source);
      if (signal.aborted) throw clientGone();
    };
    let start: StreamStart;
    try {
      start = await open(req, controller.signal);
    } catch (e) {
      fail();
      return { error: toLlmError(e, req) };
    }
    if (start.error) {
      fail();
      return { error: start.error };
    }
    let first: IteratorResult<LlmChunk, unknown>;
    try {
      first = await start.chunks.next();
    } catch (e) {
      fail(start.chunks);
      return { error: toLlmError(e, req) };
    }
    if (signal.aborted) fail(start.chunks);
    const tracker = new EndTracker(expectedChoices(req));
    // An upstream that ends at once, cleanly, still gives the plugins their end-of-stream chunk.
    const chunk = first.done ? syntheticEnd(undefined, ex.ctx.requestId) : first.value;
    if (first.done) tracker.ended = true;
    ex.ctx.setReserved(CtxKey.streamEnd, tracker.see(chunk));
    const firstForHooks = chunkForPostLlm(chunk);
    live = {
      attempt: ex.ctx.get(CtxKey.fallbackIndex) as number,
      source: start.chunks,
      controller,
      unlink,
      sourceDone: first.done === true,
      tracker,
      first: chunk,
      firstForHooks,
    };
    return { response: firstForHooks as unknown as LlmResponse };
  };

  let outcome;
  try {
    outcome = await runLlm(plugins, base, fallbacks, callProvider, ex);
  } catch (e) {
    closeLive(live);
    throw e;
  }
  const { result, attemptErrors, attempts } = outcome;
  if (result.error) {
    closeLive(live);
    return { error: result.error, attemptErrors, attempts };
  }
  const finalAttempt = ex.ctx.get(CtxKey.fallbackIndex);
  if (live && live.attempt === finalAttempt) {
    // The post-hooks have seen the first chunk; unchanged (by value: a plugin may have re-encoded it), the
    // client gets it as the upstream sent it.
    const first = sameValue(result.response, live.firstForHooks) ? live.first : asChunk(result.response);
    return { stream: new ChunkPipeline(plugins, ex, signal, live, first), attempts };
  }
  // A response that did not come from a stream (a pre_llm_hook short-circuit, or a
  // post_llm_hook that recovered an error): one chunk that ends the stream. Its
  // post-hooks already ran on the full response.
  closeLive(live);
  const tracker = new EndTracker(1);
  tracker.ended = true;
  ex.ctx.setReserved(CtxKey.streamEnd, true);
  const controller = new AbortController();
  const one: Live = {
    attempt: -1,
    source: (async function* () {})(),
    controller,
    unlink: linkAbort(signal, controller),
    sourceDone: true,
    tracker,
    first: responseToChunk(result.response),
    firstForHooks: {},
  };
  return { stream: new ChunkPipeline(plugins, ex, signal, one, one.first), attempts };
}

// ---- per-chunk processing

type Processed = { chunk?: LlmChunk; fault?: StreamFault };

class ChunkPipeline implements ChunkStream {
  private open = true;
  /** The first chunk: its post_llm hooks ran inside runLlm, only the chunk hooks remain. */
  private pending: LlmChunk | undefined;
  private last: LlmChunk | undefined;
  private readonly post: { plugin: LoadedPlugin; hook: HookName }[] = [];
  private readonly chunkHooks: LoadedPlugin[] = [];
  /** No hook sees the chunks: each goes out as the upstream's own JSON text (RAW_CHUNK_JSON), not serialised again. */
  private readonly passRaw: boolean;
  private readonly unlinkClient: () => void;
  private received = 1;
  private sent = 0;
  private dropped = 0;
  private readonly started = performance.now();

  constructor(
    plugins: readonly LoadedPlugin[],
    private readonly ex: Exchange,
    signal: AbortSignal,
    private readonly live: Live,
    first: LlmChunk,
  ) {
    this.pending = first;
    this.last = live.first;
    // The provider was called, so every plugin's pre_llm_hook ran (post_llm for all) and
    // every transport pre-hook continued (chunk hook for all); both in reverse order.
    for (let i = plugins.length - 1; i >= 0; i--) {
      const p = plugins[i];
      const hook = hookFor(p, 'post_llm_hook', 'post_hook');
      if (hook) this.post.push({ plugin: p, hook });
      if (p.has('http_transport_stream_chunk_hook')) this.chunkHooks.push(p);
    }
    this.passRaw = this.post.length === 0 && this.chunkHooks.length === 0;
    const onAbort = () => this.cancel(signal.reason);
    if (signal.aborted) queueMicrotask(onAbort);
    else signal.addEventListener('abort', onAbort, { once: true });
    this.unlinkClient = () => signal.removeEventListener('abort', onAbort);
  }

  async next(): Promise<StreamEvent> {
    try {
      while (this.open) {
        let chunk: LlmChunk;
        let postDone = false;
        if (this.pending) {
          chunk = this.pending;
          this.pending = undefined;
          postDone = true;
        } else {
          const pulled = await this.pull();
          if (!this.open) break;
          if (pulled.fault) return this.fail(pulled.fault);
          if (!pulled.chunk) {
            this.finish('done');
            return DONE;
          }
          chunk = pulled.chunk;
        }
        const r = await this.process(chunk, postDone);
        if (!this.open) break;
        if (r.fault) return this.fail(r.fault);
        if (r.chunk) {
          this.sent++;
          return this.passRaw ? { type: 'chunk', chunk: r.chunk, raw: (r.chunk as { [RAW_CHUNK_JSON]?: string })[RAW_CHUNK_JSON] } : { type: 'chunk', chunk: r.chunk };
        }
        this.dropped++;
      }
      return DONE;
    } catch (e) {
      if (!this.open) return DONE;
      if (e instanceof PluginFailure) return this.fail({ kind: 'plugin', failure: e });
      this.ex.log.error({ rid: this.ex.ctx.requestId, err: e }, 'stream pipeline error');
      return this.fail({ kind: 'internal' });
    }
  }

  cancel(reason?: unknown): void {
    if (!this.open) return;
    this.ex.log.info({ rid: this.ex.ctx.requestId, chunks_sent: this.sent, ms: Math.round(performance.now() - this.started) }, 'client closed the stream');
    this.close(reason ?? 'client closed the stream', true);
  }

  /** The next chunk from the upstream; at its clean end, a closing chunk if none carried a finish_reason. */
  private async pull(): Promise<Processed> {
    const live = this.live;
    let chunk: LlmChunk | undefined;
    if (!live.sourceDone) {
      let r: IteratorResult<LlmChunk, unknown>;
      try {
        r = await live.source.next();
      } catch (e) {
        live.sourceDone = true;
        return { fault: { kind: 'llm', error: toLlmError(e, { provider: String(this.ex.ctx.get(CtxKey.provider)), model: String(this.ex.ctx.get(CtxKey.model)) }) } };
      }
      if (r.done) live.sourceDone = true;
      else {
        chunk = r.value;
        this.received++;
        this.last = chunk;
      }
    }
    if (!chunk && !live.tracker.ended) {
      chunk = syntheticEnd(this.last, this.ex.ctx.requestId);
      live.tracker.ended = true;
    }
    if (chunk) this.ex.ctx.setReserved(CtxKey.streamEnd, live.tracker.see(chunk));
    return { chunk };
  }

  /** post_llm_hook N..1 (as a delta), then http_transport_stream_chunk_hook N..1. */
  private async process(chunk: LlmChunk, postDone: boolean): Promise<Processed> {
    const { ex } = this;
    let current = chunk;
    if (!postDone) {
      for (const { plugin, hook } of this.post) {
        if (!this.open) return {};
        const sent = chunkForPostLlm(current);
        const out = await invokeHook(plugin, hook as 'post_llm_hook', { ctx: ex.ctx.values, response: sent }, ex);
        if (!out) continue; // fail-open failure: the chunk goes on unchanged
        if (out.error) return { fault: { kind: 'llm', error: out.error } };
        // The host decides "unchanged" by value (ABI.md §5.5): a chunk a plugin decoded and re-encoded
        // (other key order, wider integers) goes on as the upstream sent it.
        if (out.response && !sameValue(out.response, sent)) current = asChunk(out.response);
      }
    }
    for (const plugin of this.chunkHooks) {
      if (!this.open) return {};
      const out = await invokeHook(plugin, 'http_transport_stream_chunk_hook', { ctx: ex.ctx.values, chunk: current }, ex);
      if (!out) continue;
      if (out.error) return { fault: { kind: 'hook', error: out.error, plugin: plugin.name } };
      if (out.drop) return {};
      if (out.chunk) current = out.chunk;
    }
    return { chunk: current };
  }

  private fail(fault: StreamFault): StreamEvent {
    const code = fault.kind === 'llm' ? fault.error.code : fault.kind === 'hook' ? (fault.error.code ?? ErrorCode.pluginRejected) : fault.kind === 'plugin' ? fault.failure.code : ErrorCode.internal;
    this.ex.log.warn(
      { rid: this.ex.ctx.requestId, code, plugin: fault.kind === 'hook' ? fault.plugin : fault.kind === 'plugin' ? fault.failure.plugin : undefined, chunks_sent: this.sent },
      'stream ended with an error event',
    );
    this.close('stream failed', true);
    return { type: 'error', fault };
  }

  private finish(_how: 'done'): void {
    this.ex.log.debug(
      { rid: this.ex.ctx.requestId, chunks_received: this.received, chunks_sent: this.sent, chunks_dropped: this.dropped, ms: Math.round(performance.now() - this.started) },
      'stream finished',
    );
    // A clean end: the source has finished reading; no abort, so its connection can be reused.
    this.close(undefined, false);
  }

  private close(reason: unknown, abort: boolean): void {
    this.open = false;
    this.pending = undefined;
    this.unlinkClient();
    this.live.unlink();
    if (abort) this.live.controller.abort(reason);
    closeSource(this.live.source);
  }
}
