// hello-world: the AssemblyScript twin of the reference Go hello-world plugin.
// It logs every hook, adds a request header, stores a context value in the
// pre-hook and reads it back in the post-hook (as the x-hello-context
// response header, so tests can see the value crossed hooks).

import {
  Context, HttpRequest, HttpResponse, InitResult, LlmError, LlmPostResult, LlmPreResult, LlmRequest, LlmResponse,
  PostResult, PreResult, Value, logDebug, logInfo, runCleanup, runGetName, runInit, runPostLlm, runPreLlm,
  runTransportPost, runTransportPre,
} from "../../../plugin-pdk/assemblyscript/assembly";

// Required: the ABI marker (the gateway refuses modules without it).
export { sandgate_abi_v1 } from "../../../plugin-pdk/assemblyscript/assembly";

const CONTEXT_KEY = "hello-world.greeting";

// init runs once per instance with the plugin's `config` from config.json.
export function init(): i32 {
  return runInit(onInit);
}

function onInit(config: Value, name: string): InitResult {
  logInfo("Init called");
  // This plugin only looks at headers: never send it bodies, whatever their size.
  // Its post_llm_hook does nothing with streamed deltas: no call per chunk.
  return InitResult.ok().requestBody(false).responseBody(false).streamDeltas(false);
}

export function get_name(): i32 {
  return runGetName("hello-world");
}

export function http_transport_pre_hook(): i32 {
  return runTransportPre(onTransportPre);
}

function onTransportPre(ctx: Context, req: HttpRequest): PreResult {
  logInfo("HTTPTransportPreHook called");
  const contentType = req.header("Content-Type"); // case-insensitive
  logDebug("Content-Type: " + (contentType !== null ? contentType : "(none)"));
  req.setHeader("x-custom-header", "custom-value");
  ctx.set(CONTEXT_KEY, Value.str("pre-hook-value"));
  return PreResult.continue();
}

export function http_transport_post_hook(): i32 {
  return runTransportPost(onTransportPost);
}

function onTransportPost(ctx: Context, req: HttpRequest, resp: HttpResponse): PostResult {
  logInfo("HTTPTransportPostHook called");
  resp.setHeader("x-processed-by", "hello-world");
  const greeting = ctx.getString(CONTEXT_KEY);
  if (greeting !== null) {
    logDebug("Context value: " + greeting);
    resp.setHeader("x-hello-context", greeting);
  }
  return PostResult.continue();
}

export function pre_llm_hook(): i32 {
  return runPreLlm(onPreLlm);
}

function onPreLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  logInfo("PreLLMHook called");
  return LlmPreResult.continue();
}

export function post_llm_hook(): i32 {
  return runPostLlm(onPostLlm);
}

function onPostLlm(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  logInfo("PostLLMHook called");
  return LlmPostResult.continue();
}

export function cleanup(): i32 {
  return runCleanup(onCleanup);
}

function onCleanup(): void {
  logInfo("Cleanup called");
}
