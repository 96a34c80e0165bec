import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Config } from '../config/schema.js';
import { adminApi, describePlugin } from '../gateway/admin-api.js';
import { createApp } from '../gateway/app.js';
import { createLogger, type Logger, logAtPluginLevel, minPluginLogLevel } from '../log/logger.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import type { LoadedPlugin } from '../plugins/loaded-plugin.js';
import { PluginRegistry } from '../plugins/registry.js';
import { ProviderSet } from '../providers/registry.js';
import { InThreadRuntime } from '../runtime/in-thread/in-thread-runtime.js';
import { WorkerPool } from '../runtime/worker-pool.js';
import { ConfigReloader, type ConfigReloadReport } from './config-reload.js';

export interface RunningGateway {
  url: string;
  port: number;
  /** The active plugin versions, in chain order (a snapshot). */
  readonly plugins: readonly LoadedPlugin[];
  registry: PluginRegistry;
  pool: WorkerPool;
  log: Logger;
  metrics: GatewayMetrics;
  providers: ProviderSet;
  /** Reads the config file again and applies it (SIGHUP, a file change, POST /admin/reload). */
  reloadConfig(trigger: string): Promise<ConfigReloadReport>;
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
  /** The config file the gateway runs from: reloaded on demand, and watched unless runtime.watch_config is false. */
  configSource?: {
    file: string;
    /** Reads and validates it again (with any command-line overrides), as at start-up. */
    load: () => Config;
  };
}

export const DEFAULT_DRAIN_MS = 10_000;
export const DEFAULT_CLEANUP_MS = 2_000;

/** Operator routes, answered outside the plugin chain. */
function operatorRoutes(app: Hono, registry: PluginRegistry, pool: WorkerPool, metrics: GatewayMetrics): void {
  app.get('/metrics', async (c) => {
    const { contentType, body } = await metrics.render();
    return c.body(body, 200, { 'content-type': contentType });
  });
  app.get('/health', (c) => {
    const list = registry.status().map(describePlugin);
    const workers = pool.stats();
    // A plugin disabled through the admin API is the operator's choice, not a fault. Without plugins
    // the pool has no threads at all (they start with the first plugin), which is no fault either.
    const degraded = list.some((p) => p.state !== 'ok' && p.state !== 'disabled') || (list.length > 0 && workers.ready === 0);
    return c.json({ status: degraded ? 'degraded' : 'ok', plugins: list, workers });
  });
}

/** Wires config -> workers -> plugins -> providers -> Hono app -> HTTP server. */
export async function startGateway(config: Config, opts: StartOptions = {}): Promise<RunningGateway> {
  const log = createLogger(config.log_level, opts.logDestination);
  const metrics = new GatewayMetrics();
  const pluginEvents = {
    onLog: (level: number, plugin: string, rid: string, msg: string) => logAtPluginLevel(log, level, { plugin, ...(rid ? { rid } : {}) }, msg),
    onLogDropped: (plugin: string, bytes: number) => metrics.onLogDropped(plugin, bytes),
    onInstanceCreated: (plugin: string) => metrics.onInstanceRestart(plugin),
  };
  const pool = new WorkerPool(
    {
      ...pluginEvents,
      onWorkerRestart: (reason, spare) => {
        metrics.onWorkerRestart();
        log.warn({ reason, replacement: spare ? 'spare' : 'new thread' }, 'plugin worker replaced');
      },
      onThreadPriorityRefused: (reason) => log.warn({ reason }, 'plugin threads run at normal priority (runtime.worker_nice)'),
    },
    { size: config.runtime.workers, queueTimeoutMs: config.runtime.queue_timeout_ms, workerNice: config.runtime.worker_nice, longCallNice: config.runtime.long_call_nice, minLogLevel: minPluginLogLevel(config.log_level), maxValueDepth: config.limits.max_json_depth },
  );

  const inThread =
    config.runtime.in_thread_budget_ms > 0
      ? new InThreadRuntime(
          { budgetMs: config.runtime.in_thread_budget_ms, minLogLevel: minPluginLogLevel(config.log_level), maxValueDepth: config.limits.max_json_depth },
          pluginEvents,
        )
      : null;
  const cleanupMs = opts.cleanupMs ?? DEFAULT_CLEANUP_MS;
  const registry = new PluginRegistry(
    pool,
    log,
    {
      onCircuitChange: (plugin, state) => {
        metrics.onCircuitChange(plugin, state);
        log.warn({ plugin, circuit: state }, `plugin circuit ${state}`);
      },
      onReload: (plugin, result) => metrics.onPluginReload(plugin, result),
      onMovedToWorkers: (plugin) => metrics.onMovedToWorkers(plugin),
      onActivated: (p) => metrics.onPluginLoaded(p.name),
    },
    { watch: config.runtime.watch_plugins, debounceMs: config.runtime.reload_debounce_ms, settleMs: config.runtime.reload_settle_ms, cleanupMs, trust: config, inThread },
  );
  try {
    await registry.start(config.plugins);
  } catch (e) {
    await registry.close();
    await pool.close();
    throw e;
  }
  const providers = new ProviderSet(config.providers);
  const reloader = new ConfigReloader(config, { registry, providers, log, metrics, load: opts.configSource?.load });

  const app = createApp({
    acquirePlugins: () => registry.acquire(),
    acquireProviders: () => providers.acquire(),
    log,
    maxBodyBytes: config.server.max_body_bytes,
    limits: { maxJsonDepth: config.limits.max_json_depth, maxContextBytes: config.limits.max_context_bytes },
    observer: metrics,
    onRequest: (route, method, status, seconds) => metrics.onRequest(route, method, status, seconds),
    admin: (a) => {
      operatorRoutes(a, registry, pool, metrics);
      adminApi(a, { registry, token: () => reloader.current.admin.token, reloadConfig: (trigger) => reloader.reload(trigger), log });
    },
  });

  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.server.host, port: config.server.port }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`;
  // Watch before saying "listening": whoever acts on that line (a deploy script, a test) may change the file at once.
  if (opts.configSource && config.runtime.watch_config) reloader.watch(opts.configSource.file);
  log.info({ url, plugins: registry.active().map((p) => p.name), providers: [...providers.providers.keys()], workers: pool.size, admin_api: config.admin.token ? 'on' : 'off' }, 'gateway listening');

  const drainMs = opts.drainMs ?? DEFAULT_DRAIN_MS;
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
      await reloader.close();
      await registry.close();
      await pool.close();
      await providers.close();
      log.info('gateway stopped');
    })());

  return {
    url,
    port,
    get plugins() {
      return registry.active();
    },
    registry,
    pool,
    log,
    metrics,
    providers,
    reloadConfig: (trigger) => reloader.reload(trigger),
    close,
  };
}
