import { setTimeout as sleep } from 'node:timers/promises';
import type { LlmChunk, LlmError, LlmRequest, LlmResponse } from '../abi/types.js';
import { ErrorCode, errorFields } from '../errors/codes.js';
import { type LlmResult, LlmStreamError, type StreamStart } from './contract.js';
import type { Provider } from './provider.js';

export interface MockOptions {
  /** Delay before each answer (before the first chunk when streaming). */
  latencyMs?: number;
  /** Streaming: content chunks per answer; 0 = one chunk per word of the echoed text. */
  streamChunks?: number;
  /** Streaming: delay before each chunk. */
  streamDelayMs?: number;
}

/**
 * What the mock lists on /v1/models: `echo`, and one model of each failure
 * family below (any name works: every one that is not a failure echoes).
 */
export const MOCK_MODELS: readonly string[] = ['echo', 'fail-503', 'fail-503-final', 'fail-after-3'];

/**
 * A deterministic provider for demos, tests and benchmarks (no network, no keys).
 * - any model: answers with the last user message's text ("echo");
 * - `fail-<status>` (e.g. `fail-503`): fails with that HTTP status, fallbacks allowed;
 * - `fail-<status>-final`: the same, with allow_fallbacks false;
 * - `fail-after-<n>` (streaming): sends n content chunks, then the stream breaks
 *   (upstream_stream_error).
 *
 * Streaming sends the echo as `stream_chunks` content chunks (cycling through its
 * words), then a chunk with finish_reason "stop", then, when the request asks for
 * `stream_options.include_usage`, a usage-only chunk. Chunks are made when pulled.
 */
export class MockProvider implements Provider {
  readonly models = MOCK_MODELS;
  private seq = 0;
  private readonly latencyMs: number;
  private readonly streamChunks: number;
  private readonly streamDelayMs: number;

  constructor(
    readonly name: string,
    opts: MockOptions = {},
  ) {
    this.latencyMs = opts.latencyMs ?? 0;
    this.streamChunks = opts.streamChunks ?? 0;
    this.streamDelayMs = opts.streamDelayMs ?? 0;
  }

  private simulatedFailure(req: LlmRequest): LlmError | undefined {
    const fail = /^fail-(\d{3})(-final)?$/.exec(req.model);
    if (!fail) return undefined;
    const status = Number(fail[1]);
    return {
      message: `mock provider: simulated ${status} for model "${req.model}"`,
      // What the openai provider makes of an upstream's error answer: upstream_error with the upstream's own status.
      ...errorFields(ErrorCode.upstreamError),
      status,
      allow_fallbacks: fail[2] ? false : null,
      provider: this.name,
      model: req.model,
    };
  }

  private static echo(req: LlmRequest): string {
    const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
    return typeof lastUser?.content === 'string' ? lastUser.content : '';
  }

  private static usage(req: LlmRequest, text: string) {
    const promptTokens = req.messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.split(/\s+/).filter(Boolean).length : 0), 0);
    const completionTokens = text.split(/\s+/).filter(Boolean).length;
    return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
  }

  async complete(req: LlmRequest): Promise<LlmResult> {
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const error = this.simulatedFailure(req);
    if (error) return { error };
    const text = MockProvider.echo(req);
    const response: LlmResponse = {
      id: `chatcmpl-mock-${++this.seq}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
      usage: MockProvider.usage(req, text),
    };
    return { response };
  }

  async stream(req: LlmRequest, signal: AbortSignal): Promise<StreamStart> {
    if (this.latencyMs > 0) {
      try {
        await sleep(this.latencyMs, undefined, { signal });
      } catch {
        return { error: { message: 'mock provider: aborted', ...errorFields(ErrorCode.clientClosed), provider: this.name, model: req.model } };
      }
    }
    const error = this.simulatedFailure(req);
    if (error) return { error };
    return { chunks: this.chunks(req, signal) };
  }

  private async *chunks(req: LlmRequest, signal: AbortSignal): AsyncGenerator<LlmChunk> {
    const text = MockProvider.echo(req);
    const words = text.match(/\S+\s*/g) ?? [''];
    const failAfter = /^fail-after-(\d+)$/.exec(req.model);
    const count = failAfter ? Number(failAfter[1]) : this.streamChunks > 0 ? this.streamChunks : words.length;
    const head = { id: `chatcmpl-mock-${++this.seq}`, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: req.model };
    const pause = async () => {
      if (this.streamDelayMs > 0) await sleep(this.streamDelayMs, undefined, { signal });
      // Without a delay, still let the event loop turn between chunks, as a network
      // upstream would: a stream made of microtasks only would hold the loop to the end.
      else await new Promise<void>((resolve) => setImmediate(resolve));
    };
    for (let i = 0; i < count; i++) {
      await pause();
      // Cycling through the text: keep words apart.
      let piece = words[i % words.length];
      if (count > words.length && !/\s$/.test(piece)) piece += ' ';
      const delta = i === 0 ? { role: 'assistant', content: piece } : { content: piece };
      yield { ...head, choices: [{ index: 0, delta, finish_reason: null }] };
    }
    await pause();
    if (failAfter) {
      throw new LlmStreamError({
        message: `mock provider: simulated stream failure after ${count} chunk(s)`,
        ...errorFields(ErrorCode.upstreamStreamError),
        provider: this.name,
        model: req.model,
      });
    }
    yield { ...head, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] };
    const options = req.params.stream_options as { include_usage?: unknown } | undefined;
    if (options?.include_usage === true) yield { ...head, choices: [], usage: MockProvider.usage(req, text) };
  }

  async close(): Promise<void> {}
}
