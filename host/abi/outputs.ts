import { ErrorCode, GatewayError } from '../errors/codes.js';
import { DECODE_MAX_DEPTH, decode, malformedReason, offsetOf, TooDeep } from './codec.js';
import { headerNameProblem, headerValueProblem, hostOwnedProblem, isFinalStatus, isToken } from './http-fields.js';
import type {
  ChunkOutput,
  ContextPatch,
  HookError,
  HttpResponse,
  InitOutput,
  InterceptorOutput,
  LlmError,
  LlmMessage,
  LlmPostOutput,
  LlmPreOutput,
  LlmResponse,
  TransportPostOutput,
  TransportPreOutput,
} from './types.js';

// Validation of guest output envelopes. A guest is untrusted: every field is
// checked before anything is applied, so a bad output is refused whole
// (plugin_bad_output) and never half-applied. Hand-written rather than zod
// because this runs on every hook call and the messages need the field path.
// Whatever a plugin puts into HTTP (header names and values, statuses, a
// method) must also be valid HTTP (http-fields.ts): the HTTP layer would
// otherwise refuse it too late, with a bare 500, or send it and corrupt the
// connection.

type Obj = Record<string, unknown>;

/** A header name as it appears in a message: quoted and escaped, so CR, LF and the like stay visible (and short). */
function quoteName(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
}

/**
 * A field path as Shape writes it (`response.choices[0].message`,
 * `req.headers["x-a"]`) as map keys and array indexes; `the output` is the top.
 */
function pathSteps(at: string): (string | number)[] {
  if (at === 'the output') return [];
  const steps: (string | number)[] = [];
  for (const m of at.matchAll(/([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)) {
    steps.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (JSON.parse(m[3]) as string)));
  }
  return steps;
}

class Shape {
  /** `bytes`: the output as the guest wrote it, read again only to put a byte offset into an error. */
  constructor(
    readonly hook: string,
    private readonly bytes: Uint8Array | null = null,
  ) {}

  /** Refuses the output: `<hook> output at <path>: <problem> at byte <offset>`. */
  refuse(at: string, problem: string): never {
    const offset = this.bytes ? offsetOf(this.bytes, pathSteps(at)) : undefined;
    throw new GatewayError(ErrorCode.pluginBadOutput, `${this.hook} output at ${at}: ${problem}${offset === undefined ? '' : ` at byte ${offset}`}`);
  }

  fail(at: string, expected: string, got: unknown): never {
    const kind = got === null ? 'nil' : got === undefined ? 'nothing' : got instanceof Uint8Array ? 'bin' : Array.isArray(got) ? 'array' : typeof got === 'string' ? 'str' : typeof got === 'object' ? 'map' : typeof got === 'number' ? (Number.isInteger(got) ? 'int' : 'float') : typeof got;
    this.refuse(at, `expected ${expected}, got ${kind}`);
  }

