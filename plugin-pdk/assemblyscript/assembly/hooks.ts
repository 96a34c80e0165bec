// Hook runners: each reads the input envelope, calls your handler, writes
// only what changed, and frees the call's garbage. A plugin exports the hook
// under its ABI name and delegates:
//
//   export function http_transport_pre_hook(): i32 { return runTransportPre(onPre); }
//
// Handlers are top-level functions (AssemblyScript closures cannot capture
// locals); keep state across calls in module-level variables.

import { Context } from "./context";
import { readInput, outputWriter, writeOutput } from "./host";
import { HttpRequest, HttpResponse, readStringMap, writeStringMap } from "./http";
import { LlmError, LlmRequest, LlmResponse } from "./llm";
import { Reader } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";
import {
  ChunkResult, InitResult, InterceptorResult, LlmPostResult, LlmPreResult, Outcome, PostResult, PreResult,
} from "./results";
import { Value, readValue, writeValue } from "./value";

export type InitHandler = (config: Value, name: string) => InitResult;
export type CleanupHandler = () => void;
export type TransportPreHandler = (ctx: Context, req: HttpRequest) => PreResult;
export type TransportPostHandler = (ctx: Context, req: HttpRequest, resp: HttpResponse) => PostResult;
export type ChunkHandler = (ctx: Context, chunk: Value) => ChunkResult;
export type LlmPreHandler = (ctx: Context, req: LlmRequest) => LlmPreResult;
export type LlmPostHandler = (ctx: Context, response: LlmResponse | null, error: LlmError | null) => LlmPostResult;
export type InterceptorHandler = (ctx: Context, req: InterceptorRequest) => InterceptorResult;

// ---- shared plumbing

/**
 * Ends a hook call: sends the output map if it has entries (an absent output
 * means "continue, nothing changed", ABI.md §3), then frees the call's objects.
 */
function finish(w: Writer, at: usize, n: i32): i32 {
  if (n > 0) {
    w.endSmallMap(at, n);
    writeOutput(w);
  }
  // With `--runtime minimal` nothing is freed until __collect() runs, and it
  // must run with no managed references on the stack: the end of an exported
  // hook is exactly that point. (incremental collects by itself; stub never frees.)
  if (ASC_RUNTIME == 1 /* Runtime.Minimal */) __collect();
  return 0;
}

/**
 * Where a value sat in the input, for "did the handler change it?". Holds the
 * input itself, so the bytes stay alive under any runtime until compared.
 */
class Span {
  constructor(public input: Uint8Array, public off: usize, public len: usize) {}
}

/** The span from `start` to the reader's position (call after decoding a value that began at `start`). */
function spanFrom(r: Reader, start: usize): Span {
  const input = r.source!;
  return new Span(input, start - input.dataStart, r.pos - start);
}

/** True if the bytes written since `valAt` equal the span's. */
function unchanged(w: Writer, valAt: usize, s: Span | null): bool {
  return s !== null && w.sameSince(valAt, s.input.dataStart + s.off, s.len);
}

/** Writes `ctx` (the patch) if the handler changed the context; returns 1 if written. */
function ctxField(w: Writer, ctx: Context): i32 {
  if (!ctx.changed) return 0;
  w.str("ctx");
  ctx.encodePatch(w);
  return 1;
}

// ---- init / get_name / cleanup

export function runInit(fn: InitHandler): i32 {
  const r = readInput();
  let config = Value.nil();
  let name = "";
  const n = r.remaining > 0 ? r.readMapHeaderOrNil() : 0;
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("config")) config = readValue(r);
    else if (r.keyIs("name")) name = r.readStringOrNull() || "";
    else r.skip();
  }
  const res = fn(config, name);
  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = 0;
  const err = res.error;
  if (err !== null) { w.str("error"); w.str(err); k++; }
  if (res.requestBodyFlag >= 0) { w.str("request_body"); w.bool(res.requestBodyFlag == 1); k++; }
  if (res.responseBodyFlag >= 0) { w.str("response_body"); w.bool(res.responseBodyFlag == 1); k++; }
  if (res.streamDeltasFlag >= 0) { w.str("stream_deltas"); w.bool(res.streamDeltasFlag == 1); k++; }
  return finish(w, at, k);
}

