import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Config } from '../config/schema.js';
import { createApp } from '../gateway/app.js';
import { createLogger, type Logger, logAtPluginLevel, minPluginLogLevel } from '../log/logger.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { loadPlugins } from '../plugins/load-plugins.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { createProviders } from '../providers/registry.js';
import { WorkerPool } from '../runtime/worker-pool.js';

export interface RunningGateway {
  url: string;
  port: number;
  plugins: readonly LoadedPlugin[];
  pool: WorkerPool;
  log: Logger;
  metrics: GatewayMetrics;
  /** Stops accepting, lets in-flight requests finish (bounded), calls every plugin's cleanup (bounded), stops the workers. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: Parameters<typeof createLogger>[1];
  /** How long in-flight requests get on close before their connections are cut. */
  drainMs?: number;
  /** How long each plugin's cleanup may take on close. */
  cleanupMs?: number;
}

/** A loaded plugin's id is name@version#generation; names cannot contain "@" (config schema). */
function pluginNameOf(id: string): string {
  const at = id.indexOf('@');
  return at === -1 ? id : id.slice(0, at);
}

export const DEFAULT_DRAIN_MS = 10_000;
export const DEFAULT_CLEANUP_MS = 2_000;

/** Operator routes, answered outside the plugin chain. */
function adminRoutes(app: Hono, plugins: () => readonly LoadedPlugin[], pool: WorkerPool, metrics: GatewayMetrics): void {
  app.get('/metrics', async (c) => {
    const { contentType, body } = await metrics.render();
    return c.body(body, 200, { 'content-type': contentType });
  });
  app.get('/health', (c) => {
    const list = plugins().map((p) => ({
      name: p.name,
      version: p.entry.version,
      state: p.breaker.state === 'closed' ? 'ok' : `circuit_${p.breaker.state}`,
      circuit: p.breaker.state,
      on_error: p.entry.on_error,
      hooks: [...p.hooks],
      sha256: p.sha256,
    }));
    const degraded = list.some((p) => p.circuit !== 'closed') || pool.stats().ready === 0;
    return c.json({ status: degraded ? 'degraded' : 'ok', plugins: list, workers: pool.stats() });
  });
}

/** Wires config -> workers -> plugins -> providers -> Hono app -> HTTP server. */
export async function startGateway(config: Config, opts: StartOptions = {}): Promise<RunningGateway> {
  const log = createLogger(config.log_level, opts.logDestination);
  const metrics = new GatewayMetrics();
  const pool = new WorkerPool(
    {
      onLog: (level, pid, rid, msg) => logAtPluginLevel(log, level, { plugin: pluginNameOf(pid), ...(rid ? { rid } : {}) }, msg),
      onLogDropped: (pid, bytes) => metrics.onLogDropped(pluginNameOf(pid), bytes),
      onWorkerRestart: (reason) => {
        metrics.onWorkerRestart();
        log.warn({ reason }, 'plugin worker replaced');
      },
    },
    { size: config.runtime.workers, minLogLevel: minPluginLogLevel(config.log_level), maxValueDepth: config.limits.max_json_depth },
  );

  let plugins: LoadedPlugin[];
  try {
    plugins = await loadPlugins(config.plugins, pool, log, (plugin, state) => {
      metrics.onCircuitChange(plugin, state);
      log.warn({ plugin, circuit: state }, `plugin circuit ${state}`);
    });
  } catch (e) {
    await pool.close();
    throw e;
  }
  for (const p of plugins) metrics.onPluginLoaded(p.name);
  const providers = createProviders(config.providers);

  const app = createApp({
    plugins: () => plugins,
    providers,
    log,
    maxBodyBytes: config.server.max_body_bytes,
    limits: { maxJsonDepth: config.limits.max_json_depth, maxContextBytes: config.limits.max_context_bytes },
    observer: metrics,
    onRequest: (route, method, status, seconds) => metrics.onRequest(route, method, status, seconds),
    admin: (a) => adminRoutes(a, () => plugins, pool, metrics),
  });

  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.server.host, port: config.server.port }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`;
  log.info({ url, plugins: plugins.map((p) => p.name), providers: [...providers.keys()], workers: pool.size }, 'gateway listening');

  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
  const cleanupMs = opts.cleanupMs ?? DEFAULT_CLEANUP_MS;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const http = server as unknown as { closeIdleConnections(): void; closeAllConnections(): void };
      const drained = await new Promise<boolean>((resolve) => {
        // Idle keep-alive connections would hold close() open until the client drops
        // them; in-flight requests still finish. A connection whose last request ends
        // during the drain goes idle then, hence the sweep rather than one call.
        const sweep = setInterval(() => http.closeIdleConnections(), 50);
        const timer = setTimeout(() => {
          clearInterval(sweep);
          resolve(false);
        }, drainMs);
        server.close(() => {
          clearTimeout(timer);
          clearInterval(sweep);
          resolve(true);
        });
        http.closeIdleConnections();
      });
      if (!drained) {
        log.warn({ drainMs }, 'in-flight requests did not finish in time; closing their connections');
        http.closeAllConnections();
      }
      // Cleanup runs after in-flight calls end (each worker handles the unload after its current call).
      await Promise.all(plugins.map((p) => pool.unload(p.id, cleanupMs)));
      await pool.close();
      await Promise.all([...providers.values()].map((p) => p.close()));
      log.info('gateway stopped');
    })());

  return { url, port, plugins, pool, log, metrics, close };
}
