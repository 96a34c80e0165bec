import type { Context } from 'hono';
import { HOST_OWNED_HEADERS, isFinalStatus } from '../abi/http-fields.js';
import type { HttpRequest, HttpResponse } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';

// The edge between Hono and the pipeline: Hono's Context becomes plain data
// here and nowhere else, so the pipeline never imports hono.

/**
 * The request as the pipeline sees it. A body over `maxBodyBytes` throws
 * GatewayError body_too_large (413): refused from its content-length before
 * any of it is read, or as soon as a chunked body passes the limit.
 */
export async function toHttpRequest(c: Context, maxBodyBytes: number): Promise<HttpRequest> {
  const url = new URL(c.req.url);
  const headers: Record<string, string> = {};
  c.req.raw.headers.forEach((value, key) => {
    headers[key] = value;
  });
  const query: Record<string, string> = {};
  url.searchParams.forEach((value, key) => {
    if (!(key in query)) query[key] = value;
  });
  const req: HttpRequest = { method: c.req.method, path: url.pathname, query, headers };
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
    const body = await readBody(c.req.raw, maxBodyBytes);
    if (body.length) req.body = body;
  }
  return req;
}

function bodyTooLarge(maxBodyBytes: number): GatewayError {
  return new GatewayError(ErrorCode.bodyTooLarge, `request body is over the limit of ${maxBodyBytes} bytes (server.max_body_bytes)`);
}

/** Reads a request body, never holding more than `maxBodyBytes` of it. */
async function readBody(raw: Request, maxBodyBytes: number): Promise<Uint8Array> {
  if (Number(raw.headers.get('content-length') ?? 0) > maxBodyBytes) throw bodyTooLarge(maxBodyBytes);
  if (!raw.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = raw.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBodyBytes) {
      // Stop reading, but do not cancel: cancelling destroys the connection before the 413 is
      // sent; left alone, the server drains what the client still sends (bounded) and keeps it.
      reader.releaseLock();
      throw bodyTooLarge(maxBodyBytes);
    }
    parts.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    body.set(part, at);
    at += part.length;
  }
  return body;
}

// Statuses that carry no content (RFC 9110 §15.3.5, §15.3.6, §15.4.5).
const NO_BODY = new Set([204, 205, 304]);

/**
 * The response as Hono sends it. Plugin output was validated already (abi/outputs.ts);
 * what is checked here guards the gateway's own: the framing headers are always
 * Node's (a stale value would desynchronise the keep-alive connection), and a
 * status that is not final (1xx) is never sent. Throws on a header HTTP cannot carry.
 */
export function toResponse(resp: HttpResponse): Response {
  if (!isFinalStatus(resp.status)) throw new Error(`refusing to send status ${resp.status}: not a final HTTP status (200-599)`);
  const headers = new Headers();
  for (const [k, v] of Object.entries(resp.headers)) if (!HOST_OWNED_HEADERS.has(k.toLowerCase())) headers.set(k, v);
  const noBody = NO_BODY.has(resp.status);
  if (resp.stream && !noBody) return new Response(resp.stream, { status: resp.status, headers });
  resp.stream?.cancel().catch(() => {});
  return new Response(noBody ? null : ((resp.body as Uint8Array<ArrayBuffer> | undefined) ?? null), { status: resp.status, headers });
}
