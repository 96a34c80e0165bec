// PDK behaviour, hook by hook, through build/features.wasm (test/features.ts).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadPlugin, pack, unpack } from '../harness.mjs';

const WASM = fileURLToPath(new URL('../build/features.wasm', import.meta.url));
const enc = (s) => new Uint8Array(Buffer.from(s, 'utf8')); // msgpackr decodes bin as Uint8Array

let p;
before(async () => {
  p = await loadPlugin(WASM);
});
after(() => p?.close());

async function call(fn, input) {
  const r = await p.call(fn, input === undefined ? undefined : pack(input));
  return { out: unpack(r.output), logs: r.logs, raw: r.output };
}

const ctx = { 'sandgate.request_id': 'req-1', 'sandgate.fallback_index': 2, 'features.old': 'x' };
const httpReq = (headers = {}, extra = {}) => ({
  method: 'POST', path: '/v1/chat', query: { keep: 'k', drop: 'd' },
  headers: { 'content-type': 'application/json', authorization: 'Bearer x', ...headers }, ...extra,
});

describe('init / get_name / cleanup', () => {
  test('init reads config and opts out of response bodies only', async () => {
    const { out, logs } = await call('init', { abi: 1, name: 'features', config: { greeting: 'grüß dich', n: 1.5, list: [1, 'a'] } });
    assert.deepEqual(out, { response_body: false });
    assert.deepEqual(logs, [[1, 'config {"greeting":"grüß dich","n":1.5,"list":[1,"a"]}']]);
  });

  test('init can refuse to load', async () => {
    const { out } = await call('init', { abi: 1, name: 'features', config: { fail: true } });
    assert.deepEqual(out, { error: 'refusing to load: fail=true (features)' });
  });

  test('init with nil config', async () => {
    const { out } = await call('init', { abi: 1, name: 'features', config: null });
    assert.deepEqual(out, { response_body: false });
  });

  test('get_name is UTF-8', async () => {
    assert.equal((await call('get_name')).out, 'features ✓');
  });

  test('cleanup sees state kept across calls', async () => {
    const { logs } = await call('cleanup');
    assert.match(logs[0][1], /^cleanup after \d+ calls, greeting grüß dich$/);
  });
});

describe('http_transport_pre_hook', () => {
  test('request patch: method, path, header set/remove, query set/remove, body, ctx set/delete', async () => {
    const { out, logs } = await call('http_transport_pre_hook', { ctx, req: httpReq({}, { body: enc('{"a":"héllo"}') }) });
    assert.equal(out.ctx['features.greeting'], 'grüß dich');
    assert.equal(typeof out.ctx['features.n'], 'number');
    assert.deepEqual(Object.keys(out.ctx), ['features.greeting', 'features.n', 'features.old']);
    assert.equal(out.ctx['features.old'], null);
    assert.deepEqual(out.req, {
      method: 'PUT',
      path: '/v1/chat/v2',
      headers: { 'x-added': 'ünïcödé ✓', authorization: null },
      query: { added: '1', drop: null },
      body: enc('{"A":"HÉLLO"}'),
    });
    assert.deepEqual(logs, [
      [2, "ctx.set ignored: 'sandgate.request_id' is reserved for the gateway"],
      [1, 'request id req-1, headers 2, query keep,added'],
    ]);
  });

  test('continue without changes sends no output', async () => {
    const { raw } = await call('http_transport_pre_hook', { ctx, req: httpReq({ 'x-mode': 'noop' }) });
    assert.equal(raw, null);
  });

  test('short-circuit with a response (request changes are not sent)', async () => {
    const { out } = await call('http_transport_pre_hook', { ctx, req: httpReq({ 'x-mode': 'respond' }) });
    assert.deepEqual(out, {
      response: { status: 429, headers: { 'content-type': 'application/json' }, body: enc('{"error":"slow down, grüß dich"}') },
    });
  });

  test('short-circuit with an error', async () => {
    const { out } = await call('http_transport_pre_hook', { ctx, req: httpReq({ 'x-mode': 'error' }) });
    assert.deepEqual(out, { error: { message: 'denied: /v1/chat ⛔', status: 403, code: 'denied' } });
  });

  test('header names are matched case-insensitively even if the host did not lower-case them', async () => {
    const { out } = await call('http_transport_pre_hook', { ctx, req: httpReq({ 'X-MODE': 'error' }) });
    assert.equal(out.error.code, 'denied');
  });
});

