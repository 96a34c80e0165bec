// What a hook handler returns. Each hook has its own result type so that only
// the outcomes its envelope allows (ABI.md §5) can be expressed.

import { HookError, HttpResponse } from "./http";
import { LlmError, LlmResponse } from "./llm";
import { Value } from "./value";

export enum Outcome { Continue, Respond, Error, Replace, Drop }

/** http_transport_pre_hook: continue (with your request changes), short-circuit with a response, or fail. */
export class PreResult {
  constructor(
    public outcome: Outcome,
    public response: HttpResponse | null = null,
    public error: HookError | null = null,
  ) {}

  static continue(): PreResult { return new PreResult(Outcome.Continue); }
  /** Short-circuit: the client gets this response; the core and later pre-hooks are skipped. */
  static respond(response: HttpResponse): PreResult { return new PreResult(Outcome.Respond, response); }
  /** Short-circuit with an error response (`status`, an OpenAI-shaped error body). */
  static error(message: string, status: i32 = 500, code: string | null = null): PreResult {
    return new PreResult(Outcome.Error, null, new HookError(message, status, code));
  }
}

/** http_transport_post_hook: continue (with your response changes) or fail (remaining post-hooks skipped). */
export class PostResult {
  constructor(public outcome: Outcome, public error: HookError | null = null) {}

  static continue(): PostResult { return new PostResult(Outcome.Continue); }
  static error(message: string, status: i32 = 500, code: string | null = null): PostResult {
    return new PostResult(Outcome.Error, new HookError(message, status, code));
  }
}

/** http_transport_stream_chunk_hook: pass (edits in place are detected), replace, drop, or fail (stream ends). */
export class ChunkResult {
  constructor(
    public outcome: Outcome,
    public chunk: Value | null = null,
    public error: HookError | null = null,
  ) {}

  static pass(): ChunkResult { return new ChunkResult(Outcome.Continue); }
  static replace(chunk: Value): ChunkResult { return new ChunkResult(Outcome.Replace, chunk); }
  /** The chunk is not sent to the client. */
  static drop(): ChunkResult { return new ChunkResult(Outcome.Drop); }
  /** An error event is sent and the stream ends. */
  static error(message: string, status: i32 = 500, code: string | null = null): ChunkResult {
    return new ChunkResult(Outcome.Error, null, new HookError(message, status, code));
  }
}

/** pre_llm_hook: continue (with your request changes), short-circuit with a response (provider skipped), or an error. */
export class LlmPreResult {
  constructor(
    public outcome: Outcome,
    public response: LlmResponse | null = null,
    public error: LlmError | null = null,
  ) {}

  static continue(): LlmPreResult { return new LlmPreResult(Outcome.Continue); }
  static respond(response: LlmResponse): LlmPreResult { return new LlmPreResult(Outcome.Respond, response); }
  /** Short-circuit with an error; `allowFallbacks: Tri.False` stops the fallback chain. */
  static error(error: LlmError): LlmPreResult { return new LlmPreResult(Outcome.Error, null, error); }
}

/** post_llm_hook: continue (edits in place are detected), replace the result with a response (recover) or an error. */
export class LlmPostResult {
  constructor(
    public outcome: Outcome,
    public response: LlmResponse | null = null,
    public error: LlmError | null = null,
  ) {}

  static continue(): LlmPostResult { return new LlmPostResult(Outcome.Continue); }
  /** The result becomes this response (also recovers an error). */
  static respond(response: LlmResponse): LlmPostResult { return new LlmPostResult(Outcome.Respond, response); }
  /** The result becomes this error (also turns a response into an error). */
  static error(error: LlmError): LlmPostResult { return new LlmPostResult(Outcome.Error, null, error); }
}

/** Legacy transport_interceptor: continue (header/body edits in place are detected) or fail. */
export class InterceptorResult {
  constructor(public outcome: Outcome, public error: HookError | null = null) {}

  static continue(): InterceptorResult { return new InterceptorResult(Outcome.Continue); }
  static error(message: string, status: i32 = 500, code: string | null = null): InterceptorResult {
    return new InterceptorResult(Outcome.Error, new HookError(message, status, code));
  }
}

/** init: load (optionally opting out of bodies and of streamed deltas) or refuse to load. */
export class InitResult {
  error: string | null = null;
  /** Tri-state: unset means the host default (true). */
  private wantRequestBody: i32 = -1;
  private wantResponseBody: i32 = -1;
  private wantStreamDeltas: i32 = -1;

  static ok(): InitResult { return new InitResult(); }

  /** The plugin does not load; the gateway reports `reason` and keeps running. */
  static error(reason: string): InitResult {
    const r = new InitResult();
    r.error = reason;
    return r;
  }

  /** false: transport hooks never get HttpRequest.body (header-only plugins stay fast). */
  requestBody(want: bool): InitResult {
    this.wantRequestBody = want ? 1 : 0;
    return this;
  }

  /** false: transport hooks never get HttpResponse.body. */
  responseBody(want: bool): InitResult {
    this.wantResponseBody = want ? 1 : 0;
    return this;
  }

  /**
   * false: post_llm_hook is never called with a streamed delta, so a stream costs
   * this plugin nothing per chunk; it still gets full responses and errors (ABI.md §5.2).
   */
  streamDeltas(want: bool): InitResult {
    this.wantStreamDeltas = want ? 1 : 0;
    return this;
  }

  /** -1 unset, 0 false, 1 true. */
  get requestBodyFlag(): i32 { return this.wantRequestBody; }
  get responseBodyFlag(): i32 { return this.wantResponseBody; }
  get streamDeltasFlag(): i32 { return this.wantStreamDeltas; }
}
