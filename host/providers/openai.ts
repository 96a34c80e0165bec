import { Pool, errors as undiciErrors } from 'undici';
import type { LlmChunk, LlmError, LlmRequest, LlmResponse } from '../abi/types.js';
import { GATEWAY_UPSTREAM_HEADERS } from '../abi/http-fields.js';
import { DEFAULTS } from '../config/schema.js';
import { ErrorCode, errorFields } from '../errors/codes.js';
import { type LlmResult, LlmStreamError, RAW_CHUNK_JSON, responseToChunk, type StreamOptions, type StreamStart, textOnlyChunk } from './contract.js';
import type { Provider } from './provider.js';
import { type SseEvent, SseParser, SseTooLarge } from './sse-parser.js';

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  timeoutMs: number;
  connections: number;
  /** Streaming: the longest wait for the upstream's next bytes once its response started. */
  streamIdleTimeoutMs?: number;
  /** What /v1/models lists for this provider (the upstream is not asked). */
  models?: readonly string[];
  /** Client request headers (lower-case names) sent on to the upstream; no others are. */
  forwardHeaders?: readonly string[];
  /** A forwarded or plugin-set authorization replaces the api_key's (default: the api_key wins). */
  preferForwardedAuthorization?: boolean;
}

/** The largest single event accepted from an upstream stream (a chunk is a few hundred bytes). */
const MAX_EVENT_BYTES = 1024 * 1024;
/** What is read, at most, after [DONE] so the connection can go back to the pool. */
const MAX_TRAILER_BYTES = 64 * 1024;

type Body = AsyncIterable<Buffer> & { destroy(err?: Error): unknown; text(): Promise<string> };

