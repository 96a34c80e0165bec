import type { Context, ContextPatch } from '../abi/types.js';
import type { Logger } from '../log/logger.js';

/** Keys the gateway owns (ABI.md §5.1): plugins read them, only the gateway writes them. */
export const RESERVED_PREFIX = 'sandgate.';
export const CtxKey = {
  requestId: 'sandgate.request_id',
  fallbackIndex: 'sandgate.fallback_index',
  provider: 'sandgate.provider',
  model: 'sandgate.model',
  streamEnd: 'sandgate.stream_end',
} as const;

/** The one key/value context of a request, shared by every hook of every plugin. */
export class RequestContext {
  readonly values: Context = Object.create(null) as Context;

  constructor(readonly requestId: string) {
    this.values[CtxKey.requestId] = requestId;
  }

  /** For the gateway's own keys. */
  setReserved(key: string, value: unknown): void {
    this.values[key] = value;
  }

  get(key: string): unknown {
    return this.values[key];
  }

  /** Applies a plugin's patch: nil deletes; reserved keys are refused (and logged), the rest still applies. */
  apply(patch: ContextPatch | undefined, plugin: string, log: Logger): void {
    if (!patch) return;
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith(RESERVED_PREFIX)) {
        log.warn({ rid: this.requestId, plugin, key }, 'plugin tried to set a reserved context key; ignored');
        continue;
      }
      if (value === null || value === undefined) delete this.values[key];
      else this.values[key] = value;
    }
  }
}
