import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ERRORS, type ErrorSpec } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixture, ROOT } from './helpers/paths.js';
import { postStream } from './helpers/sse.js';

// One catalog (host/errors/codes.ts) holds every error's code, status, type
// and meaning. The README's table must say the same, row for row, and the
// gateway's answers must carry what the catalog says.

const MARKER = '<!-- error-codes: checked against host/errors/codes.ts by test/error-catalog.test.ts -->';
const row = (e: ErrorSpec) => `| \`${e.code}\` | ${e.status} | \`${e.type}\` | ${e.message} |`;

describe("the README's table of error codes", () => {
  it('is the catalog, row for row', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
    const at = readme.indexOf(MARKER);
    assert.ok(at >= 0, `README.md has no line ${MARKER}`);
    const rows: string[] = [];
    for (let i = at + 3; i < readme.length && readme[i].startsWith('|'); i++) rows.push(readme[i]);
    const expected = Object.values(ERRORS).map(row);
    assert.deepEqual(rows, expected, `README.md's error table differs from host/errors/codes.ts; it should read:\n${expected.join('\n')}`);
  });
});

describe("the gateway's error answers carry the catalog's status and type", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      server: { max_body_bytes: 4096 },
      plugins: [{ name: 'trapper', path: fixture('trap-on-long-input'), circuit_breaker: { failure_threshold: 0 } }],
    });
  });
  after(() => gw?.close());

  const expectCatalog = (r: { status: number; json: any }, spec: ErrorSpec) => {
    assert.equal(r.json?.error?.code, spec.code, JSON.stringify(r.json));
    assert.equal(r.status, spec.status, spec.code);
    assert.equal(r.json.error.type, spec.type, spec.code);
  };

  it('not_found, method_not_allowed, invalid_json, invalid_request, unknown_provider, body_too_large', async () => {
    expectCatalog(await gw.post('/v1/nothing-here', CHAT()), ERRORS.notFound);
    const wrongMethod = await gw.get('/v1/chat/completions');
    expectCatalog(wrongMethod, ERRORS.methodNotAllowed);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    expectCatalog(await gw.post('/v1/chat/completions', '{not json'), ERRORS.invalidJson);
    expectCatalog(await gw.post('/v1/chat/completions', { model: 'mock/echo' }), ERRORS.invalidRequest);
    expectCatalog(await gw.post('/v1/chat/completions', { ...CHAT(), model: 'nowhere/echo' }), ERRORS.unknownProvider);
    expectCatalog(await gw.post('/v1/chat/completions', CHAT('y'.repeat(8192))), ERRORS.bodyTooLarge);
  });

  it('a plugin failure is plugin_failure with its code', async () => {
    expectCatalog(await gw.post('/v1/chat/completions', CHAT('z'.repeat(2000))), ERRORS.pluginTrap);
  });

  it("an upstream's error answer keeps its status; the type and code are the catalog's when it sent none", async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/fail-429' });
    assert.equal(r.status, 429);
    assert.equal(r.json.error.code, ERRORS.upstreamError.code);
    assert.equal(r.json.error.type, ERRORS.upstreamError.type);
  });

  it('upstream_stream_error in a stream: the error event has the catalog type', async () => {
    const r = await postStream(`${gw.url}/v1/chat/completions`, { ...CHAT('a b c'), model: 'mock/fail-after-2', stream: true });
    assert.equal(r.status, 200);
    assert.equal(r.error.code, ERRORS.upstreamStreamError.code);
    assert.equal(r.error.type, ERRORS.upstreamStreamError.type);
  });
});
