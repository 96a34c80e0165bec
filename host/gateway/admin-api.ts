import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import type { Logger } from '../log/logger.js';
import type { PluginRegistry, PluginStatus, ReloadOutcome } from '../plugins/registry.js';
import { errorBody, statusFor } from './http-errors.js';

// The admin API: operator routes under /admin/, answered before the plugin
// chain (no plugin sees or answers them), and off unless admin.token is set;
// then every admin request needs "Authorization: Bearer <token>". The token
// is compared in constant time and never logged.

/** What the admin API asks of the rest of the gateway beyond the registry: a config reload. */
export interface AdminDeps {
  registry: PluginRegistry;
  /** The current admin.token (a config reload may change it); undefined turns the API off. */
  token: () => string | undefined;
  /** Reloads the config file; resolves with the report (ok or refused), never throws. */
  reloadConfig: (trigger: string) => Promise<{ result: 'ok' | 'refused' } & Record<string, unknown>>;
  log: Logger;
}

/** Constant-time check of an Authorization header against the token (sha256 digests: equal lengths whatever was sent). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
  const given = createHash('sha256').update(m?.[1] ?? '').digest();
  const expected = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, expected) && m !== null;
}

/** One plugin as GET /admin/plugins lists it. */
export function describePlugin({ name, active: p, disabled, draining, lastReload }: PluginStatus) {
  return {
    name,
    version: p?.entry.version ?? null,
    sha256: p?.sha256 ?? null,
    generation: p?.id.generation ?? null,
    state: disabled ? 'disabled' : !p ? 'not_loaded' : p.breaker.state === 'closed' ? 'ok' : `circuit_${p.breaker.state}`,
    loaded_at: p?.loadedAt.toISOString() ?? null,
    hooks: p ? [...p.hooks] : [],
    on_error: p?.entry.on_error ?? null,
    /** Hook calls and failures of the active version (a new version starts from 0). */
    calls: p?.calls ?? 0,
    failures: p?.failures ?? 0,
    circuit: p?.breaker.state ?? null,
    in_flight: p?.inFlight ?? 0,
    /** Where its hook calls run: main-thread or workers (ABI.md §7.6), and why workers. */
    placement: p?.placement ?? null,
    placement_reason: p?.placementReason ?? null,
    draining_versions: draining,
    last_reload: lastReload,
  };
}

const PLUGIN_ACTION = /^\/admin\/plugins\/([A-Za-z0-9._-]+)\/(reload|disable|enable)$/;

/** A reload's outcome as an HTTP status: refused is 422 (the file, not the request, is at fault). */
function outcomeStatus(o: ReloadOutcome): 200 | 409 | 422 {
  return o.result === 'refused' ? 422 : o.result === 'skipped' ? 409 : 200;
}

/**
 * Registers /admin/* on the app (before the catch-all that runs the plugin chain).
 *
 * @example
 * adminApi(app, { registry, token: () => config.admin.token, reloadConfig: (t) => reloader.reload(t), log });
 */
export function adminApi(app: Hono, deps: AdminDeps): void {
  const handle = async (c: Context): Promise<Response> => {
    const path = c.req.path;
    const method = c.req.method;
    if (method === 'GET' && path === '/admin/plugins') {
      return c.json({ plugins: deps.registry.status().map(describePlugin) });
    }
    if (method === 'POST' && path === '/admin/reload') {
      deps.log.info({ admin: 'reload config' }, 'admin: config reload requested');
      const report = await deps.reloadConfig('admin');
      return c.json(report, report.result === 'ok' ? 200 : 422);
    }
    const m = PLUGIN_ACTION.exec(path);
    if (m && method === 'POST') {
      const [, name, action] = m;
      if (!deps.registry.has(name)) {
        return errorJson(c, new GatewayError(ErrorCode.notFound, `no plugin "${name}" in the config; GET /admin/plugins lists them`));
      }
      deps.log.info({ admin: action, plugin: name }, `admin: ${action} plugin`);
      if (action === 'disable') {
        await deps.registry.disable(name);
        return c.json({ plugin: name, result: 'disabled' });
      }
      const outcome = action === 'enable' ? await deps.registry.enable(name) : await deps.registry.reload(name, 'admin');
      const why = outcome.result === 'skipped' ? (action === 'enable' ? 'the plugin is not disabled' : 'the plugin is disabled; enable it first') : undefined;
      return c.json({ plugin: name, ...outcome, ...(why ? { error: why } : {}) }, outcomeStatus(outcome));
    }
    return errorJson(c, new GatewayError(ErrorCode.notFound, `no admin route ${method} ${path}`));
  };

  app.use('/admin/*', async (c, next) => {
    const token = deps.token();
    // Off: /admin/ is an ordinary path, as if this API did not exist.
    if (!token) return next();
    if (!bearerMatches(c.req.header('authorization'), token)) {
      // The header is not logged: it may hold a near miss of the token.
      deps.log.warn({ path: c.req.path, method: c.req.method }, 'admin request refused: missing or wrong bearer token');
      return errorJson(c, new GatewayError(ErrorCode.adminUnauthorized, 'the admin API needs "Authorization: Bearer <admin.token>"'), { 'www-authenticate': 'Bearer' });
    }
    return handle(c);
  });
}

function errorJson(c: Context, e: GatewayError, headers: Record<string, string> = {}): Response {
  return c.json(errorBody(e), statusFor(e.code) as 401 | 404, headers);
}
