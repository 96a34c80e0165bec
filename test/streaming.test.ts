import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ErrorCode } from '../host/errors/codes.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixture, samplePlugin } from './helpers/paths.js';
import { scripted } from './helpers/scripted.js';
import { chunkEvent, contentOf, postStream, sleep, startSse, streamPieces, waitFor } from './helpers/sse.js';
import { completion, startUpstream, type Upstream } from './helpers/upstream.js';

// "stream": true end to end: a real gateway on loopback, real .wasm plugins,
// the mock provider and OpenAI-compatible upstreams that stream, break, stall
// and close early; the client reads the event stream as it arrives.

const chat = (model: string, content = 'one two three four', extra: Record<string, unknown> = {}) => ({
  model,
  stream: true,
  messages: [{ role: 'user', content }],
  ...extra,
});

/** An upstream chunk in JSON text that JSON.stringify would write differently (spaces, a \\u escape). */
const SPACED_FIRST = '{"id": "chatcmpl-sp", "object": "chat.completion.chunk", "created": 1700000000, "model": "spaced", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "sp\\u00e4ced"}, "finish_reason": null}]}';

/**
 * A whole upstream stream as written: spacing JSON.stringify would not keep, a \\u escape, a key
 * order of its own, the finish chunk, a usage-only chunk and [DONE]. Through a chain where no plugin
 * sees chunks, the client gets these bytes.
 */
