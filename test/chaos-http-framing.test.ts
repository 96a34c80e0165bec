import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { type KeepAliveClient, keepAliveClient, type KeepAliveResponse } from './helpers/keep-alive.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';
import { legacy, scripted } from './helpers/scripted.js';

// Plugin output that would break HTTP: header names and values HTTP cannot
// carry, interim (1xx) statuses, framing headers. Each must be refused as
// plugin_bad_output of the plugin that wrote it, answered as an OpenAI-shaped
// JSON error, counted in /metrics with the status the client got, and leave the
// client's keep-alive connection readable: every test sends its next request
// on the same socket.

const NO_BREAKER = { failure_threshold: 0 };
const CHAT_ROUTE = '/v1/chat/completions';
const HANG_GUARD = { timeout: 30_000 }; // a desynchronised connection may wait forever; not a timing assertion

interface HostileCase {
  fixture: string;
  hook: string;
  /** What the failure's log line must say: the field path and what is wrong. */
  says: RegExp;
}

const CASES: HostileCase[] = [
  { fixture: 'respond-crlf-header', hook: 'http_transport_pre_hook', says: /response\.headers\["x-evil"\]: the value contains CR \(U\+000D\) at index 1/ },
  { fixture: 'respond-bad-header-name', hook: 'http_transport_pre_hook', says: /response\.headers\["bad header"\]: the name is not an RFC 9110 token/ },
  { fixture: 'respond-non-latin1-header', hook: 'http_transport_pre_hook', says: /response\.headers\["x-price"\]: the value contains U\+20AC at index 2, beyond Latin-1/ },
  { fixture: 'respond-1xx', hook: 'http_transport_pre_hook', says: /response\.status: expected a final HTTP status \(200-599\), got 103/ },
  { fixture: 'respond-content-length', hook: 'http_transport_pre_hook', says: /response\.headers\["Content-Length"\]: content-length is set by the gateway/ },
  { fixture: 'hook-error-101', hook: 'http_transport_pre_hook', says: /error\.status: expected a final HTTP status \(200-599\), got 101/ },
  { fixture: 'post-content-length', hook: 'http_transport_post_hook', says: /resp\.headers\["content-length"\]: content-length is set by the gateway/ },
  { fixture: 'set-bad-request-header', hook: 'http_transport_pre_hook', says: /req\.headers\["x-wat"\]: the value contains LF \(U\+000A\)/ },
  { fixture: 'llm-error-1xx', hook: 'pre_llm_hook', says: /error\.status: expected a final HTTP status \(200-599\), got 100/ },
];

function assertPluginBadOutput(r: KeepAliveResponse, hook: string): void {
  assert.equal(r.status, 500, r.text);
  assert.deepEqual(r.interim, [], 'no interim (1xx) response may reach the client');
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.deepEqual(r.json?.error, {
    message: `plugin "hostile" failed in ${hook} (${ErrorCode.pluginBadOutput})`,
    type: 'plugin_failure',
    code: ErrorCode.pluginBadOutput,
    plugin: 'hostile',
    hook,
  });
  assert.equal(r.headers['x-injected'], undefined, 'no header smuggled in through CRLF');
}

/** The next request on the same connection: it must be answered, on the same socket, and parse. */
async function sameConnection(client: KeepAliveClient, before: KeepAliveResponse, method: string, path: string, body?: unknown): Promise<KeepAliveResponse> {
  const next = await client.request(method, path, body);
  assert.equal(next.reusedSocket, true, 'the second request went out on the kept-alive connection');
  assert.equal(next.localPort, before.localPort, 'the same connection answered');
  return next;
}

async function withGateway(plugins: Record<string, unknown>[], test: (gw: TestGateway, client: KeepAliveClient) => Promise<void>): Promise<void> {
  const gw = await startTestGateway({ runtime: { workers: 1 }, plugins });
  const client = keepAliveClient(gw.url);
  try {
    await test(gw, client);
  } finally {
    client.close();
    await gw.close();
  }
}

