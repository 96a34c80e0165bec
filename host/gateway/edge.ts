import type { IncomingMessage, ServerResponse } from 'node:http';
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
  const node = nodeBindings(c);
  const headers = node ? headersOf(node.incoming.rawHeaders) : webHeadersOf(c.req.raw.headers);
  const query: Record<string, string> = {};
  url.searchParams.forEach((value, key) => {
    if (!(key in query)) query[key] = value;
  });
  const req: HttpRequest = { method: c.req.method, path: url.pathname, query, headers };
  if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
    const body = node ? await readNodeBody(node.incoming, maxBodyBytes) : await readBody(c.req.raw, maxBodyBytes);
    if (body.length) req.body = body;
  }
  return req;
}

/**
 * Aborted when the client goes away before its response has ended (a stream
 * stops its upstream call and hooks then).
 *
 * @example const signal = clientSignal(c);
 */
export function clientSignal(c: Context): AbortSignal {
  const node = nodeBindings(c);
  if (!node) return c.req.raw.signal;
  const controller = new AbortController();
  node.outgoing.once('close', () => {
    if (!node.outgoing.writableFinished) controller.abort(new Error('the client closed the connection'));
  });
  return controller.signal;
}

/**
 * The Node request and response under Hono's Context, when the app runs on
 * @hono/node-server (undefined under Hono's own app.request(), in tests).
 * Reading the request from them directly spares a web Request per request:
 * its body as a web stream, an AbortSignal, and header objects, about a tenth
 * of a proxied request's CPU time.
 */
function nodeBindings(c: Context): { incoming: IncomingMessage; outgoing: ServerResponse } | undefined {
  const env = c.env as { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;
  return env?.incoming && env.outgoing ? { incoming: env.incoming, outgoing: env.outgoing } : undefined;
}

/**
 * Header fields as a web Headers object lists them (what the pipeline always
 * got): names in lower case and sorted, repeated fields joined with ", "
 * (set-cookie, which is never joined, keeps its last value).
 */
function headersOf(raw: readonly string[]): Record<string, string> {
  const seen: Record<string, string> = Object.create(null) as Record<string, string>;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1].trim();
    seen[name] = name in seen && name !== 'set-cookie' ? `${seen[name]}, ${value}` : value;
  }
  const headers: Record<string, string> = {};
  for (const name of Object.keys(seen).sort()) headers[name] = seen[name];
  return headers;
}

function webHeadersOf(raw: Headers): Record<string, string> {
  const headers: Record<string, string> = {};
  raw.forEach((value, key) => {
    headers[key] = value;
  });
  return headers;
}

function bodyTooLarge(maxBodyBytes: number): GatewayError {
  return new GatewayError(ErrorCode.bodyTooLarge, `request body is over the limit of ${maxBodyBytes} bytes (server.max_body_bytes)`);
}

/** Reads a Node request's body, never holding more than `maxBodyBytes` of it. */
function readNodeBody(incoming: IncomingMessage, maxBodyBytes: number): Promise<Uint8Array> {
  if (Number(incoming.headers['content-length'] ?? 0) > maxBodyBytes) return Promise.reject(bodyTooLarge(maxBodyBytes));
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    let size = 0;
    const done = () => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        // Stop reading, but do not destroy: that would cut the connection before the 413 is
        // sent; left alone, the server drains what the client still sends (bounded) and keeps it.
        done();
        incoming.pause();
        reject(bodyTooLarge(maxBodyBytes));
        return;
      }
      parts.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(joinParts(parts, size));
    };
    const onError = (e: Error) => {
      done();
      reject(e);
    };
    incoming.on('data', onData).on('end', onEnd).on('error', onError);
  });
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
  return joinParts(parts, size);
}

/** The parts in one new array of its own (never a view into a socket's or a pool's buffer). */
function joinParts(parts: readonly Uint8Array[], size: number): Uint8Array {
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
