// scripted: a test plugin whose every hook does what its `config` says. One
// .wasm, loaded several times under different names with different configs,
// lets the integration tests (test/pipeline-semantics.test.ts) build any
// pipeline they need. It is also a tour of the AssemblyScript PDK.
//
// config = {
//   "request_body": bool, "response_body": bool,     // init's answer (default: host default, true)
//   "stream_deltas": bool,                            // init's answer too
//   "init_error": "reason",                           // init refuses to load
//   "hooks": { "<hook export name>": { <action>: ..., ... } }
// }
// The actions of each hook are listed in ../README.md. Every hook first
// checks `only_if_fallback_index` (skip unless the attempt index matches),
// then applies `set_ctx` and `copy_ctx`, then its own actions.

import {
  Context, HttpRequest, HttpResponse, InitResult, LlmError, LlmPostResult, LlmPreResult, LlmRequest, LlmResponse,
  PostResult, PreResult, Tri, Value, logInfo, outputWriter, runCleanup, runGetName, runInit, runPostLlm, runPreLlm,
  runTransportPost, runTransportPre, writeOutput, writeValue,
} from "../../../../plugin-pdk/assemblyscript/assembly";

// Required: the ABI marker (the gateway refuses modules without it).
export { sandgate_abi_v1 } from "../../../../plugin-pdk/assemblyscript/assembly";

/** "" for null. */
function orEmpty(s: string | null): string {
  if (s === null) return "";
  return s;
}

const NONE = "<none>";

// Module-level state lives as long as the instance (a failed instance restarts from init).
let config: Value = Value.map();
let pluginName: string = "scripted";

// ---- helpers

/** A value as text: strings as they are, anything else as compact JSON, absent as "<none>". */
function text(v: Value | null): string {
  if (v === null) return NONE;
  const s = v.asString();
  return s !== null ? s : v.toJSON();
}

function orNone(s: string | null): string {
  return s !== null ? s : NONE;
}

/** The action map configured for `hook`, or null (then the hook just continues). */
function actionFor(hook: string): Value | null {
  const hooks = config.get("hooks");
  if (hooks === null) return null;
  const a = hooks.get(hook);
  return a !== null && a.isMap ? a : null;
}

/** The action for `hook` if it applies to this attempt (`only_if_fallback_index`). */
function active(hook: string, ctx: Context): Value | null {
  const a = actionFor(hook);
  if (a === null) return null;
  if (a.has("only_if_fallback_index") && <i64>ctx.fallbackIndex != a.getInt("only_if_fallback_index", -1)) return null;
  return a;
}

/** The entries of a map-valued action field (empty if absent). */
function entries(a: Value, field: string): string[] {
  const m = a.get(field);
  return m !== null ? m.keys() : new Array<string>();
}

function entry(a: Value, field: string, key: string): Value {
  return a.get(field)!.get(key)!;
}

/** The short name a trail uses for a hook. */
function shortHook(hook: string): string {
  if (hook == "http_transport_pre_hook") return "tpre";
  if (hook == "http_transport_post_hook") return "tpost";
  if (hook == "pre_llm_hook") return "pre";
  if (hook == "post_llm_hook") return "post";
  return hook;
}

/**
 * trail: "key" appends "<plugin>:<hook> " to context value `key`; set_ctx
 * {key: value} and copy_ctx {from: to}: the actions every hook understands.
 * The trail is what the plugins saw, hook after hook: the order as they lived it.
 */
function applyCtx(a: Value, ctx: Context, hook: string): void {
  const trail = a.get("trail");
  if (trail !== null) {
    const key = text(trail);
    const before = ctx.get(key);
    ctx.set(key, Value.str((before !== null ? text(before) : "") + pluginName + ":" + shortHook(hook) + " "));
  }
  let keys = entries(a, "set_ctx");
  for (let i = 0; i < keys.length; i++) ctx.set(keys[i], entry(a, "set_ctx", keys[i]));
  keys = entries(a, "copy_ctx");
  for (let i = 0; i < keys.length; i++) {
    const v = ctx.get(keys[i]);
    ctx.set(text(entry(a, "copy_ctx", keys[i])), v !== null ? v : Value.str(NONE));
  }
}

/**
 * raw_ctx {key: value}: answers `{ctx: <the map>}` written by hand, without the
 * PDK's Context (which refuses reserved `sandgate.*` keys itself). This is how
 * the tests check that the *host* ignores a patch of a reserved key.
 */
function rawCtx(hook: string): bool {
  const a = actionFor(hook);
  if (a === null) return false;
  const patch = a.get("raw_ctx");
  if (patch === null) return false;
  const w = outputWriter();
  w.mapHeader(1);
  w.str("ctx");
  writeValue(w, patch);
  writeOutput(w);
  return true;
}

