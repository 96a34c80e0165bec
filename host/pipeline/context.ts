import { type Encoded, encode, encoded } from '../abi/codec.js';
import type { Context, ContextPatch } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
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

/**
 * The one key/value context of a request, shared by every hook of every plugin.
 * Bounded, because plugins could otherwise keep gateway memory outside their
 * own cap (a value per stream chunk, megabytes per request): the values plugins
 * set may take at most `maxBytes` encoded (limits.max_context_bytes). How deep
 * a value nests is bounded where every output is validated (limits.max_json_depth).
 */
export class RequestContext {
  readonly values: Context = Object.create(null) as Context;
  /** Encoded size (key + value) of each key a plugin set; the gateway's own keys are not counted. */
  private readonly sizes = new Map<string, number>();
  private bytes = 0;
  /** Counts changes, so that the encoded context is made once per change. */
  private version = 0;
  private encodedAt: { version: number; bytes: Encoded } | null = null;

  constructor(
    readonly requestId: string,
    readonly maxBytes: number,
  ) {
    this.values[CtxKey.requestId] = requestId;
  }

  /** For the gateway's own keys. */
  setReserved(key: string, value: unknown): void {
    this.values[key] = value;
    this.version++;
  }

  /**
   * The context encoded, made once per change: every hook call of the request
   * carries it, and most calls change nothing.
   *
   * @example encodeEnvelope({ ctx: ex.ctx.encoded(), req })
   */
  encoded(): Encoded {
    if (this.encodedAt?.version !== this.version) this.encodedAt = { version: this.version, bytes: encoded(this.values) };
    return this.encodedAt.bytes;
  }

  get(key: string): unknown {
    return this.values[key];
  }

  /** What the values plugins set take, encoded. */
  get size(): number {
    return this.bytes;
  }

  /**
   * Applies a plugin's patch: nil deletes; reserved keys are refused (and
   * logged), the rest still applies. A patch that would take the context over
   * maxBytes throws plugin_bad_output and changes nothing.
   */
  apply(patch: ContextPatch | undefined, plugin: string, log: Logger): void {
    if (!patch) return;
    const changes = new Map<string, number>(); // key -> its new encoded size, 0 to delete
    let total = this.bytes;
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith(RESERVED_PREFIX)) {
        log.warn({ rid: this.requestId, plugin, key }, 'plugin tried to set a reserved context key; ignored');
        continue;
      }
      const size = value === null || value === undefined ? 0 : Buffer.byteLength(key) + encode(value).length;
      total += size - (this.sizes.get(key) ?? 0);
      changes.set(key, size);
    }
    if (total > this.maxBytes) {
      throw new GatewayError(
        ErrorCode.pluginBadOutput,
        `ctx patch would make the request context ${total} bytes, over the limit of ${this.maxBytes} (limits.max_context_bytes); none of it was applied`,
      );
    }
    for (const [key, size] of changes) {
      if (size === 0) {
        delete this.values[key];
        this.sizes.delete(key);
      } else {
        this.values[key] = patch[key];
        this.sizes.set(key, size);
      }
    }
    this.bytes = total;
    if (changes.size > 0) this.version++;
  }
}
