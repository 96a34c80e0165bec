import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULTS } from '../host/config/schema.js';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';
import { legacy, scripted } from './helpers/scripted.js';
import { contentOf, postStream } from './helpers/sse.js';

// Hostile input through the real gateway: client JSON nested thousands of
// levels deep, and plugins that write deep, huge or ever-growing context
// values. The promises under test:
// - deep client JSON is the client's 400 (naming the limit and its setting),
//   no plugin is called for it, so no plugin's circuit opens;
// - a plugin output that is too deep or too large is plugin_bad_output of the
//   plugin that wrote it, refused whole, and the next plugin is not blamed;
// - healthy requests keep working meanwhile.

/** `levels` arrays, one inside the other, around `inner`: [[[…inner…]]]. */
function nested(levels: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

/**
 * A chat body as JSON text with `levels` nested arrays at `field` (of the body,
 * or of its one message): JSON.stringify itself recurses, so the deep part is
 * written as text.
 */
function deepBody(where: 'content' | 'tools', levels: number): string {
  const deep = '['.repeat(levels) + '"bottom"' + ']'.repeat(levels);
  return where === 'content'
    ? `{"model":"mock/echo","messages":[{"role":"user","content":${deep}}]}`
    : `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}],"tools":${deep}}`;
}

/** More than failure_threshold (5): had these reached the plugin, its circuit would open. */
const HOSTILE_REQUESTS = 8;

async function failures(gw: TestGateway, labels: Record<string, string>): Promise<number> {
  return metricValue((await gw.get('/metrics')).text, 'sandgate_plugin_failures_total', labels);
}

async function circuitOf(gw: TestGateway, plugin: string): Promise<string> {
  const health = await gw.get('/health');
  return (health.json.plugins as { name: string; circuit: string }[]).find((p) => p.name === plugin)!.circuit;
}

/** The error logged for the one plugin failure of a request. */
function failureLog(gw: TestGateway, rid: string) {
  const lines = gw.logs.filter((l) => l.rid === rid && l.msg === 'plugin failure');
  assert.equal(lines.length, 1, `one plugin failure logged for ${rid}`);
  return lines[0];
}

describe('client JSON nested too deep (limits.max_json_depth)', () => {
  let gw: TestGateway;
  before(async () => {
    // "reader" decodes what the client sent (its pre_llm_hook appends to the last message).
    gw = await startTestGateway({ plugins: [scripted('reader', { hooks: { pre_llm_hook: { append: ' +read' } } })] });
  });
  after(() => gw.close());

  it('is a 400 naming the limit and the setting; the plugin is never called and its circuit stays closed', async () => {
    for (let i = 0; i < HOSTILE_REQUESTS; i++) {
      const where = i % 2 ? 'content' : 'tools';
      const body = deepBody(where, 5000);
      const rid = `deep-${i}`;
      const r = await gw.post('/v1/chat/completions', body, { 'x-request-id': rid });
      assert.equal(r.status, 400, `${where}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.error.code, ErrorCode.requestTooDeep);
      assert.match(r.json.error.message, new RegExp(`limit of ${DEFAULTS.maxJsonDepth} levels \\(limits\\.max_json_depth\\)`));
      assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('pre_llm_hook')), [], 'no LLM hook was called');
    }
    assert.equal(await failures(gw, { plugin: 'reader' }), 0, 'no plugin failure counted');
    const metrics = (await gw.get('/metrics')).text;
    assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'reader', hook: 'pre_llm_hook' }), 0);
    assert.equal(await circuitOf(gw, 'reader'), 'closed');

    const ok = await gw.post('/v1/chat/completions', CHAT('still fine'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.choices[0].message.content, 'still fine +read');
  });

  it('a body exactly at the limit goes through the plugin; one level more is refused', async () => {
    // The body itself is one level: a parameter of depth limit-1 makes the body limit deep.
    const atLimit = await gw.post('/v1/chat/completions', { ...CHAT('at the limit'), deep: nested(DEFAULTS.maxJsonDepth - 1) });
    assert.equal(atLimit.status, 200, atLimit.text);
    assert.equal(atLimit.json.choices[0].message.content, 'at the limit +read');
    const over = await gw.post('/v1/chat/completions', { ...CHAT('over'), deep: nested(DEFAULTS.maxJsonDepth) });
    assert.equal(over.status, 400);
    assert.equal(over.json.error.code, ErrorCode.requestTooDeep);
    assert.match(over.json.error.message, /at deep\[0\]\[0\]\[0\]\[0\]\[0\]…/);
  });
});

describe('a configured max_json_depth', () => {
  let gw: TestGateway;
  before(async () => {
    // The legacy interceptor gets the client's body as a map: it is bounded the same way.
    gw = await startTestGateway({ limits: { max_json_depth: 8 }, plugins: [legacy('old', { interceptor: { set_header: { 'x-seen': 'yes' } } })] });
  });
  after(() => gw.close());

  it('bounds the body the interceptor would get, with the configured number in the message', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), deep: nested(8) }, { 'x-request-id': 'configured' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, ErrorCode.requestTooDeep);
    assert.match(r.json.error.message, /limit of 8 levels \(limits\.max_json_depth\)/);
    assert.deepEqual(gw.hooksFor('configured'), []);
    assert.equal(await failures(gw, { plugin: 'old' }), 0);

    const ok = await gw.post('/v1/chat/completions', { ...CHAT('shallow'), deep: nested(7) });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('context values a plugin writes', () => {
  const next = (name: string, key: string) => scripted(name, { hooks: { pre_llm_hook: { append: ` ${key}=`, append_ctx: key } } });
  const NO_BREAKER = { circuit_breaker: { failure_threshold: 0 } };

  it('too deep or too large: plugin_bad_output of the plugin that wrote it, refused whole; the next plugin works (fail-open)', async () => {
    const gw = await startTestGateway({
      plugins: [
        { name: 'deep', path: fixture('deep-ctx'), on_error: 'fail-open', ...NO_BREAKER },
        { name: 'huge', path: fixture('huge-ctx'), on_error: 'fail-open', ...NO_BREAKER },
        next('next-a', 'wat.deep'),
        next('next-b', 'wat.huge'),
      ],
    });
    try {
      const r = await gw.post('/v1/chat/completions', CHAT('hi'), { 'x-request-id': 'ctx-open' });
      assert.equal(r.status, 200, r.text);
      // Neither value reached the context: the next plugins saw no such key.
      assert.equal(r.json.choices[0].message.content, 'hi wat.deep=<none> wat.huge=<none>');
      assert.equal(await failures(gw, { plugin: 'deep', hook: 'pre_llm_hook', kind: 'bad_output' }), 1);
      assert.equal(await failures(gw, { plugin: 'huge', hook: 'pre_llm_hook', kind: 'bad_output' }), 1);
      assert.equal(await failures(gw, { plugin: 'next-a' }), 0);
      assert.equal(await failures(gw, { plugin: 'next-b' }), 0);
      const logged = gw.logs.filter((l) => l.rid === 'ctx-open' && l.msg === 'plugin failure');
      assert.match(String(logged.find((l) => l.plugin === 'deep')?.err), /limit of 64 levels per value \(limits\.max_json_depth\)/);
      assert.match(String(logged.find((l) => l.plugin === 'huge')?.err), /over the limit of 65536 \(limits\.max_context_bytes\); none of it was applied/);
    } finally {
      await gw.close();
    }
  });

  for (const hostile of ['deep-ctx', 'huge-ctx']) {
    it(`${hostile}, fail-closed: the request fails naming that plugin; the next plugin is not called`, async () => {
      const gw = await startTestGateway({ plugins: [{ name: 'hostile', path: fixture(hostile) }, next('next', 'wat.x')] });
      try {
        const r = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': 'ctx-closed' });
        assert.equal(r.status, 500, r.text);
        assert.deepEqual(
          { code: r.json.error.code, plugin: r.json.error.plugin, hook: r.json.error.hook },
          { code: ErrorCode.pluginBadOutput, plugin: 'hostile', hook: 'pre_llm_hook' },
        );
        assert.equal(failureLog(gw, 'ctx-closed').plugin, 'hostile');
        assert.equal(await failures(gw, { plugin: 'next' }), 0);
        assert.deepEqual(gw.hooksFor('ctx-closed').filter((h) => h.startsWith('next:') && h.endsWith('llm_hook')), []);
      } finally {
        await gw.close();
      }
    });
  }
});

describe('a context that grows on every stream chunk', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { long: { type: 'mock', stream_chunks: 1000 }, short: { type: 'mock' } },
      plugins: [{ name: 'grow', path: fixture('grow-ctx-chunk') }],
    });
  });
  after(() => gw.close());

  it('is stopped at limits.max_context_bytes with plugin_bad_output of that plugin; short streams still work', async () => {
    const body = (model: string) => ({ model, stream: true, messages: [{ role: 'user', content: 'grow the context please' }] });
    const r = await postStream(`${gw.url}/v1/chat/completions`, body('long/echo'), { headers: { 'x-request-id': 'grow' } });
    assert.equal(r.status, 200);
    assert.equal(r.done, false);
    assert.equal(r.error?.code, ErrorCode.pluginBadOutput);
    assert.equal(r.error?.plugin, 'grow');
    // The context grows by a chunk's envelope (a few hundred bytes) per chunk: 64 KiB is reached after a few hundred, before the 1000th.
    assert.ok(r.chunks.length > 100 && r.chunks.length < 1000, `${r.chunks.length} chunks before the limit`);
    const failure = failureLog(gw, 'grow');
    assert.equal(failure.hook, 'http_transport_stream_chunk_hook');
    assert.match(String(failure.err), /over the limit of 65536 \(limits\.max_context_bytes\)/);

    const ok = await postStream(`${gw.url}/v1/chat/completions`, body('short/echo'));
    assert.equal(ok.status, 200);
    assert.equal(ok.done, true, JSON.stringify(ok.error));
    assert.equal(contentOf(ok.chunks), 'grow the context please');
  });
});
