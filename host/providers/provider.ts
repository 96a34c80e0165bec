import type { LlmRequest } from '../abi/types.js';
import type { LlmResult, StreamOptions, StreamStart } from './contract.js';

/** An upstream that answers chat completions. Errors come back as results, never as exceptions. */
export interface Provider {
  readonly name: string;
  /** The model names this provider lists on `GET /v1/models` (without the "provider/" prefix). */
  readonly models: readonly string[];
  /** `incoming`: the client's request headers as the transport hooks left them (sent upstream only where forward_headers names them). */
  complete(req: LlmRequest, incoming: Readonly<Record<string, string>>): Promise<LlmResult>;
  /**
   * Opens a streamed completion. Resolves with an error when the upstream refused
   * before streaming (status, unreachable, timeout), else with the chunks, pulled one
   * at a time; a chunk source throws LlmStreamError when the stream breaks. Aborting
   * `signal` aborts the upstream request. `options.passThrough`: no plugin sees the
   * chunks (StreamOptions).
   */
  stream(req: LlmRequest, signal: AbortSignal, incoming: Readonly<Record<string, string>>, options: StreamOptions): Promise<StreamStart>;
  close(): Promise<void>;
}
