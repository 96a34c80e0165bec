// Conformance plugin: round-trips the vectors in plugin-pdk/conformance/vectors.json
// through the PDK, and reproduces the output vectors with the hook runners.
// Built by scripts/build-plugins.mjs to ../build/conformance.wasm; driven by
// conformance.test.mjs.

import {
  Context, HttpRequest, HttpResponse, InitResult, LlmError, LlmPostResult, LlmPreResult, LlmRequest, LlmResponse,
  PostResult, PreResult, Reader, Value,
  outputWriter, readInput, readValue, writeOutput, writeValue,
  runInit, runPostLlm, runPreLlm, runTransportPost, runTransportPre,
} from "../assembly";

export { sandgate_abi_v1 } from "../assembly";

// ---- dynamic Value: decode anything, re-encode

export function roundtrip(): i32 {
  const r = readInput();
  const v = readValue(r);
  if (r.remaining != 0) throw new Error("trailing bytes after the value");
  const w = outputWriter();
  writeValue(w, v);
  writeOutput(w);
  return 0;
}

// ---- typed envelopes: decode with the PDK's typed decoders, re-encode in full

function envelope(): Reader {
  return readInput();
}

export function rt_transport_pre(): i32 {
  const r = envelope();
  let ctx = new Context();
  let req = new HttpRequest();
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("req")) req = HttpRequest.decode(r);
    else r.skip();
  }
  const w = outputWriter();
  w.mapHeader(2);
  w.str("ctx"); ctx.encodeFull(w);
  w.str("req"); req.encodeFull(w);
  writeOutput(w);
  return 0;
}

export function rt_transport_post(): i32 {
  const r = envelope();
  let ctx = new Context();
  let req = new HttpRequest();
  let resp = new HttpResponse();
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("req")) req = HttpRequest.decode(r);
    else if (r.keyIs("resp")) resp = HttpResponse.decode(r);
    else r.skip();
  }
  const w = outputWriter();
  w.mapHeader(3);
  w.str("ctx"); ctx.encodeFull(w);
  w.str("req"); req.encodeFull(w);
  w.str("resp"); resp.encodeFull(w);
  writeOutput(w);
  return 0;
}

export function rt_llm_pre(): i32 {
  const r = envelope();
  let ctx = new Context();
  let req = new LlmRequest();
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("req")) req = LlmRequest.decode(r);
    else r.skip();
  }
  const w = outputWriter();
  w.mapHeader(2);
  w.str("ctx"); ctx.encodeFull(w);
  w.str("req"); req.encodeFull(w);
  writeOutput(w);
  return 0;
}

export function rt_llm_post(): i32 {
  const r = envelope();
  let ctx = new Context();
  let resp: LlmResponse | null = null;
  let err: LlmError | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("response")) resp = LlmResponse.decode(r);
    else if (r.keyIs("error")) err = LlmError.decode(r);
    else r.skip();
  }
  const w = outputWriter();
  w.mapHeader(1 + (resp !== null ? 1 : 0) + (err !== null ? 1 : 0));
  w.str("ctx"); ctx.encodeFull(w);
  if (resp !== null) { w.str("response"); resp.encode(w); }
  if (err !== null) { w.str("error"); err.encode(w); }
  writeOutput(w);
  return 0;
}

/** {ctx?, error: LlmError} (LlmPreOutput with an error). */
export function rt_llm_error(): i32 {
  const r = envelope();
  let ctx: Value | null = null;
  let err = new LlmError("");
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = readValue(r);
    else if (r.keyIs("error")) err = LlmError.decode(r);
    else r.skip();
  }
  const w = outputWriter();
  w.mapHeader(ctx !== null ? 2 : 1);
  if (ctx !== null) { w.str("ctx"); writeValue(w, ctx); }
  w.str("error"); err.encode(w);
  writeOutput(w);
  return 0;
}

// ---- hook runners: given an input vector, produce the matching output vector

// transport-pre-input -> transport-pre-output (ABI.md §6)
export function emit_transport_pre_output(): i32 {
  return runTransportPre(setGreeting);
}
function setGreeting(ctx: Context, req: HttpRequest): PreResult {
  ctx.set("greeting", Value.str("hi"));
  req.setHeader("X-Custom-Header", "custom-value");
  return PreResult.continue();
}

// transport-pre-input -> transport-pre-output-short-circuit
export function emit_transport_pre_short_circuit(): i32 {
  return runTransportPre(deny);
}
function deny(ctx: Context, req: HttpRequest): PreResult {
  ctx.set("auth.denied", Value.bool(true));
  req.setHeader("x-ignored", "a short-circuit drops request changes");
  return PreResult.respond(HttpResponse.text(403, "forbidden ⛔"));
}

// transport-post-input-body-utf8 -> transport-post-output-error
export function emit_transport_post_error(): i32 {
  return runTransportPost(failPost);
}
function failPost(ctx: Context, req: HttpRequest, resp: HttpResponse): PostResult {
  return PostResult.error("upstream said no", 502, "bad_gateway");
}

// init-input -> init-output
export function emit_init_output(): i32 {
  return runInit(noBodies);
}
function noBodies(config: Value, name: string): InitResult {
  if (name != "hello-world" || config.getString("greeting") != "hi") return InitResult.error("unexpected init input");
  if (config.get("limits")!.getFloat("burst") != 1.5) return InitResult.error("unexpected burst");
  return InitResult.ok().requestBody(false).responseBody(false).streamDeltas(false);
}

// llm-pre-input -> llm-pre-output-patch
export function emit_llm_pre_patch(): i32 {
  return runPreLlm(patchLlm);
}
function patchLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  ctx.set("guard.checked", Value.bool(true));
  req.model = "gpt-4o";
  req.setParam("temperature", Value.float(0.2));
  req.removeParam("max_tokens");
  return LlmPreResult.continue();
}

// llm-pre-input -> llm-pre-output-error-no-fallbacks
export function emit_llm_pre_error(): i32 {
  return runPreLlm(blockLlm);
}
function blockLlm(ctx: Context, req: LlmRequest): LlmPreResult {
  ctx.set("guard.verdict", Value.str("deny"));
  const e = LlmError.final("blocked by policy", 403);
  e.type = "policy_error";
  e.code = "content_blocked";
  return LlmPreResult.error(e);
}

// llm-post-input-*: unchanged input must produce no output at all
export function emit_llm_post_noop(): i32 {
  return runPostLlm(noop);
}
function noop(ctx: Context, resp: LlmResponse | null, err: LlmError | null): LlmPostResult {
  return LlmPostResult.continue();
}

