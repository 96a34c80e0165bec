import type { LlmChunk, LlmRequest, LlmResponse } from '../abi/types.js';

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

function orderedMessage(m: unknown): unknown {
  if (!m || typeof m !== 'object' || Array.isArray(m)) return m;
  const { role, content, name, ...rest } = m as Record<string, unknown>;
  const out: Record<string, unknown> = { role: role ?? 'assistant', content: content ?? null };
  if (name !== undefined) out.name = name;
  return Object.assign(out, rest);
}

function orderedChoice(c: unknown): unknown {
  if (!c || typeof c !== 'object' || Array.isArray(c)) return c;
  const { index, message, delta, finish_reason, ...rest } = c as Record<string, unknown>;
  const out: Record<string, unknown> = { index: index ?? 0 };
  if (message !== undefined) out.message = orderedMessage(message);
  if (delta !== undefined) out.delta = orderedMessage(delta);
  out.finish_reason = finish_reason ?? null;
  return Object.assign(out, rest);
}

function orderedUsage(u: unknown): unknown {
  if (!u || typeof u !== 'object' || Array.isArray(u)) return u;
  const { prompt_tokens, completion_tokens, total_tokens, ...rest } = u as Record<string, unknown>;
  return { prompt_tokens: prompt_tokens ?? 0, completion_tokens: completion_tokens ?? 0, total_tokens: total_tokens ?? 0, ...rest };
}

/**
 * The chunk as post_llm_hook receives it: the fields and key order of an LlmResponse
 * (ABI.md §5.1), every delta with a role and a content. A PDK that decodes and
 * re-encodes an untouched chunk then writes the same bytes, so it reports no change
 * (and the client gets the upstream's chunk as it was).
 */
export function chunkForPostLlm(chunk: LlmChunk): LlmChunk {
  const { id, object, created, model, choices, usage, ...rest } = chunk;
  const out: LlmChunk = {
    id: typeof id === 'string' ? id : '',
    object: typeof object === 'string' ? object : 'chat.completion.chunk',
    created: typeof created === 'number' ? created : 0,
    model: typeof model === 'string' ? model : '',
    choices: Array.isArray(choices) ? choices.map(orderedChoice) : [],
  };
  if (usage !== undefined) out.usage = orderedUsage(usage);
  return Object.assign(out, rest);
}

/** A full chat.completion as one chunk: each message becomes the delta, with its finish_reason. */
export function responseToChunk(resp: LlmResponse): LlmChunk {
  const { id, object: _object, created, model, choices, ...rest } = resp;
  return {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: (choices ?? []).map((c) => {
      const { message, finish_reason, ...crest } = c as Record<string, unknown>;
      return { ...crest, delta: message ?? {}, finish_reason: finish_reason ?? 'stop' };
    }),
    ...rest,
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
