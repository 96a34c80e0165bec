// Exercises the PDK's API hook by hook, for features.test.mjs. Also makes sure
// every public function compiles: AssemblyScript only compiles what is reachable.

import {
  ChunkResult, Context, HttpRequest, HttpResponse, InitResult, InterceptorRequest, InterceptorResult, LlmError,
  LlmMessage, LlmPostResult, LlmPreResult, LlmRequest, LlmResponse, LlmUsage, PostResult, PreResult, Tri, Value,
  ValueKind, logError, logInfo, logWarn, runCleanup, runGetName, runInit, runPostLlm, runPreLlm, runStreamChunk,
  runTransportInterceptor, runTransportPost, runTransportPre,
} from "../assembly";

export { sandgate_abi_v1 } from "../assembly";

// Plugin state survives across calls (module-level variables).
let greeting = "hello";
let calls = 0;

// ---- init: config as a Value

export function init(): i32 {
  return runInit(onInit);
}
function onInit(config: Value, name: string): InitResult {
  if (config.getBool("fail")) return InitResult.error("refusing to load: fail=true (" + name + ")");
  const g = config.getString("greeting");
  if (g !== null) greeting = g;
  logInfo("config " + config.toJSON());
  return InitResult.ok().responseBody(false);
}

export function get_name(): i32 {
  return runGetName("features ✓");
}

export function cleanup(): i32 {
  return runCleanup(onCleanup);
}
function onCleanup(): void {
  logInfo("cleanup after " + calls.toString() + " calls, greeting " + greeting);
}

// ---- transport pre: every kind of request change, or a short-circuit chosen by header

export function http_transport_pre_hook(): i32 {
  return runTransportPre(onPre);
}
function onPre(ctx: Context, req: HttpRequest): PreResult {
  calls++;
  const mode = req.header("X-Mode");
  if (mode == "respond") return PreResult.respond(HttpResponse.json(429, '{"error":"slow down, ' + greeting + '"}'));
  if (mode == "error") return PreResult.error("denied: " + req.path + " ⛔", 403, "denied");
  if (mode == "noop") return PreResult.continue();

  req.method = "PUT";
  req.path = req.path + "/v2";
  req.setHeader("X-Added", "ünïcödé ✓");
  req.removeHeader("Authorization");
  req.setQuery("added", "1");
  req.removeQuery("drop");
  const body = req.bodyText();
  if (body !== null) req.setBodyText(body.toUpperCase());
  ctx.set("features.greeting", Value.str(greeting));
  ctx.set("features.n", Value.int(calls));
  ctx.delete("features.old");
  ctx.set("sandgate.request_id", Value.str("spoofed")); // refused, logged as a warning
  // Reads see this call's changes.
  if (req.header("x-added") != "ünïcödé ✓" || req.header("authorization") !== null) logError("header view is stale");
  if (ctx.getString("features.greeting") != greeting || ctx.get("features.old") !== null) logError("ctx view is stale");
  logInfo("request id " + ctx.requestId + ", headers " + req.headers.size.toString() + ", query " + req.query.keys().join(","));
  return PreResult.continue();
}

// ---- transport post

export function http_transport_post_hook(): i32 {
  return runTransportPost(onPost);
}
function onPost(ctx: Context, req: HttpRequest, resp: HttpResponse): PostResult {
  if (resp.status >= 500) return PostResult.error("upstream failed with " + resp.status.toString(), 502, "upstream");
  resp.status = 203;
  resp.setHeader("X-Seen", ctx.getString("features.greeting") || "none");
  resp.removeHeader("server");
  const b = resp.bodyText();
  resp.setBodyText(b !== null ? b + " (checked ✓)" : "(no body)");
  return PostResult.continue();
}

// ---- streaming chunks: pass / edit in place / replace / drop / error, chosen by the delta text

export function http_transport_stream_chunk_hook(): i32 {
  return runStreamChunk(onChunk);
}
function onChunk(ctx: Context, chunk: Value): ChunkResult {
  const choice = chunk.get("choices") !== null ? chunk.get("choices")!.at(0) : null;
  const delta = choice !== null ? choice.get("delta") : null;
  const text = delta !== null ? delta.getString("content") : null;
  if (ctx.streamEnd) ctx.set("features.stream_done", Value.bool(true));
  if (text == "drop") return ChunkResult.drop();
  if (text == "error") return ChunkResult.error("stream stopped", 500, "stopped");
  if (text == "replace") return ChunkResult.replace(Value.map().set("replaced", Value.bool(true)));
  if (text == "edit" && delta !== null) delta.set("content", Value.str("EDITED ✓"));
  return ChunkResult.pass();
}

// ---- LLM pre: params, messages, short-circuits

