import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';
import { scripted } from './helpers/scripted.js';

// sample-plugins/auth (Go kit) through the real gateway, as its README says:
// keys from its config, as a bearer token or in its header; 401 without
// fallbacks on the chat route, 401 from the transport hook elsewhere; the
// credential never travels past it.

const CHAT_PATH = '/v1/chat/completions';
const ALICE = 'sk-alice-0123456789';
const BOB = 'sk-bob-9876543210';
const AUTH = { keys: [{ name: 'alice', key: ALICE }, BOB], header: 'X-Api-Key' };
// A chat with a fallback: a 401 must not try it.
const CHAT_WITH_FALLBACK = { ...CHAT(), fallbacks: ['mock/second'] };

let n = 0;
const rid = () => `auth-${++n}`;

describe('the auth sample (Go) through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { mock: { type: 'mock' } },
      plugins: [
        { name: 'auth', path: samplePlugin('auth'), config: AUTH },
        // After it: what a later plugin (and so the upstream) sees of the credentials, and who auth said it was.
        scripted('probe', {
          hooks: {
            http_transport_pre_hook: { header_to_ctx: { authorization: 'probe.authorization', 'x-api-key': 'probe.api_key' } },
            http_transport_post_hook: { ctx_to_header: { 'probe.authorization': 'x-saw-authorization', 'probe.api_key': 'x-saw-api-key', 'auth.principal': 'x-principal' } },
          },
        }),
      ],
    });
  });
  after(() => gw?.close());

  it('no key on the chat route: 401 unauthorized from pre_llm_hook, no provider and no fallback tried', async () => {
    const id = rid();
    const r = await gw.post(CHAT_PATH, CHAT_WITH_FALLBACK, { 'x-request-id': id });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.error.code, 'unauthorized');
    assert.match(r.json.error.message, /missing API key/);
    const llmPre = gw.hooksFor(id).filter((h) => h === 'auth:pre_llm_hook');
    assert.equal(llmPre.length, 1, `one attempt only: ${gw.hooksFor(id)}`);
  });

  it('a wrong key: 401 "invalid API key"; a key of another length too', async () => {
    for (const key of [ALICE.replace(/9$/, '8'), 'sk-short', `${ALICE}x`]) {
      const r = await gw.post(CHAT_PATH, CHAT(), { authorization: `Bearer ${key}` });
      assert.equal(r.status, 401, key);
      assert.match(r.json.error.message, /invalid API key/);
    }
  });

  it('a valid key as a bearer token or in its header (any case) passes, names its principal, and is stripped', async () => {
    const bearer = await gw.post(CHAT_PATH, CHAT(), { Authorization: `bearer ${ALICE}` });
    assert.equal(bearer.status, 200, bearer.text);
    assert.equal(bearer.headers.get('x-principal'), 'alice');
    const header = await gw.post(CHAT_PATH, CHAT(), { 'X-API-KEY': BOB });
    assert.equal(header.status, 200, header.text);
    assert.equal(header.headers.get('x-principal'), 'key-1');
    for (const r of [bearer, header]) {
      assert.equal(r.headers.get('x-saw-authorization'), '<none>');
      assert.equal(r.headers.get('x-saw-api-key'), '<none>');
    }
  });

  it('other routes: 401 from the transport hook with WWW-Authenticate; with a key they answer', async () => {
    const denied = await gw.get('/v1/models');
    assert.equal(denied.status, 401);
    assert.equal(denied.json.error.code, 'unauthorized');
    assert.equal(denied.headers.get('www-authenticate'), 'Bearer realm="sandgate"');
    const ok = await gw.get('/v1/models', { authorization: `Bearer ${ALICE}` });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('the auth sample refuses a config it cannot use', () => {
  for (const [config, says] of [
    [{}, /config.keys must be a non-empty array/],
    [{ keys: ['short'] }, /config.keys\[0\] must be a key of at least 8 characters/],
    [{ keys: [ALICE], header: 'x bad' }, /config.header must be a header name/],
  ] as const) {
    it(`${JSON.stringify(config)}: the plugin does not load, and the error says what to fix`, async () => {
      await assert.rejects(
        startTestGateway({ providers: { mock: { type: 'mock' } }, plugins: [{ name: 'auth', path: samplePlugin('auth'), config }] }),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, ErrorCode.pluginInitFailed);
          assert.match(e.message, says);
          return true;
        },
      );
    });
  }
});
