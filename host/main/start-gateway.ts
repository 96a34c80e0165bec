import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Config } from '../config/schema.js';
import { createApp } from '../gateway/app.js';
import { createLogger, type Logger, logAtPluginLevel } from '../log/logger.js';
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
  /** Stops accepting, lets in-flight requests finish, calls every plugin's cleanup, stops the workers. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Where logs go (tests capture them); stdout by default. */
  logDestination?: Parameters<typeof createLogger>[1];
}

/** Wires config -> workers -> plugins -> providers -> Hono app -> HTTP server. */
export async function startGateway(config: Config, opts: StartOptions = {}): Promise<RunningGateway> {
  const log = createLogger(config.log_level, opts.logDestination);
  const names = new Map<string, string>();
  const pool = new WorkerPool(config.runtime.workers, {
    onLog: (level, pid, rid, msg) => logAtPluginLevel(log, level, { plugin: names.get(pid) ?? pid, ...(rid ? { rid } : {}) }, msg),
    onWorkerRestart: (reason) => log.warn({ reason }, 'plugin worker replaced'),
  });
  for (const p of config.plugins) names.set(p.name, p.name);

  let plugins: LoadedPlugin[];
  try {
    plugins = await loadPlugins(config.plugins, pool, log);
  } catch (e) {
    await pool.close();
    throw e;
  }
  for (const p of plugins) names.set(p.id, p.name);
  const providers = createProviders(config.providers);

  const app = createApp({
    plugins: () => plugins,
    providers,
    log,
    maxBodyBytes: config.server.max_body_bytes,
    admin: (a) => {
      a.get('/health', (c) =>
        c.json({
          status: 'ok',
          plugins: plugins.map((p) => ({ name: p.name, version: p.entry.version, on_error: p.entry.on_error, hooks: [...p.hooks], sha256: p.sha256 })),
          workers: pool.stats(),
        }),
      );
    },
  });

  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: config.server.host, port: config.server.port }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.server.host.includes(':') ? `[${config.server.host}]` : config.server.host}:${port}`;
  log.info({ url, plugins: plugins.map((p) => p.name), providers: [...providers.keys()], workers: pool.size }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle keep-alive connections would hold close() open; in-flight ones still finish.
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
      });
      await Promise.all(plugins.map((p) => pool.unload(p.id)));
      await pool.close();
      await Promise.all([...providers.values()].map((p) => p.close()));
      log.info('gateway stopped');
    })());

  return { url, port, plugins, pool, log, close };
}
