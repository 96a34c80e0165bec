// The one catalog of errors. Codes are stable API: tests, logs, metrics and
// clients match on them, never on message text. Each entry holds everything
// about one error: its code, the HTTP status and OpenAI error `type` a client
// gets with it, and what it means (the README's table of error codes is
// checked against this table by test/error-catalog.test.ts). Every error body
// the gateway builds takes its status and type from here.

/** The OpenAI error `type` of a Sandgate error body: which party the error is about. */
export type ErrorType = 'invalid_request_error' | 'plugin_failure' | 'plugin_error' | 'upstream_error' | 'gateway_error';

export interface ErrorSpec {
  code: string;
  /** The HTTP status a client gets (500 for errors only ever logged at start-up). */
  status: number;
  type: ErrorType;
  /** What the error means, in one line: the README's table, and the body of an error with nothing more specific to say. */
  message: string;
}

const spec = <C extends string>(code: C, status: number, type: ErrorType, message: string) => ({ code, status, type, message });

export const ERRORS = {
  // start-up and configuration (logged; the gateway does not start, or a reload is refused)
  // Sent only as the answer to POST /admin/reload (at start-up they stop the process): the request was fine, the file is not.
  configInvalid: spec('config_invalid', 422, 'invalid_request_error', 'the configuration is invalid (the message names the key and what to fix)'),
  configEnvMissing: spec('config_env_missing', 422, 'invalid_request_error', 'the configuration names an environment variable that is not set'),
  pluginLoadFailed: spec('plugin_load_failed', 500, 'gateway_error', 'a plugin file could not be read, is not valid WebAssembly, or breaks a load-time rule'),
  pluginIntegrityFailed: spec('plugin_integrity_failed', 500, 'gateway_error', 'a plugin does not match its pinned sha256, or lacks a valid signature by a trusted key where one is required'),
  pluginAbiMismatch: spec('plugin_abi_mismatch', 500, 'gateway_error', 'a plugin was built for another Sandgate ABI version, or declares none'),
  pluginInitFailed: spec('plugin_init_failed', 500, 'gateway_error', "a plugin's _initialize or init failed or refused to start"),

  // a plugin misbehaved during a call (a failure, governed by on_error)
  pluginTimeout: spec('plugin_timeout', 504, 'plugin_failure', 'a plugin call overran its timeout_ms'),
  pluginTrap: spec('plugin_trap', 500, 'plugin_failure', 'a plugin trapped (unreachable, abort, panic, divide by zero, stack overflow, proc_exit, a bad pointer to a host function)'),
  pluginMemory: spec('plugin_memory', 500, 'plugin_failure', 'a plugin went over memory_limit_mb or max_var_bytes'),
  pluginBadOutput: spec('plugin_bad_output', 500, 'plugin_failure', 'a plugin returned output that is not MessagePack of the right shape, or that HTTP cannot carry'),
  pluginOutputTooLarge: spec('plugin_output_too_large', 500, 'plugin_failure', 'a plugin output over max_output_bytes'),
  pluginHookError: spec('plugin_hook_error', 500, 'plugin_failure', "a plugin reported an error through Extism's error_set"),
  pluginUnavailable: spec('plugin_unavailable', 503, 'plugin_failure', 'the plugin is not loaded, or could not be called'),
  pluginCircuitOpen: spec('plugin_circuit_open', 503, 'plugin_failure', "the plugin's circuit breaker is open: it was not called"),
  /** Shed: no plugin worker was free within runtime.queue_timeout_ms (load, not the plugin's fault). */
  pluginOverloaded: spec('plugin_overloaded', 503, 'plugin_failure', 'no plugin worker was free within runtime.queue_timeout_ms: the call was not made; retry later'),

  // a plugin answered on purpose (the plugin may give its own status and code)
  pluginRejected: spec('plugin_rejected', 500, 'plugin_error', 'a hook returned an error on purpose without a code of its own'),

  // client input
  invalidJson: spec('invalid_json', 400, 'invalid_request_error', 'the request body is not JSON'),
  invalidRequest: spec('invalid_request', 400, 'invalid_request_error', 'the request is not a valid chat completion request (the message names the field)'),
  methodNotAllowed: spec('method_not_allowed', 405, 'invalid_request_error', 'the route does not take this method (the allow header says which)'),
  bodyTooLarge: spec('body_too_large', 413, 'invalid_request_error', 'the request body is over server.max_body_bytes'),
  /** JSON nested deeper than limits.max_json_depth. */
  requestTooDeep: spec('request_too_deep', 400, 'invalid_request_error', 'the request JSON nests deeper than limits.max_json_depth'),
  notFound: spec('not_found', 404, 'invalid_request_error', 'no such route'),
  unknownProvider: spec('unknown_provider', 400, 'invalid_request_error', 'the model names a provider that is not configured'),

  // upstream (upstream_error: a non-2xx answer, with the upstream's own status, and its type and code when it sent them)
  upstreamUnreachable: spec('upstream_unreachable', 502, 'upstream_error', 'the provider could not be reached'),
  upstreamTimeout: spec('upstream_timeout', 504, 'upstream_error', 'the provider did not answer within timeout_ms'),
  upstreamError: spec('upstream_error', 502, 'upstream_error', "the provider answered with an error (its own status; 502 if it gave none)"),
  upstreamBadResponse: spec('upstream_bad_response', 502, 'upstream_error', 'the provider broke off its answer, or sent one that is not a chat completion'),
  // upstream, once a stream has started (sent as an error event when chunks were already sent)
  upstreamStreamError: spec('upstream_stream_error', 502, 'upstream_error', 'the provider sent an error in the stream, or the stream failed'),
  upstreamBadChunk: spec('upstream_bad_chunk', 502, 'upstream_error', 'the provider sent a malformed stream chunk'),
  upstreamIdleTimeout: spec('upstream_idle_timeout', 504, 'upstream_error', 'the provider sent nothing for stream_idle_timeout_ms'),
  upstreamStreamTruncated: spec('upstream_stream_truncated', 502, 'upstream_error', 'the provider closed the stream before [DONE]'),

  // the client went away before the answer was complete: nginx's "client closed request", only ever logged
  clientClosed: spec('client_closed', 499, 'gateway_error', 'the client closed the connection before the answer was complete (logged only)'),

  // operator routes
  adminUnauthorized: spec('admin_unauthorized', 401, 'invalid_request_error', 'an admin API request without the right bearer token (admin.token)'),

  internal: spec('internal_error', 500, 'gateway_error', 'internal gateway error (see the gateway log)'),
} as const satisfies Record<string, ErrorSpec>;