describe('http_transport_post_hook', () => {
  test('response patch: status, headers, body; ctx read from an earlier hook', async () => {
    const { out } = await call('http_transport_post_hook', {
      ctx: { ...ctx, 'features.greeting': 'hi' },
      req: httpReq(),
      resp: { status: 200, headers: { server: 'upstream', 'content-type': 'text/plain' }, body: enc('ok') },
    });
    assert.deepEqual(out, {
      resp: { status: 203, headers: { 'x-seen': 'hi', server: null }, body: enc('ok (checked ✓)') },
    });
  });

  test('response without a body (opted out)', async () => {
    const { out } = await call('http_transport_post_hook', { ctx, req: httpReq(), resp: { status: 200, headers: {} } });
    assert.deepEqual(out.resp.body, enc('(no body)'));
    assert.equal(out.resp.headers['x-seen'], 'none');
  });

  test('error response', async () => {
    const { out } = await call('http_transport_post_hook', { ctx, req: httpReq(), resp: { status: 503, headers: {} } });
    assert.deepEqual(out, { error: { message: 'upstream failed with 503', status: 502, code: 'upstream' } });
  });
});

describe('http_transport_stream_chunk_hook', () => {
  const chunk = (content) => ({
    id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm',
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  });
  test('pass: no output', async () => {
    assert.equal((await call('http_transport_stream_chunk_hook', { ctx, chunk: chunk('Hel') })).raw, null);
  });
  test('edited in place: the whole chunk goes back', async () => {
    const { out } = await call('http_transport_stream_chunk_hook', { ctx, chunk: chunk('edit') });
    assert.deepEqual(out, { chunk: { ...chunk('EDITED ✓') } });
  });
  test('replace', async () => {
    assert.deepEqual((await call('http_transport_stream_chunk_hook', { ctx, chunk: chunk('replace') })).out, { chunk: { replaced: true } });
  });
  test('drop', async () => {
    assert.deepEqual((await call('http_transport_stream_chunk_hook', { ctx, chunk: chunk('drop') })).out, { drop: true });
  });
  test('error', async () => {
    assert.deepEqual((await call('http_transport_stream_chunk_hook', { ctx, chunk: chunk('error') })).out,
      { error: { message: 'stream stopped', status: 500, code: 'stopped' } });
  });
  test('reads sandgate.stream_end', async () => {
    const { out } = await call('http_transport_stream_chunk_hook', { ctx: { ...ctx, 'sandgate.stream_end': true }, chunk: chunk('x') });
    assert.deepEqual(out, { ctx: { 'features.stream_done': true } });
  });
});

describe('pre_llm_hook (and legacy pre_hook)', () => {
  const llmReq = (content, extra = {}) => ({
    provider: 'openai', model: 'gpt-4o-mini', stream: false,
    messages: [{ role: 'user', content, name: 'bob', extra_field: [1] }],
    params: { temperature: 0.7, max_tokens: 256, logprobs: true, response_format: { type: 'json_object' } },
    ...extra,
  });

  for (const fn of ['pre_llm_hook', 'pre_hook']) {
    test(`${fn}: request patch (provider, messages, params merge)`, async () => {
      const { out, logs } = await call(fn, { ctx, req: llmReq('Bonjour') });
      assert.deepEqual(logs, [[1, 'temperature 0.7 max_tokens 256 logprobs true format json_object fallback 2']]);
      assert.deepEqual(out, {
        req: {
          provider: 'azure',
          messages: [
            { role: 'system', content: 'Answer in French. Réponds en français.' },
            { role: 'user', content: 'Bonjour', name: 'bob', extra_field: [1] },
          ],
          params: { temperature: 0.25, logprobs: null, metadata: { tags: ['a', -5000000000] } },
        },
      });
    });
  }

  test('untouched request: no output', async () => {
    assert.equal((await call('pre_llm_hook', { ctx, req: llmReq('noop') })).raw, null);
  });

  test('short-circuit with a response', async () => {
    const { out } = await call('pre_llm_hook', { ctx, req: llmReq('cached') });
    assert.deepEqual(out, {
      response: {
        id: 'chatcmpl-cache', object: 'chat.completion', created: 1700000000, model: 'gpt-4o-mini',
        choices: [{ index: 0, message: { role: 'assistant', content: 'from cache ✓' }, finish_reason: 'stop' }],
        usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      },
    });
  });

  test('error with allow_fallbacks false', async () => {
    const { out } = await call('pre_llm_hook', { ctx, req: llmReq('blocked') });
    assert.deepEqual(out, { error: { message: 'blocked by policy', type: 'policy', status: 403, allow_fallbacks: false } });
  });

  test('error with allow_fallbacks true', async () => {
    const { out } = await call('pre_llm_hook', { ctx, req: llmReq('retryable') });
    assert.deepEqual(out, { error: { message: 'try the next one', status: 503, allow_fallbacks: true } });
  });

  test('multimodal content (array of parts) is kept as is', async () => {
    const parts = [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'data:,' } }];
    const { out } = await call('pre_llm_hook', { ctx, req: llmReq(parts) });
    assert.deepEqual(out.req.messages[1], { role: 'user', content: parts, name: 'bob', extra_field: [1] });
  });
});

