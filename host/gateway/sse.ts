import type { HttpResponse } from '../abi/types.js';
import type { ChunkStream } from '../pipeline/stream.js';
import { streamErrorEvent } from './http-errors.js';

// OpenAI's streaming wire format: one `data: <json>` event per chunk, then
// `data: [DONE]`; a stream that fails ends with `data: {"error": {...}}` and no
// [DONE].

export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // Proxies in front of the gateway (nginx) must not buffer the events either.
  'x-accel-buffering': 'no',
};

const DONE_EVENT = Buffer.from('data: [DONE]\n\n');

function dataEvent(value: unknown): Uint8Array {
  return Buffer.from(`data: ${JSON.stringify(value)}\n\n`);
}

/** A chunk's event: its upstream JSON text as it is when the pipeline passed it on (no hook saw it). */
function chunkEvent(ev: { chunk: unknown; raw?: string }): Uint8Array {
  return ev.raw === undefined ? dataEvent(ev.chunk) : Buffer.from(`data: ${ev.raw}\n\n`);
}

/**
 * The chunk stream as a response body. Pull-based (highWaterMark 0): the next
 * chunk is produced only when the HTTP layer asks for more, which it does only
 * once the socket has taken the previous one, so a slow client slows the
 * plugins and the upstream down instead of filling memory. Cancelling the body
 * (the client went away) cancels the stream.
 *
 * `onEnd` runs once, when the body has produced its last event ([DONE] or an
 * error event) or is cancelled: the request holds its plugin chain and
 * providers until then. Here rather than in a second stream around this one,
 * which cost one more pull per chunk.
 *
 * @example const body = sseBody(stream, () => lease.release());
 */
export function sseBody(stream: ChunkStream, onEnd: () => void): ReadableStream<Uint8Array> {
  let closed = false;
  const end = () => {
    if (closed) return;
    closed = true;
    onEnd();
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let ev;
        try {
          ev = await stream.next();
        } catch (e) {
          // ChunkStream.next reports failures as events; should one throw all the same, the body fails and the hold ends.
          if (closed) return;
          end();
          controller.error(e);
          return;
        }
        if (closed) return;
        if (ev.type === 'chunk') {
          controller.enqueue(chunkEvent(ev));
          return;
        }
        controller.enqueue(ev.type === 'done' ? DONE_EVENT : dataEvent(streamErrorEvent(ev.fault)));
        controller.close();
        end();
      },
      cancel(reason) {
        if (closed) return;
        stream.cancel(reason);
        end();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * A 200 event stream of the chunks; `onEnd` as for sseBody.
 *
 * @example return sseResponse(outcome.stream, release);
 */
export function sseResponse(stream: ChunkStream, onEnd: () => void): HttpResponse {
  return { status: 200, headers: { ...SSE_HEADERS }, stream: sseBody(stream, onEnd) };
}