  map(v: unknown, at: string): Obj {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) this.fail(at, 'a map', v);
    return v as Obj;
  }

  optMap(v: unknown, at: string): Obj | undefined {
    return v == null ? undefined : this.map(v, at);
  }

  optStr(v: unknown, at: string): string | undefined {
    if (v == null) return undefined;
    if (typeof v !== 'string') this.fail(at, 'a string', v);
    return v;
  }

  /** An integer in any MessagePack encoding (fixint to int64 d3, uint64 cf, or an integral float64 cb: ABI.md §5). */
  optInt(v: unknown, at: string): number | undefined {
    if (v == null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(at, 'an integer', v);
    return v;
  }

  optBool(v: unknown, at: string): boolean | undefined {
    if (v == null) return undefined;
    if (typeof v !== 'boolean') this.fail(at, 'a bool', v);
    return v;
  }

  /** A status a plugin may set: final (200-599). A 1xx would go out as an interim response before the real one. */
  optStatus(v: unknown, at: string): number | undefined {
    if (v == null) return undefined;
    if (isFinalStatus(v)) return v;
    if (typeof v === 'number') this.refuse(at, `expected a final HTTP status (200-599), got ${v}`);
    this.fail(at, 'a final HTTP status (200-599)', v);
  }

  optMethod(v: unknown, at: string): string | undefined {
    const method = this.optStr(v, at);
    if (method !== undefined && !isToken(method)) {
      this.refuse(at, `expected an HTTP method (an RFC 9110 token such as "POST"), got ${quoteName(method)}`);
    }
    return method;
  }

  optBin(v: unknown, at: string): Uint8Array | undefined {
    if (v == null) return undefined;
    if (!(v instanceof Uint8Array)) this.fail(at, 'bin (MessagePack binary)', v);
    return v;
  }

  /** A merge patch: string values set, nil removes. */
  optPatch(v: unknown, at: string): Record<string, string | null> | undefined {
    if (v == null) return undefined;
    const m = this.map(v, at);
    for (const [k, s] of Object.entries(m)) if (s !== null && typeof s !== 'string') this.fail(`${at}[${quoteName(k)}]`, 'a string or nil', s);
    return m as Record<string, string | null>;
  }

  /** Refuses one header a plugin wrote (value null: a removal) that HTTP or the gateway would not accept. */
  header(at: string, name: string, value: string | null, hostOwned: 'refuse' | 'allow'): void {
    const problem =
      headerNameProblem(name) ?? (hostOwned === 'refuse' && value !== null ? hostOwnedProblem(name) : null) ?? (value === null ? null : headerValueProblem(value));
    if (problem) this.refuse(`${at}[${quoteName(name)}]`, problem);
  }

  /**
   * A full header map. `hostOwned: 'allow'` only for the legacy interceptor, which
   * returns every header it was given (the pipeline keeps the gateway's own for those).
   */
  headerMap(v: unknown, at: string, hostOwned: 'refuse' | 'allow' = 'refuse'): Record<string, string> {
    const m = this.map(v, at);
    for (const [k, s] of Object.entries(m)) {
      if (typeof s !== 'string') this.fail(`${at}[${quoteName(k)}]`, 'a string', s);
      this.header(at, k, s, hostOwned);
    }
    return m as Record<string, string>;
  }

  /** A header merge patch: string values set, nil removes. */
  optHeaderPatch(v: unknown, at: string): Record<string, string | null> | undefined {
    if (v == null) return undefined;
    const m = this.map(v, at);
    for (const [k, s] of Object.entries(m)) {
      if (s !== null && typeof s !== 'string') this.fail(`${at}[${quoteName(k)}]`, 'a string or nil', s);
      this.header(at, k, s, 'refuse');
    }
    return m as Record<string, string | null>;
  }

  ctxPatch(v: unknown): ContextPatch | undefined {
    return this.optMap(v, 'ctx');
  }

  hookError(v: unknown, at: string): HookError | undefined {
    const m = this.optMap(v, at);
    if (!m) return undefined;
    const message = this.optStr(m.message, `${at}.message`);
    if (message === undefined) this.fail(`${at}.message`, 'a string', m.message);
    return { message, status: this.optStatus(m.status, `${at}.status`), code: this.optStr(m.code, `${at}.code`) };
  }

  httpResponse(v: unknown, at: string): HttpResponse | undefined {
    const m = this.optMap(v, at);
    if (!m) return undefined;
    const status = this.optStatus(m.status, `${at}.status`) ?? 200;
    const headers = m.headers == null ? {} : this.headerMap(m.headers, `${at}.headers`);
    return { status, headers, body: this.optBin(m.body, `${at}.body`) };
  }

  message(v: unknown, at: string): void {
    const m = this.map(v, at);
    if (typeof m.role !== 'string') this.fail(`${at}.role`, 'a string', m.role);
    if (m.content !== null && m.content !== undefined && typeof m.content !== 'string' && !Array.isArray(m.content)) {
      this.fail(`${at}.content`, 'a string, an array of parts or nil', m.content);
    }
  }

  messages(v: unknown, at: string): LlmMessage[] {
    if (!Array.isArray(v)) this.fail(at, 'an array of messages', v);
    v.forEach((msg, i) => this.message(msg, `${at}[${i}]`));
    return v as LlmMessage[];
  }

  /** A streamed delta: like a message, but every field is optional (role comes only in the first one). */
  delta(v: unknown, at: string): void {
    const m = this.map(v, at);
    this.optStr(m.role, `${at}.role`);
    if (m.content != null && typeof m.content !== 'string' && !Array.isArray(m.content)) this.fail(`${at}.content`, 'a string, an array of parts or nil', m.content);
  }

  llmResponse(v: unknown, at: string): LlmResponse | undefined {
    const m = this.optMap(v, at);
    if (!m) return undefined;
    if (!Array.isArray(m.choices)) this.fail(`${at}.choices`, 'an array', m.choices);
    // A completion with no choices has no answer in it: a client could only fail on it. A streamed
    // chunk may have none (the usage-only chunk at the end of a stream).
    if (m.choices.length === 0 && m.object !== 'chat.completion.chunk') {
      this.refuse(`${at}.choices`, 'expected at least one choice (only a streamed chunk, object "chat.completion.chunk", may have none)');
    }
    m.choices.forEach((c, i) => {
      const cm = this.map(c, `${at}.choices[${i}]`);
      // A streamed chunk (post_llm_hook during a stream) carries a delta instead of a message.
      if (cm.message == null && cm.delta != null) this.delta(cm.delta, `${at}.choices[${i}].delta`);
      else this.message(cm.message, `${at}.choices[${i}].message`);
    });
    // Fill the envelope fields a plugin may leave out, so clients always get a complete object.
    return {
      ...m,
      id: this.optStr(m.id, `${at}.id`) ?? 'chatcmpl-plugin',
      object: this.optStr(m.object, `${at}.object`) ?? 'chat.completion',
      created: this.optInt(m.created, `${at}.created`) ?? Math.floor(Date.now() / 1000),
      model: this.optStr(m.model, `${at}.model`) ?? '',
      choices: m.choices as LlmResponse['choices'],
    };
  }

  llmError(v: unknown, at: string): LlmError | undefined {
    const m = this.optMap(v, at);
    if (!m) return undefined;
    const message = this.optStr(m.message, `${at}.message`);
    if (message === undefined) this.fail(`${at}.message`, 'a string', m.message);
    return {
      message,
      type: this.optStr(m.type, `${at}.type`),
      code: this.optStr(m.code, `${at}.code`),
      status: this.optStatus(m.status, `${at}.status`),
      allow_fallbacks: this.optBool(m.allow_fallbacks, `${at}.allow_fallbacks`) ?? null,
      provider: this.optStr(m.provider, `${at}.provider`),
      model: this.optStr(m.model, `${at}.model`),
    };
  }

  /** Fields that contradict each other: at most one of them may be set (`drop: false` counts as unset). */
  onlyOne(m: Obj, names: readonly string[]): void {
    const set = names.filter((n) => m[n] != null && m[n] !== false);
    if (set.length > 1) this.refuse('the output', `${set.map((n) => `"${n}"`).join(' and ')} contradict each other: set one of ${names.map((n) => `"${n}"`).join(', ')}`);
  }
}

