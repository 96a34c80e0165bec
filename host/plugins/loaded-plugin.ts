import { encode, Encoded } from '../abi/codec.js';
import type { HookOutputs } from '../abi/outputs.js';
import type { HookName } from '../abi/types.js';
import type { PluginEntry } from '../config/schema.js';
import { PluginFailure } from '../runtime/failure.js';
import { OVER_BUDGET, type InThreadPlugin } from '../runtime/in-thread/in-thread-plugin.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';

/** Which loaded version of a plugin: the config's name and version, and the registry's load count. */
export interface PluginVersionId {
  name: string;
  /** The config's `version`. */
  version: number;
  /** Counts every load of any plugin in this process: two loads of the same file differ. */
  generation: number;
}

/** The worker pool's key for a loaded version (an opaque string: never parsed back). */
export function poolKey(id: PluginVersionId): string {
  return `${id.name}@${id.version}#${id.generation}`;
}

export interface LoadedPluginInit {
  id: PluginVersionId;
  entry: PluginEntry;
  hooks: ReadonlySet<HookName>;
  /** From init's output: whether transport hooks get bodies (ABI.md §5.2). */
  wantsRequestBody: boolean;
  wantsResponseBody: boolean;
  /** From init's output: whether post_llm_hook gets each streamed delta (ABI.md §5.2). */
  wantsStreamDeltas: boolean;
  sha256: string;
  pool: WorkerPool;
  /** Its instance on the main thread, or null: then every call goes to the pool. */
  inThread?: InThreadPlugin | null;
  /** Why it has no instance on the main thread (null if it has one). */
  placementReason?: string | null;
  onCircuitChange?: (plugin: string, state: CircuitState) => void;
  /** Its calls left the main thread for good (a call ran past runtime.in_thread_budget_ms, or timed out there). */
  onMovedToWorkers?: (plugin: string, reason: string) => void;
}

/** Where a version's hook calls run (ABI.md §7.6). */
export type Placement = 'main-thread' | 'workers';

/**
 * Overruns of the main-thread budget, within OVERRUN_WINDOW_MS, that move a
 * version to the workers. The budget is wall time, so a busy machine that
 * pauses the main thread in the middle of a short call makes a lone overrun
 * now and then; a plugin that loops overruns on every call.
 */
const OVERRUNS_TO_MOVE = 3;
const OVERRUN_WINDOW_MS = 10_000;

/**
 * One loaded version of a plugin, ready to be called: its config entry, what it
 * exports, and a way to call it. Created and retired only by the PluginRegistry.
 */
export class LoadedPlugin {
  readonly id: PluginVersionId;
  /** The pool's key for this version. */
  readonly key: string;
  readonly name: string;
  readonly entry: PluginEntry;
  readonly hooks: ReadonlySet<HookName>;
  readonly wantsRequestBody: boolean;
  readonly wantsResponseBody: boolean;
  readonly wantsStreamDeltas: boolean;
  readonly sha256: string;
  readonly breaker: CircuitBreaker;
  readonly loadedAt = new Date();
  /** Requests holding a chain that contains this version (PluginRegistry.acquire). */
  inFlight = 0;
  /** Hook calls made to this version, and how many of them failed (admin API). */
  calls = 0;
  failures = 0;
  private readonly pool: WorkerPool;
  private inThread: InThreadPlugin | null;
  /** When the recent main-thread overruns happened (performance.now()). */
  private overruns: number[] = [];
  /** Why this version's calls run on the workers (null while they run on the main thread). */
  placementReason: string | null;
  private readonly onMovedToWorkers: (plugin: string, reason: string) => void;

