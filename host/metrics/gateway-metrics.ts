import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HookName } from '../abi/types.js';
import type { HookObserver } from '../pipeline/invoke.js';
import type { CircuitState } from '../plugins/circuit-breaker.js';
import type { PluginFailure } from '../runtime/failure.js';

const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, open: 1, half_open: 2 };

/** Hook calls take microseconds to the deadline (seconds); buckets span that range. */
const HOOK_BUCKETS = [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Every metric the gateway exposes on GET /metrics (prom-client: the standard
 * Prometheus client for Node, with histograms and the text format done right).
 * One registry per gateway, so tests can run several in one process.
 */
export class GatewayMetrics implements HookObserver {
  readonly registry = new Registry();
  private readonly hookCalls = new Counter({ name: 'sandgate_plugin_calls_total', help: 'Plugin hook calls, by plugin and hook', labelNames: ['plugin', 'hook'], registers: [this.registry] });
  private readonly hookSeconds = new Histogram({ name: 'sandgate_plugin_call_duration_seconds', help: 'Plugin hook call latency (round trip through the worker)', labelNames: ['plugin', 'hook'], buckets: HOOK_BUCKETS, registers: [this.registry] });
  private readonly failures = new Counter({ name: 'sandgate_plugin_failures_total', help: 'Plugin failures, by kind (timeout, trap, memory, bad_output, output_too_large, hook_error, unavailable)', labelNames: ['plugin', 'hook', 'kind'], registers: [this.registry] });
  private readonly circuitRejects = new Counter({ name: 'sandgate_plugin_circuit_rejections_total', help: 'Hook calls not made because the plugin circuit was open', labelNames: ['plugin', 'hook'], registers: [this.registry] });
  private readonly shed = new Counter({ name: 'sandgate_plugin_shed_total', help: 'Hook calls not made because no worker was free within runtime.queue_timeout_ms (answered plugin_overloaded, or skipped if fail-open)', labelNames: ['plugin', 'hook'], registers: [this.registry] });
  private readonly circuit = new Gauge({ name: 'sandgate_plugin_circuit_state', help: 'Circuit breaker state: 0 closed, 1 open, 2 half-open', labelNames: ['plugin'], registers: [this.registry] });
  private readonly instanceRestarts = new Counter({ name: 'sandgate_plugin_instance_restarts_total', help: 'Plugin instances created again: in a worker where the last one failed (and was discarded), or in a replacement worker', labelNames: ['plugin'], registers: [this.registry] });
  private readonly reloads = new Counter({ name: 'sandgate_plugin_reloads_total', help: 'Plugin reloads (a changed file, a config change, the admin API), by result: ok or refused (the running version stayed)', labelNames: ['plugin', 'result'], registers: [this.registry] });
  private readonly configReloads = new Counter({ name: 'sandgate_config_reloads_total', help: 'Config reloads (file change, SIGHUP, admin API), by result: ok, or refused (invalid, or a fail-closed plugin could not load; the running config stayed)', labelNames: ['result'], registers: [this.registry] });
  private readonly logDropped = new Counter({ name: 'sandgate_plugin_log_dropped_bytes_total', help: 'Plugin log text dropped because a call went over max_log_bytes_per_call or the plugin over max_log_bytes_per_second', labelNames: ['plugin'], registers: [this.registry] });
  private readonly movedToWorkers = new Counter({ name: 'sandgate_plugin_moved_to_workers_total', help: 'Plugin versions whose hook calls left the main thread for the plugin workers (calls ran past runtime.in_thread_budget_ms three times within 10 s, or one timed out there)', labelNames: ['plugin'], registers: [this.registry] });
  private readonly workerRestarts = new Counter({ name: 'sandgate_plugin_worker_restarts_total', help: 'Plugin worker threads terminated and replaced (deadline overrun or crash)', registers: [this.registry] });
  private readonly requests = new Counter({ name: 'sandgate_http_requests_total', help: 'HTTP requests, by route and status', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  private readonly requestSeconds = new Histogram({ name: 'sandgate_http_request_duration_seconds', help: 'HTTP request latency, by route and status', labelNames: ['route', 'status'], buckets: REQUEST_BUCKETS, registers: [this.registry] });

  // Labelled children cached per plugin+hook: this runs on every hook call.
  private readonly hookChildren = new Map<string, { calls: Counter.Internal; seconds: Histogram.Internal<'plugin' | 'hook'> }>();

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'sandgate_' });
  }

  onHookCall(plugin: string, hook: HookName, seconds: number, failure: PluginFailure | null): void {
    const key = `${plugin}\0${hook}`;
    let child = this.hookChildren.get(key);
    if (!child) {
      child = { calls: this.hookCalls.labels(plugin, hook), seconds: this.hookSeconds.labels(plugin, hook) };
      this.hookChildren.set(key, child);
    }
    child.calls.inc();
    child.seconds.observe(seconds);
    if (failure) this.failures.labels(plugin, hook, failure.kind).inc();
  }

  /** An instance was created again (the worker pool saw it happen): counted when it exists, not inferred from failures. */
  onInstanceRestart(plugin: string): void {
    this.instanceRestarts.labels(plugin).inc();
  }

  onCircuitReject(plugin: string, hook: HookName): void {
    this.circuitRejects.labels(plugin, hook).inc();
  }

  onShed(plugin: string, hook: HookName): void {
    this.shed.labels(plugin, hook).inc();
  }

  onCircuitChange(plugin: string, state: CircuitState): void {
    this.circuit.labels(plugin).set(CIRCUIT_VALUE[state]);
  }

  onPluginLoaded(plugin: string): void {
    this.circuit.labels(plugin).set(0);
  }

  onMovedToWorkers(plugin: string): void {
    this.movedToWorkers.labels(plugin).inc();
  }

  onPluginReload(plugin: string, result: 'ok' | 'refused'): void {
    this.reloads.labels(plugin, result).inc();
  }

  onConfigReload(result: 'ok' | 'refused'): void {
    this.configReloads.labels(result).inc();
  }

  onLogDropped(plugin: string, bytes: number): void {
    this.logDropped.labels(plugin).inc(bytes);
  }

  onWorkerRestart(): void {
    this.workerRestarts.inc();
  }

  onRequest(route: string, method: string, status: number, seconds: number): void {
    const s = String(status);
    this.requests.labels(route, method, s).inc();
    this.requestSeconds.labels(route, s).observe(seconds);
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