/** get_name: answers with `name` as a MessagePack str. */
export function runGetName(name: string): i32 {
  const w = outputWriter();
  w.str(name);
  writeOutput(w);
  return 0;
}

export function runCleanup(fn: CleanupHandler): i32 {
  fn();
  if (ASC_RUNTIME == 1 /* Runtime.Minimal */) __collect();
  return 0;
}

// ---- transport hooks

export function runTransportPre(fn: TransportPreHandler): i32 {
  const r = readInput();
  let ctx: Context | null = null;
  let req: HttpRequest | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("req")) req = HttpRequest.decode(r);
    else r.skip();
  }
  const c = ctx !== null ? ctx : new Context();
  const q = req !== null ? req : new HttpRequest();
  const res = fn(c, q);

  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = ctxField(w, c);
  if (res.outcome == Outcome.Continue) {
    const mark = w.len;
    w.str("req");
    if (q.encodePatch(w) > 0) k++; else w.len = mark;
  } else if (res.outcome == Outcome.Respond) {
    w.str("response"); res.response!.encodeFull(w); k++;
  } else {
    w.str("error"); res.error!.encode(w); k++;
  }
  return finish(w, at, k);
}

export function runTransportPost(fn: TransportPostHandler): i32 {
  const r = readInput();
  let ctx: Context | null = null;
  let req: HttpRequest | null = null;
  let resp: HttpResponse | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("req")) req = HttpRequest.decode(r);
    else if (r.keyIs("resp")) resp = HttpResponse.decode(r);
    else r.skip();
  }
  const c = ctx !== null ? ctx : new Context();
  const s = resp !== null ? resp : new HttpResponse(200);
  const res = fn(c, req !== null ? req : new HttpRequest(), s);

  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = ctxField(w, c);
  if (res.outcome == Outcome.Continue) {
    const mark = w.len;
    w.str("resp");
    if (s.encodePatch(w) > 0) k++; else w.len = mark;
  } else {
    w.str("error"); res.error!.encode(w); k++;
  }
  return finish(w, at, k);
}

export function runStreamChunk(fn: ChunkHandler): i32 {
  const r = readInput();
  let ctx: Context | null = null;
  let chunk: Value | null = null;
  let chunkSpan: Span | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("chunk")) {
      const at = r.pos;
      chunk = readValue(r);
      chunkSpan = spanFrom(r, at);
    } else r.skip();
  }
  const c = ctx !== null ? ctx : new Context();
  const ch = chunk !== null ? chunk : Value.map();
  const res = fn(c, ch);

  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = ctxField(w, c);
  if (res.outcome == Outcome.Continue) {
    // Edited in place? Send it only if its bytes changed.
    const mark = w.len;
    w.str("chunk");
    const valAt = w.len;
    writeValue(w, ch);
    if (unchanged(w, valAt, chunkSpan)) w.len = mark; else k++;
  } else if (res.outcome == Outcome.Replace) {
    w.str("chunk"); writeValue(w, res.chunk!); k++;
  } else if (res.outcome == Outcome.Drop) {
    w.str("drop"); w.bool(true); k++;
  } else {
    w.str("error"); res.error!.encode(w); k++;
  }
  return finish(w, at, k);
}

// ---- LLM hooks (also the legacy pre_hook / post_hook: same envelopes)