const VERBATIM = [
  'data: {"id":"chatcmpl-v","object":"chat.completion.chunk","created":1700000001,"model":"verbatim","system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"role":"assistant","content":"H\\u00e9"},"logprobs":null,"finish_reason":null}]}\n\n',
  'data: {"choices": [{"delta": {"content": "llo, \\"error\\": no"}, "index": 0, "finish_reason": null}], "id": "chatcmpl-v", "object": "chat.completion.chunk", "created": 1700000001, "model": "verbatim"}\n\n',
  'data: {"id":"chatcmpl-v","object":"chat.completion.chunk","created":1700000001,"model":"verbatim","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  'data: {"id":"chatcmpl-v","object":"chat.completion.chunk","created":1700000001,"model":"verbatim","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n',
  'data: [DONE]\n\n',
].join('');

/** A chunk that is an object with "choices" on its face, but broken JSON inside. */
const BROKEN_INSIDE = '{"id": "chatcmpl-b", "choices": [{"index": 0, "delta": {"content": "x"}, oops}]}';

const hello = (name: string) => ({ name, path: samplePlugin('hello-world') });
const wat = (name: string, extra: Record<string, unknown> = {}) => ({ name, path: fixture(name), ...extra });

async function withGateway(raw: Record<string, unknown>, fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startTestGateway(raw);
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

async function healthy(gw: TestGateway): Promise<void> {
  const h = await gw.get('/health');
  assert.equal(h.status, 200);
  const r = await postStream(`${gw.url}/v1/chat/completions`, chat('mock/echo', 'still fine'));
  assert.equal(r.status, 200);
  assert.equal(contentOf(r.chunks), 'still fine');
  assert.equal(r.done, true);
}

describe('streaming with the mock provider', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startTestGateway({
      providers: {
        mock: { type: 'mock' },
        slow: { type: 'mock', stream_chunks: 4, stream_delay_ms: 250 },
        ten: { type: 'mock', stream_chunks: 10 },
      },
      // hello-world and redact answer stream_deltas: false in init; the scripted plugins take deltas (the default).
      plugins: [hello('hello-a'), scripted('deltas-a'), hello('hello-b'), scripted('deltas-b'), { name: 'redact', path: samplePlugin('redact') }],
    });
    url = `${gw.url}/v1/chat/completions`;
  });
  after(() => gw.close());
  const postLlmCalls = (rid: string, plugin: string) => gw.hooksFor(rid).filter((h) => h === `${plugin}:post_llm_hook`).length;

  it("answers text/event-stream in OpenAI's format: chunk events, then [DONE]", async () => {
    const r = await postStream(url, chat('mock/echo'), { headers: { 'x-request-id': 'stream-format-1' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/event-stream');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('x-request-id'), 'stream-format-1');
    // http_transport_post_hook does not run for streams: hello-world's post-hook header is absent.
    assert.equal(r.headers.get('x-processed-by'), null);
    assert.equal(r.done, true);
    assert.equal(r.events.at(-1), '[DONE]');
    assert.equal(r.chunks.length, 5); // four words and the finish chunk
    for (const c of r.chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'echo');
      assert.equal(typeof c.id, 'string');
    }
    assert.equal(r.chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(contentOf(r.chunks), 'one two three four');
    assert.equal(r.chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.deepEqual(r.chunks.at(-1).choices[0].delta, {});
  });

  it('the mock streams a configured number of chunks', async () => {
    const r = await postStream(url, chat('ten/echo', 'a b c'));
    assert.equal(r.chunks.length, 11);
    assert.equal(contentOf(r.chunks), 'a b c a b c a b c a ');
  });

  it('runs post_llm_hook (N..1, as a delta, for the plugins that take deltas) then the chunk hooks (N..1) on every chunk, and no transport post-hook', async () => {
    const rid = 'stream-order-1';
    const r = await postStream(url, chat('mock/echo', 'x y'), { headers: { 'x-request-id': rid } });
    assert.equal(r.chunks.length, 3);
    const hooks = gw.hooksFor(rid);
    // (redact exports neither transport pre-hook nor pre_llm_hook; hello-world has no chunk hook)
    const chain = ['hello-a', 'deltas-a', 'hello-b', 'deltas-b'];
    assert.deepEqual(hooks.slice(0, 8), [...chain.map((p) => `${p}:http_transport_pre_hook`), ...chain.map((p) => `${p}:pre_llm_hook`)]);
    // hello-world and redact opted out of deltas: none of their post_llm_hooks runs for a chunk.
    const perChunk = ['deltas-b:post_llm_hook', 'deltas-a:post_llm_hook', 'redact:http_transport_stream_chunk_hook'];
    const rest = hooks.slice(8);
    assert.deepEqual(rest, [...perChunk, ...perChunk, ...perChunk]);
    assert.ok(!hooks.some((h) => h.endsWith('http_transport_post_hook')));
  });

  it('stream_deltas: false: post_llm_hook still runs for a non-streamed response, once, like for a plugin that takes deltas', async () => {
    const rid = 'stream-optout-plain';
    const r = await gw.post('/v1/chat/completions', { model: 'mock/echo', messages: [{ role: 'user', content: 'plain' }] }, { 'x-request-id': rid });
    assert.equal(r.status, 200);
    for (const p of ['hello-a', 'hello-b', 'redact', 'deltas-a', 'deltas-b']) assert.equal(postLlmCalls(rid, p), 1, p);
  });

  it('sends the first chunk as soon as it has passed the hooks, not when the stream is complete', async () => {
    const r = await postStream(url, chat('slow/echo', 'w'));
    assert.equal(r.chunks.length, 5);
    // Five chunks, each 250 ms apart: the first event must not wait for the others.
    assert.ok(r.totalMs >= 1200, `total ${r.totalMs} ms`);
    assert.ok(r.firstEventMs! < r.totalMs - 700, `first event at ${r.firstEventMs} ms of ${r.totalMs} ms`);
  });

  it('with stream_options.include_usage, a usage-only chunk follows the finish chunk', async () => {
    const r = await postStream(url, chat('mock/echo', 'a b', { stream_options: { include_usage: true } }));
    const last = r.chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 2);
    assert.equal(r.chunks.at(-2).choices[0].finish_reason, 'stop');
    assert.equal(r.done, true);
  });

  it('a primary that fails before its first chunk falls back; its post_llm hooks saw the error', async () => {
    const rid = 'stream-fallback-1';
    const r = await postStream(url, chat('mock/fail-503', 'fell back', { fallbacks: ['mock/second'] }), { headers: { 'x-request-id': rid } });
    assert.equal(r.status, 200);
    assert.equal(contentOf(r.chunks), 'fell back');
    assert.ok(r.chunks.every((c) => c.model === 'second'));
    const hooks = gw.hooksFor(rid);
    assert.equal(hooks.filter((h) => h === 'hello-a:pre_llm_hook').length, 2);
    // A plugin that takes deltas: one post_llm call for the failed attempt's error, one per streamed chunk (2 words + finish).
    assert.equal(postLlmCalls(rid, 'deltas-a'), 1 + 3);
    // One that opted out (stream_deltas: false): the error only.
    assert.equal(postLlmCalls(rid, 'hello-a'), 1);
  });

  it('allow_fallbacks false stops at the primary: an ordinary JSON error, no stream', async () => {
    const r = await postStream(url, chat('mock/fail-503-final', 'x', { fallbacks: ['mock/second'] }));
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, ErrorCode.upstreamError);
    assert.equal(r.chunks.length, 0);
  });

  it('a failure after chunks were sent is an error event, not a fallback', async () => {
    const r = await postStream(url, chat('mock/fail-after-2', 'a b c d', { fallbacks: ['mock/second'] }));
    assert.equal(r.status, 200);
    assert.equal(r.chunks.length, 2);
    assert.ok(r.chunks.every((c) => c.model === 'fail-after-2'));
    assert.equal(r.error.code, ErrorCode.upstreamStreamError);
    assert.equal(r.error.type, 'upstream_error');
    assert.equal(r.done, false);
    assert.equal(r.events.at(-1), r.events.find((e: any) => e.error));
  });

  it('a stream that breaks before its first chunk falls back', async () => {
    const r = await postStream(url, chat('mock/fail-after-0', 'from the fallback', { fallbacks: ['mock/second'] }));
    assert.equal(contentOf(r.chunks), 'from the fallback');
    assert.equal(r.done, true);
  });

  it('a client that disconnects stops the plugin calls for its request', async () => {
    const rid = 'stream-disconnect-mock';
    const r = await postStream(url, chat('slow/echo', 'w'), { headers: { 'x-request-id': rid }, onEvent: (_e, i) => (i === 0 ? 'stop' : undefined) });
    assert.equal(r.aborted, true);
    await waitFor(() => gw.logs.some((l) => l.rid === rid && l.msg === 'client closed the stream'), 3000, 'the gateway to notice');
    await sleep(100); // a hook call in flight at that moment may still finish
    const calls = gw.hooksFor(rid).length;
    await sleep(700); // more than two chunk intervals
    assert.equal(gw.hooksFor(rid).length, calls);
    await healthy(gw);
  });

  it('non-streamed answers still work, and redact rewrites them in post_llm_hook', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'mock/echo', messages: [{ role: 'user', content: 'my key is sk-ABCDEFGHIJKLMNOPQRSTUVWX.' }] });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'my key is [REDACTED].');
    assert.equal(r.headers.get('x-processed-by'), 'hello-world');
  });

  it('redact works on mock streams too', async () => {
    const r = await postStream(url, chat('mock/echo', 'key sk-ABCDEFGHIJKLMNOPQRSTUVWX end'));
    assert.equal(contentOf(r.chunks), 'key [REDACTED] end');
  });
});