/**
 * Levels an output envelope adds above the values it carries: the output map
 * and its field (`ctx`, or `req` above `params`). A value as deep as the client
 * may send can pass through a plugin unchanged.
 */
export const ENVELOPE_LEVELS = 2;

/**
 * Decodes an output, refusing nesting deeper than `maxDepth` per value before
 * any of it is decoded: every value flows on into the next plugin's input, and
 * a deep one would make the host's encoder or that plugin's decoder overflow
 * its stack, blaming the wrong plugin. Undefined: only the codec's own bound.
 */
function decodeOutput(hook: string, bytes: Uint8Array, maxDepth: number | undefined): unknown {
  try {
    return maxDepth === undefined ? decode(bytes) : decode(bytes, maxDepth + ENVELOPE_LEVELS);
  } catch (e) {
    if (e instanceof TooDeep && maxDepth !== undefined) {
      throw new GatewayError(ErrorCode.pluginBadOutput, `${hook} output nests deeper than the limit of ${maxDepth} levels per value (limits.max_json_depth)`);
    }
    if (e instanceof TooDeep) throw new GatewayError(ErrorCode.pluginBadOutput, `${hook} output nests deeper than ${DECODE_MAX_DEPTH} levels`);
    throw new GatewayError(ErrorCode.pluginBadOutput, `${hook} output is not valid MessagePack: ${malformedReason(bytes, (e as Error).message)}`);
  }
}

/** Decodes an output; empty output, nil and {} all mean "continue, nothing changed". */
function top(hook: string, bytes: Uint8Array | null, maxDepth?: number): [Shape, Obj] {
  const s = new Shape(hook, bytes);
  if (!bytes || bytes.length === 0) return [s, {}];
  const v = decodeOutput(hook, bytes, maxDepth);
  return [s, v == null ? {} : s.map(v, 'the output')];
}

export function parseInitOutput(bytes: Uint8Array | null): InitOutput {
  const [s, m] = top('init', bytes);
  return {
    error: s.optStr(m.error, 'error'),
    request_body: s.optBool(m.request_body, 'request_body'),
    response_body: s.optBool(m.response_body, 'response_body'),
    stream_deltas: s.optBool(m.stream_deltas, 'stream_deltas'),
  };
}

export function parseNameOutput(bytes: Uint8Array | null): string | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  const s = new Shape('get_name', bytes);
  return s.optStr(decodeOutput('get_name', bytes, undefined), 'the output');
}

export function parseTransportPreOutput(bytes: Uint8Array | null, maxDepth?: number): TransportPreOutput {
  const [s, m] = top('http_transport_pre_hook', bytes, maxDepth);
  s.onlyOne(m, ['response', 'error']);
  const req = s.optMap(m.req, 'req');
  return {
    ctx: s.ctxPatch(m.ctx),
    req: req && {
      method: s.optMethod(req.method, 'req.method'),
      path: s.optStr(req.path, 'req.path'),
      headers: s.optHeaderPatch(req.headers, 'req.headers'),
      query: s.optPatch(req.query, 'req.query'),
      body: s.optBin(req.body, 'req.body'),
    },
    response: s.httpResponse(m.response, 'response'),
    error: s.hookError(m.error, 'error'),
  };
}

