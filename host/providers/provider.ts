import type { LlmRequest } from '../abi/types.js';
import type { LlmResult } from '../pipeline/llm.js';

/** An upstream that answers chat completions. Errors come back as results, never as exceptions. */
export interface Provider {
  readonly name: string;
  complete(req: LlmRequest): Promise<LlmResult>;
  close(): Promise<void>;
}
