import { encodeEnvelope, LastEncoded } from '../abi/codec.js';
import type { HookError, LlmChunk, LlmError, LlmRequest } from '../abi/types.js';
import { ErrorCode, errorFields, GatewayError } from '../errors/codes.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { type ChunkSource, chunkFields, LlmStreamError, rawChunkJson, responseToChunk, type StreamOptions, type StreamStart } from '../providers/contract.js';
import { PluginFailure } from '../runtime/failure.js';
import { EndTracker, expectedChoices, syntheticEnd } from './chunks.js';
import { CtxKey } from './context.js';
import { type Exchange, invokeHook } from './invoke.js';
import { type Answer, deltaHooks, type OpenedStream, postLlmOnDelta, runLlm } from './llm.js';

// Streaming ("stream": true), in two parts. Opening: runLlm's attempts
// (pre-hooks, provider, post-hooks, fallbacks), where the provider call opens
// the upstream stream and reads its first chunk, so a failure before that chunk
// is an ordinary attempt error (post_llm hooks see it, the next fallback is
// tried), and the attempt's post_llm hooks see the first chunk as a delta.
// Relaying: once a first chunk exists the answer is committed; every later
// chunk is pulled one at a time when the client reads, through post_llm_hook
// (N..1, the plugins that take deltas) and http_transport_stream_chunk_hook
// (N..1). Nothing buffers the stream.

/** Opens a streamed completion at req.provider. Aborting the signal aborts the upstream request. */
export type StreamProviderCall = (req: LlmRequest, signal: AbortSignal, options: StreamOptions) => Promise<StreamStart>;

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

function closeSource(source: ChunkSource): void {
  // Lets a generator run its finally blocks (release the upstream body); never throws.
  source.return?.().catch(() => {});
}

function toLlmError(e: unknown, target: { provider: string; model: string }): LlmError {
  if (e instanceof LlmStreamError) return { provider: target.provider, model: target.model, ...e.error };
  return {
    message: `provider "${target.provider}": the stream failed: ${(e as Error)?.message ?? String(e)}`,
    ...errorFields(ErrorCode.upstreamStreamError),
    allow_fallbacks: null,
    provider: target.provider,
    model: target.model,
  };
}

// ---- opening: the provider call of an attempt

/** An upstream stream an attempt opened: its first chunk read, the rest pulled one at a time. */
class UpstreamStream implements OpenedStream {
  /** Chunks read from the upstream (the closing chunk the gateway adds is not one). */
  received = 1;
  private sourceDone: boolean;
  private closed = false;
  /** The last chunk as the upstream sent it: the closing chunk the gateway adds takes its id, created and model. */
  private last: LlmChunk;

  constructor(
    /** The first chunk, as the attempt's post_llm hooks leave it. */
    public first: LlmChunk,
    firstWasEnd: boolean,
    private readonly source: ChunkSource,
    private readonly controller: AbortController,
    private readonly unlinkClient: () => void,
    private readonly target: { provider: string; model: string },
    private readonly tracker: EndTracker,
  ) {
    this.sourceDone = firstWasEnd;
    this.last = first;
  }

  /**
   * The next chunk and whether the stream has ended with it (sandgate.stream_end);
   * at the upstream's clean end, a closing chunk if none carried a finish_reason;
   * nothing after that. A broken stream is an error.
   */
  async pull(rid: string): Promise<{ chunk?: LlmChunk; end?: boolean; error?: LlmError }> {
    let chunk: LlmChunk | undefined;
    if (!this.sourceDone) {
      let r: IteratorResult<LlmChunk, unknown>;
      try {
        r = await this.source.next();
      } catch (e) {
        this.sourceDone = true;
        return { error: toLlmError(e, this.target) };
      }
      if (r.done) this.sourceDone = true;
      else {
        chunk = r.value;
        this.received++;
        this.last = chunk;
      }
    }
    if (!chunk && !this.tracker.ended) {
      chunk = syntheticEnd(chunkFields(this.last), rid);
      this.tracker.ended = true;
    }
    return chunk ? { chunk, end: this.tracker.see(chunk) } : {};
  }

