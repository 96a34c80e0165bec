import { setTimeout as sleep } from 'node:timers/promises';
import type { LlmRequest, LlmResponse } from '../abi/types.js';
import { ErrorCode } from '../errors/codes.js';
import type { LlmResult } from '../pipeline/llm.js';
import type { Provider } from './provider.js';

/**
 * A deterministic provider for demos, tests and benchmarks (no network, no keys).
 * - any model: answers with the last user message's text ("echo");
 * - `fail-<status>` (e.g. `fail-503`): fails with that HTTP status, fallbacks allowed;
 * - `fail-<status>-final`: the same, with allow_fallbacks false.
 */
export class MockProvider implements Provider {
  private seq = 0;

  constructor(
    readonly name: string,
    private readonly latencyMs = 0,
  ) {}

  async complete(req: LlmRequest): Promise<LlmResult> {
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    const fail = /^fail-(\d{3})(-final)?$/.exec(req.model);
    if (fail) {
      const status = Number(fail[1]);
      return {
        error: {
          message: `mock provider: simulated ${status} for model "${req.model}"`,
          type: status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
          code: ErrorCode.upstreamError,
          status,
          allow_fallbacks: fail[2] ? false : null,
          provider: this.name,
          model: req.model,
        },
      };
    }
    const lastUser = [...req.messages].reverse().find((m) => m.role === 'user');
    const text = typeof lastUser?.content === 'string' ? lastUser.content : '';
    const promptTokens = req.messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.split(/\s+/).filter(Boolean).length : 0), 0);
    const completionTokens = text.split(/\s+/).filter(Boolean).length;
    const response: LlmResponse = {
      id: `chatcmpl-mock-${++this.seq}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: req.model,
      choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
    return { response };
  }

  async close(): Promise<void> {}
}
