import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { completion, startUpstream, type Upstream } from './helpers/upstream.js';

describe('the OpenAI-compatible provider against a real upstream on loopback', () => {
  let up: Upstream;
  let broken: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream((body, res) => {
      if (body.model === 'overloaded') {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'try later', type: 'server_error', code: 'overloaded' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(completion(`upstream says: ${body.messages.at(-1).content}`, body.model)));
    });
    broken = await startUpstream((_body, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('not json at all');
    });
    const down = await startUpstream(() => {});
    const downUrl = down.url;
    await down.close(); // nothing listens there any more
    gw = await startTestGateway({
      providers: {
        mock: { type: 'mock' },
        up: { type: 'openai', base_url: up.url, api_key: 'sk-test-key', models: ['gpt-test', 'overloaded'] },
        broken: { type: 'openai', base_url: broken.url },
        down: { type: 'openai', base_url: downUrl },
      },
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await broken.close();
  });

  it('forwards the request with the key, model and params, and relays the completion', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'up/gpt-test', messages: [{ role: 'user', content: 'Hi' }], temperature: 0.3 });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'upstream says: Hi');
    const seen = up.received.at(-1)!;
    assert.equal(seen.path, '/v1/chat/completions');
    assert.equal(seen.headers.authorization, 'Bearer sk-test-key');
    assert.equal(seen.body.model, 'gpt-test');
    assert.equal(seen.body.temperature, 0.3);
    assert.equal(seen.body.stream, false);
  });

  it('GET /v1/models lists every provider\'s models in OpenAI\'s shape, without asking the upstream', async () => {
    const asked = up.received.length;
    const r = await gw.get('/v1/models');
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'list');
    assert.deepEqual(
      r.json.data.map((m: { id: string }) => m.id),
      ['mock/echo', 'mock/fail-503', 'mock/fail-503-final', 'mock/fail-after-3', 'up/gpt-test', 'up/overloaded'],
      'the mock\'s models, then the configured ones; a provider with no models list shows none',
    );
    for (const m of r.json.data) {
      assert.equal(m.object, 'model');
      assert.equal(m.owned_by, m.id.split('/')[0]);
      assert.ok(Number.isInteger(m.created) && Math.abs(m.created - Date.now() / 1000) < 3600, `created is a recent Unix time in seconds: ${m.created}`);
    }
    assert.equal(up.received.length, asked, 'the upstream was not called');
    // A listed id is what a chat request names.
    const chat = await gw.post('/v1/chat/completions', { model: r.json.data.at(-2).id, messages: [{ role: 'user', content: 'listed' }] });
    assert.equal(chat.json.choices[0].message.content, 'upstream says: listed');
  });

  it('relays an upstream error status and message', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'up/overloaded', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'overloaded');
    assert.match(r.json.error.message, /try later/);
  });

  it('an upstream that is down is a 502 upstream_unreachable', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'down/gpt', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, ErrorCode.upstreamUnreachable);
  });

  it('an upstream answering garbage is a 502 upstream_bad_response', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'broken/gpt', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, ErrorCode.upstreamBadResponse);
  });

  it('falls back from a failing upstream to the next target', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'down/gpt', fallbacks: ['up/overloaded', 'up/gpt-test'], messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'upstream says: Hi');
  });

  it('when every attempt fails, the client gets the primary error with the others attached', async () => {
    const r = await gw.post('/v1/chat/completions', { model: 'down/gpt', fallbacks: ['up/overloaded', 'mock/fail-429'], messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, ErrorCode.upstreamUnreachable);
    assert.deepEqual(r.json.error.attempts.map((a: { status: number }) => a.status), [502, 503, 429]);
  });
});

describe('the mock provider', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({});
  });
  after(() => gw.close());

  it('echoes the last user message in an OpenAI chat completion', async () => {
    const r = await gw.post('/v1/chat/completions', {
      model: 'mock/echo',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'first' },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: 'Hello!' },
      ],
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.model, 'echo');
    assert.deepEqual(r.json.choices[0].message, { role: 'assistant', content: 'Hello!' });
    assert.equal(r.json.choices[0].finish_reason, 'stop');
  });

  it('fails with the status a fail-<status> model names, and -final forbids fallbacks', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/fail-503' });
    assert.equal(r.status, 503);
    const fb = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/fail-503', fallbacks: ['mock/echo'] });
    assert.equal(fb.status, 200);
    const final = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/fail-401-final', fallbacks: ['mock/echo'] });
    assert.equal(final.status, 401, 'allow_fallbacks false stops at the primary');
  });
});
