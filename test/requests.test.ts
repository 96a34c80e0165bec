import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
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

  it('a body over server.max_body_bytes is refused with 413 before it is buffered', async () => {
    const r = await gw.post('/v1/chat/completions', CHAT('x'.repeat(5000)));
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, ErrorCode.bodyTooLarge);
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