describe('chunk hooks: pass, replace, drop, fail', () => {
  const url = (gw: TestGateway) => `${gw.url}/v1/chat/completions`;

  it('a chunk hook that drops every chunk: only [DONE] arrives', () =>
    withGateway({ plugins: [wat('drop-chunk')] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo'));
      assert.equal(r.status, 200);
      assert.equal(r.chunks.length, 0);
      assert.deepEqual(r.events, ['[DONE]']);
    }));

  it('a chunk hook that returns an error: an error event naming the plugin, and the stream ends', () =>
    withGateway({ plugins: [hello('hello-a'), wat('error-chunk')] }, async (gw) => {
      const rid = 'stream-chunk-error';
      const r = await postStream(url(gw), chat('mock/echo'), { headers: { 'x-request-id': rid } });
      assert.equal(r.status, 200);
      assert.equal(r.chunks.length, 0);
      assert.equal(r.events.length, 1);
      assert.equal(r.error.code, 'chunk_refused');
      assert.equal(r.error.type, 'plugin_error');
      assert.equal(r.error.plugin, 'error-chunk');
      assert.equal(r.done, false);
      // The stream ended at the first chunk: no more hooks for the other chunks.
      assert.equal(gw.hooksFor(rid).filter((h) => h.endsWith('http_transport_stream_chunk_hook')).length, 1);
    }));

  it('a fail-closed chunk hook that traps ends the stream with an error event; the gateway stays healthy', () =>
    withGateway({ plugins: [wat('trap-chunk', { on_error: 'fail-closed', circuit_breaker: { failure_threshold: 0 } })] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo'));
      assert.equal(r.status, 200);
      assert.equal(r.error.code, ErrorCode.pluginTrap);
      assert.equal(r.error.plugin, 'trap-chunk');
      assert.equal(r.error.hook, 'http_transport_stream_chunk_hook');
      assert.equal(r.done, false);
      const h = await gw.get('/health');
      assert.equal(h.status, 200);
      const plain = await gw.post('/v1/chat/completions', { model: 'mock/echo', messages: [{ role: 'user', content: 'ok' }] });
      assert.equal(plain.status, 200);
    }));

  it('a fail-open chunk hook that traps: every chunk passes unchanged', () =>
    withGateway({ plugins: [wat('trap-chunk', { on_error: 'fail-open', circuit_breaker: { failure_threshold: 0 } })] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo'));
      assert.equal(r.error, undefined);
      assert.equal(contentOf(r.chunks), 'one two three four');
      assert.equal(r.done, true);
      assert.ok(gw.logs.filter((l) => l.msg === 'plugin failure' && l.plugin === 'trap-chunk').length >= 5);
    }));

  it('post_llm_hook may replace a delta', () =>
    withGateway({ plugins: [wat('replace-post-llm')] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo'));
      assert.equal(r.chunks.length, 5);
      assert.equal(contentOf(r.chunks), 'XXXXX');
      assert.ok(r.chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'wat'));
      assert.equal(r.done, true);
    }));

  it('an error from post_llm_hook mid-stream is an error event, not a fallback', () =>
    withGateway({ plugins: [wat('error-post-on-long-input')] }, async (gw) => {
      const long = 'L'.repeat(1200);
      const r = await postStream(url(gw), chat('mock/echo', `a b c ${long} d`, { fallbacks: ['mock/second'] }));
      assert.equal(r.status, 200);
      assert.equal(contentOf(r.chunks), 'a b c ');
      assert.ok(r.chunks.every((c) => c.model === 'echo'));
      assert.equal(r.error.code, 'post_refused');
      assert.equal(r.done, false);
    }));

  it('the delta that ends the stream is marked (sandgate.stream_end), and so is what follows it', () =>
    withGateway({ plugins: [wat('drop-at-stream-end')] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo', 'a b c', { stream_options: { include_usage: true } }));
      // The finish chunk and the usage chunk are marked (and dropped by the fixture); the content chunks are not.
      assert.equal(r.chunks.length, 3);
      assert.equal(contentOf(r.chunks), 'a b c');
      assert.ok(r.chunks.every((c) => c.choices[0].finish_reason === null));
      assert.equal(r.done, true);
    }));

  it('a pre_llm_hook short-circuit is sent as one chunk, then [DONE]', () =>
    withGateway({ plugins: [wat('respond-pre-llm'), wat('drop-at-stream-end', { name: 'marks' })] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo'));
      assert.equal(r.status, 200);
      // The one chunk is the end of the stream: the marker plugin drops it.
      assert.equal(r.chunks.length, 0);
      assert.deepEqual(r.events, ['[DONE]']);
    }));

  it('stream_deltas: false: a pre_llm_hook short-circuit in a stream is a full response, so that post_llm_hook sees it', () =>
    withGateway({ plugins: [scripted('skips', { stream_deltas: false }), scripted('answers', { hooks: { pre_llm_hook: { llm_respond: 'from plugin' } } })] }, async (gw) => {
      const rid = 'stream-optout-short-circuit';
      const r = await postStream(url(gw), chat('mock/echo'), { headers: { 'x-request-id': rid } });
      assert.equal(r.chunks.length, 1);
      assert.equal(r.chunks[0].choices[0].delta.content, 'from plugin');
      assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('post_llm_hook')), ['answers:post_llm_hook', 'skips:post_llm_hook']);
    }));

  it('a pre_llm_hook short-circuit: the chunk carries the whole content and its finish_reason', () =>
    withGateway({ plugins: [wat('respond-pre-llm')] }, async (gw) => {
      const r = await postStream(url(gw), chat('mock/echo'));
      assert.equal(r.chunks.length, 1);
      const c = r.chunks[0];
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.choices[0].delta.content, 'from plugin');
      assert.equal(c.choices[0].delta.role, 'assistant');
      assert.equal(c.choices[0].finish_reason, 'stop');
      assert.equal(r.done, true);
    }));
});

