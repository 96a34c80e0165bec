// json-guard: when a request asks for JSON (`response_format` {type:
// "json_object"} or {type: "json_schema", ...}), checks that the answer's
// content parses as JSON (json_object: a JSON object) before the client gets
// it. Per config it either repairs the usual near-misses (``` fences, text
// around the JSON) and checks again, or rejects the answer with an LlmError
// (which can move the request to its next fallback).
//
// The post hook has no request, so pre_llm_hook notes the asked-for format in
// the context. Streamed answers are not checked: their chunks are already on
// the way to the client (see the README for why it does not buffer).

import {
  Context, InitResult, LlmError, LlmPostResult, LlmPreResult, LlmRequest, LlmResponse, Tri, Value,
  logInfo, runGetName, runInit, runPostLlm, runPreLlm,
} from "../../../plugin-pdk/assemblyscript/assembly";
import { checkJson, jsonProblem } from "./json";
import { repairJson } from "./repair";

// Required: the ABI marker (the gateway refuses modules without it).
export { sandgate_abi_v1 } from "../../../plugin-pdk/assemblyscript/assembly";

const FORMAT_KEY = "json-guard.format";
const KEYS = ["mode", "status", "code", "allow_fallbacks"];

// Configuration: the same in every instance (each runs init with the plugin's config).
let repair = true;
let status = 502;
let code = "invalid_json_response";
let allowFallbacks = true;

export function init(): i32 {
  return runInit(onInit);
}

function onInit(config: Value, name: string): InitResult {
  repair = true;
  status = 502;
  code = "invalid_json_response";
  allowFallbacks = true;
  if (!config.isMap) {
    if (!config.isNil) return InitResult.error("config must be an object: { mode, status, code, allow_fallbacks }");
    return InitResult.ok().requestBody(false).responseBody(false).streamDeltas(false);
  }
  const keys = config.keys();
  for (let i = 0; i < keys.length; i++) {
    const k = unchecked(keys[i]);
    if (!KEYS.includes(k)) return InitResult.error('config: unknown key "' + k + '" (known: ' + KEYS.join(", ") + ")");
  }
  const mode = config.get("mode");
  if (mode !== null) {
    const m = mode.asString();
    if (m === null || (m != "repair" && m != "reject")) return InitResult.error('config.mode must be "repair" or "reject"');
    repair = m == "repair";
  }
  const s = config.get("status");
  if (s !== null) {
    status = <i32>s.asInt(0);
    if (!s.isInt || status < 400 || status > 599) return InitResult.error("config.status must be an HTTP error status (400-599)");
  }
  const c = config.get("code");
  if (c !== null) {
    const str = c.asString();
    if (str === null || str.length == 0) return InitResult.error("config.code must be a non-empty string");
    code = str;
  }
  const f = config.get("allow_fallbacks");
  if (f !== null) {
    if (!f.isBool) return InitResult.error("config.allow_fallbacks must be true or false");
    allowFallbacks = f.asBool(true);
  }
  // The LLM hooks see the parsed request and response: HTTP bodies are never needed. Streams are
  // not checked (README), so post_llm_hook need not be called per streamed delta either.
  return InitResult.ok().requestBody(false).responseBody(false).streamDeltas(false);
}

export function get_name(): i32 {
  return runGetName("json-guard");
}

export function pre_llm_hook(): i32 {
  return runPreLlm(onPreLlm);
}

function onPreLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  const format = req.param("response_format");
  const type = format !== null ? format.getString("type") : null;
  if (type === null || (type != "json_object" && type != "json_schema")) return LlmPreResult.continue();
  if (req.stream) {
    logInfo("json-guard: stream answers are not checked (response_format " + type + ")");
    return LlmPreResult.continue();
  }
  if (ctx.getString(FORMAT_KEY) != type) ctx.setString(FORMAT_KEY, type);
  return LlmPreResult.continue();
}

export function post_llm_hook(): i32 {
  return runPostLlm(onPostLlm);
}

function onPostLlm(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  const format = ctx.getString(FORMAT_KEY);
  if (format === null || response === null) return LlmPostResult.continue();
  const needObject = format == "json_object";
  for (let i = 0; i < response.choices.length; i++) {
    const choice = unchecked(response.choices[i]);
    const message = choice.message;
    // A tool call answers with tool_calls, not content: nothing to check.
    if (message === null || choice.finishReason == "tool_calls") continue;
    const content = message.content;
    const text = content !== null ? content : "";
    if (checkJson(text, needObject)) continue;
    const problem = jsonProblem;
    if (repair) {
      const fixed = repairJson(text, needObject);
      if (fixed !== null) {
        logInfo("json-guard: repaired choice " + i.toString() + " (" + problem + ")");
        message.content = fixed;
        continue;
      }
    }
    const what = needObject ? "a JSON object" : "JSON";
    const err = new LlmError(
      "json-guard: the model's answer (choice " + i.toString() + ") is not " + what + " as response_format " + format + " asks: " + problem,
      status, allowFallbacks ? Tri.True : Tri.False,
    );
    err.code = code;
    err.type = "upstream_error";
    err.model = response.model;
    logInfo("json-guard: rejected choice " + i.toString() + " (" + problem + ")");
    return LlmPostResult.error(err);
  }
  return LlmPostResult.continue(); // repaired messages are edited in place: the runner sends them back
}
