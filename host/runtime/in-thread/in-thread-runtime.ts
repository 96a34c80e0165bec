import type { PluginSpec } from '../messages.js';
import { InThreadPlugin, type InThreadEvents } from './in-thread-plugin.js';

export interface InThreadRuntimeOptions {
  /** runtime.in_thread_budget_ms: longest one hook call may run on the main thread. */
  budgetMs: number;
  /** Lowest plugin log level worth keeping (0 debug .. 3 error). */
  minLogLevel: number;
  /** limits.max_json_depth. */
  maxValueDepth?: number;
}

/**
 * Instance creation (start, _initialize, init) may take this long on the main
 * thread, at most (and never more than init_timeout_ms). A plugin whose init
 * is slower runs on the workers, where init_timeout_ms alone bounds it.
 */
const INIT_BUDGET_MS = 20;

/**
 * Where plugins run on the gateway's main thread: says which may, and opens
 * their in-thread instances.
 *
 * @example
 * const inThread = new InThreadRuntime({ budgetMs: 2, minLogLevel: 1 }, events);
 * const opened = inThread.open(spec, compiled.inThreadBlockers, entry.init_timeout_ms);
 * if (typeof opened === 'string') log.info(`runs on workers: ${opened}`);
 */
export class InThreadRuntime {
  constructor(
    private readonly opts: InThreadRuntimeOptions,
    private readonly events: InThreadEvents,
  ) {}

  /** A started in-thread instance of the plugin, or why it runs on the plugin workers only. */
  open(spec: PluginSpec, blockers: readonly string[], initTimeoutMs: number): InThreadPlugin | string {
    if (blockers.length > 0) return `the module ${blockers.join(', ')}`;
    const plugin = new InThreadPlugin(
      spec,
      { budgetMs: this.opts.budgetMs, initBudgetMs: Math.min(INIT_BUDGET_MS, initTimeoutMs), minLogLevel: this.opts.minLogLevel, maxValueDepth: this.opts.maxValueDepth },
      this.events,
    );
    try {
      plugin.start();
      return plugin;
    } catch (e) {
      return `creating its instance on the main thread failed: ${(e as Error).message}`;
    }
  }
}