describe('chaos: plugin output that would break HTTP (fail-closed)', () => {
  for (const c of CASES) {
    it(`${c.fixture}: plugin_bad_output from ${c.hook}, counted as sent, connection intact`, HANG_GUARD, async () => {
      await withGateway([{ name: 'hostile', path: fixture(c.fixture), circuit_breaker: NO_BREAKER }], async (gw, client) => {
        const first = await client.request('POST', CHAT_ROUTE, CHAT());
        assertPluginBadOutput(first, c.hook);
        const failure = gw.logs.find((l) => l.msg === 'plugin failure' && l.plugin === 'hostile');
        assert.equal(failure?.kind, 'bad_output');
        assert.match(String(failure?.err), c.says);

        const metrics = await sameConnection(client, first, 'GET', '/metrics');
        assert.equal(metrics.status, 200);
        assert.equal(metricValue(metrics.text, 'sandgate_http_requests_total', { route: CHAT_ROUTE, method: 'POST', status: '500' }), 1);
        assert.equal(metricValue(metrics.text, 'sandgate_http_requests_total', { route: CHAT_ROUTE }), 1, 'one request, counted once, with the status sent');
        assert.equal(metricValue(metrics.text, 'sandgate_plugin_failures_total', { plugin: 'hostile', hook: c.hook, kind: 'bad_output' }), 1);

        // And the plugin chain itself still answers on that connection.
        const again = await sameConnection(client, first, 'POST', CHAT_ROUTE, CHAT());
        assertPluginBadOutput(again, c.hook);
      });
    });
  }

  it('a streamed request refused before its first chunk is a JSON error, not an event stream', HANG_GUARD, async () => {
    await withGateway([{ name: 'hostile', path: fixture('llm-error-1xx'), circuit_breaker: NO_BREAKER }], async (_gw, client) => {
      const first = await client.request('POST', CHAT_ROUTE, { ...CHAT(), stream: true });
      assertPluginBadOutput(first, 'pre_llm_hook');
      // A route the LLM hook is not on goes through the same (transport) chain and is served.
      const models = await sameConnection(client, first, 'GET', '/v1/models');
      assert.equal(models.status, 200);
      assert.equal(models.json?.object, 'list');
    });
  });
});

describe('chaos: plugin output that would break HTTP (fail-open)', () => {
  it('every refused output counts as "continue": the request is served, framed right, on one connection', HANG_GUARD, async () => {
    const plugins = CASES.map((c) => ({ name: c.fixture, path: fixture(c.fixture), on_error: 'fail-open', circuit_breaker: NO_BREAKER }));
    await withGateway(plugins, async (gw, client) => {
      const first = await client.request('POST', CHAT_ROUTE, CHAT('framed'));
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.interim, []);
      assert.equal(first.json?.choices?.[0]?.message?.content, 'framed');
      assert.equal(first.headers['content-length'], String(Buffer.byteLength(first.text)));

      const second = await sameConnection(client, first, 'POST', CHAT_ROUTE, CHAT('still framed'));
      assert.equal(second.status, 200, second.text);
      assert.equal(second.json?.choices?.[0]?.message?.content, 'still framed');

      const metrics = await sameConnection(client, first, 'GET', '/metrics');
      assert.equal(metricValue(metrics.text, 'sandgate_http_requests_total', { route: CHAT_ROUTE, status: '200' }), 2);
      for (const c of CASES) {
        assert.equal(metricValue(metrics.text, 'sandgate_plugin_failures_total', { plugin: c.fixture, hook: c.hook, kind: 'bad_output' }), 2, c.fixture);
      }
      assert.equal(gw.logs.filter((l) => l.msg === 'plugin failure').length, 2 * CASES.length);
    });
  });
});

describe('the gateway never sends a 1xx it did not mean to', () => {
  it('an upstream error with status 101 becomes a counted 500 JSON error, and the connection stays usable', HANG_GUARD, async () => {
    await withGateway([], async (gw, client) => {
      // The mock provider fails with whatever status the model name says.
      const first = await client.request('POST', CHAT_ROUTE, { ...CHAT(), model: 'mock/fail-101' });
      assert.equal(first.status, 500, first.text);
      assert.deepEqual(first.interim, []);
      assert.equal(first.json?.error?.code, ErrorCode.internal);
      assert.ok(gw.logs.some((l) => l.msg === 'response could not be sent as built' && l.status === 101));

      const metrics = await sameConnection(client, first, 'GET', '/metrics');
      assert.equal(metricValue(metrics.text, 'sandgate_http_requests_total', { route: CHAT_ROUTE, status: '500' }), 1);
      assert.equal(metricValue(metrics.text, 'sandgate_http_requests_total', { route: CHAT_ROUTE }), 1);
    });
  });
});

describe('the legacy transport_interceptor and the framing headers', () => {
  it('returns the whole header map, so its framing headers are ignored: the request keeps the client\'s own', HANG_GUARD, async () => {
    const plugins = [
      legacy('legacy', { interceptor: { set_header: { 'Content-Length': '1', connection: 'close', 'x-legacy': 'applied' } } }),
      scripted('probe', { hooks: { http_transport_post_hook: { req_header_to_header: { 'content-length': 'x-saw-content-length', connection: 'x-saw-connection', 'x-legacy': 'x-saw-legacy' } } } }),
    ];
    await withGateway(plugins, async (_gw, client) => {
      const body = CHAT();
      const first = await client.request('POST', CHAT_ROUTE, body);
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers['x-saw-legacy'], 'applied', 'the rest of its map is the request\'s headers');
      assert.equal(first.headers['x-saw-content-length'], String(Buffer.byteLength(JSON.stringify(body))));
      assert.equal(first.headers['x-saw-connection'], 'keep-alive');
      const second = await sameConnection(client, first, 'POST', CHAT_ROUTE, body);
      assert.equal(second.status, 200, second.text);
    });
  });
});
