import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, instancesOf, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixture } from './helpers/paths.js';
import { postStream, startSse } from './helpers/sse.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

// The plugin contract through the real gateway (ABI.md §3.1, §5.4, §5.5, §7.4):
// an unchanged streamed chunk is decided by value, contradictory or useless
// outputs are plugin_bad_output, and a bad output's log line says where it is.

const wat = (name: string, extra: Record<string, unknown> = {}) => ({ name, path: fixture(name), circuit_breaker: { failure_threshold: 1000 }, ...extra });

/** The chunk fixture echo-sorted-chunk.wat answers, as this upstream writes it: upstream key order, a nil field. */
const UPSTREAM_CHUNK =
  '{"id":"chatcmpl-up","object":"chat.completion.chunk","created":1700000000,"model":"gpt-test","system_fingerprint":null,' +
  '"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}';

describe('a streamed chunk a plugin re-encodes without changing it', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream((_body, res: ServerResponse) => {
      startSse(res);
      // Twice: the first chunk goes through the attempt's post-hooks, the second through the stream's.
      res.write(`data: ${UPSTREAM_CHUNK}\n\n`);
      res.write(`data: ${UPSTREAM_CHUNK}\n\n`);
      res.end('data: [DONE]\n\n');
    });
    gw = await startTestGateway({
      providers: { up: { type: 'openai', base_url: up.url, api_key: 'sk-test' } },
      plugins: [wat('echo-sorted-chunk')],
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  it('reaches the client as the upstream sent it (keys sorted, integers widened, a nil left out: no change)', async () => {
    const r = await postStream(`${gw.url}/v1/chat/completions`, { model: 'up/gpt-test', stream: true, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200);
    assert.equal(r.done, true);
    assert.equal(r.chunks.length, 2);
    for (const chunk of r.chunks) assert.equal(JSON.stringify(chunk), UPSTREAM_CHUNK);
    assert.equal(gw.logs.filter((l) => l.msg === 'plugin failure').length, 0);
  });
});

async function withPlugin(name: string, fn: (gw: TestGateway) => Promise<void>): Promise<void> {
  const gw = await startTestGateway({ runtime: { workers: 1 }, plugins: [wat(name)] });
  try {
    await fn(gw);
  } finally {
    await gw.close();
  }
}

/** The failure the gateway logged for plugin `name`: its kind and message. */
function failureOf(gw: TestGateway, name: string): { kind: unknown; err: string } {
  const line = gw.logs.find((l) => l.msg === 'plugin failure' && l.plugin === name);
  assert.ok(line, `a plugin failure was logged for ${name}`);
  return { kind: line.kind, err: String(line.err) };
}

describe('outputs the host refuses, through the gateway (fail-closed)', () => {
  it('a completion with no choices: 500 plugin_bad_output, not a 200 without an answer', async () => {
    await withPlugin('empty-choices-post-llm', async (gw) => {
      const r = await gw.post('/v1/chat/completions', CHAT('hello'));
      assert.equal(r.status, 500);
      assert.equal(r.json.error.code, ErrorCode.pluginBadOutput);
      const f = failureOf(gw, 'empty-choices-post-llm');
      assert.equal(f.kind, 'bad_output');
      assert.match(f.err, /post_llm_hook output at response\.choices: expected at least one choice .* at byte 19/);
    });
  });

  it('a chunk output with drop and error together: the stream ends with plugin_bad_output', async () => {
    await withPlugin('chunk-drop-and-error', async (gw) => {
      const r = await postStream(`${gw.url}/v1/chat/completions`, { ...CHAT('one two'), stream: true });
      assert.equal(r.status, 200);
      assert.equal(r.error?.code, ErrorCode.pluginBadOutput);
      assert.equal(r.done, false);
      assert.match(failureOf(gw, 'chunk-drop-and-error').err, /http_transport_stream_chunk_hook output at the output: "drop" and "error" contradict each other/);
    });
  });

  it('JSON instead of MessagePack: the log line says so, with the byte', async () => {
    await withPlugin('json-post-llm', async (gw) => {
      const r = await gw.post('/v1/chat/completions', CHAT('hello'));
      assert.equal(r.status, 500);
      assert.equal(r.json.error.code, ErrorCode.pluginBadOutput);
      assert.match(failureOf(gw, 'json-post-llm').err, /post_llm_hook output is not valid MessagePack: one value ends at byte 1 but 9 more byte\(s\) follow \(it starts with "\{": JSON\?/);
    });
  });

  it('a wrong type deep in the output: hook, key path and byte offset', async () => {
    await withPlugin('message-str-post-llm', async (gw) => {
      const r = await gw.post('/v1/chat/completions', CHAT('hello'));
      assert.equal(r.status, 500);
      assert.match(failureOf(gw, 'message-str-post-llm').err, /post_llm_hook output at response\.choices\[0\]\.message: expected a map, got str at byte 29$/);
    });
  });
});

describe('the lifecycle of an instance (ABI.md §3.1)', () => {
  for (const [where, budget] of [['on the workers', 0], ['on the main thread', 2]] as const) {
    it(`init runs on every instance and again after a failure; a failed instance gets no cleanup, a healthy one gets it once (${where})`, async () => {
      const gw = await startTestGateway({ runtime: { workers: 2, in_thread_budget_ms: budget }, plugins: [wat('cleanup-probe', { on_error: 'fail-open' })] });
      const said = (text: string) => gw.logs.filter((l) => l.plugin === 'cleanup-probe' && l.msg === text).length;
      const instances = instancesOf(gw, 'cleanup-probe');
      assert.equal(instances, budget > 0 ? 3 : 2);
      try {
        assert.equal(said('init ran'), instances, 'init ran once on each instance at load');
        assert.equal((await gw.post('/v1/chat/completions', CHAT('short'))).status, 200);
        const long = await gw.post('/v1/chat/completions', CHAT('x'.repeat(400)));
        assert.equal(long.status, 200, 'fail-open: the trap is a "continue"');
        assert.equal(failureOf(gw, 'cleanup-probe').kind, 'trap');
        assert.equal(said('cleanup ran'), 0, 'the instance that trapped was discarded without cleanup');
        // The next calls where it failed create a fresh instance: init runs once more.
        for (let i = 0; i < 4 && said('init ran') < instances + 1; i++) await gw.post('/v1/chat/completions', CHAT('short'));
        assert.equal(said('init ran'), instances + 1, 'a fresh instance after the failure ran init');
      } finally {
        await gw.close();
      }
      assert.equal(said('cleanup ran'), instances, 'at shutdown, cleanup ran once on each healthy instance');
    });
  }
});
