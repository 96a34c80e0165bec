import { encode } from '../abi/codec.js';
import type { HookOutputs } from '../abi/outputs.js';
import type { HookName } from '../abi/types.js';
import type { PluginEntry } from '../config/schema.js';
import { PluginFailure } from '../runtime/failure.js';
import type { WorkerPool } from '../runtime/worker-pool.js';
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js';

/** A plugin ready to be called: its config entry, what it exports, and a way to call it. */
export class LoadedPlugin {
  readonly breaker: CircuitBreaker;

  constructor(
    /** name@version#generation: unique per loaded version. */
    readonly id: string,
    readonly name: string,
    readonly entry: PluginEntry,
    readonly hooks: ReadonlySet<HookName>,
    /** From init's output: whether transport hooks get bodies (ABI.md §5.2). */
    readonly wantsRequestBody: boolean,
    readonly wantsResponseBody: boolean,
    readonly sha256: string,
    private readonly pool: WorkerPool,
    onCircuitChange: (plugin: string, state: CircuitState) => void = () => {},
  ) {
    const cb = entry.circuit_breaker;
    this.breaker = new CircuitBreaker({ failureThreshold: cb.failure_threshold, cooldownMs: cb.cooldown_ms }, (s) => onCircuitChange(name, s));
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
    try {
      return (await this.pool.call(this.id, this.name, hook, encode(envelope), rid, this.entry.timeout_ms)) as HookOutputs[H];
    } catch (e) {
      throw PluginFailure.from(e, this.name, hook);
    }
  }
}