describe('the OpenAI-compatible provider relays upstream streams', () => {
  let up: Upstream;
  let gw: TestGateway;
  let url: string;
  /** The same upstreams through a gateway with no plugins: chunks pass as the upstream's own JSON text. */
  let bare: TestGateway;
  let bareUrl: string;
  /** Through hello-world twice: plugins that opted out of deltas and have no chunk hook. */
  let hellos: TestGateway;
  /** Models whose upstream response was closed by the gateway before it ended. */
  const aborted: string[] = [];
  const open = new Set<ServerResponse>();

  before(async () => {
    up = await startUpstream((body, res) => {
      const model: string = body.model;
      const last: string = body.messages.at(-1).content;
      open.add(res);
      res.on('close', () => {
        open.delete(res);
        if (!res.writableEnded) aborted.push(model);
      });
      switch (model) {
        case 'pieces':
          void streamPieces(res, JSON.parse(last), { delayMs: 5, model });
          return;
        case 'pieces-nofinish':
          void streamPieces(res, JSON.parse(last), { delayMs: 5, model, finish: false });
          return;
        case 'split': {
          // One event across many writes, CRLF line ends, comments, a UTF-8 character cut in two.
          startSse(res);
          const bytes = Buffer.from(
            `: keep-alive\r\n\r\n${chunkEvent('h\u00e9llo ', null, model, true).replace(/\n/g, '\r\n')}${chunkEvent('w\u00f6rld', null, model)}${chunkEvent(null, 'stop', model)}data: [DONE]\n\n`,
          );
          void (async () => {
            for (let i = 0; i < bytes.length; i += 7) {
              res.write(bytes.subarray(i, i + 7));
              await sleep(1);
            }
            res.end();
          })();
          return;
        }
        case 'malformed':
          startSse(res);
          res.write(chunkEvent('fine ', null, model, true));
          res.write('data: {"choices": [oops\n\n');
          setTimeout(() => res.end(), 50);
          return;
        case 'no-choices':
          startSse(res);
          res.write(chunkEvent('fine ', null, model, true));
          res.write('data: {"hello": "world"}\n\n');
          return;
        case 'stall':
          startSse(res);
          res.write(chunkEvent('then nothing', null, model, true));
          return; // never ends
        case 'stall-first':
        case 'stall-first-2':
          startSse(res);
          return;
        case 'early':
          startSse(res);
          res.write(chunkEvent('cut ', null, model, true));
          res.end(); // no finish, no [DONE]
          return;
        case 'reset':
          startSse(res);
          res.write(chunkEvent('cut ', null, model, true));
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        case 'error-event':
          startSse(res);
          res.write(chunkEvent('so far ', null, model, true));
          res.write(`data: ${JSON.stringify({ error: { message: 'overloaded mid-stream', type: 'server_error', code: 'overloaded' } })}\n\n`);
          res.end();
          return;
        case 'overloaded':
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'try later', type: 'server_error', code: 'overloaded' } }));
          return;
        case 'spaced':
          // JSON that JSON.stringify would not write back the same (spaces, an escape), and
          // one event over two data lines (joined with "\n": not one `data:` line as it is).
          startSse(res);
          res.write(`data: ${SPACED_FIRST}\n\n`);
          res.write('data: {"id": "chatcmpl-sp", "object": "chat.completion.chunk",\ndata: "created": 1700000000, "model": "spaced", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}\n\n');
          res.end('data: [DONE]\n\n');
          return;
        case 'verbatim':
          startSse(res);
          res.end(VERBATIM);
          return;
        case 'broken-inside':
          startSse(res);
          res.write(chunkEvent('fine ', null, model, true));
          res.write(`data: ${BROKEN_INSIDE}\n\n`);
          res.write(chunkEvent(null, 'stop', model));
          res.end('data: [DONE]\n\n');
          return;
        case 'json':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(completion('no stream here', model)));
          return;
        case 'forever': {
          startSse(res);
          let i = 0;
          const t = setInterval(() => {
            if (res.destroyed) return clearInterval(t);
            res.write(chunkEvent(`t${i++} `, null, model, i === 1));
          }, 30);
          res.on('close', () => clearInterval(t));
          return;
        }
        default:
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: `unknown test model ${model}` } }));
      }
    });
    gw = await startTestGateway({
      runtime: { workers: 2 },
      providers: {
        mock: { type: 'mock' },
        up: { type: 'openai', base_url: up.url, api_key: 'sk-test', stream_idle_timeout_ms: 300 },
      },
      plugins: [{ name: 'redact', path: samplePlugin('redact') }],
    });
    url = `${gw.url}/v1/chat/completions`;
    bare = await startTestGateway({
      runtime: { workers: 2 },
      providers: { mock: { type: 'mock' }, up: { type: 'openai', base_url: up.url, api_key: 'sk-test', stream_idle_timeout_ms: 300 } },
      plugins: [],
    });
    bareUrl = `${bare.url}/v1/chat/completions`;
    hellos = await startTestGateway({
      runtime: { workers: 2 },
      providers: { up: { type: 'openai', base_url: up.url, api_key: 'sk-test', stream_idle_timeout_ms: 300 } },
      plugins: [hello('hello-a'), hello('hello-b')],
    });
  });
  after(async () => {
    await gw.close();
    await bare.close();
    await hellos.close();
    for (const res of open) res.destroy();
    await up.close();
  });

  const pieces = (model: string, p: string[], extra: Record<string, unknown> = {}) => chat(`up/${model}`, JSON.stringify(p), extra);

  it('relays the upstream chunk by chunk, asking it to stream', async () => {
    const r = await postStream(url, pieces('pieces', ['Hel', 'lo ', 'w\u00f6rld']));
    assert.equal(r.status, 200);
    assert.equal(contentOf(r.chunks), 'Hello w\u00f6rld');
    assert.equal(r.chunks.length, 4);
    assert.equal(r.chunks.at(-1).choices[0].finish_reason, 'stop');
    assert.equal(r.done, true);
    const seen = up.received.at(-1)!;
    assert.equal(seen.body.stream, true);
    assert.equal(seen.headers.accept, 'text/event-stream');
    assert.equal(seen.headers.authorization, 'Bearer sk-test');
  });

  it('parses events split anywhere, with CRLF line ends and comments', async () => {
    const r = await postStream(url, chat('up/split'));
    assert.equal(contentOf(r.chunks), 'h\u00e9llo w\u00f6rld');
    assert.equal(r.done, true);
  });

  it('a malformed chunk is an error event (upstream_bad_chunk), after what was already sent', async () => {
    const r = await postStream(url, chat('up/malformed'));
    assert.equal(contentOf(r.chunks), 'fine ');
    assert.equal(r.error.code, ErrorCode.upstreamBadChunk);
    assert.equal(r.done, false);
    await healthy(gw);
  });

  it('a chunk without "choices" is malformed too', async () => {
    const r = await postStream(url, chat('up/no-choices'));
    assert.equal(r.error.code, ErrorCode.upstreamBadChunk);
    await waitFor(() => aborted.includes('no-choices'), 2000, 'the upstream request to be closed');
  });

  it('an upstream that stalls past stream_idle_timeout_ms: an error event, and the upstream request is closed', async () => {
    const r = await postStream(url, chat('up/stall'));
    assert.equal(contentOf(r.chunks), 'then nothing');
    assert.equal(r.error.code, ErrorCode.upstreamIdleTimeout);
    assert.equal(r.done, false);
    await waitFor(() => aborted.includes('stall'), 2000, 'the upstream request to be closed');
    await healthy(gw);
  });

  it('an upstream that stalls before its first chunk: the next fallback answers', async () => {
    const r = await postStream(url, pieces('stall-first', ['from ', 'the fallback'], { fallbacks: ['up/pieces'] }));
    assert.equal(contentOf(r.chunks), 'from the fallback');
    assert.equal(r.done, true);
    await waitFor(() => aborted.includes('stall-first'), 2000, 'the stalled request to be closed');
  });

  it('an upstream that closes without [DONE]: upstream_stream_truncated', async () => {
    const r = await postStream(url, chat('up/early'));
    assert.equal(contentOf(r.chunks), 'cut ');
    assert.equal(r.error.code, ErrorCode.upstreamStreamTruncated);
    assert.equal(r.done, false);
  });

  it('an upstream connection that breaks mid-stream: upstream_stream_truncated', async () => {
    const r = await postStream(url, chat('up/reset'));
    assert.equal(contentOf(r.chunks), 'cut ');
    assert.equal(r.error.code, ErrorCode.upstreamStreamTruncated);
    await healthy(gw);
  });

  it("an error event from the upstream is relayed with the upstream's code", async () => {
    const r = await postStream(url, chat('up/error-event'));
    assert.equal(contentOf(r.chunks), 'so far ');
    assert.equal(r.error.code, 'overloaded');
    assert.match(r.error.message, /overloaded mid-stream/);
    assert.equal(r.done, false);
  });

  it('an upstream error status before the stream: fallback, or the JSON error when none is left', async () => {
    const fb = await postStream(url, pieces('overloaded', ['ok'], { fallbacks: ['up/pieces'] }));
    assert.equal(contentOf(fb.chunks), 'ok');
    const none = await postStream(url, chat('up/overloaded'));
    assert.equal(none.status, 503);
    assert.equal(none.json.error.code, 'overloaded');
  });

  it('an upstream that ignores "stream" and answers a completion: one chunk', async () => {
    const r = await postStream(url, chat('up/json'));
    assert.equal(r.chunks.length, 1);
    assert.equal(r.chunks[0].choices[0].delta.content, 'no stream here');
    assert.equal(r.chunks[0].choices[0].finish_reason, 'stop');
    assert.equal(r.done, true);
  });

  it('an upstream that ends cleanly without a finish_reason: the gateway adds the closing chunk', async () => {
    const r = await postStream(url, pieces('pieces-nofinish', ['a', 'b']));
    assert.equal(r.chunks.length, 3);
    assert.deepEqual(r.chunks.at(-1).choices, [{ index: 0, delta: {}, finish_reason: 'stop' }]);
    assert.equal(r.done, true);
  });

  it('a client that disconnects aborts the upstream request; no hook runs for it afterwards', async () => {
    const rid = 'stream-disconnect-upstream';
    const r = await postStream(url, chat('up/forever'), { headers: { 'x-request-id': rid }, onEvent: (_e, i) => (i === 2 ? 'stop' : undefined) });
    assert.equal(r.aborted, true);
    await waitFor(() => aborted.includes('forever'), 3000, 'the upstream to see the abort');
    await sleep(100);
    const calls = gw.hooksFor(rid).length;
    assert.ok(calls >= 3);
    await sleep(300); // ten upstream chunk intervals
    assert.equal(gw.hooksFor(rid).length, calls);
    assert.ok(gw.logs.some((l) => l.rid === rid && l.msg === 'client closed the stream'));
    await healthy(gw);
  });

  it('a client that disconnects before the first chunk: the upstream request is aborted, no post-hook runs', async () => {
    const rid = 'stream-disconnect-early';
    const r = await postStream(url, chat('up/stall-first-2', 'x', { fallbacks: ['up/pieces'] }), { headers: { 'x-request-id': rid }, abortAfterMs: 100 });
    assert.equal(r.aborted, true);
    await waitFor(() => aborted.includes('stall-first-2'), 2000, 'the upstream to see the abort');
    await waitFor(() => gw.logs.some((l) => l.rid === rid && /before the stream started/.test(l.msg)), 2000, 'the gateway to notice');
    await sleep(100);
    // No post_llm_hook for the aborted attempt, no fallback attempt, no transport post-hook.
    assert.deepEqual(gw.hooksFor(rid), []);
    assert.equal(up.received.filter((q) => q.body.model === 'pieces' && q.body.messages[0].content === 'x').length, 0);
  });

  describe('with no plugin that sees chunks, the upstream JSON text is sent on as it is', () => {
    const raw = async (u: string, model: string) => {
      const res = await fetch(u, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat(`up/${model}`)) });
      return res.text();
    };

    it('a chunk keeps its exact text; an event over several data lines is sent as one line', async () => {
      const text = await raw(bareUrl, 'spaced');
      const events = text.split('\n\n').filter(Boolean);
      assert.equal(events[0], `data: ${SPACED_FIRST}`, 'the first chunk as the upstream wrote it');
      assert.equal(events.length, 3, text);
      assert.ok(!events[1].includes('\n'), `one data line: ${JSON.stringify(events[1])}`);
      assert.equal(events[2], 'data: [DONE]');
      // And as an SSE client reads it.
      const r = await postStream(bareUrl, chat('up/spaced'));
      assert.equal(r.chunks.length, 2);
      assert.equal(contentOf(r.chunks), 'sp\u00e4ced');
      assert.equal(r.chunks[1].choices[0].finish_reason, 'stop');
      assert.equal(r.done, true);
    });

    it('through plugins that opted out of deltas (stream_deltas: false) and have no chunk hook, the bytes are the same', async () => {
      const rid = 'stream-raw-hellos';
      const res = await fetch(`${hellos.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': rid },
        body: JSON.stringify(chat('up/spaced')),
      });
      const text = await res.text();
      assert.equal(text.split('\n\n')[0], `data: ${SPACED_FIRST}`, 'the first chunk as the upstream wrote it');
      assert.equal(text, await raw(bareUrl, 'spaced'), 'the same bytes as through a gateway with no plugins');
      // Their transport and LLM pre-hooks ran; no post_llm_hook for any chunk.
      assert.deepEqual(hellos.hooksFor(rid), ['hello-a:http_transport_pre_hook', 'hello-b:http_transport_pre_hook', 'hello-a:pre_llm_hook', 'hello-b:pre_llm_hook']);
    });

    it('a whole stream arrives byte for byte as the upstream wrote it: content, finish and usage chunks, [DONE]', async () => {
      assert.equal(await raw(bareUrl, 'verbatim'), VERBATIM);
      assert.equal(await raw(`${hellos.url}/v1/chat/completions`, 'verbatim'), VERBATIM);
    });

    it('chunks are not parsed: one broken inside, but an object with "choices" on its face, goes on as it came', async () => {
      const text = await raw(bareUrl, 'broken-inside');
      assert.ok(text.includes(`data: ${BROKEN_INSIDE}\n\n`), text);
      assert.ok(text.endsWith('data: [DONE]\n\n'), text);
      // A chain with a plugin that sees chunks parses each one: the same chunk ends the stream as a bad chunk.
      const r = await postStream(url, chat('up/broken-inside'));
      assert.equal(contentOf(r.chunks), 'fine ');
      assert.equal(r.error.code, ErrorCode.upstreamBadChunk);
    });

    it('the closing chunk the gateway adds keeps the stream id and model, also when no chunk was parsed', async () => {
      const r = await postStream(bareUrl, pieces('pieces-nofinish', ['a', 'b']));
      assert.equal(r.chunks.length, 3);
      assert.equal(r.chunks.at(-1).id, 'chatcmpl-up');
      assert.equal(r.chunks.at(-1).model, 'pieces-nofinish');
      assert.deepEqual(r.chunks.at(-1).choices, [{ index: 0, delta: {}, finish_reason: 'stop' }]);
    });

    it('with a plugin that has a chunk hook, chunks are serialised again', async () => {
      const text = await raw(url, 'spaced');
      assert.ok(!text.includes(SPACED_FIRST), text);
      assert.equal(JSON.parse(text.split('\n\n')[0].replace(/^data: /, '')).choices[0].delta.content, 'sp\u00e4ced');
    });

    it('the relay guarantees hold: bad chunks, upstream errors, truncation, the closing chunk, idle timeout, fallback', async () => {
      let r = await postStream(bareUrl, chat('up/malformed'));
      assert.equal(contentOf(r.chunks), 'fine ');
      assert.equal(r.error.code, ErrorCode.upstreamBadChunk);
      r = await postStream(bareUrl, chat('up/no-choices'));
      assert.equal(r.error.code, ErrorCode.upstreamBadChunk);
      r = await postStream(bareUrl, chat('up/error-event'));
      assert.equal(contentOf(r.chunks), 'so far ');
      assert.equal(r.error.code, 'overloaded');
      r = await postStream(bareUrl, chat('up/early'));
      assert.equal(r.error.code, ErrorCode.upstreamStreamTruncated);
      assert.equal(r.done, false);
      r = await postStream(bareUrl, pieces('pieces-nofinish', ['a', 'b']));
      assert.equal(r.chunks.length, 3);
      assert.deepEqual(r.chunks.at(-1).choices, [{ index: 0, delta: {}, finish_reason: 'stop' }]);
      assert.equal(r.done, true);
      r = await postStream(bareUrl, chat('up/stall'));
      assert.equal(contentOf(r.chunks), 'then nothing');
      assert.equal(r.error.code, ErrorCode.upstreamIdleTimeout);
      r = await postStream(bareUrl, pieces('stall-first', ['from ', 'the fallback'], { fallbacks: ['up/pieces'] }));
      assert.equal(contentOf(r.chunks), 'from the fallback');
      assert.equal(r.done, true);
      r = await postStream(bareUrl, pieces('pieces', ['Hel', 'lo']));
      assert.equal(contentOf(r.chunks), 'Hello');
      assert.equal(r.chunks.length, 3);
      assert.equal(r.done, true);
    });

    it('a client that disconnects aborts the upstream request', async () => {
      const before = aborted.filter((m) => m === 'forever').length;
      const r = await postStream(bareUrl, chat('up/forever'), { onEvent: (_e, i) => (i === 2 ? 'stop' : undefined) });
      assert.equal(r.aborted, true);
      await waitFor(() => aborted.filter((m) => m === 'forever').length > before, 3000, 'the upstream to see the abort');
    });
  });

  describe('redact on streams (state in the request context, two worker threads)', () => {
    const KEY = 'sk-ABCDEFGHIJKLMNOPQRSTUVWX0123';

    async function redacted(p: string[]): Promise<{ text: string; chunks: any[] }> {
      const r = await postStream(url, pieces('pieces', p));
      assert.equal(r.done, true);
      return { text: contentOf(r.chunks), chunks: r.chunks };
    }

    it('a key inside one chunk', async () => {
      assert.equal((await redacted([`key: ${KEY}, ok`])).text, 'key: [REDACTED], ok');
    });

    it('a key split across two chunks: no part of it reaches the client', async () => {
      const { text, chunks } = await redacted(['Here: sk-ABCDEF', 'GHIJKLMNOPQRSTUVWX and more']);
      assert.equal(text, 'Here: [REDACTED] and more');
      for (const c of chunks) assert.ok(!(c.choices[0]?.delta?.content ?? '').includes('ABC'), JSON.stringify(c));
    });

    it('a prefix split across chunks, and a key over several chunks', async () => {
      assert.equal((await redacted(['token s', 'k-', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', ' end'])).text, 'token [REDACTED] end');
      assert.equal((await redacted(['sk-', 'ABCDEFGHIJ', 'KLMNOPQRSTUVWXYZ', '0123', ' tail'])).text, '[REDACTED] tail');
    });

    it('text that only looked like the start of a key is released, at the latest on the last delta', async () => {
      assert.equal((await redacted(['value sk-abc', ' and more'])).text, 'value sk-abc and more');
      assert.equal((await redacted(['ends with sk-abc'])).text, 'ends with sk-abc');
      assert.equal((await redacted(['ends with s'])).text, 'ends with s');
    });

    it('the held-back tail is flushed on the closing chunk the gateway adds', async () => {
      const r = await postStream(url, pieces('pieces-nofinish', ['tail sk-', 'abc']));
      assert.equal(contentOf(r.chunks), 'tail sk-abc');
    });

    it('a key that runs to the end of the stream', async () => {
      assert.equal((await redacted(['a ', KEY.slice(0, 10), KEY.slice(10)])).text, 'a [REDACTED]');
    });
  });
});

describe('a stream holds its plugin chain until it ends, then lets go of it', () => {
  let gw: TestGateway;
  let url: string;
  before(async () => {
    gw = await startTestGateway({ providers: { slow: { type: 'mock', stream_chunks: 4, stream_delay_ms: 150 } }, plugins: [hello('hello-a')] });
    url = `${gw.url}/v1/chat/completions`;
  });
  after(() => gw.close());

  /** Requests holding the plugin's version (/health reports it; /health itself holds nothing). */
  const inFlight = async () => (await gw.get('/health')).json.plugins[0].in_flight as number;
  async function released(): Promise<void> {
    for (let i = 0; i < 100 && (await inFlight()) !== 0; i++) await sleep(20);
    assert.equal(await inFlight(), 0, 'released');
  }
  /** Streams, asking /health while the first event is in the client's hands. */
  async function heldWhileStreaming(model: string, opts: Parameters<typeof postStream>[2] = {}) {
    let during: Promise<number> | undefined;
    const r = await postStream(url, chat(model, 'a b c d'), {
      ...opts,
      onEvent: (e, i) => {
        if (i === 0) during = inFlight();
        return opts.onEvent?.(e, i);
      },
    });
    return { r, during: await during };
  }

  it('to its last event', async () => {
    const { r, during } = await heldWhileStreaming('slow/echo');
    assert.equal(r.done, true);
    assert.equal(during, 1);
    await released();
  });

  it('to its error event', async () => {
    const { r, during } = await heldWhileStreaming('slow/fail-after-2');
    assert.equal(r.error.code, ErrorCode.upstreamStreamError);
    assert.equal(during, 1);
    await released();
  });

  it('to the client going away mid-stream', async () => {
    const { r, during } = await heldWhileStreaming('slow/echo', { onEvent: (_e, i) => (i === 1 ? 'stop' : undefined) });
    assert.equal(r.aborted, true);
    assert.equal(during, 1);
    await released();
  });

  it('and a client that leaves before the stream starts holds nothing', async () => {
    const r = await postStream(url, chat('slow/echo'), { abortAfterMs: 50 });
    assert.equal(r.aborted, true);
    await released();
  });
});

describe('redact configuration', () => {
  it('custom patterns and replacement', () =>
    withGateway(
      {
        plugins: [{ name: 'redact', path: samplePlugin('redact'), config: { patterns: [{ prefix: 'ghp_', chars: 'alnum', min: 10 }], replacement: '***' } }],
      },
      async (gw) => {
        const r = await postStream(`${gw.url}/v1/chat/completions`, chat('mock/echo', 'tok ghp_abcdefghijkl sk-ABCDEFGHIJKLMNOPQRSTUVWX'));
        assert.equal(contentOf(r.chunks), 'tok *** sk-ABCDEFGHIJKLMNOPQRSTUVWX');
      },
    ));

  it('a bad pattern refuses to load, with the reason', async () => {
    await assert.rejects(
      startTestGateway({ plugins: [{ name: 'redact', path: samplePlugin('redact'), config: { patterns: [{ prefix: 'x', chars: 'emoji' }] } }] }),
      (e: any) => e.code === ErrorCode.pluginInitFailed,
    );
  });
});

describe('backpressure', () => {
  it('a client that stops reading stops the stream: no chunk is produced beyond what the socket buffers hold', () =>
    withGateway(
      {
        providers: { huge: { type: 'mock', stream_chunks: 20_000 } },
        plugins: [wat('drop-at-stream-end')], // one chunk hook: a "hook called" log line per chunk produced
      },
      async (gw) => {
        const rid = 'stream-backpressure';
        const body = JSON.stringify(chat('huge/echo', 'x'.repeat(1000))); // 20,000 chunks of about 1.2 KB: 24 MB
        const { port, hostname } = new URL(gw.url);
        const sock = net.connect(Number(port), hostname);
        await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
        sock.pause(); // never read: the kernel buffers fill, then the gateway's writes stall
        sock.write(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: ${hostname}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${rid}\r\n\r\n${body}`,
        );
        const produced = () => gw.hooksFor(rid).length;
        await waitFor(() => produced() > 100, 5000, 'the stream to start');
        // Wait until production stops (the count holds for half a second), then check it stays stopped.
        let last = -1;
        await waitFor(
          () => {
            const n = produced();
            const still = n === last;
            last = n;
            return still;
          },
          20_000,
          'production to stall',
          500,
        );
        await sleep(500);
        assert.equal(produced(), last);
        assert.ok(last < 20_000, `${last} chunks produced for a client that reads nothing`);
        console.log(`# a client that reads nothing: production stalled after ${last} of 20,000 chunks (socket buffers)`);
        sock.destroy();
        await waitFor(() => gw.logs.some((l) => l.rid === rid && l.msg === 'client closed the stream'), 5000, 'the gateway to notice');
      },
    ));
});

