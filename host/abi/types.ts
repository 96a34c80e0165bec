// TypeScript shapes of the ABI v1 envelopes (plugin-pdk/ABI.md §5).
// Field names are the wire names, so no mapping layer sits between the two.

export type Context = Record<string, unknown>;
/** Keys to set; null deletes. */
export type ContextPatch = Record<string, unknown>;

export interface HttpRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body?: Uint8Array;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body?: Uint8Array;
  /**
   * Host-side only, never encoded for a plugin: a streamed body (server-sent
   * events), read as the client reads. A response with a stream skips the
   * transport post-hooks (its chunks go through the chunk hook instead).
   */
  stream?: ReadableStream<Uint8Array>;
}

export interface HookError {
  message: string;
  status?: number;
  code?: string;
}

export interface LlmMessage {
  role: string;
  content: string | null;
  [extra: string]: unknown;
}

export interface LlmRequest {
  provider: string;
  model: string;
  messages: LlmMessage[];
  stream: boolean;
  params: Record<string, unknown>;
  /**
   * Headers for the upstream request, set by pre_llm_hooks (names lower-case;
   * starts empty). Sent as they are, next to the client's own headers that the
   * provider's forward_headers names; the gateway's own (content-type, accept,
   * the api_key's authorization unless prefer_forwarded_authorization) win.
   */
  headers: Record<string, string>;
}

export interface LlmChoice {
  index: number;
  message: LlmMessage;
  finish_reason: string | null;
  [extra: string]: unknown;
}

export interface LlmResponse {
  id: string;
  object: string;
  created: number;
  model: string;
  choices: LlmChoice[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  [extra: string]: unknown;
}

/**
 * One OpenAI chat.completion.chunk: { id, object, created, model,
 * choices: [{ index, delta: { role?, content?, ... }, finish_reason }], usage?, ... }.
 * Kept as a plain map: the gateway relays whatever fields the upstream sends.
 */
export type LlmChunk = Record<string, unknown>;

export interface LlmError {
  message: string;
  type?: string;
  code?: string;
  status?: number;
  /** Absent or null: fallbacks allowed. false: stop at this error. */
  allow_fallbacks?: boolean | null;
  provider?: string;
  model?: string;
}

// ---- hook outputs, after validation ----

export interface InitOutput {
  error?: string;
  request_body?: boolean;
  response_body?: boolean;
  /** false: post_llm_hook is not called with streamed deltas (still with full responses and errors). */
  stream_deltas?: boolean;
}

export interface RequestPatch {
  method?: string;
  path?: string;
  headers?: Record<string, string | null>;
  query?: Record<string, string | null>;
  body?: Uint8Array;
}

export interface TransportPreOutput {
  ctx?: ContextPatch;
  req?: RequestPatch;
  response?: HttpResponse;
  error?: HookError;
}

export interface ResponsePatch {
  status?: number;
  headers?: Record<string, string | null>;
  body?: Uint8Array;
}

export interface TransportPostOutput {
  ctx?: ContextPatch;
  resp?: ResponsePatch;
  error?: HookError;
}

export interface LlmRequestPatch {
  provider?: string;
  model?: string;
  messages?: LlmMessage[];
  params?: Record<string, unknown>;
  /** Upstream headers: a merge patch (null removes one). */
  headers?: Record<string, string | null>;
}

export interface LlmPreOutput {
  ctx?: ContextPatch;
  req?: LlmRequestPatch;
  response?: LlmResponse;
  error?: LlmError;
}

export interface LlmPostOutput {
  ctx?: ContextPatch;
  response?: LlmResponse;
  error?: LlmError;
}

export interface InterceptorOutput {
  ctx?: ContextPatch;
  headers?: Record<string, string>;
  body?: Record<string, unknown>;
  error?: HookError;
}

export interface ChunkOutput {
  ctx?: ContextPatch;
  chunk?: Record<string, unknown>;
  drop?: boolean;
  error?: HookError;
}

/** Guest exports the host may call (ABI.md §3). */
export const HOOKS = [
  'init',
  'get_name',
  'http_transport_pre_hook',
  'http_transport_post_hook',
  'http_transport_stream_chunk_hook',
  'pre_llm_hook',
  'post_llm_hook',
  'cleanup',
  'transport_interceptor',
  'pre_hook',
  'post_hook',
] as const;
export type HookName = (typeof HOOKS)[number];
