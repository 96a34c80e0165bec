import { isDeepStrictEqual } from 'node:util';
import type { Config } from '../config/schema.js';
import { MockProvider } from './mock.js';
import { OpenAiProvider } from './openai.js';
import type { Provider } from './provider.js';

/** Builds the providers named in config.json, keyed by the name used in "provider/model". */
export function createProviders(config: Config['providers']): Map<string, Provider> {
  const providers = new Map<string, Provider>();
  for (const [name, p] of Object.entries(config)) {
    providers.set(
      name,
      p.type === 'mock'
        ? new MockProvider(name, { latencyMs: p.latency_ms, streamChunks: p.stream_chunks, streamDelayMs: p.stream_delay_ms })
        : new OpenAiProvider(name, {
            baseUrl: p.base_url,
            apiKey: p.api_key,
            timeoutMs: p.timeout_ms,
            connections: p.connections,
            streamIdleTimeoutMs: p.stream_idle_timeout_ms,
            models: p.models,
            forwardHeaders: p.forward_headers,
            preferForwardedAuthorization: p.prefer_forwarded_authorization,
          }),
    );
  }
  return providers;
}

/** A request's hold on the providers it started with. */
export interface ProviderLease {
  readonly providers: ReadonlyMap<string, Provider>;
  /** Ends the hold; calling it again does nothing. */
  release(): void;
}

/**
 * The configured providers, swappable while requests run. A request takes a
 * lease when it starts and uses that map to its end; replace() builds the
 * providers whose config changed (unchanged ones are kept as they are, their
 * connection pools too) and closes each one it dropped once no request holds
 * it any more.
 *
 * @example
 * const set = new ProviderSet(config.providers);
 * const lease = set.acquire(); // lease.providers.get('openai')
 * lease.release();
 * set.replace(newConfig.providers);
 */
export class ProviderSet {
  private current: Map<string, Provider>;
  private configs: Config['providers'];
  private readonly inFlight = new Map<Provider, number>();
  private readonly retiring = new Set<Provider>();
  private readonly closing = new Set<Promise<void>>();

  constructor(config: Config['providers']) {
    this.configs = config;
    this.current = createProviders(config);
  }

  /** The providers new requests get (a snapshot; for listing, not for requests). */
  get providers(): ReadonlyMap<string, Provider> {
    return this.current;
  }

  acquire(): ProviderLease {
    const providers = this.current;
    for (const p of providers.values()) this.inFlight.set(p, (this.inFlight.get(p) ?? 0) + 1);
    let held = true;
    return {
      providers,
      release: () => {
        if (!held) return;
        held = false;
        for (const p of providers.values()) {
          const n = (this.inFlight.get(p) ?? 1) - 1;
          if (n > 0) this.inFlight.set(p, n);
          else {
            this.inFlight.delete(p);
            if (this.retiring.has(p)) this.closeProvider(p);
          }
        }
      },
    };
  }

  /** Swaps in providers for a new config; returns the names added, changed and removed. */
  replace(config: Config['providers']): { added: string[]; changed: string[]; removed: string[] } {
    const next = new Map<string, Provider>();
    const added: string[] = [];
    const changed: string[] = [];
    const built = createProviders(Object.fromEntries(Object.entries(config).filter(([name, c]) => !isDeepStrictEqual(this.configs[name], c))));
    for (const name of Object.keys(config)) {
      const kept = built.has(name) ? undefined : this.current.get(name);
      next.set(name, kept ?? built.get(name)!);
      if (!this.current.has(name)) added.push(name);
      else if (!kept) changed.push(name);
    }
    const removed = [...this.current.keys()].filter((n) => !next.has(n));
    const dropped = [...this.current.values()].filter((p) => ![...next.values()].includes(p));
    this.current = next;
    this.configs = config;
    for (const p of dropped) {
      if (this.inFlight.has(p)) this.retiring.add(p);
      else this.closeProvider(p);
    }
    return { added, changed, removed };
  }

  /** Closes every provider, the current ones and those still finishing requests. */
  async close(): Promise<void> {
    for (const p of [...this.current.values(), ...this.retiring]) this.closeProvider(p);
    await Promise.all(this.closing);
  }

  private closeProvider(p: Provider): void {
    this.retiring.delete(p);
    const done: Promise<void> = p
      .close()
      .catch(() => {})
      .finally(() => this.closing.delete(done));
    this.closing.add(done);
  }
}