describe('memory stays flat over a long stream', () => {
  // What would show buffering is memory that stays: the heap after a full GC,
  // sampled along the stream, must not grow with the chunks. Peak RSS is
  // reported and bounded too (with those GCs, so it measures what is held,
  // not how lazily V8 collects garbage).
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const MiB = 1024 * 1024;

  it('10,000 chunks through 5 plugins: retained heap flat, RSS growth under 64 MiB', () =>
    withGateway(
      {
        log_level: 'warn', // the test keeps every log line in memory; 100,000 hook-call lines would be the leak
        providers: { big: { type: 'mock', stream_chunks: 10_000 }, warm: { type: 'mock', stream_chunks: 1000 } },
        plugins: [
          hello('hello-a'),
          { name: 'redact-a', path: samplePlugin('redact') },
          hello('hello-b'),
          { name: 'redact-b', path: samplePlugin('redact') },
          wat('drop-at-stream-end'),
        ],
      },
      async (gw) => {
        const url = `${gw.url}/v1/chat/completions`;
        // Warm up (JIT, heaps and wasm memories at their working size), then take the baseline.
        await postStream(url, chat('warm/echo', 'warm up'), { keep: false });
        gc();
        const base = process.memoryUsage();
        let peakRss = base.rss;
        const sampler = setInterval(() => {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
        }, 25);
        const retained: number[] = [];
        let count = 0;
        let leaked = false;
        let r;
        try {
          // The client keeps nothing either: what is measured is the gateway.
          r = await postStream(url, chat('big/echo', 'secret sk-ABCDEFGHIJKLMNOPQRSTUVWX here'), {
            keep: false,
            onEvent: (ev: any) => {
              if (ev === '[DONE]') return;
              count++;
              if (count < 5 && JSON.stringify(ev).includes('sk-ABC')) leaked = true;
              if (count % 2000 === 0) {
                gc();
                retained.push(process.memoryUsage().heapUsed);
              }
            },
          });
        } finally {
          clearInterval(sampler);
        }
        assert.equal(r.done, true);
        assert.equal(count, 10_000); // the finish chunk is marked as the end and dropped by the fixture
        assert.equal(leaked, false);
        const rssGrowth = (peakRss - base.rss) / MiB;
        const heldMax = (Math.max(...retained) - base.heapUsed) / MiB;
        const heldTrend = (retained.at(-1)! - retained[0]) / MiB;
        console.log(
          `# 10,000 chunks x 5 plugins in ${(r.totalMs / 1000).toFixed(1)} s: peak rss +${rssGrowth.toFixed(1)} MiB; heap after GC every 2,000 chunks (vs before): ${retained.map((h) => `${h >= base.heapUsed ? '+' : ''}${((h - base.heapUsed) / MiB).toFixed(1)}`).join(', ')} MiB`,
        );
        assert.ok(rssGrowth < 64, `rss grew by ${rssGrowth.toFixed(1)} MiB`);
        assert.ok(heldMax < 16, `the heap holds ${heldMax.toFixed(1)} MiB more after GC`);
        assert.ok(heldTrend < 4, `the retained heap grew by ${heldTrend.toFixed(1)} MiB from chunk 2,000 to 10,000`);
      },
    ));
});
