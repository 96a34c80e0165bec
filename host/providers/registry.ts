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
