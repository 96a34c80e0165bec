import { ErrorCode, GatewayError } from '../errors/codes.js';

/**
 * How a plugin call can fail (the label used in metrics and logs). Two kinds
 * are calls that were never made: `circuit_open` (the plugin's breaker refused)
 * and `overloaded` (no worker was free within runtime.queue_timeout_ms: shed).
 */
export type FailureKind = 'timeout' | 'trap' | 'memory' | 'bad_output' | 'output_too_large' | 'hook_error' | 'unavailable' | 'circuit_open' | 'overloaded';

const CODE_OF: Record<FailureKind, GatewayError['code']> = {
  timeout: ErrorCode.pluginTimeout,
  trap: ErrorCode.pluginTrap,
  memory: ErrorCode.pluginMemory,
  bad_output: ErrorCode.pluginBadOutput,
  output_too_large: ErrorCode.pluginOutputTooLarge,
  hook_error: ErrorCode.pluginHookError,
  unavailable: ErrorCode.pluginUnavailable,
  circuit_open: ErrorCode.pluginCircuitOpen,
  overloaded: ErrorCode.pluginOverloaded,
};

const KIND_OF = Object.fromEntries(Object.entries(CODE_OF).map(([k, v]) => [v, k])) as Record<string, FailureKind>;

/** A plugin misbehaved. Carries the kind so the pipeline can apply on_error and count it. */
export class PluginFailure extends GatewayError {
  readonly kind: FailureKind;
  readonly hook: string;

  constructor(kind: FailureKind, plugin: string, hook: string, message: string) {
    super(CODE_OF[kind], message, { plugin, detail: { hook, kind } });
    this.name = 'PluginFailure';
    this.kind = kind;
    this.hook = hook;
  }

  /** Re-labels a GatewayError raised while reading an output (bad_output) as a failure of this call. */
  static from(e: unknown, plugin: string, hook: string): PluginFailure {
    if (e instanceof PluginFailure) return e;
    if (e instanceof GatewayError && KIND_OF[e.code]) return new PluginFailure(KIND_OF[e.code], plugin, hook, e.message);
    return new PluginFailure('trap', plugin, hook, (e as Error)?.message ?? String(e));
  }
}