// In JSON text a quote inside a string is escaped, so these match keys only.
const CHOICES_KEY = /"choices"\s*:\s*\[/;
const ERROR_KEY = /"error"\s*:/;
const FINISH_REASON_SET = /"finish_reason"\s*:\s*(?!null)/;

/**
 * Pass-through (StreamOptions): whether an event can go to the client as its text,
 * unparsed. On its face it must be a one-line JSON object with a "choices" array,
 * no "error" key and no finish_reason with a value. Anything else is parsed as
 * without pass-through (parseChunk), so an upstream error, a chunk that is not an
 * object with choices and the chunk that ends the stream are found the same way;
 * only a chunk that passes these checks but is broken inside goes on as it came.
 */
function sendsUnparsed(ev: SseEvent): boolean {
  const d = ev.data;
  return (
    ev.event === 'message' &&
    d.charCodeAt(0) === 0x7b /* { */ &&
    d.charCodeAt(d.length - 1) === 0x7d /* } */ &&
    d.indexOf('\n') === -1 &&
    CHOICES_KEY.test(d) &&
    !ERROR_KEY.test(d) &&
    !FINISH_REASON_SET.test(d)
  );
}

/**
 * Any OpenAI-compatible upstream (`POST {base_url}/chat/completions`). Uses
 * undici's request API on a keep-alive pool: global fetch costs about 2.5x as
 * much CPU per proxied request (docs/performance-notes.md).
 */
export class OpenAiProvider implements Provider {
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly idleMs: number;
  readonly models: readonly string[];
  private readonly forwardHeaders: readonly string[];

  constructor(
    readonly name: string,
    private readonly opts: OpenAiOptions,
  ) {
    const url = new URL(opts.baseUrl);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.idleMs = opts.streamIdleTimeoutMs ?? DEFAULTS.streamIdleTimeoutMs;
    this.models = opts.models ?? [];
    this.forwardHeaders = (opts.forwardHeaders ?? []).map((h) => h.toLowerCase());
    this.pool = new Pool(url.origin, { connections: opts.connections, pipelining: 1, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
  }

  /** An LLM error with the catalog's status and type for `code`; an upstream's own status, type and code pass through in `own`. */
  private error(req: LlmRequest, code: ErrorCode, message: string, own: { status?: number; type?: string; code?: string } = {}): LlmResult & { error: LlmError } {
    const fields = errorFields(code);
    const error: LlmError = { message, type: own.type ?? fields.type, code: own.code ?? code, status: own.status ?? fields.status, allow_fallbacks: null, provider: this.name, model: req.model };
    return { error };
  }

  /**
   * The upstream request's headers, in rising precedence: the client's (as the
   * transport hooks left them) named by forward_headers, then those pre_llm_hooks
   * set (req.headers), then the gateway's own. The api_key's authorization wins
   * over a forwarded or plugin-set one unless prefer_forwarded_authorization.
   */
  private headers(accept: string, req: LlmRequest, incoming: Readonly<Record<string, string>>): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const name of this.forwardHeaders) if (incoming[name] !== undefined) headers[name] = incoming[name];
    for (const [name, value] of Object.entries(req.headers ?? {})) if (!GATEWAY_UPSTREAM_HEADERS.has(name)) headers[name] = value;
    headers['content-type'] = 'application/json';
    headers.accept = accept;
    if (this.opts.apiKey && !(this.opts.preferForwardedAuthorization && headers.authorization !== undefined)) headers.authorization = `Bearer ${this.opts.apiKey}`;
    return headers;
  }

  /** The request never got an answer: timeout or unreachable. */
  private requestFailed(req: LlmRequest, e: unknown): LlmResult & { error: LlmError } {
    const err = e as Error & { code?: string };
    if (err.name === 'TimeoutError' || err instanceof undiciErrors.HeadersTimeoutError) {
      return this.error(req, ErrorCode.upstreamTimeout, `provider "${this.name}" did not answer within ${this.opts.timeoutMs} ms`);
    }
    return this.error(req, ErrorCode.upstreamUnreachable, `provider "${this.name}" is unreachable: ${err.code ?? err.message}`);
  }

  /** A non-2xx answer, with the upstream's own message, type and code when it sent an OpenAI error. */
  private statusError(req: LlmRequest, statusCode: number, text: string, json: unknown): LlmResult & { error: LlmError } {
    const upstream = (json as { error?: { message?: unknown; type?: unknown; code?: unknown } } | undefined)?.error;
    const message = typeof upstream?.message === 'string' ? upstream.message : text.slice(0, 500) || `HTTP ${statusCode}`;
    const type = typeof upstream?.type === 'string' ? upstream.type : undefined;
    const code = typeof upstream?.code === 'string' ? upstream.code : undefined;
    return this.error(req, ErrorCode.upstreamError, `provider "${this.name}": ${message}`, { status: statusCode, type, code });
  }

  /** Reads a whole (non-streamed) answer; one the upstream breaks off is upstream_bad_response. */
  private async readAnswer(req: LlmRequest, body: { text(): Promise<string> }): Promise<{ text: string; json: unknown } | (LlmResult & { error: LlmError })> {
    try {
      const text = await body.text();
      return { text, json: parseJson(text) };
    } catch (e) {
      return this.error(req, ErrorCode.upstreamBadResponse, `provider "${this.name}" broke off its answer: ${(e as Error).message}`);
    }
  }

  /** POST {base_url}/chat/completions with the request as its body. */
  private post(req: LlmRequest, incoming: Readonly<Record<string, string>>, stream: boolean, opts: { signal: AbortSignal; headersTimeout?: number; bodyTimeout?: number }) {
    return this.pool.request({
      method: 'POST',
      path: `${this.basePath}/chat/completions`,
      headers: this.headers(stream ? 'text/event-stream' : 'application/json', req, incoming),
      body: JSON.stringify({ ...req.params, model: req.model, messages: req.messages, stream }),
      ...opts,
    });
  }

  async complete(req: LlmRequest, incoming: Readonly<Record<string, string>> = {}): Promise<LlmResult> {
    let res;
    try {
      res = await this.post(req, incoming, false, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
    } catch (e) {
      return this.requestFailed(req, e);
    }
    const answer = await this.readAnswer(req, res.body);
    if ('error' in answer) return answer;
    const { text, json } = answer;
    if (res.statusCode < 200 || res.statusCode > 299) return this.statusError(req, res.statusCode, text, json);
    const r = json as Partial<LlmResponse> | undefined;
    if (!r || typeof r !== 'object' || !Array.isArray(r.choices)) {
      return this.error(req, ErrorCode.upstreamBadResponse, `provider "${this.name}" answered ${res.statusCode} without a chat completion (no "choices")`);
    }
    return { response: r as LlmResponse };
  }

  /**
   * Streams with `"stream": true`: the upstream's server-sent events are parsed as
   * they arrive and each chunk is handed on when the gateway pulls the next one,
   * so the upstream is read no faster than the client reads (TCP backpressure).
   * The response headers must come within timeout_ms; after that, any wait for
   * the upstream's next bytes longer than stream_idle_timeout_ms ends the stream.
   */
  async stream(req: LlmRequest, signal: AbortSignal, incoming: Readonly<Record<string, string>> = {}, options: StreamOptions = { passThrough: false }): Promise<StreamStart> {
    let res;
    try {
      res = await this.post(req, incoming, true, {
        signal,
        headersTimeout: this.opts.timeoutMs,
        // Idle time is measured here only while the gateway waits for the upstream,
        // never while a slow client holds the stream back.
        bodyTimeout: 0,
      });
    } catch (e) {
      if (signal.aborted) return this.error(req, ErrorCode.clientClosed, 'the client closed the connection');
      return this.requestFailed(req, e);
    }
    const ok = res.statusCode >= 200 && res.statusCode <= 299;
    const type = String(res.headers['content-type'] ?? '');
    if (ok && type.includes('text/event-stream')) return { chunks: this.relay(res.body as unknown as Body, req, signal, options.passThrough) };

    const answer = await this.readAnswer(req, res.body);
    if ('error' in answer) return answer;
    const { text, json } = answer;
    if (!ok) return this.statusError(req, res.statusCode, text, json);
    // An upstream that ignores "stream": its full completion becomes a one-chunk stream.
    const r = json as Partial<LlmResponse> | undefined;
    if (r && typeof r === 'object' && Array.isArray(r.choices)) {
      const chunk = responseToChunk(r as LlmResponse);
      return { chunks: (async function* () { yield chunk; })() };
    }
    return this.error(req, ErrorCode.upstreamBadResponse, `provider "${this.name}" answered ${res.statusCode} (${type || 'no content-type'}) to a streaming request, neither an event stream nor a chat completion`);
  }

  /** A failure once the stream has started, with the catalog's status and type for `code`; an upstream's own type and code pass through in `own`. */
  private streamError(req: LlmRequest, code: ErrorCode, message: string, own: { type?: string; code?: string } = {}): LlmStreamError {
    const fields = errorFields(code);
    return new LlmStreamError({ message: `provider "${this.name}": ${message}`, type: own.type ?? fields.type, code: own.code ?? code, status: fields.status, allow_fallbacks: null, provider: this.name, model: req.model });
  }

  private async *relay(body: Body, req: LlmRequest, signal: AbortSignal, passThrough: boolean): AsyncGenerator<LlmChunk> {
    const parser = new SseParser(MAX_EVENT_BYTES);
    const it = body[Symbol.asyncIterator]();
    let idle = false;
    let done = false;
    const onIdle = () => {
      idle = true;
      body.destroy(new Error('idle timeout'));
    };
    try {
      for (;;) {
        let r: IteratorResult<Buffer>;
        const timer = setTimeout(onIdle, this.idleMs);
        try {
          r = await it.next();
        } catch (e) {
          if (idle) throw this.streamError(req, ErrorCode.upstreamIdleTimeout, `sent nothing for ${this.idleMs} ms (stream_idle_timeout_ms)`);
          if (signal.aborted) throw this.streamError(req, ErrorCode.clientClosed, 'the client closed the connection');
          const err = e as Error & { code?: string };
          throw this.streamError(req, ErrorCode.upstreamStreamTruncated, `the stream broke off before [DONE] (${err.code ?? err.message})`);
        } finally {
          clearTimeout(timer);
        }
        if (r.done) throw this.streamError(req, ErrorCode.upstreamStreamTruncated, 'closed the stream before [DONE]');
        let events: SseEvent[];
        try {
          events = parser.push(r.value);
        } catch (e) {
          if (e instanceof SseTooLarge) throw this.streamError(req, ErrorCode.upstreamBadChunk, e.message);
          throw e;
        }
        for (const ev of events) {
          if (ev.data === '[DONE]') {
            done = true;
            return;
          }
          yield passThrough && sendsUnparsed(ev) ? textOnlyChunk(ev.data) : this.parseChunk(ev, req);
        }
      }
    } finally {
      if (done) void this.drain(it, body);
      else body.destroy();
    }
  }

  /** After [DONE]: reads what little is left so the connection can be reused; bounded in bytes and time. */
  private async drain(it: AsyncIterator<Buffer>, body: Body): Promise<void> {
    const timer = setTimeout(() => body.destroy(), Math.min(this.idleMs, 5000));
    try {
      let bytes = 0;
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        bytes += r.value.length;
        if (bytes > MAX_TRAILER_BYTES) {
          body.destroy();
          break;
        }
      }
    } catch {
      // destroyed or broken: the connection is closed instead of reused
    } finally {
      clearTimeout(timer);
    }
  }

  private parseChunk(ev: SseEvent, req: LlmRequest): LlmChunk {
    const v = parseJson(ev.data) as Record<string, unknown> | undefined;
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      throw this.streamError(req, ErrorCode.upstreamBadChunk, `sent a chunk that is not a JSON object: ${JSON.stringify(ev.data.slice(0, 200))}`);
    }
    const upstream = v.error as { message?: unknown; type?: unknown; code?: unknown } | undefined;
    if (upstream || ev.event === 'error') {
      const message = typeof upstream?.message === 'string' ? upstream.message : ev.data.slice(0, 500);
      const code = typeof upstream?.code === 'string' ? upstream.code : undefined;
      const type = typeof upstream?.type === 'string' ? upstream.type : undefined;
      throw this.streamError(req, ErrorCode.upstreamStreamError, `error in the stream: ${message}`, { type, code });
    }
    if (!Array.isArray(v.choices)) throw this.streamError(req, ErrorCode.upstreamBadChunk, 'sent a chunk without "choices"');
    // The text is kept so that a chain with no hook that sees chunks can send it on without serialising
    // the chunk again. An event of several data lines joined with "\n" would not fit one `data:` line,
    // so it has none.
    if (ev.data.indexOf('\n') === -1) (v as { [RAW_CHUNK_JSON]?: string })[RAW_CHUNK_JSON] = ev.data;
    return v;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
