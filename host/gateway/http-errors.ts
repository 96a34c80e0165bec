import type { HttpResponse, LlmError } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import type { StreamFault } from '../pipeline/stream.js';
import { PluginFailure } from '../runtime/failure.js';

// The only place that maps error codes to HTTP statuses and error bodies.
// Bodies follow OpenAI's error shape so existing clients can read them.

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.invalidJson]: 400,
  [ErrorCode.invalidRequest]: 400,
  [ErrorCode.unknownProvider]: 400,
  [ErrorCode.requestTooDeep]: 400,
  [ErrorCode.notFound]: 404,
  [ErrorCode.adminUnauthorized]: 401,
  // POST /admin/reload with a config that does not validate: the request was fine, the file is not
  [ErrorCode.configInvalid]: 422,
  [ErrorCode.configEnvMissing]: 422,
  [ErrorCode.bodyTooLarge]: 413,
  [ErrorCode.pluginTimeout]: 504,
  [ErrorCode.pluginCircuitOpen]: 503,
  [ErrorCode.pluginUnavailable]: 503,
  [ErrorCode.pluginOverloaded]: 503,
  [ErrorCode.upstreamUnreachable]: 502,
  [ErrorCode.upstreamBadResponse]: 502,
  [ErrorCode.upstreamError]: 502,
  [ErrorCode.upstreamTimeout]: 504,
  [ErrorCode.upstreamStreamError]: 502,
  [ErrorCode.upstreamBadChunk]: 502,
  [ErrorCode.upstreamStreamTruncated]: 502,
  [ErrorCode.upstreamIdleTimeout]: 504,
  // nginx's "client closed request": only ever logged, nobody is left to read it
  [ErrorCode.clientClosed]: 499,
};

export function statusFor(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function jsonResponse(status: number, value: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body: Buffer.from(JSON.stringify(value)) };
}

/**
 * A gateway error as an HTTP response. A plugin failure names the plugin, the
 * hook and the code, but none of the plugin's internals (trap messages stay in the log).
 */
export function errorBody(e: GatewayError): { error: Record<string, unknown> } {
  if (e instanceof PluginFailure) {
    const message =
      e.kind === 'overloaded'
        ? `plugin "${e.plugin}" is overloaded: its ${e.hook} call found no free worker in time (${e.code}); retry later`
        : `plugin "${e.plugin}" failed in ${e.hook} (${e.code})`;
    return { error: { message, type: 'plugin_failure', code: e.code, plugin: e.plugin, hook: e.hook } };
  }
  const type = statusFor(e.code) < 500 ? 'invalid_request_error' : 'gateway_error';
  return { error: { message: e.message, type, code: e.code } };
}

export function errorResponse(e: GatewayError): HttpResponse {
  return jsonResponse(statusFor(e.code), errorBody(e));
}

function llmErrorBody(error: LlmError): Record<string, unknown> {
  return {
    message: error.message,
    type: error.type ?? 'upstream_error',
    code: error.code ?? ErrorCode.upstreamError,
    param: null,
    provider: error.provider,
    model: error.model,
  };
}

/** An LLM error (from a provider or a plugin) as the client sees it. */
export function llmErrorResponse(error: LlmError, attempts: LlmError[]): HttpResponse {
  const body = llmErrorBody(error);
  if (attempts.length > 1) body.attempts = attempts;
  return jsonResponse(error.status ?? 502, { error: body });
}

/**
 * Why a stream ended early, as the payload of its last event: the same
 * OpenAI error shape (and codes) a non-streamed answer would have had.
 */
export function streamErrorEvent(fault: StreamFault): { error: Record<string, unknown> } {
  switch (fault.kind) {
    case 'llm':
      return { error: llmErrorBody(fault.error) };
    case 'hook':
      return { error: { message: fault.error.message, type: 'plugin_error', code: fault.error.code ?? ErrorCode.pluginRejected, plugin: fault.plugin } };
    case 'plugin':
      return errorBody(fault.failure);
    default:
      return { error: { message: 'internal gateway error (see the gateway log)', type: 'gateway_error', code: ErrorCode.internal } };
  }
}

export function internalError(): HttpResponse {
  return jsonResponse(500, { error: { message: 'internal gateway error (see the gateway log)', type: 'gateway_error', code: ErrorCode.internal } });
}
