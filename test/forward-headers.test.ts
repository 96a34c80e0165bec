import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../host/config/load.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixture, ROOT } from './helpers/paths.js';
import { scripted } from './helpers/scripted.js';
import { postStream } from './helpers/sse.js';
import { completion, startUpstream, type Upstream } from './helpers/upstream.js';

// Which request headers reach the provider (README "Providers", ABI.md §5.4):
// the client's, as the transport hooks left them, only where the provider's
// forward_headers names them; those a pre_llm_hook sets in req.headers; the
// gateway's own last, the api_key's authorization winning unless
// prefer_forwarded_authorization. Checked on what a real loopback upstream received.

let up: Upstream;
before(async () => {
  up = await startUpstream((body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(completion('ok', body.model)));
  });
});
after(() => up.close());

const CLIENT = { 'x-tenant': 't-1', 'x-secret': 'not for the upstream', authorization: 'Bearer client-key', 'x-wat': 'from-client' };

async function received(gwConfig: Record<string, unknown>, body: Record<string, unknown> = { ...CHAT(), model: 'up/gpt-test' }) {
  const gw: TestGateway = await startTestGateway(gwConfig);
  try {
    const before = up.received.length;
    const r = body.stream ? await postStream(`${gw.url}/v1/chat/completions`, body, { headers: CLIENT }) : await gw.post('/v1/chat/completions', body, CLIENT);
    assert.equal(r.status, 200, JSON.stringify((r as { json?: unknown }).json));
    assert.equal(up.received.length, before + 1, 'one upstream call');
    return up.received[before].headers;
  } finally {
    await gw.close();
  }
}

const provider = (extra: Record<string, unknown> = {}) => ({ up: { type: 'openai', base_url: up.url, api_key: 'operator-key', ...extra } });

describe('client headers reach the upstream only through forward_headers', () => {
  it('none by default: only the gateway\'s own, with the api_key', async () => {
    const h = await received({ providers: provider() });
    assert.equal(h['x-tenant'], undefined);
    assert.equal(h['x-secret'], undefined);
    assert.equal(h.authorization, 'Bearer operator-key');
    assert.equal(h['content-type'], 'application/json');
  });

  it('the named ones, in any case; the api_key still wins over a forwarded authorization', async () => {
    const h = await received({ providers: provider({ forward_headers: ['X-Tenant', 'authorization'] }) });
    assert.equal(h['x-tenant'], 't-1');
    assert.equal(h['x-secret'], undefined, 'not named: not sent');
    assert.equal(h.authorization, 'Bearer operator-key');
  });

  it('prefer_forwarded_authorization: the client\'s authorization replaces the api_key', async () => {
    const h = await received({ providers: provider({ forward_headers: ['authorization'], prefer_forwarded_authorization: true }) });
    assert.equal(h.authorization, 'Bearer client-key');
  });

  it('streamed requests forward the same way', async () => {
    const h = await received({ providers: provider({ forward_headers: ['x-tenant'] }) }, { ...CHAT(), model: 'up/gpt-test', stream: true });
    assert.equal(h['x-tenant'], 't-1');
    assert.equal(h['x-secret'], undefined);
  });
});

describe('a transport pre-hook\'s header reaches the upstream only through forward_headers', () => {
  // set-header sets request header x-wat: set-by-wat (over the client's own x-wat).
  it('not named: later plugins see it, the upstream does not', async () => {
    const h = await received({ providers: provider(), plugins: [{ name: 'wat', path: fixture('set-header') }] });
    assert.equal(h['x-wat'], undefined);
  });

  it('named: the upstream gets the value the hook set', async () => {
    const h = await received({ providers: provider({ forward_headers: ['x-wat'] }), plugins: [{ name: 'wat', path: fixture('set-header') }] });
    assert.equal(h['x-wat'], 'set-by-wat');
  });
});

describe('pre_llm_hook sets upstream headers in req.headers', () => {
  const plugins = [{ name: 'hdr', path: fixture('upstream-headers-llm') }];

  it('sent without being named in forward_headers; the gateway\'s content-type and api_key win', async () => {
    const h = await received({ providers: provider(), plugins });
    assert.equal(h['x-llm-hook'], 'from-pre-llm');
    assert.equal(h['content-type'], 'application/json');
    assert.equal(h.authorization, 'Bearer operator-key');
  });

  it('prefer_forwarded_authorization lets the plugin\'s authorization through', async () => {
    const h = await received({ providers: provider({ prefer_forwarded_authorization: true }), plugins });
    assert.equal(h.authorization, 'Bearer from-plugin');
  });
});

describe('the AssemblyScript kit sets upstream headers (LlmRequest.setUpstreamHeader)', () => {
  it('a kit plugin\'s header reaches the upstream', async () => {
    const plugins = [scripted('kit', { hooks: { pre_llm_hook: { set_upstream_header: { 'X-Kit': 'from-as' } } } })];
    const h = await received({ providers: provider(), plugins });
    assert.equal(h['x-kit'], 'from-as');
  });
});

describe('forward_headers in the config', () => {
  it('refuses a header only the gateway sets, saying why', () => {
    assert.throws(
      () => parseConfig({ providers: { up: { type: 'openai', base_url: 'http://127.0.0.1:1/v1', forward_headers: ['Content-Length'] } } }, { baseDir: ROOT }),
      (e: unknown) => e instanceof GatewayError && e.code === ErrorCode.configInvalid && /forward_headers\[0\].*only the gateway sets/.test(e.message),
    );
  });
});