/** An LlmError from {message, status, code, type, allow_fallbacks, provider, model}; allow_fallbacks absent = Unset. */
function llmError(spec: Value): LlmError {
  const e = new LlmError(orNone(spec.getString("message")), <i32>spec.getInt("status", 0));
  const fb = spec.get("allow_fallbacks");
  if (fb !== null && fb.isBool) e.allowFallbacks = fb.asBool() ? Tri.True : Tri.False;
  e.code = spec.getString("code");
  e.type = spec.getString("type");
  e.provider = spec.getString("provider");
  e.model = spec.getString("model");
  return e;
}

/** `append` then `append_ctx` (a context key's value), as one suffix. */
function suffix(a: Value, ctx: Context): string {
  let s = "";
  const lit = a.getString("append");
  if (lit !== null) s += lit;
  const key = a.getString("append_ctx");
  if (key !== null) s += text(ctx.get(key));
  return s;
}

function headerResponse(spec: Value): HttpResponse {
  const resp = new HttpResponse(<i32>spec.getInt("status", 200));
  const body = spec.getString("body");
  if (body !== null) resp.setBodyText(body);
  const keys = entries(spec, "headers");
  for (let i = 0; i < keys.length; i++) resp.setHeader(keys[i], text(entry(spec, "headers", keys[i])));
  return resp;
}

// ---- init / get_name / cleanup

export function init(): i32 {
  return runInit(onInit);
}

function onInit(cfg: Value, name: string): InitResult {
  config = cfg.isMap ? cfg : Value.map();
  pluginName = name;
  const reason = config.getString("init_error");
  if (reason !== null) return InitResult.error(reason);
  let r = InitResult.ok();
  if (config.has("request_body")) r = r.requestBody(config.getBool("request_body", true));
  if (config.has("response_body")) r = r.responseBody(config.getBool("response_body", true));
  if (config.has("stream_deltas")) r = r.streamDeltas(config.getBool("stream_deltas", true));
  return r;
}

export function get_name(): i32 {
  return runGetName("scripted");
}

export function cleanup(): i32 {
  return runCleanup(onCleanup);
}

function onCleanup(): void {
  logInfo("scripted cleanup: " + pluginName);
}

// ---- transport pre: changes the request, or short-circuits

export function http_transport_pre_hook(): i32 {
  if (rawCtx("http_transport_pre_hook")) return 0;
  return runTransportPre(onTransportPre);
}

function onTransportPre(ctx: Context, req: HttpRequest): PreResult {
  const a = active("http_transport_pre_hook", ctx);
  if (a === null) return PreResult.continue();
  applyCtx(a, ctx, "http_transport_pre_hook");

  // Read what this hook sees (before its own changes) into the context.
  let keys = entries(a, "header_to_ctx");
  for (let i = 0; i < keys.length; i++) ctx.setString(text(entry(a, "header_to_ctx", keys[i])), orNone(req.header(keys[i])));
  keys = entries(a, "query_to_ctx");
  for (let i = 0; i < keys.length; i++) ctx.setString(text(entry(a, "query_to_ctx", keys[i])), orNone(req.queryParam(keys[i])));
  const bodyKey = a.getString("body_to_ctx");
  if (bodyKey !== null) ctx.setString(bodyKey, orNone(req.bodyText()));

  // Short-circuits (the context patch above still goes back with them).
  const respond = a.get("respond");
  if (respond !== null) return PreResult.respond(headerResponse(respond));
  const err = a.get("error");
  if (err !== null) return PreResult.error(orNone(err.getString("message")), <i32>err.getInt("status", 500), err.getString("code"));

  // Request changes.
  keys = entries(a, "ctx_to_header");
  for (let i = 0; i < keys.length; i++) req.setHeader(text(entry(a, "ctx_to_header", keys[i])), text(ctx.get(keys[i])));
  keys = entries(a, "set_header");
  for (let i = 0; i < keys.length; i++) req.setHeader(keys[i], text(entry(a, "set_header", keys[i])));
  keys = entries(a, "append_header");
  for (let i = 0; i < keys.length; i++) {
    const old = req.header(keys[i]);
    req.setHeader(keys[i], orEmpty(old) + text(entry(a, "append_header", keys[i])));
  }
  keys = entries(a, "set_query");
  for (let i = 0; i < keys.length; i++) req.setQuery(keys[i], text(entry(a, "set_query", keys[i])));
  const method = a.getString("set_method");
  if (method !== null) req.method = method;
  const path = a.getString("set_path");
  if (path !== null) req.path = path;
  const repl = a.get("body_replace");
  if (repl !== null) {
    const body = req.bodyText();
    if (body !== null) req.setBodyText(body.replaceAll(orNone(repl.getString("from")), orNone(repl.getString("to"))));
  }
  return PreResult.continue();
}

