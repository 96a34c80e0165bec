import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CHAT, startGatewayFails, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';
import { postStream } from './helpers/sse.js';

// sample-plugins/mocker (AssemblyScript PDK) through the real gateway: rules in
// its config answer in pre_llm_hook, so no provider is called.

const RULES = [
  { model: 'gpt-4o', contains: 'ping', respond: 'pong' },
  { model: 'mock/flaky', error: { message: 'flaky is down', status: 503, code: 'overloaded' } },
  { model: 'gone*', error: { message: 'gone for good', status: 410, code: 'model_gone', type: 'invalid_request_error', allow_fallbacks: false } },
  { contains: 'weather', respond: 'Sunny, 21 °C.' },
];

const mocker = (config: unknown) => ({ name: 'mocker', path: samplePlugin('mocker'), config, on_error: 'fail-closed' });

describe('mocker through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ plugins: [mocker({ rules: RULES })] });
  });
  after(() => gw.close());

  it('answers a matching model + content with the canned completion, without the provider', async () => {
    const rid = 'mocker-canned';
    const r = await gw.post('/v1/chat/completions', { ...CHAT('ping?'), model: 'mock/gpt-4o' }, { 'x-request-id': rid });
    assert.equal(r.status, 200);
    assert.equal(r.json.object, 'chat.completion');
    assert.equal(r.json.model, 'gpt-4o');
    assert.equal(r.json.choices[0].message.role, 'assistant');
    assert.equal(r.json.choices[0].message.content, 'pong', 'the mock provider would have echoed "ping?"');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.ok(gw.logs.some((l) => l.rid === rid && l.msg === 'mocker: rule 0 answered mock/gpt-4o'));
  });

  it('needs both model and content when a rule names both', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT('hello'), model: 'mock/gpt-4o' });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'hello', 'no rule matched: the provider echoed');
  });

  it('matches content alone, whatever the model', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT('what is the weather?'), model: 'mock/anything' });
    assert.equal(r.json.choices[0].message.content, 'Sunny, 21 °C.');
  });

  it('fails the primary with the configured error and lets the fallback answer', async () => {
    const rid = 'mocker-fallback';
    const r = await gw.post('/v1/chat/completions', { ...CHAT('through'), model: 'mock/flaky', fallbacks: ['mock/echo'] }, { 'x-request-id': rid });
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'echo');
    assert.equal(r.json.choices[0].message.content, 'through');
    assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('pre_llm_hook')), ['mocker:pre_llm_hook', 'mocker:pre_llm_hook'], 'two attempts');
  });

  it('without a fallback, the client gets the configured error as written', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/flaky' });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.message, 'flaky is down');
    assert.equal(r.json.error.code, 'overloaded');
    assert.equal(r.json.error.type, 'upstream_error');
  });

  it('allow_fallbacks: false stops the chain (prefix rule "gone*")', async () => {
    const rid = 'mocker-final';
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/gone-v1', fallbacks: ['mock/echo'] }, { 'x-request-id': rid });
    assert.equal(r.status, 410);
    assert.equal(r.json.error.code, 'model_gone');
    assert.equal(r.json.error.type, 'invalid_request_error');
    assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('pre_llm_hook')), ['mocker:pre_llm_hook'], 'one attempt only');
  });

  it('a stream request gets the canned answer as a proper SSE stream', async () => {
    const s = await postStream(`${gw.url}/v1/chat/completions`, { ...CHAT('ping'), model: 'mock/gpt-4o', stream: true });
    assert.equal(s.status, 200);
    assert.match(s.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(s.chunks.length, 1);
    const [chunk] = s.chunks;
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.model, 'gpt-4o');
    assert.deepEqual(chunk.choices[0].delta, { role: 'assistant', content: 'pong' });
    assert.equal(chunk.choices[0].finish_reason, 'stop');
    assert.equal(s.done, true, 'ends with [DONE]');
    assert.equal(s.error, undefined);
  });

  it('a stream request that a rule fails gets a JSON error before any stream', async () => {
    const s = await postStream(`${gw.url}/v1/chat/completions`, { ...CHAT(), model: 'mock/flaky', stream: true });
    assert.equal(s.status, 503);
    assert.equal(s.json?.error?.code, 'overloaded');
    assert.equal(s.chunks.length, 0);
  });

  it('a stream request whose primary a rule fails is streamed by the fallback', async () => {
    const s = await postStream(`${gw.url}/v1/chat/completions`, { ...CHAT('streamed by the fallback'), model: 'mock/flaky', fallbacks: ['mock/echo'], stream: true });
    assert.equal(s.status, 200);
    assert.equal(s.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'streamed by the fallback');
    assert.equal(s.done, true);
  });
});

describe('mocker refuses a config it cannot use, saying what to fix', () => {
  async function startFails(config: unknown): Promise<GatewayError> {
    const e = await startGatewayFails({ plugins: [mocker(config)] });
    assert.equal(e.code, ErrorCode.pluginInitFailed);
    return e;
  }

  const cases: [string, unknown, RegExp][] = [
    ['no rules', {}, /config\.rules must be a non-empty array of rules/],
    ['a rule that matches on nothing', { rules: [{ respond: 'x' }] }, /config\.rules\[0\] needs "model" and\/or "contains"/],
    ['both respond and error', { rules: [{ model: '*', respond: 'x', error: { message: 'y' } }] }, /config\.rules\[0\] needs exactly one of "respond"/],
    ['neither respond nor error', { rules: [{ model: '*' }] }, /config\.rules\[0\] needs exactly one of "respond"/],
    ['a misspelt key', { rules: [{ model: '*', respnd: 'x' }] }, /config\.rules\[0\]: unknown key "respnd"/],
    ['an error without a message', { rules: [{ model: 'a', respond: 'ok' }, { model: 'b', error: { status: 500 } }] }, /config\.rules\[1\]\.error\.message must be a non-empty string/],
    ['a status that is not an error', { rules: [{ model: 'a', error: { message: 'm', status: 200 } }] }, /config\.rules\[0\]\.error\.status must be an HTTP error status \(400-599\)/],
    ['allow_fallbacks not a boolean', { rules: [{ model: 'a', error: { message: 'm', allow_fallbacks: 'no' } }] }, /allow_fallbacks must be true or false/],
  ];
  for (const [name, config, message] of cases) {
    it(name, async () => {
      const e = await startFails(config);
      assert.match(e.message, message);
    });
  }
});
