import { HOST_OWNED_HEADERS } from '../abi/http-fields.js';
import type { HookError, HttpRequest, HttpResponse, RequestPatch, ResponsePatch } from '../abi/types.js';
import { ERRORS, ErrorCode, GatewayError } from '../errors/codes.js';
import { type Encoded, encoded, encodeEnvelope } from '../abi/codec.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { parseClientJson } from './client-json.js';
import { type Exchange, invokeHook } from './invoke.js';

/** The gateway's handling of a request once the transport pre-hooks let it through. */
export type CoreHandler = (req: HttpRequest) => Promise<HttpResponse>;

const JSON_HEADERS = { 'content-type': 'application/json' };

/** The OpenAI-shaped body of an error a hook returned on purpose: its own code, or plugin_rejected. */
export function hookErrorBody(err: Pick<HookError, 'message' | 'code'>, plugin: string): { error: Record<string, unknown> } {
  return { error: { message: err.message, type: ERRORS.pluginRejected.type, code: err.code ?? ERRORS.pluginRejected.code, plugin } };
}

/** An error a transport hook returned on purpose, as a response: its own status, or plugin_rejected's. */
export function hookErrorResponse(err: HookError, plugin: string): HttpResponse {
  return { status: err.status ?? ERRORS.pluginRejected.status, headers: { ...JSON_HEADERS }, body: Buffer.from(JSON.stringify(hookErrorBody(err, plugin))) };
}

function mergeStrings(target: Record<string, string>, patch: Record<string, string | null> | undefined, lowerKeys: boolean): void {
  if (!patch) return;
  for (const [k, v] of Object.entries(patch)) {
    const key = lowerKeys ? k.toLowerCase() : k;
    if (v === null) delete target[key];
    else target[key] = v;
  }
}

function applyRequestPatch(req: HttpRequest, patch: RequestPatch | undefined): void {
  if (!patch) return;
  if (patch.method) req.method = patch.method.toUpperCase();
  if (patch.path) req.path = patch.path;
  mergeStrings(req.headers, patch.headers, true);
  mergeStrings(req.query, patch.query, false);
  if (patch.body) {
    req.body = patch.body;
    delete req.headers['content-length'];
  }
}

function applyResponsePatch(resp: HttpResponse, patch: ResponsePatch | undefined): void {
  if (!patch) return;
  if (patch.status) resp.status = patch.status;
  mergeStrings(resp.headers, patch.headers, true);
  if (patch.body) {
    resp.body = patch.body;
    delete resp.headers['content-length'];
  }
}

/** The request as one plugin may see it: without the body unless it asked for bodies. */
function visibleRequest(req: HttpRequest, withBody: boolean): HttpRequest {
  if (withBody || req.body === undefined) return req;
  const { body: _omitted, ...rest } = req;
  return rest;
}

function visibleResponse(resp: HttpResponse, withBody: boolean): HttpResponse {
  if (withBody || resp.body === undefined) return resp;
  const { body: _omitted, ...rest } = resp;
  return rest;
}

/**
 * The legacy interceptor's replacement header map. It returns every header it was
 * given, the client's framing headers included, so those are not refused (as in
 * a patch) but ignored: the request keeps its own.
 */
function replaceHeaders(current: Record<string, string>, next: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(next)) {
    const key = k.toLowerCase();
    if (!HOST_OWNED_HEADERS.has(key)) headers[key] = v;
  }
  for (const key of HOST_OWNED_HEADERS) if (current[key] !== undefined) headers[key] = current[key];
  return headers;
}

/** The legacy v1.3 interceptor: headers and the JSON body as a map in, replacements out; an error short-circuits. */
async function runInterceptor(p: LoadedPlugin, req: HttpRequest, ex: Exchange): Promise<HttpResponse | undefined> {
  let body: unknown = null;
  if (req.body?.length) {
    try {
      const parsed = parseClientJson(req.body, ex.limits.maxJsonDepth);
      body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : null;
    } catch (e) {
      // A body that is not JSON reaches the interceptor as nil; one nested too deep is the client's 400.
      if (!(e instanceof GatewayError && e.code === ErrorCode.invalidJson)) throw e;
    }
  }
  const out = await invokeHook(p, 'transport_interceptor', { ctx: ex.ctx.values, url: req.path, headers: req.headers, body }, ex);
  if (!out) return undefined;
  if (out.error) return hookErrorResponse(out.error, p.name);
  if (out.headers) req.headers = replaceHeaders(req.headers, out.headers);
  if (out.body) {
    req.body = Buffer.from(JSON.stringify(out.body));
    delete req.headers['content-length'];
  }
  return undefined;
}

/**
 * Runs one HTTP request through the transport layer: pre-hooks in order, the
 * core (unless a pre-hook short-circuited at plugin k), then post-hooks in
 * reverse for the plugins before k (or all of them); none for a streamed response.
 */
export async function runTransport(plugins: readonly LoadedPlugin[], req: HttpRequest, core: CoreHandler, ex: Exchange): Promise<HttpResponse> {
  let ran = plugins.length;
  let resp: HttpResponse | undefined;
  // The request as plugins see it (with or without its body), encoded once until a patch changes it.
  const reqViews = new ViewCache(visibleRequest);

  for (let i = 0; i < plugins.length && !resp; i++) {
    const p = plugins[i];
    if (p.has('http_transport_pre_hook')) {
      const out = await invokeHook(p, 'http_transport_pre_hook', encodeEnvelope({ ctx: ex.ctx.encoded(), req: reqViews.of(req, p.wantsRequestBody) }), ex);
      if (!out) continue; // fail-open failure: as if it said "continue"
      if (out.req) reqViews.clear();
      applyRequestPatch(req, out.req);
      resp = out.response ?? (out.error && hookErrorResponse(out.error, p.name));
    } else if (p.has('transport_interceptor')) {
      reqViews.clear();
      resp = await runInterceptor(p, req, ex);
    }
    if (resp) ran = i;
  }

  resp ??= await core(req);
  // A streamed response is not a body a post-hook could see: its chunks go through
  // http_transport_stream_chunk_hook instead (docs/hook-semantics.md).
  if (resp.stream) return resp;

  // Post-hooks change only the response: the request views stay valid through them.
  const respViews = new ViewCache(visibleResponse);
  for (let i = ran - 1; i >= 0; i--) {
    const p = plugins[i];
    if (!p.has('http_transport_post_hook')) continue;
    const envelope = encodeEnvelope({ ctx: ex.ctx.encoded(), req: reqViews.of(req, p.wantsRequestBody), resp: respViews.of(resp, p.wantsResponseBody) });
    const out = await invokeHook(p, 'http_transport_post_hook', envelope, ex);
    if (!out) continue;
    if (out.error) {
      // An error from a post-hook goes to the client; the remaining post-hooks are skipped.
      resp = hookErrorResponse(out.error, p.name);
      break;
    }
    if (out.resp) respViews.clear();
    applyResponsePatch(resp, out.resp);
  }
  return resp;
}

/**
 * A request's or response's views (with its body, or without for plugins that
 * asked for none), each encoded once for every plugin that sees it, until
 * clear() (the pipeline changed the object in place).
 */
class ViewCache<T> {
  private readonly views = new Map<boolean, Encoded>();
  constructor(private readonly view: (value: T, withBody: boolean) => T) {}

  of(value: T, withBody: boolean): Encoded {
    let bytes = this.views.get(withBody);
    if (!bytes) {
      bytes = encoded(this.view(value, withBody));
      this.views.set(withBody, bytes);
    }
    return bytes;
  }

  clear(): void {
    this.views.clear();
  }
}
