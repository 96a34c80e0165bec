import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CHAT, startGatewayFails, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';
import { postStream } from './helpers/sse.js';

// sample-plugins/json-guard (AssemblyScript PDK) through the real gateway. The
// mock provider echoes the last user message, so what we send is the model's answer.

const guard = (config?: unknown) => ({ name: 'json-guard', path: samplePlugin('json-guard'), ...(config === undefined ? {} : { config }), on_error: 'fail-closed' });
const JSON_OBJECT = { type: 'json_object' };
const JSON_SCHEMA = { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'array' } } };
const ask = (content: string, response_format?: unknown, extra: Record<string, unknown> = {}) => ({ ...CHAT(content), ...(response_format ? { response_format } : {}), ...extra });

describe('json-guard, mode repair (the default)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ plugins: [guard()] });
  });
  after(() => gw.close());

  it('lets valid JSON through untouched', async () => {
    const answer = '{"city": "Oslo", "temps": [-3.5, 1e2, 0], "ok": true, "note": null, "s": "a\\"b\\u00e9"}';
    const r = await gw.post('/v1/chat/completions', ask(answer, JSON_OBJECT));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, answer);
  });

  it('does not look at answers when the request did not ask for JSON', async () => {
    const r = await gw.post('/v1/chat/completions', ask('just text'));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, 'just text');
    const t = await gw.post('/v1/chat/completions', ask('just text', { type: 'text' }));
    assert.equal(t.json.choices[0].message.content, 'just text');
  });

  it('strips a ``` fence and checks again', async () => {
    const rid = 'guard-fence';
    const r = await gw.post('/v1/chat/completions', ask('```json\n{"a": 1}\n```', JSON_OBJECT), { 'x-request-id': rid });
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, '{"a": 1}');
    assert.ok(gw.logs.some((l) => l.rid === rid && /^json-guard: repaired choice 0 \(expected a JSON object/.test(l.msg)));
  });

  it('takes the fenced block, not the text around it (which has brackets of its own)', async () => {
    const r = await gw.post('/v1/chat/completions', ask('Here:\n```json\n[1, 2]\n```\nSee [1] above.', JSON_SCHEMA));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, '[1, 2]');
  });

  it('strips text around the JSON', async () => {
    const r = await gw.post('/v1/chat/completions', ask('Sure! Here is the JSON: {"b": [1, 2]} Hope this helps.', JSON_OBJECT));
    assert.equal(r.json.choices[0].message.content, '{"b": [1, 2]}');
  });

  it('json_schema accepts any JSON value and repairs around an array', async () => {
    const r = await gw.post('/v1/chat/completions', ask('[1, 2, 3]', JSON_SCHEMA));
    assert.equal(r.json.choices[0].message.content, '[1, 2, 3]');
    const s = await gw.post('/v1/chat/completions', ask('The list: [1, 2, 3].', JSON_SCHEMA));
    assert.equal(s.json.choices[0].message.content, '[1, 2, 3]');
  });

  it('rejects what no repair makes valid, saying where it broke', async () => {
    const r = await gw.post('/v1/chat/completions', ask('I cannot answer in JSON, sorry.', JSON_OBJECT));
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, 'invalid_json_response');
    assert.equal(r.json.error.message, 'json-guard: the model\'s answer (choice 0) is not a JSON object as response_format json_object asks: expected a JSON object (\'{\') at offset 0');
  });

  // Answers that look like JSON but are not: each must be refused, none repaired into something else.
  const invalid: [string, RegExp][] = [
    ['{"a": 1,}', /expected a key in double quotes at offset 8/],
    ['{"a": 01}', /a number with a leading zero at offset 6/],
    ['{"a": "open}', /a string is not closed/],
    ["{'a': 1}", /expected a key in double quotes at offset 1/],
    ['{"a": 1} {"b": 2}', /unexpected text after the JSON value at offset 9/],
    ['{"a": tru}', /expected a JSON value at offset 6/],
    ['{"a": "\\x"}', /a bad escape at offset 7/],
    ['[1, 2]', /expected a JSON object \('\{'\) at offset 0/],
    ['{"a": 1', /the text ends where ',' or '\}' was expected/],
  ];
  for (const [answer, problem] of invalid) {
    it(`refuses ${answer}`, async () => {
      const r = await gw.post('/v1/chat/completions', ask(answer, JSON_OBJECT));
      assert.equal(r.status, 502, `got ${r.text}`);
      assert.match(r.json.error.message, problem);
    });
  }

  it('leaves stream answers alone (documented), saying so in the log', async () => {
    const rid = 'guard-stream';
    const s = await postStream(`${gw.url}/v1/chat/completions`, ask('not json at all', JSON_OBJECT, { stream: true }), { headers: { 'x-request-id': rid } });
    assert.equal(s.status, 200);
    assert.equal(s.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), 'not json at all');
    assert.equal(s.done, true);
    assert.ok(gw.logs.some((l) => l.rid === rid && l.msg === 'json-guard: stream answers are not checked (response_format json_object)'));
  });
});

describe('json-guard, mode reject', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ plugins: [guard({ mode: 'reject', status: 422, code: 'not_json', allow_fallbacks: false })] });
  });
  after(() => gw.close());

  it('rejects a fenced answer instead of repairing it, with the configured status and code', async () => {
    const rid = 'guard-reject';
    const r = await gw.post('/v1/chat/completions', ask('```json\n{"a": 1}\n```', JSON_OBJECT, { fallbacks: ['mock/echo'] }), { 'x-request-id': rid });
    assert.equal(r.status, 422);
    assert.equal(r.json.error.code, 'not_json');
    assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('pre_llm_hook')), ['json-guard:pre_llm_hook'], 'allow_fallbacks false: no fallback tried');
  });

  it('still passes valid JSON', async () => {
    const r = await gw.post('/v1/chat/completions', ask('{"a": 1}', JSON_OBJECT));
    assert.equal(r.status, 200);
    assert.equal(r.json.choices[0].message.content, '{"a": 1}');
  });
});

describe('json-guard: allow_fallbacks (default true) moves a rejected answer to the next fallback', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ plugins: [guard({ mode: 'reject' })] });
  });
  after(() => gw.close());

  it('tries every fallback; when all fail the primary\'s error is returned', async () => {
    const rid = 'guard-fallbacks';
    const r = await gw.post('/v1/chat/completions', ask('nope', JSON_OBJECT, { fallbacks: ['mock/echo-2'] }), { 'x-request-id': rid });
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, 'invalid_json_response');
    assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('post_llm_hook')), ['json-guard:post_llm_hook', 'json-guard:post_llm_hook'], 'two attempts');
  });
});

describe('json-guard refuses a config it cannot use, saying what to fix', () => {
  async function startFails(config: unknown): Promise<GatewayError> {
    const e = await startGatewayFails({ plugins: [guard(config)] });
    assert.equal(e.code, ErrorCode.pluginInitFailed);
    return e;
  }

  const cases: [string, unknown, RegExp][] = [
    ['an unknown mode', { mode: 'fix' }, /config\.mode must be "repair" or "reject"/],
    ['a misspelt key', { allow_fallback: false }, /config: unknown key "allow_fallback"/],
    ['a status that is not an error', { status: 200 }, /config\.status must be an HTTP error status \(400-599\)/],
    ['an empty code', { code: '' }, /config\.code must be a non-empty string/],
    ['allow_fallbacks not a boolean', { allow_fallbacks: 'yes' }, /config\.allow_fallbacks must be true or false/],
  ];
  for (const [name, config, message] of cases) {
    it(name, async () => {
      const e = await startFails(config);
      assert.match(e.message, message);
    });
  }
});
