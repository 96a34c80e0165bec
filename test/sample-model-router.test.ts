import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { CHAT, startGatewayFails, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';

// sample-plugins/model-router (Rust PDK) through the real gateway: pre_llm_hook
// rewrites each attempt's target by the rules in its config.

const RULES = [
  { match: 'mock/cheap', route: 'mock/echo-small' },
  { match: 'mock/smart*', route: 'mock/fail-503', fallbacks: ['mock/echo-backup'] },
  { match: 'mock/retired', deny: 'mock/retired is gone: ask for mock/cheap' },
];

const router = (config: unknown) => ({ name: 'model-router', path: samplePlugin('model-router'), config, on_error: 'fail-closed' });

describe('model-router through the gateway', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ plugins: [router({ rules: RULES })] });
  });
  after(() => gw.close());

  it('routes a matching model to the rule\'s target', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT('routed?'), model: 'mock/cheap' });
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'echo-small');
    assert.equal(r.json.choices[0].message.content, 'routed?');
  });

  it('leaves a model no rule matches alone', async () => {
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/other' });
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'other');
  });

  it('rewrites the fallback attempts too: the primary fails, the rule\'s fallback answers', async () => {
    const rid = 'router-fallback';
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/smart-v2', fallbacks: ['mock/client-choice'] }, { 'x-request-id': rid });
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'echo-backup', 'the client\'s fallback was replaced by the rule\'s');
    const said = gw.logs.filter((l) => l.rid === rid && l.plugin === 'model-router' && l.msg.startsWith('model-router:')).map((l) => l.msg);
    assert.deepEqual(said, [
      'model-router: attempt 0 mock/smart-v2 -> mock/fail-503 (rule 1)',
      'model-router: attempt 1 mock/client-choice -> mock/echo-backup (rule 1)',
    ]);
  });

  it('denies a model with 403 and tries no fallback', async () => {
    const rid = 'router-deny';
    const r = await gw.post('/v1/chat/completions', { ...CHAT(), model: 'mock/retired', fallbacks: ['mock/echo'] }, { 'x-request-id': rid });
    assert.equal(r.status, 403);
    assert.equal(r.json.error.message, 'mock/retired is gone: ask for mock/cheap');
    assert.equal(r.json.error.code, 'model_denied');
    assert.deepEqual(gw.hooksFor(rid).filter((h) => h.endsWith('pre_llm_hook')), ['model-router:pre_llm_hook'], 'one attempt only');
  });
});

describe('model-router refuses a config it cannot use, saying what to fix', () => {
  const startFails = (config: unknown): Promise<GatewayError> => startGatewayFails({ plugins: [router(config)] });

  it('no rules', async () => {
    const e = await startFails({});
    assert.equal(e.code, ErrorCode.pluginInitFailed);
    assert.match(e.message, /config\.rules must be an array of rules/);
  });

  it('a target that is not provider/model', async () => {
    const e = await startFails({ rules: [{ match: 'mock/a', route: 'echo' }] });
    assert.equal(e.code, ErrorCode.pluginInitFailed);
    assert.match(e.message, /config\.rules\[0\]\.route must be "provider\/model", got "echo"/);
  });
});
