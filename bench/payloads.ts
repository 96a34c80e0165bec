// The requests the benchmarks send: realistic headers and a ~2 KiB chat request.

import type { HttpRequest, LlmRequest } from '../host/abi/types.js';

const words = (seed: string, bytes: number): string => {
  let s = '';
  while (s.length < bytes) s += `${seed} `;
  return s.slice(0, bytes).trim();
};

/** An OpenAI-style chat request of about 2 KiB as JSON (a short conversation with a system prompt). */
export const CHAT_REQUEST = {
  model: 'mock/echo',
  messages: [
    { role: 'system', content: words('You are a concise assistant for an internal engineering help desk. Answer in plain English.', 700) },
    { role: 'user', content: words('Our build fails after upgrading the compiler; the log mentions a missing type declaration.', 600) },
    { role: 'assistant', content: words('Check that the package providing the declarations is installed and listed in the types option.', 450) },
    { role: 'user', content: 'That fixed it, thanks. Can you summarise what changed in one sentence?' },
  ],
  temperature: 0.2,
};

export const CHAT_BODY: Buffer = Buffer.from(JSON.stringify(CHAT_REQUEST));

/**
 * The same chat request for another target ("provider/model"), and with `"stream": true` when asked.
 * @example
 * chatBody('upstream/echo', true); // the ~2 KiB request, streamed, for the provider named "upstream"
 */
export function chatBody(model: string, stream = false): Buffer {
  return Buffer.from(JSON.stringify({ ...CHAT_REQUEST, model, ...(stream ? { stream: true } : {}) }));
}

/** Headers a typical SDK client sends (names lower-cased, as the gateway passes them to plugins). */
export const CLIENT_HEADERS: Record<string, string> = {
  host: '127.0.0.1:8080',
  'content-type': 'application/json',
  accept: 'application/json',
  authorization: 'Bearer sk-bench-0123456789abcdefghijklmnopqrstuvwxyz',
  'user-agent': 'OpenAI/JS 4.56.0',
  'x-stainless-lang': 'js',
  'x-stainless-runtime-version': 'v20.20.2',
  'accept-encoding': 'gzip, deflate',
};

export const CONTEXT = { 'sandgate.request_id': 'bench' };

/** TransportPreInput without a body (what a plugin that asked for no bodies receives). */
export function transportEnvelope(withBody: boolean): { ctx: Record<string, unknown>; req: HttpRequest } {
  const req: HttpRequest = {
    method: 'POST',
    path: '/v1/chat/completions',
    query: {},
    headers: { ...CLIENT_HEADERS, 'content-length': String(CHAT_BODY.length) },
  };
  if (withBody) req.body = new Uint8Array(CHAT_BODY);
  return { ctx: { ...CONTEXT }, req };
}

/** LlmPreInput for the same chat request. */
export function llmEnvelope(): { ctx: Record<string, unknown>; req: LlmRequest } {
  const { messages, model: _model, ...params } = CHAT_REQUEST;
  return {
    ctx: { ...CONTEXT, 'sandgate.fallback_index': 0, 'sandgate.provider': 'mock', 'sandgate.model': 'echo' },
    req: { provider: 'mock', model: 'echo', messages: messages.map((m) => ({ ...m })), stream: false, params, headers: {} },
  };
}