  constructor(init: LoadedPluginInit) {
    this.id = init.id;
    this.key = poolKey(init.id);
    this.name = init.id.name;
    this.entry = init.entry;
    this.hooks = init.hooks;
    this.wantsRequestBody = init.wantsRequestBody;
    this.wantsResponseBody = init.wantsResponseBody;
    this.wantsStreamDeltas = init.wantsStreamDeltas;
    this.sha256 = init.sha256;
    this.pool = init.pool;
    this.inThread = init.inThread ?? null;
    this.placementReason = this.inThread ? null : (init.placementReason ?? 'no main-thread instance was given');
    this.onMovedToWorkers = init.onMovedToWorkers ?? (() => {});
    const cb = init.entry.circuit_breaker;
    const onChange = init.onCircuitChange ?? (() => {});
    this.breaker = new CircuitBreaker({ failureThreshold: cb.failure_threshold, cooldownMs: cb.cooldown_ms }, (s) => onChange(this.name, s));
  }

  get failOpen(): boolean {
    return this.entry.on_error === 'fail-open';
  }

  has(hook: HookName): boolean {
    return this.hooks.has(hook);
  }

  get placement(): Placement {
    return this.inThread ? 'main-thread' : 'workers';
  }

  /**
   * Encodes the envelope (unless it is Encoded already) and runs the hook under this plugin's deadline: on
   * the main thread while the plugin keeps within its budget there, else on a
   * worker. Resolves with the validated output; rejects only with PluginFailure.
   */
  async call<H extends HookName>(hook: H, envelope: unknown, rid: string): Promise<HookOutputs[H]> {
    this.calls++;
    const input = envelope instanceof Encoded ? envelope.bytes : encode(envelope);
    const timeoutMs = this.entry.timeout_ms;
    if (!this.inThread) return this.callOnWorker(hook, input, rid, timeoutMs);
    const started = performance.now();
    let out: HookOutputs[H] | typeof OVER_BUDGET;
    try {
      out = this.inThread.call(hook, input, rid, timeoutMs);
    } catch (e) {
      this.failures++;
      const failure = PluginFailure.from(e, this.name, hook);
      if (failure.kind === 'timeout') this.moveToWorkers(`its ${hook} timed out on the main thread (timeout_ms ${timeoutMs} is within runtime.in_thread_budget_ms)`);
      throw failure;
    }
    if (out !== OVER_BUDGET) return out;
    this.overran(hook, started);
    // The same call again, on a worker, with what is left of its deadline.
    return this.callOnWorker(hook, input, rid, Math.max(1, Math.floor(timeoutMs - (performance.now() - started))));
  }

  private async callOnWorker<H extends HookName>(hook: H, input: Uint8Array, rid: string, timeoutMs: number): Promise<HookOutputs[H]> {
    try {
      return (await this.pool.call(this.key, this.name, hook, input, rid, timeoutMs)) as HookOutputs[H];
    } catch (e) {
      this.failures++;
      throw PluginFailure.from(e, this.name, hook);
    }
  }

  /** Runs cleanup once per instance (main thread and every worker) and drops the version from the pool. */
  async unload(cleanupMs: number): Promise<void> {
    this.inThread?.close();
    this.inThread = null;
    await this.pool.unload(this.key, cleanupMs);
  }

  /** A call ran past the main-thread budget: the version moves once that happens OVERRUNS_TO_MOVE times in a short while. */
  private overran(hook: string, at: number): void {
    this.overruns = [...this.overruns.filter((t) => at - t < OVERRUN_WINDOW_MS), at];
    if (this.overruns.length >= OVERRUNS_TO_MOVE) {
      this.moveToWorkers(`its calls ran past the main thread's budget (runtime.in_thread_budget_ms) ${OVERRUNS_TO_MOVE} times within ${OVERRUN_WINDOW_MS / 1000} s, the last in ${hook}`);
    }
  }

  /** From now on every call of this version runs on the worker pool; the main-thread instance is dropped. */
  private moveToWorkers(reason: string): void {
    if (!this.inThread) return;
    this.inThread = null; // its instance was already dropped by the failed call: no cleanup to run
    this.placementReason = reason;
    this.onMovedToWorkers(this.name, reason);
  }
}
