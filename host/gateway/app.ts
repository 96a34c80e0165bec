import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { HttpRequest, HttpResponse } from '../abi/types.js';
import { ErrorCode, GatewayError, isGatewayError } from '../errors/codes.js';
import type { Logger } from '../log/logger.js';
import { RequestContext } from '../pipeline/context.js';
import type { Exchange, HookObserver, RequestLimits } from '../pipeline/invoke.js';
import { runTransport } from '../pipeline/transport.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import type { ChainLease } from '../plugins/registry.js';
import type { Provider } from '../providers/provider.js';
import type { ProviderLease } from '../providers/registry.js';
import { PluginFailure } from '../runtime/failure.js';
import { chatCompletions } from './chat-completions.js';
import { clientSignal, toHttpRequest, toResponse } from './edge.js';
import { errorResponse, internalError, jsonResponse } from './http-errors.js';

export interface AppDeps {
  /** The plugin chain for one request (held until its response has ended, a stream's last chunk included). */
  acquirePlugins: () => ChainLease;
  /** The providers for one request (a config reload may swap them; a request keeps the ones it started with). */
  acquireProviders: () => ProviderLease;
  log: Logger;
  maxBodyBytes: number;
  limits: RequestLimits;
  observer?: HookObserver;
  /** Called once per answered request (metrics). */
  onRequest?: (route: string, method: string, status: number, seconds: number) => void;
  /** Extra operator routes (metrics, health details), served outside the plugin chain. */
  admin?: (app: Hono) => void;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ROUTES = new Set(['/v1/chat/completions', '/v1/models']);

/** A bounded label for metrics: the route, never the raw path (404 paths are unbounded). */
function routeLabel(path: string): string {
  return ROUTES.has(path) ? path : 'unmatched';
}

/** When this gateway process started, in Unix seconds: the `created` of every listed model. */
const STARTED_AT = Math.floor(Date.now() / 1000);

/**
 * GET /v1/models in OpenAI's shape: every provider's models as "<provider>/<model>",
 * the id a chat request names. Upstreams are not asked, so `created` is when the gateway started.
 */
function listModels(providers: ReadonlyMap<string, Provider>, created = STARTED_AT): HttpResponse {
  const data = [...providers.values()].flatMap((p) => p.models.map((model) => ({ id: `${p.name}/${model}`, object: 'model', created, owned_by: p.name })));
  return jsonResponse(200, { object: 'list', data });
}

/**
 * The core router: what a request reaches once the transport pre-hooks let it through.
 * `release` ends the request's hold on its chain and providers; only a streamed
 * answer calls it (when the stream ends), the app does for every other.
 */
function route(req: HttpRequest, plugins: readonly LoadedPlugin[], providers: ReadonlyMap<string, Provider>, ex: Exchange, release: () => void): Promise<HttpResponse> {
  if (req.path === '/v1/chat/completions') {
    if (req.method !== 'POST') {
      const e = new GatewayError(ErrorCode.methodNotAllowed, `${req.method} is not allowed on ${req.path}; use POST`);
      const resp = errorResponse(e);
      resp.headers.allow = 'POST';
      return Promise.resolve(resp);
    }
    return chatCompletions(req, plugins, providers, ex, release);
  }
  if (req.path === '/v1/models' && req.method === 'GET') {
    return Promise.resolve(listModels(providers));
  }
  throw new GatewayError(ErrorCode.notFound, `no route for ${req.method} ${req.path}`);
}

/**
 * The Hono app. Operator routes (/health, /metrics) are answered before the
 * plugin chain, so a failing plugin cannot hide the gateway's own health;
 * every other request, 404s included, goes through the transport hooks.
 */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  deps.admin?.(app);

  app.all('*', async (c) => {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const rid = incoming && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const ex: Exchange = { ctx: new RequestContext(rid, deps.limits.maxContextBytes), limits: deps.limits, log: deps.log, observer: deps.observer, clientSignal: () => clientSignal(c) };
    const lease = deps.acquirePlugins();
    const plugins = lease.plugins;
    const providerLease = deps.acquireProviders();
    // The request holds its plugin chain and providers until its response has ended: a streamed
    // body releases them itself when it ends or is cancelled (sse.ts); any other, below. Once.
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      lease.release();
      providerLease.release();
    };
    let resp: HttpResponse;
    let bodyLeftUnread = false;
    try {
      // A body over server.max_body_bytes is a GatewayError (413) like any other bad request:
      // it gets its x-request-id and is counted, and no hook sees it.
      const req = await toHttpRequest(c, deps.maxBodyBytes);
      resp = await runTransport(plugins, req, async (r) => {
        try {
          return await route(r, plugins, providerLease.providers, ex, release);
        } catch (e) {
          // Client errors and 404s are ordinary responses: transport post-hooks see them too.
          if (isGatewayError(e) && !(e instanceof PluginFailure)) return errorResponse(e);
          throw e;
        }
      }, ex);
    } catch (e) {
      if (isGatewayError(e)) {
        resp = errorResponse(e);
        bodyLeftUnread = e.code === ErrorCode.bodyTooLarge;
      } else {
        deps.log.error({ rid, err: e }, 'unhandled error');
        resp = internalError();
      }
    }
    resp.headers['x-request-id'] = rid;
    let answer: Response;
    try {
      answer = toResponse(resp);
    } catch (e) {
      // Only a gateway bug gets here (plugin output is validated before use): still a JSON
      // error the client can read, and the status counted is the one it gets.
      deps.log.error({ rid, err: e, status: resp.status }, 'response could not be sent as built');
      resp.stream?.cancel().catch(() => {});
      resp = internalError();
      resp.headers['x-request-id'] = rid;
      answer = toResponse(resp);
    }
    // The rest of a refused body may still be on its way: end the connection after the 413
    // (as nginx does) rather than read it, and the client knows not to reuse it.
    if (bodyLeftUnread) answer.headers.set('connection', 'close');
    deps.onRequest?.(routeLabel(c.req.path), c.req.method, resp.status, (performance.now() - started) / 1000);
    // A body that is not a stream has nothing left to run; a stream the response did not keep (toResponse
    // cancelled it, or the fallback above replaced it) released through its cancel.
    if (!resp.stream) release();
    return answer;
  });
  return app;
}
