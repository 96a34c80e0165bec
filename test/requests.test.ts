import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';

describe('bad requests get a clear 4xx with a stable code', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ server: { max_body_bytes: 4096 }, plugins: [{ name: 'wat', path: fixture('set-header') }] });
  });
  after(() => gw.close());

  it('invalid JSON body', async () => {
    const r = await gw.post('/v1/chat/completions', '{"model": "mock/echo", "messages": [');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, ErrorCode.invalidJson);
  });

  it('missing or malformed fields name the field', async () => {
    const noMessages = await gw.post('/v1/chat/completions', { model: 'mock/echo' });
    assert.equal(noMessages.status, 400);
    assert.equal(noMessages.json.error.code, ErrorCode.invalidRequest);
    assert.match(noMessages.json.error.message, /^messages/);
    const noSlash = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'echo' });
    assert.equal(noSlash.json.error.code, ErrorCode.invalidRequest);
    assert.match(noSlash.json.error.message, /provider\/model/);
  });

  it('unknown provider, in the model or a fallback', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'nope/x' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, ErrorCode.unknownProvider);
    assert.match(r.json.error.message, /unknown provider "nope".*mock/);
    const fb = await gw.post('/v1/chat/completions', { ...CHAT(), fallbacks: ['mock/echo', 'gone/y'] });
    assert.equal(fb.json.error.code, ErrorCode.unknownProvider);
    assert.match(fb.json.error.message, /^fallbacks\[1\]/);
  });

  it('a body over server.max_body_bytes is refused with 413 before it is buffered, with its x-request-id, and counted', async () => {
    const counted = async () => metricValue((await gw.get('/metrics')).text, 'sandgate_http_requests_total', { route: '/v1/chat/completions', method: 'POST', status: '413' });
    const before = await counted();
    const r = await gw.post('/v1/chat/completions', CHAT('x'.repeat(5000)), { 'x-request-id': 'rid-413' });
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, ErrorCode.bodyTooLarge);
    assert.match(r.json.error.message, /server\.max_body_bytes/);
    assert.equal(r.headers.get('x-request-id'), 'rid-413');
    assert.equal(r.headers.get('connection'), 'close');
    assert.deepEqual(gw.hooksFor('rid-413'), [], 'no hook sees a body that was refused');
    assert.equal(await counted(), before + 1);
  });

  it('a chunked body (no content-length) is refused with 413 once it passes the limit, and the connection is closed, not desynchronised', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Far more than the limit: the gateway must answer without waiting for all of it.
        if (sent++ < 1000) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const res = await fetch(gw.url + '/v1/chat/completions', { method: 'POST', body, duplex: 'half', headers: { 'content-type': 'application/json' } } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, ErrorCode.bodyTooLarge);
    assert.match(res.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.get('connection'), 'close');
    assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200, 'the next request works');
  });

  it('a body at server.max_body_bytes exactly is read whole', async () => {
    const base = JSON.stringify(CHAT(''));
    const r = await gw.post('/v1/chat/completions', JSON.stringify(CHAT('y'.repeat(4096 - base.length))));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content.length, 4096 - base.length);
  });

  it('unknown routes are 404 and still pass the transport hooks', async () => {
    const r = await gw.get('/v2/nothing-here', { 'x-request-id': 'rid-404' });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, ErrorCode.notFound);
    assert.deepEqual(gw.hooksFor('rid-404'), ['wat:http_transport_pre_hook']);
  });

  it('the wrong method on a known route is 405', async () => {
    const r = await gw.get('/v1/chat/completions');
    assert.equal(r.status, 405);
    assert.equal(r.json.error.code, ErrorCode.methodNotAllowed);
  });

  it('echoes a valid x-request-id and makes one otherwise', async () => {
    const given = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': 'abc-123' });
    assert.equal(given.headers.get('x-request-id'), 'abc-123');
    const made = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': 'bad id with spaces' });
    assert.match(made.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });

  it('/health lists the plugins and is not run through them', async () => {
    const r = await gw.get('/health', { 'x-request-id': 'rid-health' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.plugins.map((p: { name: string }) => p.name), ['wat']);
    assert.deepEqual(gw.hooksFor('rid-health'), []);
  });
});
