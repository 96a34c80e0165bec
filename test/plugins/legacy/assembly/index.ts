// legacy: a plugin written against the older interface. It exports only the
// legacy hooks (`transport_interceptor`, `pre_hook`, `post_hook`), which the
// gateway must honour when the current names are absent (docs/hook-semantics.md, "The hooks").
//
// config = {
//   "interceptor": { "set_header": {name: value}, "set_body": {field: value}, "error": {message, status, code} },
//   "pre_hook":    { "append": "text" },    // appended to the last user message
//   "post_hook":   { "append": "text" }     // appended to the response's content
// }

import {
  Context, InitResult, InterceptorRequest, InterceptorResult, LlmError, LlmPostResult, LlmPreResult, LlmRequest,
  LlmResponse, Value, runInit, runPostLlm, runPreLlm, runTransportInterceptor,
} from "../../../../plugin-pdk/assemblyscript/assembly";

export { sandgate_abi_v1 } from "../../../../plugin-pdk/assemblyscript/assembly";

/** "" for null. */
function orEmpty(s: string | null): string {
  if (s === null) return "";
  return s;
}

let config: Value = Value.map();

function section(name: string): Value {
  const s = config.get(name);
  return s !== null && s.isMap ? s : Value.map();
}

export function init(): i32 {
  return runInit(onInit);
}

function onInit(cfg: Value, name: string): InitResult {
  config = cfg.isMap ? cfg : Value.map();
  return InitResult.ok();
}

// Headers and the JSON body (as a map) in; the changed headers (all of them) and body out; an error short-circuits.
export function transport_interceptor(): i32 {
  return runTransportInterceptor(onIntercept);
}

function onIntercept(ctx: Context, req: InterceptorRequest): InterceptorResult {
  const a = section("interceptor");
  ctx.setString("legacy.url", req.url);
  const err = a.get("error");
  if (err !== null) {
    const msg = err.getString("message");
    return InterceptorResult.error(msg !== null ? msg : "rejected", <i32>err.getInt("status", 500), err.getString("code"));
  }
  const headers = a.get("set_header");
  if (headers !== null) {
    const keys = headers.keys();
    for (let i = 0; i < keys.length; i++) {
      const v = headers.getString(keys[i]);
      req.headers.set(keys[i], v !== null ? v : "");
    }
  }
  const fields = a.get("set_body");
  if (fields !== null && req.body.isMap) {
    const keys = fields.keys();
    for (let i = 0; i < keys.length; i++) req.body.set(keys[i], fields.get(keys[i])!);
  }
  return InterceptorResult.continue();
}

// The old name of pre_llm_hook: same envelopes.
export function pre_hook(): i32 {
  return runPreLlm(onPre);
}

function onPre(ctx: Context, req: LlmRequest): LlmPreResult {
  const s = section("pre_hook").getString("append");
  const last = req.lastMessage("user");
  if (s === null || last === null) return LlmPreResult.continue();
  const old = last.content;
  last.content = orEmpty(old) + s;
  return LlmPreResult.continue();
}

// The old name of post_llm_hook.
export function post_hook(): i32 {
  return runPostLlm(onPost);
}

function onPost(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  const s = section("post_hook").getString("append");
  if (s === null || response === null) return LlmPostResult.continue();
  const old = response.text;
  response.setText(orEmpty(old) + s);
  return LlmPostResult.continue();
}
