import { z } from 'zod';
import type { HttpRequest, HttpResponse, LlmError, LlmRequest } from '../abi/types.js';
import { jsonPath } from '../config/load.js';
import { ErrorCode, errorFields, GatewayError } from '../errors/codes.js';
import { parseClientJson } from '../pipeline/client-json.js';
import type { Exchange } from '../pipeline/invoke.js';
import { parseTarget, runLlm } from '../pipeline/llm.js';
import { runLlmStream, type StreamProviderCall } from '../pipeline/stream.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import type { LlmResult } from '../providers/contract.js';
import type { Provider } from '../providers/provider.js';
import { jsonResponse, llmErrorResponse, statusFor } from './http-errors.js';
import { sseResponse } from './sse.js';

/** The client's chat body, as far as the gateway reads it (the rest goes upstream as it came). */
export const ChatBody = z.looseObject({
  model: z.string().min(1),
  messages: z.array(z.looseObject({ role: z.string(), content: z.union([z.string(), z.array(z.unknown()), z.null()]).optional() })).min(1),
  fallbacks: z.array(z.string()).optional(),
  stream: z.boolean().optional(),
});
type ChatBodyShape = z.infer<typeof ChatBody>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * ChatBody's rules, checked without copying the body (zod builds a new object
 * of every message, a few percent of a request's CPU). It only ever says yes
 * to what ChatBody accepts; for anything else ChatBody decides and says why.
 *
 * @example isChatBody({ model: 'mock/echo', messages: [{ role: 'user', content: 'hi' }] }) // true
 */
export function isChatBody(v: unknown): v is ChatBodyShape {
  if (!isObject(v) || typeof v.model !== 'string' || v.model.length === 0) return false;
  if (!Array.isArray(v.messages) || v.messages.length === 0) return false;
  for (const m of v.messages) {
    if (!isObject(m) || typeof m.role !== 'string') return false;
    const c = m.content;
    if (c !== undefined && c !== null && typeof c !== 'string' && !Array.isArray(c)) return false;
  }
  if (v.fallbacks !== undefined && !(Array.isArray(v.fallbacks) && v.fallbacks.every((f) => typeof f === 'string'))) return false;
  return v.stream === undefined || typeof v.stream === 'boolean';
}

function target(value: string, at: string, providers: ReadonlyMap<string, Provider>): { provider: string; model: string } {
  const t = parseTarget(value);
  if (!t) throw new GatewayError(ErrorCode.invalidRequest, `${at}: "${value}" must be "provider/model" (e.g. "mock/echo")`);
  if (!providers.has(t.provider)) {
    throw new GatewayError(ErrorCode.unknownProvider, `${at}: unknown provider "${t.provider}"; configured providers: ${[...providers.keys()].join(', ') || '(none)'}`);
  }
  return t;
}

/** Parses and checks the client's body; every problem is a 400 naming the field. */
export function parseChatRequest(
  req: HttpRequest,
  providers: ReadonlyMap<string, Provider>,
  maxJsonDepth: number,
): { llm: LlmRequest; fallbacks: { provider: string; model: string }[] } {
  const body = parseClientJson(req.body, maxJsonDepth);
  let data: ChatBodyShape;
  if (isChatBody(body)) data = body;
  else {
    const parsed = ChatBody.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new GatewayError(ErrorCode.invalidRequest, `${jsonPath(issue.path)}: ${issue.message}`);
    }
    data = parsed.data;
  }
  const { model, messages, fallbacks = [], stream = false, ...params } = data;
  const primary = target(model, 'model', providers);
  return {
    // headers: only what pre_llm_hooks set; the client's own go upstream per provider (forward_headers).
    llm: { ...primary, messages: messages as LlmRequest['messages'], stream, params, headers: {} },
    fallbacks: fallbacks.map((f, i) => target(f, `fallbacks[${i}]`, providers)),
  };
}

function unknownProvider(r: LlmRequest): { error: LlmError } {
  // A plugin rewrote the target to a provider that does not exist.
  return { error: { message: `unknown provider "${r.provider}"`, ...errorFields(ErrorCode.unknownProvider), allow_fallbacks: null, provider: r.provider, model: r.model } };
}

/**
 * "stream": true. Errors before the first chunk (all attempts failed) are ordinary
 * JSON error responses; after it, the answer is a 200 event stream whose failures
 * are error events. `release` ends the request's hold on its plugin chain and
 * providers: the event stream calls it when it ends (last event, or cancelled).
 */
async function streamChatCompletions(
  llm: LlmRequest,
  fallbacks: { provider: string; model: string }[],
  plugins: readonly LoadedPlugin[],
  providers: ReadonlyMap<string, Provider>,
  ex: Exchange,
  incoming: Readonly<Record<string, string>>,
  release: () => void,
): Promise<HttpResponse> {
  const signal = ex.clientSignal?.() ?? new AbortController().signal;
  const open: StreamProviderCall = async (r, s, options) => {
    const provider = providers.get(r.provider);
    return provider ? provider.stream(r, s, incoming, options) : unknownProvider(r);
  };
  let outcome;
  try {
    outcome = await runLlmStream(plugins, llm, fallbacks, open, ex, signal);
  } catch (e) {
    if (e instanceof GatewayError && e.code === ErrorCode.clientClosed) {
      // Nobody is left to read an answer: an empty stream, so no post-hook runs for it either.
      ex.log.info({ rid: ex.ctx.requestId }, 'client closed the connection before the stream started');
      release();
      return { status: statusFor(e.code), headers: {}, stream: new ReadableStream({ start: (c) => c.close() }) };
    }
    throw e;
  }
  if (outcome.error) return llmErrorResponse(outcome.error, outcome.attemptErrors);
  return sseResponse(outcome.stream, release);
}

/**
 * POST /v1/chat/completions: the LLM layer (pre-hooks, provider with fallbacks, post-hooks).
 * `release` ends the request's hold on its plugin chain and providers; a streamed
 * answer calls it when the stream ends (the caller, for any other answer).
 *
 * @example const resp = await chatCompletions(req, chain, providers, ex, release);
 */
export async function chatCompletions(
  req: HttpRequest,
  plugins: readonly LoadedPlugin[],
  providers: ReadonlyMap<string, Provider>,
  ex: Exchange,
  release: () => void,
): Promise<HttpResponse> {
  const { llm, fallbacks } = parseChatRequest(req, providers, ex.limits.maxJsonDepth);
  if (llm.stream) return streamChatCompletions(llm, fallbacks, plugins, providers, ex, req.headers, release);
  const callProvider = async (r: LlmRequest): Promise<LlmResult> => {
    const provider = providers.get(r.provider);
    return provider ? provider.complete(r, req.headers) : unknownProvider(r);
  };
  const outcome = await runLlm(plugins, llm, fallbacks, callProvider, ex);
  if (outcome.result.response) return jsonResponse(200, outcome.result.response);
  return llmErrorResponse(outcome.result.error, outcome.attemptErrors);
}
