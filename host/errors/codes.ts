// The one catalog of error codes. Codes are stable API: tests, logs, metrics
// and clients match on them, never on message text. Only the gateway maps a
// code to an HTTP status (see host/gateway/http-errors.ts).

export const ErrorCode = {
  // start-up and configuration
  configInvalid: 'config_invalid',
  configEnvMissing: 'config_env_missing',
  pluginLoadFailed: 'plugin_load_failed',
  /** The .wasm does not match its pinned sha256, or lacks a valid signature by a trusted key where one is required. */
  pluginIntegrityFailed: 'plugin_integrity_failed',
  pluginAbiMismatch: 'plugin_abi_mismatch',
  pluginInitFailed: 'plugin_init_failed',

  // a plugin misbehaved during a call (a failure, governed by on_error)
  pluginTimeout: 'plugin_timeout',
  pluginTrap: 'plugin_trap',
  pluginMemory: 'plugin_memory',
  pluginBadOutput: 'plugin_bad_output',
  pluginOutputTooLarge: 'plugin_output_too_large',
  pluginHookError: 'plugin_hook_error',
  pluginUnavailable: 'plugin_unavailable',
  pluginCircuitOpen: 'plugin_circuit_open',
  /** Shed: no plugin worker was free within runtime.queue_timeout_ms (load, not the plugin's fault). */
  pluginOverloaded: 'plugin_overloaded',

  // a plugin answered on purpose
  pluginRejected: 'plugin_rejected',

  // client input
  invalidJson: 'invalid_json',
  invalidRequest: 'invalid_request',
  bodyTooLarge: 'body_too_large',
  /** JSON nested deeper than limits.max_json_depth. */
  requestTooDeep: 'request_too_deep',
  notFound: 'not_found',
  unknownProvider: 'unknown_provider',

  // upstream
  upstreamUnreachable: 'upstream_unreachable',
  upstreamTimeout: 'upstream_timeout',
  upstreamError: 'upstream_error',
  upstreamBadResponse: 'upstream_bad_response',
  // upstream, once a stream has started (sent as an error event when chunks were already sent)
  upstreamStreamError: 'upstream_stream_error',
  upstreamBadChunk: 'upstream_bad_chunk',
  upstreamIdleTimeout: 'upstream_idle_timeout',
  upstreamStreamTruncated: 'upstream_stream_truncated',

  // the client went away before the answer was complete
  clientClosed: 'client_closed',

  // operator routes
  /** An admin API request without the right bearer token (admin.token). */
  adminUnauthorized: 'admin_unauthorized',

  internal: 'internal_error',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

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