// ---- transport post: changes the response, or fails

export function http_transport_post_hook(): i32 {
  if (rawCtx("http_transport_post_hook")) return 0;
  return runTransportPost(onTransportPost);
}

function onTransportPost(ctx: Context, req: HttpRequest, resp: HttpResponse): PostResult {
  const a = active("http_transport_post_hook", ctx);
  if (a === null) return PostResult.continue();
  applyCtx(a, ctx, "http_transport_post_hook");

  const err = a.get("error");
  if (err !== null) return PostResult.error(orNone(err.getString("message")), <i32>err.getInt("status", 500), err.getString("code"));

  let keys = entries(a, "ctx_to_header");
  for (let i = 0; i < keys.length; i++) resp.setHeader(text(entry(a, "ctx_to_header", keys[i])), text(ctx.get(keys[i])));
  keys = entries(a, "req_header_to_header");
  for (let i = 0; i < keys.length; i++) resp.setHeader(text(entry(a, "req_header_to_header", keys[i])), orNone(req.header(keys[i])));
  const bodyHeader = a.getString("req_body_to_header");
  if (bodyHeader !== null) resp.setHeader(bodyHeader, orNone(req.bodyText()));
  const respBodyHeader = a.getString("resp_body_to_header");
  if (respBodyHeader !== null) resp.setHeader(respBodyHeader, orNone(resp.bodyText()));
  keys = entries(a, "set_header");
  for (let i = 0; i < keys.length; i++) resp.setHeader(keys[i], text(entry(a, "set_header", keys[i])));
  keys = entries(a, "append_header");
  for (let i = 0; i < keys.length; i++) {
    const old = resp.header(keys[i]);
    resp.setHeader(keys[i], orEmpty(old) + text(entry(a, "append_header", keys[i])));
  }
  if (a.has("set_status")) resp.status = <i32>a.getInt("set_status", 200);
  const body = a.getString("set_body");
  if (body !== null) resp.setBodyText(body);
  return PostResult.continue();
}

// ---- pre_llm: changes the LLM request, or short-circuits with a response or an error

export function pre_llm_hook(): i32 {
  if (rawCtx("pre_llm_hook")) return 0;
  return runPreLlm(onPreLlm);
}

function onPreLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  const a = active("pre_llm_hook", ctx);
  if (a === null) return LlmPreResult.continue();
  applyCtx(a, ctx, "pre_llm_hook");

  const content = a.getString("llm_respond");
  if (content !== null) return LlmPreResult.respond(LlmResponse.assistant(req.model, content, "chatcmpl-" + pluginName));
  const err = a.get("error");
  if (err !== null) return LlmPreResult.error(llmError(err));

  const s = suffix(a, ctx);
  if (s.length > 0) {
    const last = req.lastMessage("user");
    if (last !== null) {
      const old = last.content;
      last.content = orEmpty(old) + s;
    }
  }
  const model = a.getString("set_model");
  if (model !== null) req.model = model;
  const provider = a.getString("set_provider");
  if (provider !== null) req.provider = provider;
  const keys = entries(a, "set_param");
  for (let i = 0; i < keys.length; i++) req.setParam(keys[i], entry(a, "set_param", keys[i]));
  const headers = entries(a, "set_upstream_header");
  for (let i = 0; i < headers.length; i++) req.setUpstreamHeader(headers[i], text(entry(a, "set_upstream_header", headers[i])));
  return LlmPreResult.continue();
}

// ---- post_llm: changes the response, recovers an error, or turns the result into an error

export function post_llm_hook(): i32 {
  if (rawCtx("post_llm_hook")) return 0;
  return runPostLlm(onPostLlm);
}

function onPostLlm(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  const a = active("post_llm_hook", ctx);
  if (a === null) return LlmPostResult.continue();
  applyCtx(a, ctx, "post_llm_hook");

  const err = a.get("error");
  if (err !== null) return LlmPostResult.error(llmError(err));

  let resp = response;
  const recovered = a.getString("recover");
  if (error !== null && recovered !== null) {
    const model = error.model;
    resp = LlmResponse.assistant(model !== null ? model : "recovered", recovered, "chatcmpl-" + pluginName);
  }
  if (resp === null) return LlmPostResult.continue();
  const s = suffix(a, ctx);
  if (s.length > 0) {
    const old = resp.text;
    resp.setText(orEmpty(old) + s);
  }
  // An in-place edit of the received response is detected and sent; a new one must be returned.
  return resp !== response ? LlmPostResult.respond(resp) : LlmPostResult.continue();
}