describe('post_llm_hook (and legacy post_hook)', () => {
  const response = (content) => ({
    id: 'chatcmpl-1', object: 'chat.completion', created: 1732240000, model: 'gpt-4o',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7, prompt_tokens_details: { cached_tokens: 0 } },
    system_fingerprint: 'fp_1',
  });

  for (const fn of ['post_llm_hook', 'post_hook']) {
    test(`${fn}: edit the response in place (unknown fields kept)`, async () => {
      const { out } = await call(fn, { ctx, response: response('Salut') });
      assert.deepEqual(out, { response: response('Salut [reviewed]') });
    });
  }

  test('untouched response: no output', async () => {
    assert.equal((await call('post_llm_hook', { ctx, response: response('noop') })).raw, null);
  });

  test('turn a response into an error', async () => {
    const { out } = await call('post_llm_hook', { ctx, response: response('forbidden') });
    assert.deepEqual(out, { error: { message: 'response withheld', status: 451, allow_fallbacks: false } });
  });

  test('recover an error into a response', async () => {
    const { out } = await call('post_llm_hook', { ctx, error: { message: 'rate limited', status: 429, provider: 'openai' } });
    assert.equal(out.response.choices[0].message.content, 'recovered from: rate limited');
    assert.equal(out.error, undefined);
  });

  test('edit an error in place (allow_fallbacks nil -> false)', async () => {
    const { out } = await call('post_llm_hook', { ctx, error: { message: 'bad', type: 't', status: 500, allow_fallbacks: null } });
    assert.deepEqual(out, { error: { message: 'bad (no fallbacks)', type: 't', status: 500, allow_fallbacks: false } });
  });
});

describe('legacy transport_interceptor', () => {
  test('headers replaced in full, body map edited', async () => {
    const { out } = await call('transport_interceptor', {
      ctx, url: 'http://gw/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: { model: 'm', n: 1 },
    });
    assert.deepEqual(out, {
      headers: { 'content-type': 'application/json', 'x-intercepted': 'yes' },
      body: { model: 'm', n: 1, intercepted: true },
    });
  });
  test('nil body stays untouched', async () => {
    const { out } = await call('transport_interceptor', { ctx, url: 'http://gw/x', headers: {}, body: null });
    assert.deepEqual(out, { headers: { 'x-intercepted': 'yes' } });
  });
  test('no change: no output', async () => {
    assert.equal((await call('transport_interceptor', { ctx, url: 'http://gw/noop', headers: { a: 'b' }, body: { x: 1 } })).raw, null);
  });
  test('error', async () => {
    assert.deepEqual((await call('transport_interceptor', { ctx, url: 'http://gw/deny', headers: {}, body: null })).out,
      { error: { message: 'interceptor said no', status: 401 } });
  });
});

describe('Value API', () => {
  test('constructors, accessors, JSON, round trip', async () => {
    const { out } = await call('value_api');
    assert.equal(out, [
      '{"nil":null,"t":true,"i":-42,"f":1.5,"s":"é\\"\\n","b":{"$bin":"6869"},"a":[1,"x"]}',
      '-42.0', '1', '7', '2', 'no-at-5', 'nil-ok', 'nil,t,i,f,s,b,a', 'removed', 'bin', 'roundtrip-ok',
    ].join(' | '));
  });
});

describe('failures', () => {
  test('abort logs message and location at level 3, then traps', async () => {
    const q = await loadPlugin(WASM);
    const e = await q.call('abort_on_purpose').then(() => assert.fail('should trap'), (err) => err);
    assert.match(e.message, /unreachable/);
    assert.equal(e.logs[0][1], 'about to abort');
    assert.equal(e.logs[1][0], 3);
    assert.match(e.logs[1][1], /^plugin aborted: deliberate failure ✗ at .*features\.ts:\d+:\d+$/);
    await q.close();
  });
});
