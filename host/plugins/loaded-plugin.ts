import { encode } from '../abi/codec.js';
import type { HookOutputs } from '../abi/outputs.js';
import type { HookName } from '../abi/types.js';
import type { PluginEntry } from '../config/schema.js';
import { PluginFailure } from '../runtime/failure.js';
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
  onCircuitChange?: (plugin: string, state: CircuitState) => void;
}

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

  /**
   * Encodes the envelope and runs the hook under this plugin's deadline.
   * Resolves with the validated output; rejects only with PluginFailure.
   */
  async call<H extends HookName>(hook: H, envelope: unknown, rid: string): Promise<HookOutputs[H]> {
    this.calls++;
    try {
      return (await this.pool.call(this.key, this.name, hook, encode(envelope), rid, this.entry.timeout_ms)) as HookOutputs[H];
    } catch (e) {
      this.failures++;
      throw PluginFailure.from(e, this.name, hook);
    }
  }
}
