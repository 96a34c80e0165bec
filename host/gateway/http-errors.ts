import type { HttpResponse, LlmError } from '../abi/types.js';
import { ERRORS, ErrorCode, errorSpec, GatewayError } from '../errors/codes.js';
import { hookErrorBody } from '../pipeline/transport.js';
import type { StreamFault } from '../pipeline/stream.js';
import { PluginFailure } from '../runtime/failure.js';

// Error codes as HTTP responses and stream error events, in OpenAI's error
// shape so existing clients can read them. Statuses and types come from the
// catalog (host/errors/codes.ts), never from here.

/** The HTTP status of a code (errors/codes.ts). */
export function statusFor(code: ErrorCode): number {
  return errorSpec(code).status;
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
    return { error: { message, type: errorSpec(e.code).type, code: e.code, plugin: e.plugin, hook: e.hook } };
  }
  return { error: { message: e.message, type: errorSpec(e.code).type, code: e.code } };
}

export function errorResponse(e: GatewayError): HttpResponse {
  return jsonResponse(statusFor(e.code), errorBody(e));
}

function llmErrorBody(error: LlmError): Record<string, unknown> {
  return {
    message: error.message,
    type: error.type ?? ERRORS.upstreamError.type,
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
  return jsonResponse(error.status ?? ERRORS.upstreamError.status, { error: body });
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
      return hookErrorBody(fault.error, fault.plugin);
    case 'plugin':
      return errorBody(fault.failure);
    default:
      return internalErrorBody();
  }
}

function internalErrorBody(): { error: Record<string, unknown> } {
  const { code, type, message } = ERRORS.internal;
  return { error: { message, type, code } };
}

export function internalError(): HttpResponse {
  return jsonResponse(ERRORS.internal.status, internalErrorBody());
}
