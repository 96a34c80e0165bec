// logging (sample-plugins/logging, the C PDK) through the real gateway: one
// JSON line per request and per response (streams included), with the
// headers its config names redacted, and a clear refusal of a bad config.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type LogLine, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';
import { postStream } from './helpers/sse.js';

const CHAT_PATH = '/v1/chat/completions';
const WASM = samplePlugin('logging');

/** The plugin's JSON lines for one request id, parsed. */
function linesFor(gw: TestGateway, rid: string, plugin = 'logging'): any[] {
  return gw.logs
    .filter((l: LogLine) => l.rid === rid && l.plugin === plugin && l.msg.startsWith('{'))
    .map((l) => ({ level: l.level, ...JSON.parse(l.msg) }));
}

describe('sample logging (C PDK) through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { mock: { type: 'mock' } },
      plugins: [
        { name: 'logging', path: WASM, config: { redact_headers: ['Authorization', 'x-secret'], redaction: '***' } },
        { name: 'logging-defaults', path: WASM, config: { level: 'warn' } },
      ],
    });
  });
  after(() => gw.close());

  it('one request line and one response line, with the configured headers redacted', async () => {
    const id = 'logging-1';
    const r = await gw.post(`${CHAT_PATH}?trace=yes`, CHAT(), {
      'x-request-id': id, authorization: 'Bearer sk-live-123', 'X-Secret': 'hunter2', 'x-api-key': 'kept-visible',
    });
    assert.equal(r.status, 200, r.text);
    const lines = linesFor(gw, id);
    assert.equal(lines.length, 2, JSON.stringify(lines));
    const [req, resp] = lines;
    assert.equal(req.event, 'request');
    assert.equal(req.request_id, id);
    assert.equal(req.method, 'POST');
    assert.equal(req.path, CHAT_PATH);
    assert.deepEqual(req.query, { trace: 'yes' });
    assert.equal(req.headers.authorization, '***');
    assert.equal(req.headers['x-secret'], '***');
    assert.equal(req.headers['x-api-key'], 'kept-visible', 'not in this config, so not redacted');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.level, 30);
    assert.doesNotMatch(JSON.stringify(gw.logs.filter((l) => l.rid === id && l.plugin === 'logging')), /sk-live-123|hunter2/);

    assert.equal(resp.event, 'response');
    assert.equal(resp.status, 200);
    assert.equal(resp.method, 'POST');
    assert.equal(resp.headers['content-type'].startsWith('application/json'), true);
  });

  it('defaults: authorization, cookie and x-api-key redacted as [REDACTED]; the level from config', async () => {
    const id = 'logging-2';
    await gw.post(CHAT_PATH, CHAT(), { 'x-request-id': id, authorization: 'Bearer abc', cookie: 'session=1', 'x-api-key': 'k' });
    const [req] = linesFor(gw, id, 'logging-defaults');
    assert.equal(req.level, 40, 'level "warn"');
    assert.equal(req.headers.authorization, '[REDACTED]');
    assert.equal(req.headers.cookie, '[REDACTED]');
    assert.equal(req.headers['x-api-key'], '[REDACTED]');
  });

  it('a stream gets its response line once, from the chunk that ends it', async () => {
    const id = 'logging-stream-1';
    const r = await postStream(gw.url + CHAT_PATH, { ...CHAT(), stream: true }, { headers: { 'x-request-id': id } });
    assert.equal(r.done, true);
    const lines = linesFor(gw, id);
    assert.deepEqual(lines.map((l) => l.event), ['request', 'response']);
    assert.equal(lines[1].stream, true);
    assert.equal(lines[1].status, 200);
    // the same module under another name logs its own line (its mark in the context is its own)
    assert.deepEqual(linesFor(gw, id, 'logging-defaults').map((l) => l.event), ['request', 'response']);
  });
});

describe('sample logging: a bad config is refused at load, saying what to fix', () => {
  it('redact_headers that is not an array of names', async () => {
    await assert.rejects(
      startTestGateway({ providers: { mock: { type: 'mock' } }, plugins: [{ name: 'logging', path: WASM, config: { redact_headers: 'authorization' } }] }),
      /redact_headers must be an array of header names/,
    );
  });
});
