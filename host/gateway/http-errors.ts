import type { HttpResponse, LlmError } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import { PluginFailure } from '../runtime/failure.js';

// The only place that maps error codes to HTTP statuses and error bodies.
// Bodies follow OpenAI's error shape so existing clients can read them.

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.invalidJson]: 400,
  [ErrorCode.invalidRequest]: 400,
  [ErrorCode.unknownProvider]: 400,
  [ErrorCode.notFound]: 404,
  [ErrorCode.bodyTooLarge]: 413,
  [ErrorCode.pluginTimeout]: 504,
  [ErrorCode.pluginCircuitOpen]: 503,
  [ErrorCode.pluginUnavailable]: 503,
  [ErrorCode.upstreamUnreachable]: 502,
  [ErrorCode.upstreamBadResponse]: 502,
  [ErrorCode.upstreamError]: 502,
  [ErrorCode.upstreamTimeout]: 504,
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
export function errorResponse(e: GatewayError): HttpResponse {
  if (e instanceof PluginFailure) {
    const message = `plugin "${e.plugin}" failed in ${e.hook} (${e.code})`;
    return jsonResponse(statusFor(e.code), { error: { message, type: 'plugin_failure', code: e.code, plugin: e.plugin, hook: e.hook } });
  }
  const type = statusFor(e.code) < 500 ? 'invalid_request_error' : 'gateway_error';
  return jsonResponse(statusFor(e.code), { error: { message: e.message, type, code: e.code } });
}

/** An LLM error (from a provider or a plugin) as the client sees it. */
export function llmErrorResponse(error: LlmError, attempts: LlmError[]): HttpResponse {
  const body: Record<string, unknown> = {
    message: error.message,
    type: error.type ?? 'upstream_error',
    code: error.code ?? ErrorCode.upstreamError,
    param: null,
    provider: error.provider,
    model: error.model,
  };
  if (attempts.length > 1) body.attempts = attempts;
  return jsonResponse(error.status ?? 502, { error: body });
}

export function internalError(): HttpResponse {
  return jsonResponse(500, { error: { message: 'internal gateway error (see the gateway log)', type: 'gateway_error', code: ErrorCode.internal } });
}