export function pre_llm_hook(): i32 {
  return runPreLlm(onPreLlm);
}
function onPreLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  const last = req.lastMessage();
  const text = last !== null ? last.content : null;
  if (text == "cached") {
    const r = LlmResponse.assistant(req.model, "from cache ✓", "chatcmpl-cache");
    r.created = 1700000000;
    r.usage = new LlmUsage(0, 0, 0);
    return LlmPreResult.respond(r);
  }
  if (text == "blocked") {
    const e = LlmError.final("blocked by policy", 403);
    e.type = "policy";
    return LlmPreResult.error(e);
  }
  if (text == "retryable") return LlmPreResult.error(new LlmError("try the next one", 503, Tri.True));
  if (text == "noop") return LlmPreResult.continue();

  // Reading params: a float, an int, a bool, a nested map.
  const t = req.param("temperature");
  const rf = req.param("response_format");
  logInfo("temperature " + (t !== null ? t.asFloat().toString() : "-") +
    " max_tokens " + (req.param("max_tokens") !== null ? req.param("max_tokens")!.asInt().toString() : "-") +
    " logprobs " + (req.param("logprobs") !== null ? req.param("logprobs")!.asBool().toString() : "-") +
    " format " + (rf !== null ? (rf.getString("type") || "?") : "-") +
    " fallback " + ctx.fallbackIndex.toString());
  req.setParam("temperature", Value.float(0.25));
  req.removeParam("logprobs");
  req.setParam("metadata", Value.map().set("tags", Value.array().push(Value.str("a")).push(Value.int(-5000000000))));
  req.messages.unshift(new LlmMessage("system", "Answer in French. Réponds en français."));
  if (req.provider == "openai") req.provider = "azure";
  return LlmPreResult.continue();
}

export function pre_hook(): i32 { // legacy name of pre_llm_hook
  return runPreLlm(onPreLlm);
}

// ---- LLM post: edit, recover, turn into an error

export function post_llm_hook(): i32 {
  return runPostLlm(onPostLlm);
}
function onPostLlm(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  if (error !== null) {
    if (error.status == 429) {
      const r = LlmResponse.assistant("fallback-model", "recovered from: " + error.message);
      return LlmPostResult.respond(r);
    }
    if (error.allowFallbacks == Tri.Unset) {
      error.allowFallbacks = Tri.False; // edited in place: sent back because it changed
      error.message = error.message + " (no fallbacks)";
    }
    return LlmPostResult.continue();
  }
  if (response !== null) {
    const text = response.text;
    if (text == "forbidden") return LlmPostResult.error(LlmError.final("response withheld", 451));
    if (text == "noop") return LlmPostResult.continue();
    response.setText((text !== null ? text : "") + " [reviewed]");
  }
  return LlmPostResult.continue();
}

export function post_hook(): i32 { // legacy name of post_llm_hook
  return runPostLlm(onPostLlm);
}

// ---- legacy transport_interceptor

export function transport_interceptor(): i32 {
  return runTransportInterceptor(onIntercept);
}
function onIntercept(ctx: Context, req: InterceptorRequest): InterceptorResult {
  if (req.url.endsWith("/deny")) return InterceptorResult.error("interceptor said no", 401);
  if (req.url.endsWith("/noop")) return InterceptorResult.continue();
  req.headers.set("x-intercepted", "yes");
  if (req.body.isMap) req.body.set("intercepted", Value.bool(true));
  return InterceptorResult.continue();
}

// ---- failures

export function abort_on_purpose(): i32 {
  logWarn("about to abort");
  throw new Error("deliberate failure ✗");
}

// ---- Value API (kinds, accessors, JSON)

export function value_api(): i32 {
  return runGetName(valueReport());
}
function valueReport(): string {
  const m = Value.map()
    .set("nil", Value.nil())
    .set("t", Value.bool(true))
    .set("i", Value.int(-42))
    .set("f", Value.float(1.5))
    .set("s", Value.str("é\"\n"))
    .set("b", Value.bin(Uint8Array.wrap(String.UTF8.encode("hi"))))
    .set("a", Value.array([Value.int(1), Value.str("x")]));
  const parts = new Array<string>();
  parts.push(m.toJSON());
  parts.push(m.get("i")!.asFloat().toString());
  parts.push(m.get("f")!.asInt().toString());
  parts.push(m.get("s")!.asInt(7).toString());
  parts.push(m.get("a")!.length.toString());
  parts.push(m.get("a")!.at(5) === null ? "no-at-5" : "at-5");
  parts.push(m.has("nil") && m.get("nil")!.isNil ? "nil-ok" : "nil-bad");
  parts.push(m.keys().join(","));
  parts.push(m.remove("t") && !m.has("t") ? "removed" : "not-removed");
  parts.push(m.get("b")!.kind == ValueKind.Bin ? "bin" : "?");
  const back = Value.decode(m.encode());
  parts.push(back.toJSON() == m.toJSON() ? "roundtrip-ok" : "roundtrip-bad");
  return parts.join(" | ");
}
