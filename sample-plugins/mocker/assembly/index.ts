// mocker: answers LLM requests from rules in its config, without calling a
// provider: a canned completion, or an error (status, code, message,
// allow_fallbacks). For testing clients, retries and fallback chains offline.
//
// A rule matches on the model and/or a substring of the last user message; the
// first rule that matches answers in pre_llm_hook (a short-circuit). No match:
// the request goes to the provider as usual. Each fallback attempt runs
// pre_llm_hook again with that attempt's model, so a rule can fail the primary
// and let a fallback through (or answer it too).
//
// Streaming needs nothing here: the gateway sends a short-circuit response to a
// stream request as one SSE chunk (each message as the delta, finish_reason
// "stop") then [DONE]; a short-circuit error before the stream is an ordinary
// JSON error response (ABI.md §5.5).

import {
  Context, InitResult, LlmError, LlmPreResult, LlmRequest, LlmResponse, Tri, Value,
  logInfo, runGetName, runInit, runPreLlm,
} from "../../../plugin-pdk/assemblyscript/assembly";

// Required: the ABI marker (the gateway refuses modules without it).
export { sandgate_abi_v1 } from "../../../plugin-pdk/assemblyscript/assembly";

class Rule {
  /** Exact model ("gpt-4o" or "mock/gpt-4o"), a prefix ending in "*", or null (any model). */
  model: string | null = null;
  /** A substring of the last user message, or null (any content). */
  contains: string | null = null;
  /** The completion's content; null when the rule answers with an error. */
  respond: string | null = null;
  error: LlmError | null = null;
}

// Configuration: the same in every instance (each runs init with the plugin's config).
let rules: Rule[] = [];

const RULE_KEYS = ["model", "contains", "respond", "error"];
const ERROR_KEYS = ["message", "status", "code", "type", "allow_fallbacks"];

export function init(): i32 {
  return runInit(onInit);
}

function onInit(config: Value, name: string): InitResult {
  rules = [];
  const list = config.isMap ? config.get("rules") : null;
  const items = list !== null ? list.asArray() : null;
  if (items === null || items.length == 0) {
    return InitResult.error('config.rules must be a non-empty array of rules, e.g. [{ "model": "gpt-4o", "respond": "Hello!" }]');
  }
  for (let i = 0; i < items.length; i++) {
    const at = "config.rules[" + i.toString() + "]";
    const problem = parseRule(unchecked(items[i]), at);
    if (problem !== null) return InitResult.error(problem);
  }
  // Only pre_llm_hook: HTTP bodies are never needed.
  return InitResult.ok().requestBody(false).responseBody(false);
}

/** Appends the rule to `rules`, or returns what is wrong with it. */
function parseRule(v: Value, at: string): string | null {
  if (!v.isMap) return at + " must be an object";
  const unknown = unknownKey(v, RULE_KEYS);
  if (unknown !== null) return at + ': unknown key "' + unknown + '" (known: ' + RULE_KEYS.join(", ") + ")";
  const rule = new Rule();

  const model = v.get("model");
  if (model !== null) {
    const s = model.asString();
    if (s === null || s.length == 0) return at + ".model must be a non-empty string";
    rule.model = s;
  }
  const contains = v.get("contains");
  if (contains !== null) {
    const s = contains.asString();
    if (s === null || s.length == 0) return at + ".contains must be a non-empty string";
    rule.contains = s;
  }
  if (rule.model === null && rule.contains === null) {
    return at + ' needs "model" and/or "contains" (use "model": "*" to match every request)';
  }

  const respond = v.get("respond");
  const error = v.get("error");
  if ((respond === null) == (error === null)) return at + ' needs exactly one of "respond" (the answer\'s text) or "error" (an object)';
  if (respond !== null) {
    const s = respond.asString();
    if (s === null) return at + ".respond must be a string (the answer's content)";
    rule.respond = s;
  } else {
    const e = changetype<Value>(error);
    if (!e.isMap) return at + '.error must be an object: { "message", "status", "code", "type", "allow_fallbacks" }';
    const bad = unknownKey(e, ERROR_KEYS);
    if (bad !== null) return at + '.error: unknown key "' + bad + '" (known: ' + ERROR_KEYS.join(", ") + ")";
    const message = e.getString("message");
    if (message === null || message.length == 0) return at + ".error.message must be a non-empty string";
    const status = e.get("status");
    let code = 503;
    if (status !== null) {
      code = <i32>status.asInt(0);
      if (!status.isInt || code < 400 || code > 599) return at + ".error.status must be an HTTP error status (400-599)";
    }
    const err = new LlmError(message, code);
    err.code = optionalString(e, "code", "mock_error");
    err.type = optionalString(e, "type", "upstream_error");
    if (err.code === null) return at + ".error.code must be a string";
    if (err.type === null) return at + ".error.type must be a string";
    const fallbacks = e.get("allow_fallbacks");
    if (fallbacks !== null && !fallbacks.isBool) return at + ".error.allow_fallbacks must be true or false";
    err.allowFallbacks = fallbacks === null || fallbacks.asBool(true) ? Tri.True : Tri.False;
    rule.error = err;
  }
  rules.push(rule);
  return null;
}

function unknownKey(v: Value, known: string[]): string | null {
  const keys = v.keys();
  for (let i = 0; i < keys.length; i++) if (!known.includes(unchecked(keys[i]))) return unchecked(keys[i]);
  return null;
}

/** The string at `key`, `def` when absent, null when present but not a string. */
function optionalString(v: Value, key: string, def: string): string | null {
  const x = v.get(key);
  if (x === null) return def;
  return x.asString();
}

export function get_name(): i32 {
  return runGetName("mocker");
}

export function pre_llm_hook(): i32 {
  return runPreLlm(onPreLlm);
}

function onPreLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  for (let i = 0; i < rules.length; i++) {
    const rule = unchecked(rules[i]);
    if (!modelMatches(rule.model, req) || !contentMatches(rule.contains, req)) continue;
    const target = req.provider + "/" + req.model;
    const respond = rule.respond;
    if (respond !== null) {
      logInfo("mocker: rule " + i.toString() + " answered " + target);
      return LlmPreResult.respond(LlmResponse.assistant(req.model, respond, "chatcmpl-mocker"));
    }
    logInfo("mocker: rule " + i.toString() + " failed " + target);
    const template = changetype<LlmError>(rule.error);
    // A fresh error per request: the encoder writes provider/model of this attempt.
    const err = new LlmError(template.message, template.status, template.allowFallbacks);
    err.code = template.code;
    err.type = template.type;
    err.provider = req.provider;
    err.model = req.model;
    return LlmPreResult.error(err);
  }
  return LlmPreResult.continue();
}

function modelMatches(pattern: string | null, req: LlmRequest): bool {
  if (pattern === null || pattern == "*") return true;
  const full = req.provider + "/" + req.model;
  if (pattern.endsWith("*")) {
    const prefix = pattern.slice(0, pattern.length - 1);
    return req.model.startsWith(prefix) || full.startsWith(prefix);
  }
  return req.model == pattern || full == pattern;
}

function contentMatches(needle: string | null, req: LlmRequest): bool {
  if (needle === null) return true;
  const last = req.lastMessage("user");
  if (last === null) return false;
  const content = last.content;
  return content !== null && content.includes(needle);
}
