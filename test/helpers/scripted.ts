import { testPlugin } from './paths.js';

// Typed configs for the test plugins in test/plugins/ (see test/plugins/README.md).
// The `scripted` plugin does, per hook, what its config says; one .wasm is
// loaded under several names to build any pipeline a test needs.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Understood by every hook of `scripted`. */
interface Common {
  /** Apply this hook's actions only on this attempt (sandgate.fallback_index). */
  only_if_fallback_index?: number;
  /** Appends "<plugin>:<short hook> " (tpre, tpost, pre, post) to this context key, before anything else: the order the plugins saw. */
  trail?: string;
  /** Context patch (a null value deletes the key). */
  set_ctx?: Record<string, Json>;
  /** Copies context values: {from: to} ("<none>" when `from` is absent). */
  copy_ctx?: Record<string, string>;
  /** Answer exactly {ctx: <this map>}, bypassing the PDK's own refusal of reserved keys. Nothing else is done. */
  raw_ctx?: Record<string, Json>;
}

export interface HookErrorSpec {
  message?: string;
  status?: number;
  code?: string;
}

export interface LlmErrorSpec extends HookErrorSpec {
  type?: string;
  /** Absent: not sent (fallbacks allowed). */
  allow_fallbacks?: boolean;
  provider?: string;
  model?: string;
}

export interface TransportPreActions extends Common {
  /** Request header -> context key (the value this hook sees, "<none>" if absent). */
  header_to_ctx?: Record<string, string>;
  /** Query parameter -> context key. */
  query_to_ctx?: Record<string, string>;
  /** Context key that receives the request body as this hook sees it ("<none>" if it got none). */
  body_to_ctx?: string;
  /** Short-circuit with this response (headers: a map of strings). */
  respond?: { status?: number; body?: string; headers?: Record<string, string> };
  /** Short-circuit with an error. */
  error?: HookErrorSpec;
  /** Context key -> request header. */
  ctx_to_header?: Record<string, string>;
  set_header?: Record<string, string>;
  /** Appends to the request header (created if absent). */
  append_header?: Record<string, string>;
  set_query?: Record<string, string>;
  set_method?: string;
  set_path?: string;
  /** String replacement in the request body. */
  body_replace?: { from: string; to: string };
}

export interface TransportPostActions extends Common {
  /** Fail: an error response goes to the client. */
  error?: HookErrorSpec;
  /** Context key -> response header. */
  ctx_to_header?: Record<string, string>;
  /** Request header (as this hook sees the request) -> response header. */
  req_header_to_header?: Record<string, string>;
  /** Response header that receives the request body as this hook sees it. */
  req_body_to_header?: string;
  /** Response header that receives the response body as this hook sees it. */
  resp_body_to_header?: string;
  set_header?: Record<string, string>;
  append_header?: Record<string, string>;
  set_status?: number;
  set_body?: string;
}

export interface PreLlmActions extends Common {
  /** Short-circuit with an assistant response with this content (id "chatcmpl-<plugin name>"). */
  llm_respond?: string;
  /** Short-circuit with this LLM error. */
  error?: LlmErrorSpec;
  /** Appended to the last user message (before append_ctx). */
  append?: string;
  /** Context key whose value is appended to the last user message. */
  append_ctx?: string;
  set_model?: string;
  set_provider?: string;
  set_param?: Record<string, Json>;
  /** Headers for the upstream request (LlmRequest.setUpstreamHeader). */
  set_upstream_header?: Record<string, string>;
}

export interface PostLlmActions extends Common {
  /** The result becomes this error (whatever it was). */
  error?: LlmErrorSpec;
  /** If the result is an error: it becomes an assistant response with this content. */
  recover?: string;
  /** Appended to the response's content (also to a recovered one). */
  append?: string;
  append_ctx?: string;
}

export interface ScriptedConfig {
  request_body?: boolean;
  response_body?: boolean;
  /** init's stream_deltas (absent: the host default, true). */
  stream_deltas?: boolean;
  init_error?: string;
  hooks?: {
    http_transport_pre_hook?: TransportPreActions;
    http_transport_post_hook?: TransportPostActions;
    pre_llm_hook?: PreLlmActions;
    post_llm_hook?: PostLlmActions;
  };
}

/** Plugin-entry options other than name, path and config. */
export type EntryOptions = Record<string, unknown>;

/** A config.json plugin entry for the `scripted` test plugin. */
export function scripted(name: string, config: ScriptedConfig = {}, entry: EntryOptions = {}) {
  return { name, path: testPlugin('scripted'), config, ...entry };
}

export interface LegacyConfig {
  interceptor?: { set_header?: Record<string, string>; set_body?: Record<string, Json>; error?: HookErrorSpec };
  pre_hook?: { append?: string };
  post_hook?: { append?: string };
}

/** A config.json plugin entry for the `legacy` test plugin (only transport_interceptor, pre_hook, post_hook). */
export function legacy(name: string, config: LegacyConfig = {}, entry: EntryOptions = {}) {
  return { name, path: testPlugin('legacy'), config, ...entry };
}

const SHORT: Record<string, string> = {
  http_transport_pre_hook: 'tpre',
  http_transport_post_hook: 'tpost',
  pre_llm_hook: 'pre',
  post_llm_hook: 'post',
};

/** "A:http_transport_pre_hook" -> "A:tpre" (and pre/post/tpost); legacy names are kept as they are. */
export function shortHooks(hooks: string[]): string[] {
  return hooks.map((h) => {
    const i = h.lastIndexOf(':');
    const hook = h.slice(i + 1);
    return `${h.slice(0, i)}:${SHORT[hook] ?? hook}`;
  });
}