  /** Ends the stream: `abort` (not on a clean end) also aborts the upstream request. Once; never throws. */
  close(reason?: unknown, abort = true): void {
    if (this.closed) return;
    this.closed = true;
    this.unlinkClient();
    if (abort) this.controller.abort(reason);
    closeSource(this.source);
  }
}

/** The provider call of a streamed attempt: opens the stream and reads its first chunk. */
async function openAttempt(open: StreamProviderCall, req: LlmRequest, options: StreamOptions, ex: Exchange, signal: AbortSignal): Promise<Answer<UpstreamStream>> {
  if (signal.aborted) throw clientGone();
  const controller = new AbortController();
  const unlink = linkAbort(signal, controller);
  const fail = (source?: ChunkSource) => {
    unlink();
    controller.abort();
    if (source) closeSource(source);
    if (signal.aborted) throw clientGone();
  };
  let start: StreamStart;
  try {
    start = await open(req, controller.signal, options);
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
  return { stream: new UpstreamStream(chunk, first.done === true, start.chunks, controller, unlink, { provider: req.provider, model: req.model }, tracker) };
}

/**
 * Runs a streaming LLM request: runLlm's attempts (pre-hooks, provider, post-hooks,
 * fallbacks), where the provider call opens the stream and reads the first
 * chunk. Resolves with the chunk stream, or with the error when every attempt
 * failed before its first chunk. Throws PluginFailure (fail-closed) like runLlm,
 * and GatewayError client_closed when the client left before the stream started.
 *
 * @example
 * const out = await runLlmStream(chain, llm, fallbacks, (r, s) => provider.stream(r, s, headers), ex, signal);
 * if (out.stream) return sseResponse(out.stream);
 */
export async function runLlmStream(
  plugins: readonly LoadedPlugin[],
  base: LlmRequest,
  fallbacks: readonly { provider: string; model: string }[],
  open: StreamProviderCall,
  ex: Exchange,
  signal: AbortSignal,
): Promise<StreamOutcome> {
  const viewers = chunkViewers(plugins);
  const options: StreamOptions = { passThrough: viewers.post.length === 0 && viewers.chunkHooks.length === 0 };
  const { result, attemptErrors, attempts } = await runLlm(plugins, base, fallbacks, (req) => openAttempt(open, req, options, ex, signal), ex);
  if (result.error) return { error: result.error, attemptErrors, attempts };
  if (result.stream) return { stream: new ChunkRelay(viewers, ex, signal, result.stream.first, result.stream), attempts };
  // A response that did not come from a stream (a pre_llm_hook short-circuit, or a post_llm_hook that
  // recovered an error): one chunk that ends the stream. Its post-hooks already ran on the full response.
  ex.ctx.setReserved(CtxKey.streamEnd, true);
  return { stream: new ChunkRelay(viewers, ex, signal, responseToChunk(result.response), undefined), attempts };
}

/** The hooks that see each chunk after the first: post_llm_hook of the plugins that take deltas, then the chunk hooks; both N..1. */
interface ChunkViewers {
  post: ReturnType<typeof deltaHooks>;
  chunkHooks: LoadedPlugin[];
}

function chunkViewers(plugins: readonly LoadedPlugin[]): ChunkViewers {
  // The provider was called, so every plugin's pre_llm_hook ran (post_llm for all that take deltas) and
  // every transport pre-hook continued (chunk hook for all).
  const chunkHooks: LoadedPlugin[] = [];
  for (let i = plugins.length - 1; i >= 0; i--) if (plugins[i].has('http_transport_stream_chunk_hook')) chunkHooks.push(plugins[i]);
  return { post: deltaHooks(plugins), chunkHooks };
}

// ---- relaying: every chunk after the first

type Processed = { chunk?: LlmChunk; fault?: StreamFault };

class ChunkRelay implements ChunkStream {
  private open = true;
  /** The first chunk: its post_llm hooks ran in the attempt, only the chunk hooks remain. */
  private pending: LlmChunk | undefined;
  private readonly post: ChunkViewers['post'];
  private readonly chunkHooks: LoadedPlugin[];
  /** No hook sees the chunks: each goes out as the upstream's own JSON text (RAW_CHUNK_JSON), not serialised again. */
  private readonly passRaw: boolean;
  private readonly unlinkClient: () => void;
  private sent = 0;
  private dropped = 0;
  private readonly started = performance.now();

  constructor(
    viewers: ChunkViewers,
    private readonly ex: Exchange,
    signal: AbortSignal,
    first: LlmChunk,
    /** Absent for a response that did not come from a stream: its one chunk is all. */
    private readonly upstream: UpstreamStream | undefined,
  ) {
    this.pending = first;
    this.post = viewers.post;
    this.chunkHooks = viewers.chunkHooks;
    this.passRaw = this.post.length === 0 && this.chunkHooks.length === 0;
    const onAbort = () => this.cancel(signal.reason);
    if (signal.aborted) queueMicrotask(onAbort);
    else signal.addEventListener('abort', onAbort, { once: true });
    this.unlinkClient = () => signal.removeEventListener('abort', onAbort);
  }

  async next(): Promise<StreamEvent> {
    try {
      while (this.open) {
        let chunk = this.pending;
        const postDone = chunk !== undefined;
        this.pending = undefined;
        if (!chunk) {
          const pulled = this.upstream ? await this.upstream.pull(this.ex.ctx.requestId) : {};
          if (!this.open) break;
          if (pulled.error) return this.fail({ kind: 'llm', error: pulled.error });
          if (!pulled.chunk) {
            this.finish();
            return DONE;
          }
          chunk = pulled.chunk;
          this.ex.ctx.setReserved(CtxKey.streamEnd, pulled.end);
        }
        const r = await this.process(chunk, postDone);
        if (!this.open) break;
        if (r.fault) return this.fail(r.fault);
        if (r.chunk) {
          this.sent++;
          return this.passRaw ? { type: 'chunk', chunk: r.chunk, raw: rawChunkJson(r.chunk) } : { type: 'chunk', chunk: r.chunk };
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

  /** post_llm_hook N..1 (as a delta; not for the first chunk, whose ran in its attempt), then http_transport_stream_chunk_hook N..1. */
  private async process(chunk: LlmChunk, postDone: boolean): Promise<Processed> {
    const { ex } = this;
    let current = chunk;
    if (!postDone) {
      for (const { plugin, hook } of this.post) {
        if (!this.open) return {};
        const out = await postLlmOnDelta(plugin, hook, current, ex);
        if (out?.error) return { fault: { kind: 'llm', error: out.error } };
        if (out?.chunk) current = out.chunk;
      }
    }
    // The chunk encoded once for the chunk hooks that see it unchanged (a plugin's change is a new chunk).
    const seen = new LastEncoded();
    for (const plugin of this.chunkHooks) {
      if (!this.open) return {};
      const out = await invokeHook(plugin, 'http_transport_stream_chunk_hook', encodeEnvelope({ ctx: ex.ctx.encoded(), chunk: seen.of(current) }), ex);
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

  private finish(): void {
    this.ex.log.debug(
      { rid: this.ex.ctx.requestId, chunks_received: this.upstream?.received ?? 0, chunks_sent: this.sent, chunks_dropped: this.dropped, ms: Math.round(performance.now() - this.started) },
      'stream finished',
    );
    // A clean end: the source has finished reading; no abort, so its connection can be reused.
    this.close(undefined, false);
  }

  private close(reason: unknown, abort: boolean): void {
    this.open = false;
    this.pending = undefined;
    this.unlinkClient();
    this.upstream?.close(reason, abort);
  }
}