/** Every error code by name: `ErrorCode.pluginTrap` is 'plugin_trap'. */
export const ErrorCode = Object.fromEntries(Object.entries(ERRORS).map(([name, e]) => [name, e.code])) as {
  readonly [K in keyof typeof ERRORS]: (typeof ERRORS)[K]['code'];
};

export type ErrorCode = (typeof ERRORS)[keyof typeof ERRORS]['code'];

const BY_CODE = new Map<string, ErrorSpec>(Object.values(ERRORS).map((e) => [e.code, e]));

/**
 * The catalog entry of a code; a code the catalog does not hold (an upstream's
 * or a plugin's own) reads as `fallback`'s entry.
 *
 * @example errorSpec('plugin_timeout').status // 504
 */
export function errorSpec(code: string, fallback: ErrorCode = ErrorCode.internal): ErrorSpec {
  return BY_CODE.get(code) ?? BY_CODE.get(fallback)!;
}

/**
 * The fields an LLM error takes from the catalog: code, status and type.
 *
 * @example { message, ...errorFields(ErrorCode.upstreamTimeout), provider, model } // status 504, type 'upstream_error'
 */
export function errorFields(code: ErrorCode): { code: ErrorCode; status: number; type: ErrorType } {
  const e = errorSpec(code);
  return { code, status: e.status, type: e.type };
}

/** An error the gateway knows how to explain: a stable code plus, when a plugin is to blame, its name. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly plugin?: string;
  /** Extra facts worth logging (never sent to clients). */
  readonly detail?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: { plugin?: string; detail?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.plugin = opts.plugin;
    this.detail = opts.detail;
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}