export function runPreLlm(fn: LlmPreHandler): i32 {
  const r = readInput();
  let ctx: Context | null = null;
  let req: LlmRequest | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("req")) req = LlmRequest.decode(r);
    else r.skip();
  }
  const c = ctx !== null ? ctx : new Context();
  const q = req !== null ? req : new LlmRequest();
  const res = fn(c, q);

  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = ctxField(w, c);
  if (res.outcome == Outcome.Continue) {
    const mark = w.len;
    w.str("req");
    if (q.encodePatch(w) > 0) k++; else w.len = mark;
  } else if (res.outcome == Outcome.Respond) {
    w.str("response"); res.response!.encode(w); k++;
  } else {
    w.str("error"); res.error!.encode(w); k++;
  }
  return finish(w, at, k);
}

export function runPostLlm(fn: LlmPostHandler): i32 {
  const r = readInput();
  let ctx: Context | null = null;
  let resp: LlmResponse | null = null;
  let err: LlmError | null = null;
  let respSpan: Span | null = null;
  let errSpan: Span | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("response")) {
      const at = r.pos;
      resp = r.tryNil() ? null : LlmResponse.decode(r);
      respSpan = spanFrom(r, at);
    } else if (r.keyIs("error")) {
      const at = r.pos;
      err = r.tryNil() ? null : LlmError.decode(r);
      errSpan = spanFrom(r, at);
    } else r.skip();
  }
  const c = ctx !== null ? ctx : new Context();
  const res = fn(c, resp, err);

  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = ctxField(w, c);
  if (res.outcome == Outcome.Continue) {
    // Edited in place? Send back whichever result changed.
    if (resp !== null) {
      const mark = w.len;
      w.str("response");
      const valAt = w.len;
      resp.encode(w);
      if (unchanged(w, valAt, respSpan)) w.len = mark; else k++;
    } else if (err !== null) {
      const mark = w.len;
      w.str("error");
      const valAt = w.len;
      err.encode(w);
      if (unchanged(w, valAt, errSpan)) w.len = mark; else k++;
    }
  } else if (res.outcome == Outcome.Respond) {
    w.str("response"); res.response!.encode(w); k++;
  } else {
    w.str("error"); res.error!.encode(w); k++;
  }
  return finish(w, at, k);
}

// ---- legacy transport_interceptor (ABI.md §5.6)

export class InterceptorRequest {
  url: string = "";
  /** Edit in place: the whole map is sent back if it changed (it replaces all headers). */
  headers: Map<string, string> = new Map<string, string>();
  /** The JSON body parsed (a map), or nil. Edit in place or assign a new map. */
  body: Value = Value.nil();
}

export function runTransportInterceptor(fn: InterceptorHandler): i32 {
  const r = readInput();
  let ctx: Context | null = null;
  const req = new InterceptorRequest();
  let hSpan: Span | null = null;
  let bSpan: Span | null = null;
  const n = r.readMapHeader();
  for (let i = 0; i < n; i++) {
    r.readStrRaw();
    if (r.keyIs("ctx")) ctx = Context.decode(r);
    else if (r.keyIs("url")) req.url = r.readString();
    else if (r.keyIs("headers")) {
      const at = r.pos;
      req.headers = readStringMap(r);
      hSpan = spanFrom(r, at);
    } else if (r.keyIs("body")) {
      const at = r.pos;
      req.body = readValue(r);
      bSpan = spanFrom(r, at);
    } else r.skip();
  }
  const c = ctx !== null ? ctx : new Context();
  const res = fn(c, req);

  const w = outputWriter();
  const at = w.beginSmallMap();
  let k = ctxField(w, c);
  if (res.outcome == Outcome.Continue) {
    let mark = w.len;
    w.str("headers");
    let valAt = w.len;
    writeStringMap(w, req.headers);
    if (unchanged(w, valAt, hSpan)) w.len = mark; else k++;
    if (req.body.isMap) { // InterceptorOutput.body must be a map: nil cannot be sent back
      mark = w.len;
      w.str("body");
      valAt = w.len;
      writeValue(w, req.body);
      if (unchanged(w, valAt, bSpan)) w.len = mark; else k++;
    }
  } else {
    w.str("error"); res.error!.encode(w); k++;
  }
  return finish(w, at, k);
}
