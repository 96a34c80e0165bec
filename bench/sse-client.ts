// The streaming benchmarks' client: one server-sent-event stream read as it
// arrives (time to first body byte, events, whether it ended with [DONE]), and
// a bounded load of such streams on a few concurrent lanes.

import { request } from 'undici';
import { Samples } from './stats.js';

const STREAM_TIMEOUT_MS = 120_000;

export interface StreamTiming {
  /** From sending the request to the first body byte. */
  ttfbMs: number;
  totalMs: number;
  /** data: events, [DONE] included. */
  events: number;
  /** Between the first and the last body byte. */
  spanMs: number;
  done: boolean;
}

/**
 * POST /v1/chat/completions with `body` (which asks for a stream), read to the end.
 * @example
 * const t = await streamRequest(url, JSON.stringify({ model: 'mock/echo', stream: true, messages: [{ role: 'user', content: 'a b' }] }));
 * t.done; // true: ended with data: [DONE]
 */
export async function streamRequest(url: string, body: string | Buffer, onData?: () => void): Promise<StreamTiming> {
  const t0 = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body,
    signal: AbortSignal.timeout(STREAM_TIMEOUT_MS),
  });
  if (res.statusCode !== 200) throw new Error(`stream answered ${res.statusCode}: ${(await res.body.text()).slice(0, 300)}`);
  let first = 0;
  let last = 0;
  let events = 0;
  let prevNl = false;
  let tail = '';
  for await (const buf of res.body) {
    const now = performance.now();
    if (!first) first = now;
    last = now;
    // Count "\n\n" event ends, also when one is split across two reads.
    for (let i = 0; i < buf.length; i++) {
      const nl = buf[i] === 10;
      if (nl && prevNl) events++;
      prevNl = nl;
    }
    tail = (tail + buf.toString('latin1')).slice(-32);
    onData?.();
  }
  return { ttfbMs: first - t0, totalMs: last - t0, events, spanMs: last - first, done: tail.endsWith('data: [DONE]\n\n') };
}

export interface StreamLoadResult {
  /** Streams that ended with [DONE] and the expected events, within the window. */
  streams: number;
  /** Streams that failed, broke off or had other events. */
  failed: number;
  /** First error seen, for the report. */
  firstError?: string;
  ttfbMs: Samples;
  elapsedS: number;
}

/**
 * `concurrency` lanes each open one stream after another for `seconds`;
 * streams that end after the window are not counted (atEnd marks the same
 * window for CPU time), but are awaited so the next phase starts on a quiet
 * server.
 * @example
 * const r = await streamLoad(url, body, { concurrency: 10, seconds: 5, events: 22 });
 * r.streams / r.elapsedS; // streams per second
 */
export async function streamLoad(
  url: string,
  body: string | Buffer,
  o: { concurrency: number; seconds: number; events: number; /** Called when the window closes (e.g. to read CPU time). */ atEnd?: () => void },
): Promise<StreamLoadResult> {
  const ttfbMs = new Samples(1_000_000);
  let streams = 0;
  let failed = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const end = started + o.seconds * 1000;
  const lane = async () => {
    while (performance.now() < end) {
      try {
        const t = await streamRequest(url, body);
        if (performance.now() > end) break;
        if (t.done && t.events === o.events) {
          streams++;
          ttfbMs.add(t.ttfbMs);
        } else {
          failed++;
          firstError ??= `${t.events} events, [DONE] ${t.done}`;
        }
      } catch (e) {
        if (performance.now() > end) break;
        failed++;
        firstError ??= (e as Error).message;
      }
    }
  };
  let closed = false;
  const close = () => {
    if (!closed) o.atEnd?.();
    closed = true;
  };
  const timer = setTimeout(close, o.seconds * 1000);
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  clearTimeout(timer);
  close();
  return { streams, failed, firstError, ttfbMs, elapsedS: (end - started) / 1000 };
}
