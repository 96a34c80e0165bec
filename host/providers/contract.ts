import type { LlmChunk, LlmError, LlmResponse } from '../abi/types.js';

// What a provider hands the pipeline, and nothing else: the pipeline receives
// the provider as an injected function and the providers never import the
// pipeline, so the shapes they share live here, below both (they depend on
// host/abi's types only).

/** A non-streamed answer. Errors come back as results, never as exceptions. */
export type LlmResult = { response: LlmResponse; error?: undefined } | { error: LlmError; response?: undefined };

/** A provider's stream: chunks pulled one at a time; a thrown LlmStreamError ends it. */
export type ChunkSource = AsyncIterator<LlmChunk, unknown, undefined>;

/** An opened stream, or the error that came instead of it (status, unreachable, timeout). */
export type StreamStart = { chunks: ChunkSource; error?: undefined } | { error: LlmError; chunks?: undefined };

/** How the pipeline will use a stream's chunks. */
export interface StreamOptions {
  /**
   * No plugin in the request's chain sees the chunks (none takes deltas or has a
   * chunk hook): the chunks go to the client as the upstream's text. A provider
   * may then hand over a chunk as its text alone (textOnlyChunk), unparsed, as
   * long as it still finds what the pipeline relies on: the end of the stream
   * (the chunk with a finish_reason, parsed), upstream errors and bad chunks.
   */
  passThrough: boolean;
}

/**
 * What a ChunkSource throws when the stream breaks (malformed chunk, idle upstream, early close, ...).
 *
 * @example throw new LlmStreamError({ message: 'closed before [DONE]', ...errorFields(ErrorCode.upstreamStreamTruncated) });
 */
export class LlmStreamError extends Error {
  constructor(readonly error: LlmError) {
    super(error.message);
    this.name = 'LlmStreamError';
  }
}

/**
 * Set by a provider on a chunk it parsed from the upstream: the chunk's JSON text
 * exactly as received, on one line. A chain with no hook that sees chunks sends
 * that text on as it is instead of serialising the chunk again. A symbol key, so
 * neither JSON.stringify, the ABI codec nor sameValue ever sees it.
 *
 * @example (chunk as { [RAW_CHUNK_JSON]?: string })[RAW_CHUNK_JSON] = ev.data;
 */
export const RAW_CHUNK_JSON: unique symbol = Symbol('sandgate.rawChunkJson');

/** The upstream JSON text a provider kept on a chunk (RAW_CHUNK_JSON), if any. */
export function rawChunkJson(chunk: LlmChunk): string | undefined {
  return (chunk as { [RAW_CHUNK_JSON]?: string })[RAW_CHUNK_JSON];
}

/**
 * A chunk handed over as its JSON text only, not parsed (StreamOptions.passThrough):
 * no fields, so nothing reads it but the relay, which sends the text on.
 *
 * @example yield textOnlyChunk(ev.data);
 */
export function textOnlyChunk(json: string): LlmChunk {
  return { [RAW_CHUNK_JSON]: json } as LlmChunk;
}

/**
 * A chunk's fields: a text-only chunk (textOnlyChunk) is parsed for them, for the
 * rare reader that needs them (the closing chunk the gateway adds takes the last
 * chunk's id and model); {} if its text is not a JSON object.
 *
 * @example syntheticEnd(chunkFields(last), rid)
 */
export function chunkFields(chunk: LlmChunk): LlmChunk {
  const raw = rawChunkJson(chunk);
  if (raw === undefined || Object.keys(chunk).length > 0) return chunk;
  try {
    const v: unknown = JSON.parse(raw);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as LlmChunk) : {};
  } catch {
    return {};
  }
}

/**
 * A full chat.completion as one chunk (ABI.md §5.5): each message becomes the
 * delta, with its finish_reason ("stop" when it has none). For an upstream that
 * ignored "stream", and for a response that did not come from a stream.
 *
 * @example responseToChunk(completion).choices[0].delta.content // the message's content
 */
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
