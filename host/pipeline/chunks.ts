import type { LlmChunk, LlmRequest, LlmResponse } from '../abi/types.js';
import { responseToChunk } from '../providers/contract.js';

// The shapes of streamed chunks: what post_llm_hook receives, how a full
// response becomes a chunk, and when a stream has ended.

/** sandgate.stream_end: true from the chunk on which every expected choice has a finish_reason. */
export class EndTracker {
  ended = false;
  private readonly finished = new Set<number>();

  constructor(private readonly choices: number) {}

  see(chunk: LlmChunk): boolean {
    if (this.ended) return true;
    const choices = chunk.choices;
    if (Array.isArray(choices)) {
      for (const c of choices as Record<string, unknown>[]) {
        if (c && c.finish_reason != null) this.finished.add(typeof c.index === 'number' ? c.index : 0);
      }
    }
    this.ended = this.finished.size >= this.choices;
    return this.ended;
  }
}

export function expectedChoices(req: LlmRequest): number {
  const n = req.params.n;
  return typeof n === 'number' && Number.isInteger(n) && n > 1 ? n : 1;
}

/**
 * The chunk as post_llm_hook receives it: an LlmResponse (ABI.md §5.1), so the
 * four envelope fields are there (as the upstream sent them, or filled in when
 * it left one out). Nothing else changes: keys stay in the upstream's order and
 * deltas as they were. Whether a plugin changed the chunk is decided by value
 * (abi/same-value.ts), so a plugin may re-encode a chunk it did not touch.
 */
export function chunkForPostLlm(chunk: LlmChunk): LlmChunk {
  const { id, object, created, model } = chunk;
  return {
    ...chunk,
    id: typeof id === 'string' ? id : '',
    object: typeof object === 'string' ? object : 'chat.completion.chunk',
    created: typeof created === 'number' ? created : 0,
    model: typeof model === 'string' ? model : '',
    choices: Array.isArray(chunk.choices) ? chunk.choices : [],
  };
}

/** A post_llm_hook's replacement as a chunk (a plugin may answer with a full message instead of a delta). */
export function asChunk(resp: LlmResponse | LlmChunk): LlmChunk {
  const choices = Array.isArray(resp.choices) ? (resp.choices as Record<string, unknown>[]) : [];
  if (choices.some((c) => c && c.delta === undefined && c.message !== undefined)) return responseToChunk(resp as LlmResponse);
  return { ...resp, object: 'chat.completion.chunk' };
}

export function syntheticEnd(last: LlmChunk | undefined, rid: string): LlmChunk {
  return {
    id: typeof last?.id === 'string' ? last.id : `chatcmpl-${rid}`,
    object: 'chat.completion.chunk',
    created: typeof last?.created === 'number' ? last.created : Math.floor(Date.now() / 1000),
    model: typeof last?.model === 'string' ? last.model : '',
    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }],
  };
}
