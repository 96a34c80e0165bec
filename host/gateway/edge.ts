import type { Context } from 'hono';
import type { HttpRequest, HttpResponse } from '../abi/types.js';

// The edge between Hono and the pipeline: Hono's Context becomes plain data
// here and nowhere else, so the pipeline never imports hono.

export async function toHttpRequest(c: Context): Promise<HttpRequest> {
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
    const body = new Uint8Array(await c.req.arrayBuffer());
    if (body.length) req.body = body;
  }
  return req;
}

// Node computes these itself; a stale value from a plugin's patch would corrupt the framing.
const HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

export function toResponse(resp: HttpResponse): Response {
  const headers = new Headers();
  for (const [k, v] of Object.entries(resp.headers)) if (!HOP_BY_HOP.has(k)) headers.set(k, v);
  const noBody = resp.status === 204 || resp.status === 304;
  if (resp.stream && !noBody) return new Response(resp.stream, { status: resp.status, headers });
  resp.stream?.cancel().catch(() => {});
  return new Response(noBody ? null : ((resp.body as Uint8Array<ArrayBuffer> | undefined) ?? null), { status: resp.status, headers });
}
