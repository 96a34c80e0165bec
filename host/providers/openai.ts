import { Pool, errors as undiciErrors } from 'undici';
import type { LlmError, LlmRequest, LlmResponse } from '../abi/types.js';
import { ErrorCode } from '../errors/codes.js';
import type { LlmResult } from '../pipeline/llm.js';
import type { Provider } from './provider.js';

export interface OpenAiOptions {
  baseUrl: string;
  apiKey?: string;
  timeoutMs: number;
  connections: number;
}

/**
 * Any OpenAI-compatible upstream (`POST {base_url}/chat/completions`). Uses
 * undici's request API on a keep-alive pool: global fetch costs about 2.5x as
 * much CPU per proxied request (PERF-NOTES.md).
 */
export class OpenAiProvider implements Provider {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(
    readonly name: string,
    private readonly opts: OpenAiOptions,
  ) {
    const url = new URL(opts.baseUrl);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, { connections: opts.connections, pipelining: 1, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
  }

  private error(req: LlmRequest, status: number, code: string, message: string, type = 'upstream_error'): LlmResult {
    const error: LlmError = { message, type, code, status, allow_fallbacks: null, provider: this.name, model: req.model };
    return { error };
  }

  async complete(req: LlmRequest): Promise<LlmResult> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const body = JSON.stringify({ ...req.params, model: req.model, messages: req.messages, stream: false });
    let res;
    try {
      res = await this.pool.request({
        method: 'POST',
        path: `${this.basePath}/chat/completions`,
        headers,
        body,
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { code?: string };
      if (err.name === 'TimeoutError' || err instanceof undiciErrors.HeadersTimeoutError) {
        return this.error(req, 504, ErrorCode.upstreamTimeout, `provider "${this.name}" did not answer within ${this.opts.timeoutMs} ms`);
      }
      return this.error(req, 502, ErrorCode.upstreamUnreachable, `provider "${this.name}" is unreachable: ${err.code ?? err.message}`);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      return this.error(req, 502, ErrorCode.upstreamBadResponse, `provider "${this.name}" broke off its answer: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      const upstream = (json as { error?: { message?: unknown; type?: unknown; code?: unknown } } | undefined)?.error;
      const message = typeof upstream?.message === 'string' ? upstream.message : text.slice(0, 500) || `HTTP ${res.statusCode}`;
      const type = typeof upstream?.type === 'string' ? upstream.type : 'upstream_error';
      const code = typeof upstream?.code === 'string' ? upstream.code : ErrorCode.upstreamError;
      return this.error(req, res.statusCode, code, `provider "${this.name}": ${message}`, type);
    }
    const r = json as Partial<LlmResponse> | undefined;
    if (!r || typeof r !== 'object' || !Array.isArray(r.choices)) {
      return this.error(req, 502, ErrorCode.upstreamBadResponse, `provider "${this.name}" answered ${res.statusCode} without a chat completion (no "choices")`);
    }
    return { response: r as LlmResponse };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
