import { waitFor as waitUntil } from './wait.js';
import type { ServerResponse } from 'node:http';

// A streaming client for the gateway's server-sent events, reading the body as
// it arrives (like an OpenAI SDK), and helpers for test upstreams that stream.
// The parser here is deliberately separate from the gateway's own
// (host/providers/sse-parser.ts): a bug there must not hide itself.

export interface StreamReply {
  status: number;
  headers: Headers;
  /** The chat.completion.chunk events, in order. */
  chunks: any[];
  /** The payload of an error event (the stream's last event), if any. */
  error?: any;
  /** Whether `data: [DONE]` arrived. */
  done: boolean;
  /** Every event's data, in order ("[DONE]" as the string). */
  events: unknown[];
  /** A non-stream answer (an HTTP error before the stream started), parsed. */
  json?: any;
  /** ms from sending the request to the first event, and to the end of the body. */
  firstEventMs?: number;
  totalMs: number;
  /** The stream stopped because onEvent asked to (the client disconnected). */
  aborted: boolean;
}

export interface StreamOptions {
  headers?: Record<string, string>;
  /** Called for each event; returning "stop" disconnects (aborts the request mid-stream). */
  onEvent?: (data: unknown, index: number) => void | 'stop';
  /** false: keep no events (chunks and events stay empty; count them in onEvent). For long streams. */
  keep?: boolean;
  /** Disconnects after this many ms, whatever has arrived (before the response started, status is 0). */
  abortAfterMs?: number;
}

export async function postStream(url: string, body: unknown, opts: StreamOptions = {}): Promise<StreamReply> {
  const ac = new AbortController();
  const started = performance.now();
  const timer = opts.abortAfterMs === undefined ? undefined : setTimeout(() => ac.abort(), opts.abortAfterMs);
  try {
    return await read(url, body, opts, ac, started);
  } catch (e) {
    if (!ac.signal.aborted) throw e;
    return { status: 0, headers: new Headers(), chunks: [], done: false, events: [], totalMs: performance.now() - started, aborted: true };
  } finally {
    clearTimeout(timer);
  }
}

async function read(url: string, body: unknown, opts: StreamOptions, ac: AbortController, started: number): Promise<StreamReply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...opts.headers },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  const reply: StreamReply = { status: res.status, headers: res.headers, chunks: [], done: false, events: [], totalMs: 0, aborted: false };
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    const text = await res.text();
    try {
      reply.json = JSON.parse(text);
    } catch {
      reply.json = text;
    }
    reply.totalMs = performance.now() - started;
    return reply;
  }
  const keep = opts.keep !== false;
  let index = 0;
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = res.body!.getReader();
  try {
    outer: for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        reply.firstEventMs ??= performance.now() - started;
        let ev: unknown = data;
        if (data === '[DONE]') reply.done = true;
        else {
          ev = JSON.parse(data);
          if ((ev as { error?: unknown }).error) reply.error = (ev as { error: unknown }).error;
          else if (keep) reply.chunks.push(ev);
        }
        if (keep) reply.events.push(ev);
        if (opts.onEvent?.(ev, index++) === 'stop') {
          reply.aborted = true;
          ac.abort();
          break outer;
        }
      }
    }
  } catch (e) {
    if (!ac.signal.aborted) throw e;
    reply.aborted = true;
  }
  reply.totalMs = performance.now() - started;
  return reply;
}

/** The streamed text of choice 0. */
export function contentOf(chunks: any[]): string {
  return chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');
}

// ---- test upstreams that stream

export function chunkEvent(content: string | null, finish: string | null = null, model = 'gpt-test', first = false): string {
  const delta: Record<string, unknown> = {};
  if (first) delta.role = 'assistant';
  if (content !== null) delta.content = content;
  const chunk = { id: 'chatcmpl-up', object: 'chat.completion.chunk', created: 1700000000, model, choices: [{ index: 0, delta, finish_reason: finish }] };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

export function startSse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
}

/** Sends each piece as one chunk, then a finish chunk and [DONE]. */
export async function streamPieces(res: ServerResponse, pieces: string[], opts: { delayMs?: number; model?: string; finish?: boolean; done?: boolean } = {}): Promise<void> {
  startSse(res);
  for (let i = 0; i < pieces.length; i++) {
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    if (res.destroyed) return;
    res.write(chunkEvent(pieces[i], null, opts.model, i === 0));
  }
  if (opts.finish !== false) res.write(chunkEvent(null, 'stop', opts.model));
  if (opts.done !== false) res.write('data: [DONE]\n\n');
  res.end();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls every `everyMs` until `check` is true (or fails after `ms`): the streaming tests' argument order for waitFor (wait.ts). */
export async function waitFor(check: () => boolean, ms = 5000, what = 'condition', everyMs = 10): Promise<void> {
  await waitUntil(what, check, ms, everyMs);
}