export function parseTransportPostOutput(bytes: Uint8Array | null, maxDepth?: number): TransportPostOutput {
  const [s, m] = top('http_transport_post_hook', bytes, maxDepth);
  const resp = s.optMap(m.resp, 'resp');
  return {
    ctx: s.ctxPatch(m.ctx),
    resp: resp && {
      status: s.optStatus(resp.status, 'resp.status'),
      headers: s.optHeaderPatch(resp.headers, 'resp.headers'),
      body: s.optBin(resp.body, 'resp.body'),
    },
    error: s.hookError(m.error, 'error'),
  };
}

export function parseLlmPreOutput(bytes: Uint8Array | null, maxDepth?: number, hook = 'pre_llm_hook'): LlmPreOutput {
  const [s, m] = top(hook, bytes, maxDepth);
  s.onlyOne(m, ['response', 'error']);
  const req = s.optMap(m.req, 'req');
  return {
    ctx: s.ctxPatch(m.ctx),
    req: req && {
      provider: s.optStr(req.provider, 'req.provider'),
      model: s.optStr(req.model, 'req.model'),
      messages: req.messages == null ? undefined : s.messages(req.messages, 'req.messages'),
      params: s.optMap(req.params, 'req.params'),
      headers: s.optHeaderPatch(req.headers, 'req.headers'),
    },
    response: s.llmResponse(m.response, 'response'),
    error: s.llmError(m.error, 'error'),
  };
}

export function parseLlmPostOutput(bytes: Uint8Array | null, maxDepth?: number, hook = 'post_llm_hook'): LlmPostOutput {
  const [s, m] = top(hook, bytes, maxDepth);
  s.onlyOne(m, ['response', 'error']);
  return { ctx: s.ctxPatch(m.ctx), response: s.llmResponse(m.response, 'response'), error: s.llmError(m.error, 'error') };
}

export function parseInterceptorOutput(bytes: Uint8Array | null, maxDepth?: number): InterceptorOutput {
  const [s, m] = top('transport_interceptor', bytes, maxDepth);
  return {
    ctx: s.ctxPatch(m.ctx),
    headers: m.headers == null ? undefined : s.headerMap(m.headers, 'headers', 'allow'),
    body: s.optMap(m.body, 'body'),
    error: s.hookError(m.error, 'error'),
  };
}

export function parseChunkOutput(bytes: Uint8Array | null, maxDepth?: number): ChunkOutput {
  const [s, m] = top('http_transport_stream_chunk_hook', bytes, maxDepth);
  s.onlyOne(m, ['chunk', 'drop', 'error']);
  return { ctx: s.ctxPatch(m.ctx), chunk: s.optMap(m.chunk, 'chunk'), drop: s.optBool(m.drop, 'drop'), error: s.hookError(m.error, 'error') };
}

/** What each hook's validated output is. */
export interface HookOutputs {
  init: InitOutput;
  get_name: string | undefined;
  http_transport_pre_hook: TransportPreOutput;
  http_transport_post_hook: TransportPostOutput;
  http_transport_stream_chunk_hook: ChunkOutput;
  pre_llm_hook: LlmPreOutput;
  post_llm_hook: LlmPostOutput;
  cleanup: undefined;
  transport_interceptor: InterceptorOutput;
  pre_hook: LlmPreOutput;
  post_hook: LlmPostOutput;
}

/**
 * The validator for each hook's output. The worker pool runs it on every
 * answer; an output it refuses is a failure like a trap: the instance is discarded.
 * `maxDepth` bounds the nesting of each value (limits.max_json_depth).
 */
export const OUTPUT_PARSERS: { [H in keyof HookOutputs]: (bytes: Uint8Array | null, maxDepth?: number) => HookOutputs[H] } = {
  init: parseInitOutput,
  get_name: parseNameOutput,
  http_transport_pre_hook: parseTransportPreOutput,
  http_transport_post_hook: parseTransportPostOutput,
  http_transport_stream_chunk_hook: parseChunkOutput,
  pre_llm_hook: (b, d) => parseLlmPreOutput(b, d),
  post_llm_hook: (b, d) => parseLlmPostOutput(b, d),
  cleanup: () => undefined,
  transport_interceptor: parseInterceptorOutput,
  pre_hook: (b, d) => parseLlmPreOutput(b, d, 'pre_hook'),
  post_hook: (b, d) => parseLlmPostOutput(b, d, 'post_hook'),
};
