// shadowed: exports the current hooks AND their legacy names. The legacy ones
// must never be called (ABI.md §3: a legacy hook is used only if the current
// one is absent). Each hook leaves a mark, so a test sees which ones ran.

import {
  Context, HttpRequest, InterceptorRequest, InterceptorResult, LlmError, LlmPostResult, LlmPreResult, LlmRequest,
  LlmResponse, PreResult, runPostLlm, runPreLlm, runTransportInterceptor, runTransportPre,
} from "../../../../plugin-pdk/assemblyscript/assembly";

export { sandgate_abi_v1 } from "../../../../plugin-pdk/assemblyscript/assembly";

/** "" for null. */
function orEmpty(s: string | null): string {
  if (s === null) return "";
  return s;
}

function appendToUser(req: LlmRequest, s: string): void {
  const last = req.lastMessage("user");
  if (last === null) return;
  const old = last.content;
  last.content = orEmpty(old) + s;
}

function appendToResponse(response: LlmResponse | null, s: string): void {
  if (response === null) return;
  const old = response.text;
  response.setText(orEmpty(old) + s);
}

export function http_transport_pre_hook(): i32 {
  return runTransportPre(onPre);
}

function onPre(ctx: Context, req: HttpRequest): PreResult {
  req.setHeader("x-shadowed-current", "yes");
  return PreResult.continue();
}

export function transport_interceptor(): i32 {
  return runTransportInterceptor(onIntercept);
}

function onIntercept(ctx: Context, req: InterceptorRequest): InterceptorResult {
  return InterceptorResult.error("the legacy interceptor was called although http_transport_pre_hook exists", 500, "shadowed_legacy_called");
}

export function pre_llm_hook(): i32 {
  return runPreLlm(onPreLlm);
}

function onPreLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  appendToUser(req, "|current-pre");
  return LlmPreResult.continue();
}

export function pre_hook(): i32 {
  return runPreLlm(onPreHook);
}

function onPreHook(ctx: Context, req: LlmRequest): LlmPreResult {
  appendToUser(req, "|LEGACY-PRE");
  return LlmPreResult.continue();
}

export function post_llm_hook(): i32 {
  return runPostLlm(onPostLlm);
}

function onPostLlm(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  appendToResponse(response, "|current-post");
  return LlmPostResult.continue();
}

export function post_hook(): i32 {
  return runPostLlm(onPostHook);
}

function onPostHook(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  appendToResponse(response, "|LEGACY-POST");
  return LlmPostResult.continue();
}
