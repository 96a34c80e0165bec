import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, instancesOf, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture, samplePlugin, testPlugin } from './helpers/paths.js';
import { legacy, scripted, shortHooks } from './helpers/scripted.js';
import { completion, startUpstream, type Upstream } from './helpers/upstream.js';

// The hook semantics of docs/hook-semantics.md, each rule checked with
// real .wasm plugins (test/plugins/: `scripted` does what its config says,
// `legacy` exports only the legacy hooks, `shadowed` both names) through the
// real gateway on loopback. Orders come from effects the plugins leave: a
// context trail each hook appends to (sent back in a header), request/response
// headers appended to in turn, and text appended to the conversation (the
// providers echo the last user message, so pre-hook changes show in the answer).
// The debug log ("hook called", via gw.hooksFor) is only used to show that a
// hook was not called at all.
//
// An OpenAI-compatible upstream on loopback ("up") echoes too, and records
// what it receives: that is how a test knows the provider was, or was not, called.

const CHAT_PATH = '/v1/chat/completions';
const chat = (model: string, content = 'hi', extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });
const rid = (() => {
  let n = 0;
  return (label: string) => `sem-${label}-${++n}`;
})();

let up: Upstream;
before(async () => {
  up = await startUpstream((body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(completion(String(body.messages.at(-1).content), body.model)));
  });
});
after(() => up.close());

/** A gateway with the mock provider and the loopback upstream as "up". */
function gateway(plugins: unknown[]): Promise<TestGateway> {
  return startTestGateway({
    providers: { mock: { type: 'mock' }, up: { type: 'openai', base_url: up.url } },
    runtime: { workers: 2 },
    plugins,
  });
}

/** Calls to the upstream made while `fn` runs. */
async function upstreamCalls<T>(fn: () => Promise<T>): Promise<[T, Upstream['received']]> {
  const before = up.received.length;
  const result = await fn();
  return [result, up.received.slice(before)];
}

const content = (r: { json: any }): string => r.json.choices[0].message.content;
/** The hooks in the order the plugins saw them: the context trail sent back in x-hook-trail. */
const hookTrail = (r: { headers: Headers }): string[] => (r.headers.get('x-hook-trail') ?? '').trim().split(' ');
const only = (hooks: string[], kinds: string[]) => hooks.filter((h) => kinds.includes(h.slice(h.lastIndexOf(':') + 1)));
const LLM = ['pre', 'post', 'pre_hook', 'post_hook'];

// ---------------------------------------------------------------------------
describe('transport hooks: order', () => {
  let gw: TestGateway;
  before(async () => {
    // Each pre-hook appends its name to request header x-trail, each post-hook to response header x-post-trail;
    // A's post-hook (the last to run) copies the request's x-trail into the response.
    // Every hook also appends "<plugin>:<hook>" to context value "trail" (the order the plugins saw, each
    // after the ones before it); A's post-hook, the last to run, sends it back in response header x-hook-trail.
    const plugin = (name: string) =>
      scripted(name, {
        hooks: {
          http_transport_pre_hook: { trail: 'trail', append_header: { 'x-trail': name } },
          pre_llm_hook: { trail: 'trail' },
          post_llm_hook: { trail: 'trail' },
          http_transport_post_hook: {
            trail: 'trail',
            append_header: { 'x-post-trail': name },
            ...(name === 'A' ? { req_header_to_header: { 'x-trail': 'x-pre-trail' }, ctx_to_header: { trail: 'x-hook-trail' } } : {}),
          },
        },
      });

    gw = await gateway([plugin('A'), plugin('B'), plugin('C')]);
  });
  after(() => gw.close());

  it('pre-hooks run in config order, post-hooks in reverse, around the LLM hooks', async () => {
    const id = rid('order');
    const r = await gw.post(CHAT_PATH, CHAT(), { 'x-request-id': id });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-pre-trail'), 'ABC', 'each pre-hook saw the previous ones\' change');
    assert.equal(r.headers.get('x-post-trail'), 'CBA');
    assert.deepEqual(hookTrail(r), [
      'A:tpre', 'B:tpre', 'C:tpre',
      'A:pre', 'B:pre', 'C:pre',
      'C:post', 'B:post', 'A:post',
      'C:tpost', 'B:tpost', 'A:tpost',
    ]);
  });

  it('a 404 passes every transport pre- and post-hook, and no LLM hook', async () => {
    const id = rid('404');
    const r = await gw.get('/v2/nothing-here', { 'x-request-id': id });
    assert.equal(r.status, 404);
    assert.equal(r.json.error.code, ErrorCode.notFound);
    assert.equal(r.headers.get('x-pre-trail'), 'ABC');
    assert.equal(r.headers.get('x-post-trail'), 'CBA');
    assert.deepEqual(hookTrail(r), ['A:tpre', 'B:tpre', 'C:tpre', 'C:tpost', 'B:tpost', 'A:tpost']);
  });

  it('/health and /metrics are not run through the plugins', async () => {
    for (const path of ['/health', '/metrics']) {
      const id = rid('admin');
      const r = await gw.get(path, { 'x-request-id': id });
      assert.equal(r.status, 200);
      assert.deepEqual(gw.hooksFor(id), [], path);
      assert.equal(r.headers.get('x-post-trail'), null, path);
    }
  });

  it('the config name, not get_name ("scripted"), names the plugin in logs and metrics', async () => {
    await gw.post(CHAT_PATH, CHAT());
    const metrics = (await gw.get('/metrics')).text;
    assert.ok(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'A', hook: 'http_transport_pre_hook' }) > 0);
    assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'scripted' }), 0);
    assert.ok(!gw.logs.some((l) => l.plugin === 'scripted'));
  });
});

// ---------------------------------------------------------------------------
describe('transport pre-hook short-circuit with a response at plugin k', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { http_transport_post_hook: { append_header: { 'x-post-trail': 'A' } } } }),
      scripted('B', {
        hooks: {
          http_transport_pre_hook: { respond: { status: 418, body: 'short-circuited by B', headers: { 'x-short': 'B', 'content-type': 'text/plain' } } },
          http_transport_post_hook: { append_header: { 'x-post-trail': 'B' } },
        },
      }),
      scripted('C', { hooks: { http_transport_post_hook: { append_header: { 'x-post-trail': 'C' } } } }),
    ]);
  });
  after(() => gw.close());

  it('the client gets that response; the core, later pre-hooks and post-hooks k..N are skipped; posts k-1..1 run', async () => {
    const id = rid('t-respond');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/gpt-test'), { 'x-request-id': id }));
    assert.equal(r.status, 418);
    assert.equal(r.text, 'short-circuited by B');
    assert.equal(r.headers.get('x-short'), 'B');
    assert.equal(r.headers.get('x-post-trail'), 'A', 'only A\'s post-hook changed the response');
    assert.equal(calls.length, 0, 'the provider was not called');
    assert.deepEqual(shortHooks(gw.hooksFor(id)), ['A:tpre', 'B:tpre', 'A:tpost']);
  });

  it('the same for a 404: the short-circuit wins over routing', async () => {
    const id = rid('t-respond-404');
    const r = await gw.get('/v2/nothing-here', { 'x-request-id': id });
    assert.equal(r.status, 418);
    assert.deepEqual(shortHooks(gw.hooksFor(id)), ['A:tpre', 'B:tpre', 'A:tpost']);
  });
});

describe('transport pre-hook short-circuit with an error at plugin k', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { http_transport_post_hook: { append_header: { 'x-post-trail': 'A' } } } }),
      scripted('B', {
        hooks: {
          http_transport_pre_hook: { error: { message: 'B says no', status: 403 } },
          http_transport_post_hook: { append_header: { 'x-post-trail': 'B' } },
        },
      }),
      scripted('C', { hooks: { http_transport_post_hook: { append_header: { 'x-post-trail': 'C' } } } }),
    ]);
  });
  after(() => gw.close());

  it('the client gets an error response naming the plugin; the core is skipped; posts k-1..1 run', async () => {
    const id = rid('t-error');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/gpt-test'), { 'x-request-id': id }));
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, ErrorCode.pluginRejected, 'a HookError without code gets plugin_rejected');
    assert.equal(r.json.error.plugin, 'B');
    assert.equal(r.headers.get('x-post-trail'), 'A');
    assert.equal(calls.length, 0, 'the provider was not called');
    assert.deepEqual(shortHooks(gw.hooksFor(id)), ['A:tpre', 'B:tpre', 'A:tpost']);
  });
});

// ---------------------------------------------------------------------------
describe('transport post-hooks', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { http_transport_post_hook: { set_header: { 'x-a-post': 'ran' } } } }),
      scripted('B', { hooks: { http_transport_post_hook: { error: { message: 'B refuses the answer', status: 451, code: 'b_post_refused' } } } }),
      scripted('C', { hooks: { http_transport_post_hook: { set_header: { 'x-c-post': 'ran' } } } }),
    ]);
  });
  after(() => gw.close());

  it('an error from a post-hook goes to the client and the remaining post-hooks are skipped', async () => {
    const id = rid('tpost-error');
    const r = await gw.post(CHAT_PATH, CHAT(), { 'x-request-id': id });
    assert.equal(r.status, 451);
    assert.equal(r.json.error.code, 'b_post_refused');
    assert.equal(r.json.error.plugin, 'B');
    assert.equal(r.headers.get('x-a-post'), null, 'A\'s post-hook did not run');
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), ['tpost']), ['C:tpost', 'B:tpost']);
  });
});

describe('transport post-hooks change status, headers and body', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { http_transport_post_hook: { resp_body_to_header: 'x-a-saw-body' } } }),
      scripted('C', { hooks: { http_transport_post_hook: { set_status: 203, set_body: 'rewritten by C', set_header: { 'content-type': 'text/plain', 'x-c-post': 'ran' } } } }),
    ]);
  });
  after(() => gw.close());

  it('the client gets the changed response, and earlier plugins\' post-hooks see it', async () => {
    const r = await gw.post(CHAT_PATH, CHAT());
    assert.equal(r.status, 203);
    assert.equal(r.text, 'rewritten by C');
    assert.equal(r.headers.get('content-type'), 'text/plain');
    assert.equal(r.headers.get('x-c-post'), 'ran');
    assert.equal(r.headers.get('x-a-saw-body'), 'rewritten by C');
  });
});

// ---------------------------------------------------------------------------
describe('transport pre-hooks change the request for later plugins and the core', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      // A: rewrites a header, the query, the method, the path and the body (it gets bodies: the default).
      scripted('A', {
        hooks: {
          http_transport_pre_hook: {
            set_header: { 'x-from-a': 'a1' },
            set_query: { q: 'from-a' },
            set_method: 'POST',
            set_path: CHAT_PATH,
            body_replace: { from: 'mock/fail-503', to: 'mock/echo' },
          },
        },
      }),
      // B: records what it sees, and shows it (and what the core got) on the response.
      scripted('B', {
        hooks: {
          http_transport_pre_hook: { header_to_ctx: { 'x-from-a': 'b.header' }, query_to_ctx: { q: 'b.query' }, body_to_ctx: 'b.body' },
          http_transport_post_hook: {
            ctx_to_header: { 'b.header': 'x-b-saw-header', 'b.query': 'x-b-saw-query', 'b.body': 'x-b-saw-body' },
            req_header_to_header: { 'x-from-a': 'x-core-saw-header' },
            req_body_to_header: 'x-core-saw-body',
          },
        },
      }),
      // D: asked for no bodies in init.
      scripted('D', {
        request_body: false,
        response_body: false,
        hooks: {
          http_transport_pre_hook: { body_to_ctx: 'd.body' },
          http_transport_post_hook: { ctx_to_header: { 'd.body': 'x-d-saw-req-body' }, resp_body_to_header: 'x-d-saw-resp-body' },
        },
      }),
    ]);
  });
  after(() => gw.close());

  it('headers, query and body set by A are seen by B and by the core', async () => {
    // The client asks for a model that fails; A's body rewrite makes it one that answers.
    const r = await gw.post(CHAT_PATH, chat('mock/fail-503', 'rewritten?'));
    assert.equal(r.status, 200, 'the core parsed A\'s body');
    assert.equal(content(r), 'rewritten?');
    assert.equal(r.headers.get('x-b-saw-header'), 'a1');
    assert.equal(r.headers.get('x-b-saw-query'), 'from-a');
    assert.equal(JSON.parse(r.headers.get('x-b-saw-body') ?? 'null').model, 'mock/echo');
    assert.equal(r.headers.get('x-core-saw-header'), 'a1');
    assert.equal(JSON.parse(r.headers.get('x-core-saw-body') ?? 'null').model, 'mock/echo');
  });

  it('method and path set by A are what the core routes', async () => {
    const r = await fetch(`${gw.url}/v1/somewhere-else`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat('mock/echo', 'routed')) });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).choices[0].message.content, 'routed');
  });

  it('a plugin whose init asked for no bodies gets none (ABI §5.2), the others do', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(r.headers.get('x-d-saw-req-body'), '<none>');
    assert.equal(r.headers.get('x-d-saw-resp-body'), '<none>');
    assert.notEqual(r.headers.get('x-b-saw-body'), '<none>');
  });
});

// ---------------------------------------------------------------------------
describe('LLM hooks: order and request changes', () => {
  let gw: TestGateway;
  before(async () => {
    const plugin = (name: string, extra: object = {}) =>
      scripted(name, { hooks: { pre_llm_hook: { append: `|${name}>`, ...extra }, post_llm_hook: { append: `|<${name}` } } });
    gw = await gateway([
      plugin('A', { set_provider: 'up', set_param: { temperature: 0.25 } }),
      plugin('B'),
      plugin('C', { set_model: 'model-set-by-C' }),
    ]);
  });
  after(() => gw.close());

  it('pre-hooks run in order (each sees the previous changes), post-hooks in reverse', async () => {
    const id = rid('llm-order');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('mock/echo'), { 'x-request-id': id }));
    assert.equal(r.status, 200);
    assert.equal(content(r), 'hi|A>|B>|C>|<C|<B|<A');
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), ['A:pre', 'B:pre', 'C:pre', 'C:post', 'B:post', 'A:post']);
    // The provider got the request as the pre-hooks left it: provider, model, params and messages changed.
    assert.equal(calls.length, 1);
    assert.equal(calls[0].body.model, 'model-set-by-C');
    assert.equal(calls[0].body.temperature, 0.25);
    assert.equal(calls[0].body.messages.at(-1).content, 'hi|A>|B>|C>');
  });
});

describe('pre_llm_hook short-circuit with a response at plugin k', () => {
  let gw: TestGateway;
  before(async () => {
    const plugin = (name: string, extra: object = {}) =>
      scripted(name, { hooks: { pre_llm_hook: { append: `|${name}>`, ...extra }, post_llm_hook: { append: `|<${name}` } } });
    gw = await gateway([plugin('A'), plugin('B', { llm_respond: 'answered by B' }), plugin('C')]);
  });
  after(() => gw.close());

  it('skips the provider and later pre-hooks; post-hooks run for k..1, the short-circuiting plugin included', async () => {
    const id = rid('llm-respond');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/gpt-test'), { 'x-request-id': id }));
    assert.equal(r.status, 200);
    assert.equal(r.json.id, 'chatcmpl-B');
    assert.equal(content(r), 'answered by B|<B|<A');
    assert.equal(calls.length, 0, 'the provider was not called');
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), ['A:pre', 'B:pre', 'B:post', 'A:post']);
  });
});

describe('pre_llm_hook short-circuit with an error, allow_fallbacks absent', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { pre_llm_hook: { append: '|A', append_ctx: 'sandgate.fallback_index' }, post_llm_hook: { append: '|<A:', append_ctx: 'b.note' } } }),
      scripted('B', {
        hooks: { pre_llm_hook: { only_if_fallback_index: 0, set_ctx: { 'b.note': 'from-attempt-0' }, error: { message: 'B refuses attempt 0', status: 503, code: 'b_refused' } } },
      }),
    ]);
  });
  after(() => gw.close());

  it('the next fallback is tried, with every pre-hook again and fallback_index 1 in the context', async () => {
    const id = rid('llm-err-fallback');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/primary', 'hi', { fallbacks: ['up/second'] }), { 'x-request-id': id }));
    assert.equal(r.status, 200);
    assert.equal(calls.length, 1, 'the provider was called for the fallback only');
    assert.equal(calls[0].body.model, 'second');
    assert.match(calls[0].body.messages.at(-1).content, /\|A1$/, 'A\'s pre-hook ran again and read fallback_index 1');
    // The context patch B sent with its short-circuit in attempt 0 is still there in attempt 1.
    assert.match(content(r), /\|A1\|<A:from-attempt-0$/);
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), [
      'A:pre', 'B:pre', 'B:post', 'A:post', // attempt 0: B short-circuits, posts for B..A
      'A:pre', 'B:pre', 'B:post', 'A:post', // attempt 1
    ]);
  });

  it('each attempt starts from the client\'s request, not from the previous attempt\'s changes (host choice, llm.ts)', async () => {
    const [, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/primary', 'hi', { fallbacks: ['up/second'] })));
    assert.equal(calls[0].body.messages.at(-1).content, 'hi|A1');
  });

  it('without fallbacks the client gets the plugin\'s error', async () => {
    const r = await gw.post(CHAT_PATH, chat('up/primary'));
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, 'b_refused');
  });
});

describe('pre_llm_hook short-circuit with an error, allow_fallbacks false', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A'),
      scripted('B', { hooks: { pre_llm_hook: { error: { message: 'B: final', status: 409, code: 'b_final', allow_fallbacks: false } } } }),
    ]);
  });
  after(() => gw.close());

  it('no fallback is tried: the client gets that error', async () => {
    const id = rid('llm-err-final');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/primary', 'hi', { fallbacks: ['up/second', 'mock/echo'] }), { 'x-request-id': id }));
    assert.equal(r.status, 409);
    assert.equal(r.json.error.code, 'b_final');
    assert.equal(calls.length, 0);
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), ['A:pre', 'B:pre', 'B:post', 'A:post']);
    assert.equal(r.json.error.attempts, undefined, 'a single attempt has no attempts list');
  });
});

// ---------------------------------------------------------------------------
describe('post_llm_hook recovers an error into a response', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { post_llm_hook: { append: '|<A' } } }),
      scripted('B', { hooks: { post_llm_hook: { recover: 'recovered by B' } } }),
    ]);
  });
  after(() => gw.close());

  it('the provider\'s error becomes a response; earlier post-hooks see the response; no fallback is tried', async () => {
    const id = rid('recover');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('mock/fail-503', 'hi', { fallbacks: ['up/second'] }), { 'x-request-id': id }));
    assert.equal(r.status, 200);
    assert.equal(content(r), 'recovered by B|<A');
    assert.equal(calls.length, 0, 'a recovered attempt does not fall back');
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), ['A:pre', 'B:pre', 'B:post', 'A:post']);
  });
});

describe('post_llm_hook turns a response into an error (fallbacks allowed)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([scripted('A', { hooks: { post_llm_hook: { only_if_fallback_index: 0, error: { message: 'A rejects attempt 0', status: 502, code: 'a_rejects' } } } })]);
  });
  after(() => gw.close());

  it('without fallbacks: the client gets that error', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(r.status, 502);
    assert.equal(r.json.error.code, 'a_rejects');
  });

  it('after the post-hooks, the error moves on to the next fallback', async () => {
    const id = rid('post-error-fallback');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('mock/echo', 'hi', { fallbacks: ['up/second'] }), { 'x-request-id': id }));
    assert.equal(r.status, 200);
    assert.equal(calls.length, 1);
    assert.equal(r.json.model, 'second');
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), ['A:pre', 'A:post', 'A:pre', 'A:post']);
  });

  it('the decision is made on the post-hooks\' result: a provider error with allow_fallbacks false, replaced by one without, falls back', async () => {
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('mock/fail-503-final', 'hi', { fallbacks: ['up/second'] })));
    assert.equal(r.status, 200);
    assert.equal(calls.length, 1);
  });
});

describe('post_llm_hook error with allow_fallbacks false', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([scripted('A', { hooks: { post_llm_hook: { error: { message: 'A: final', status: 422, code: 'a_final', allow_fallbacks: false } } } })]);
  });
  after(() => gw.close());

  it('stops the fallbacks, even when the provider\'s own error allowed them', async () => {
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('mock/fail-503', 'hi', { fallbacks: ['up/second'] })));
    assert.equal(r.status, 422);
    assert.equal(r.json.error.code, 'a_final');
    assert.equal(calls.length, 0);
  });

  it('and turning a response into an error stops them too', async () => {
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('mock/echo', 'hi', { fallbacks: ['up/second'] })));
    assert.equal(r.status, 422);
    assert.equal(calls.length, 0);
  });
});

describe('when every attempt fails', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([scripted('A', { hooks: { pre_llm_hook: { append: '|A' } } })]);
  });
  after(() => gw.close());

  it('the client gets the primary attempt\'s error, with every attempt\'s error attached', async () => {
    const id = rid('all-fail');
    const r = await gw.post(CHAT_PATH, chat('mock/fail-503', 'hi', { fallbacks: ['mock/fail-429', 'mock/fail-500'] }), { 'x-request-id': id });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.code, ErrorCode.upstreamError);
    assert.equal(r.json.error.model, 'fail-503');
    assert.deepEqual(r.json.error.attempts.map((e: { status: number; model: string }) => [e.status, e.model]), [
      [503, 'fail-503'],
      [429, 'fail-429'],
      [500, 'fail-500'],
    ]);
    assert.deepEqual(only(shortHooks(gw.hooksFor(id)), LLM), ['A:pre', 'A:post', 'A:pre', 'A:post', 'A:pre', 'A:post']);
  });
});

// ---------------------------------------------------------------------------
describe('the request context', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', {
        hooks: {
          http_transport_pre_hook: {
            header_to_ctx: { 'x-client-tag': 'a.tag' },
            set_ctx: { 'a.value': 'set-by-A-in-transport-pre', 'a.number': 42, 'a.map': { list: [1, true, 'x'], nil: null }, 'a.temp': 'to be deleted' },
          },
          post_llm_hook: { append: '|', append_ctx: 'b.value', set_ctx: { 'a.post_llm': 'set-by-A-in-post-llm' } },
          http_transport_post_hook: {
            ctx_to_header: {
              'a.value': 'x-a-value', 'b.value': 'x-b-value', 'a.number': 'x-a-number', 'a.map': 'x-a-map', 'a.temp': 'x-a-temp',
              'a.post_llm': 'x-a-post-llm', 'b.tpost': 'x-b-tpost', 'a.tag': 'x-a-tag',
            },
          },
        },
      }),
      scripted('B', {
        hooks: {
          http_transport_pre_hook: { set_ctx: { 'a.temp': null } },
          pre_llm_hook: { append: '|', append_ctx: 'a.value', set_ctx: { 'b.value': 'set-by-B-in-pre-llm' } },
          http_transport_post_hook: { set_ctx: { 'b.tpost': 'set-by-B-in-transport-post' } },
        },
      }),
    ]);
  });
  after(() => gw.close());

  it('a value set by plugin A in transport pre is seen by B\'s pre_llm_hook and A\'s transport post-hook', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(r.status, 200);
    assert.match(content(r), /^hi\|set-by-A-in-transport-pre\|/);
    assert.equal(r.headers.get('x-a-value'), 'set-by-A-in-transport-pre');
  });

  it('a value set by B in pre_llm_hook is seen by A\'s post_llm_hook and A\'s transport post-hook', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(content(r), 'hi|set-by-A-in-transport-pre|set-by-B-in-pre-llm');
    assert.equal(r.headers.get('x-b-value'), 'set-by-B-in-pre-llm');
  });

  it('values set in post-hooks are seen by later post-hooks (post_llm -> transport post, B\'s transport post -> A\'s)', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(r.headers.get('x-a-post-llm'), 'set-by-A-in-post-llm');
    assert.equal(r.headers.get('x-b-tpost'), 'set-by-B-in-transport-post');
  });

  it('values are msgpack values: numbers and maps keep their type; nil deletes a key', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(r.headers.get('x-a-number'), '42');
    assert.deepEqual(JSON.parse(r.headers.get('x-a-map') ?? 'null'), { list: [1, true, 'x'], nil: null });
    assert.equal(r.headers.get('x-a-temp'), '<none>');
  });

  it('is per request: nothing set in one request is seen by the next', async () => {
    // Earlier requests had B set b.value in pre_llm_hook; a 404 runs no LLM hook, so it must not have it.
    const r = await gw.get('/v2/nothing-here');
    assert.equal(r.headers.get('x-b-value'), '<none>');
    assert.equal(r.headers.get('x-a-value'), 'set-by-A-in-transport-pre');
  });

  it('concurrent requests each have their own', async () => {
    const tags = Array.from({ length: 24 }, (_, i) => `tag-${i}`);
    const answers = await Promise.all(tags.map((tag) => gw.post(CHAT_PATH, chat('mock/echo'), { 'x-client-tag': tag })));
    assert.deepEqual(answers.map((r) => r.headers.get('x-a-tag')), tags);
  });
});

describe('reserved context keys', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      // A writes reserved keys raw (the PDK itself would refuse), plus one ordinary key.
      scripted('A', {
        hooks: {
          http_transport_pre_hook: { raw_ctx: { 'sandgate.request_id': 'hijacked', 'a.after_reserved': 'kept' } },
          pre_llm_hook: { raw_ctx: { 'sandgate.fallback_index': 5, 'sandgate.model': 'hijacked-model' } },
        },
      }),
      scripted('B', {
        hooks: {
          pre_llm_hook: { append: '|', append_ctx: 'sandgate.fallback_index' },
          post_llm_hook: { append: '|', append_ctx: 'sandgate.model' },
          http_transport_post_hook: { ctx_to_header: { 'sandgate.request_id': 'x-seen-request-id', 'a.after_reserved': 'x-after-reserved' } },
        },
      }),
    ]);
  });
  after(() => gw.close());

  it('are readable: the request id is the x-request-id the client sent', async () => {
    const id = rid('reserved');
    const r = await gw.post(CHAT_PATH, chat('mock/echo'), { 'x-request-id': id });
    assert.equal(r.headers.get('x-request-id'), id);
    assert.equal(r.headers.get('x-seen-request-id'), id, 'the write of "hijacked" was ignored');
    assert.equal(content(r), 'hi|0|echo', 'fallback_index and model were not overwritten either');
  });

  it('a patch that sets one is ignored for that key only, with a warning naming plugin and key', async () => {
    const id = rid('reserved-warn');
    const r = await gw.post(CHAT_PATH, chat('mock/echo'), { 'x-request-id': id });
    assert.equal(r.headers.get('x-after-reserved'), 'kept', 'the rest of the patch applied');
    const warned = gw.logs.filter((l) => l.rid === id && l.level === 40 && typeof l.key === 'string').map((l) => `${l.plugin}:${l.key}`);
    assert.deepEqual(warned.sort(), ['A:sandgate.fallback_index', 'A:sandgate.model', 'A:sandgate.request_id']);
  });
});

describe('a fail-closed plugin failure inside the LLM phase', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('A', { hooks: { post_llm_hook: { append: '|<A' }, http_transport_post_hook: { set_header: { 'x-a-post': 'ran' } } } }),
      { name: 'trap', path: fixture('trap-llm'), on_error: 'fail-closed', circuit_breaker: { failure_threshold: 0 } },
    ]);
  });
  after(() => gw.close());

  // README "Why fail-closed by default...": the request ends with a 5xx naming the plugin: no later hooks, no fallbacks.
  it('ends the request: no fallback, no later hook (LLM or transport post)', async () => {
    const id = rid('fail-closed');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/primary', 'hi', { fallbacks: ['up/second'] }), { 'x-request-id': id }));
    assert.equal(r.status, 500);
    assert.equal(r.json.error.code, ErrorCode.pluginTrap);
    assert.equal(r.json.error.plugin, 'trap');
    assert.equal(calls.length, 0);
    assert.equal(r.headers.get('x-a-post'), null);
    assert.deepEqual(shortHooks(gw.hooksFor(id)), ['A:tpre', 'A:pre']);
  });
});

// ---------------------------------------------------------------------------
describe('the hello-world sample plugin, as its README says', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      { name: 'hello-world', path: samplePlugin('hello-world'), config: { greeting: 'hello' } },
      // A probe after it: what the later plugin and the core saw of hello-world's request header.
      scripted('probe', {
        hooks: {
          http_transport_pre_hook: { header_to_ctx: { 'x-custom-header': 'probe.custom' } },
          http_transport_post_hook: { ctx_to_header: { 'probe.custom': 'x-probe-saw-custom' }, req_header_to_header: { 'x-custom-header': 'x-core-saw-custom' } },
        },
      }),
    ]);
  });
  after(() => gw.close());

  it('x-processed-by, x-hello-context from its pre-hook, and x-custom-header reaching later plugins and the core', async () => {
    const r = await gw.post(CHAT_PATH, CHAT());
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-processed-by'), 'hello-world');
    assert.equal(r.headers.get('x-hello-context'), 'pre-hook-value');
    assert.equal(r.headers.get('x-probe-saw-custom'), 'custom-value');
    assert.equal(r.headers.get('x-core-saw-custom'), 'custom-value');
  });

  it('the log shows its hooks in order transport pre, LLM pre, LLM post, transport post, with the request id', async () => {
    const id = rid('hello');
    await gw.post(CHAT_PATH, CHAT(), { 'x-request-id': id });
    const hello = (hooks: string[]) => hooks.filter((h) => h.startsWith('hello-world:'));
    assert.deepEqual(hello(gw.hooksFor(id)), [
      'hello-world:http_transport_pre_hook',
      'hello-world:pre_llm_hook',
      'hello-world:post_llm_hook',
      'hello-world:http_transport_post_hook',
    ]);
    // Its own log lines (the README's list; the message is the feature here), tagged with the request id.
    const said = gw.logs.filter((l) => l.rid === id && l.plugin === 'hello-world' && l.level === 30).map((l) => l.msg);
    assert.deepEqual(said, ['HTTPTransportPreHook called', 'PreLLMHook called', 'PostLLMHook called', 'HTTPTransportPostHook called']);
  });
});

// ---------------------------------------------------------------------------
describe('legacy hooks', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      legacy('legacy', {
        interceptor: { set_header: { 'x-legacy': 'intercepted' }, set_body: { legacy_field: 'added by the interceptor' } },
        pre_hook: { append: '|legacy-pre' },
        post_hook: { append: '|legacy-post' },
      }),
      { name: 'shadowed', path: testPlugin('shadowed') },
      scripted('probe', {
        hooks: {
          http_transport_pre_hook: { header_to_ctx: { 'x-legacy': 'probe.legacy' } },
          http_transport_post_hook: { ctx_to_header: { 'probe.legacy': 'x-probe-saw-legacy', 'legacy.url': 'x-legacy-url' } },
        },
      }),
    ]);
  });
  after(() => gw.close());

  it('transport_interceptor, pre_hook and post_hook are called in their phases', async () => {
    const id = rid('legacy');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/gpt-test'), { 'x-request-id': id }));
    assert.equal(r.status, 200);
    assert.deepEqual(shortHooks(gw.hooksFor(id)), [
      'legacy:transport_interceptor', 'shadowed:tpre', 'probe:tpre',
      'legacy:pre_hook', 'shadowed:pre', 'probe:pre',
      'probe:post', 'shadowed:post', 'legacy:post_hook',
      'probe:tpost', // legacy exports no transport post-hook: a missing hook is a no-op; shadowed neither
    ]);
    // The interceptor's header reached the next plugin, its body field the provider, its context value the post-hook.
    assert.equal(r.headers.get('x-probe-saw-legacy'), 'intercepted');
    assert.equal(calls.length, 1);
    assert.equal(calls[0].body.legacy_field, 'added by the interceptor');
    assert.equal(r.headers.get('x-legacy-url'), CHAT_PATH);
    // pre_hook changed the request, post_hook the response.
    assert.equal(calls[0].body.messages.at(-1).content, 'hi|legacy-pre|current-pre');
    assert.equal(content(r), 'hi|legacy-pre|current-pre|current-post|legacy-post');
  });

  it('a legacy name is not called when the current one is exported (ABI §3)', async () => {
    const r = await gw.post(CHAT_PATH, chat('mock/echo'));
    assert.equal(r.status, 200, 'shadowed\'s transport_interceptor would have answered 500');
    assert.doesNotMatch(content(r), /LEGACY/);
  });
});

describe('legacy transport_interceptor error', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gateway([
      scripted('outer', { hooks: { http_transport_post_hook: { append_header: { 'x-post-trail': 'outer' } } } }),
      legacy('legacy', { interceptor: { error: { message: 'legacy says no', status: 401, code: 'legacy_denied' } } }),
      scripted('inner', { hooks: { http_transport_post_hook: { append_header: { 'x-post-trail': 'inner' } } } }),
    ]);
  });
  after(() => gw.close());

  it('short-circuits like a transport pre-hook error: core skipped, post-hooks of earlier plugins only', async () => {
    const id = rid('legacy-error');
    const [r, calls] = await upstreamCalls(() => gw.post(CHAT_PATH, chat('up/gpt-test'), { 'x-request-id': id }));
    assert.equal(r.status, 401);
    assert.equal(r.json.error.code, 'legacy_denied');
    assert.equal(r.json.error.plugin, 'legacy');
    assert.equal(r.headers.get('x-post-trail'), 'outer');
    assert.equal(calls.length, 0);
    assert.deepEqual(shortHooks(gw.hooksFor(id)), ['outer:tpre', 'legacy:transport_interceptor', 'outer:tpost']);
  });
});

// ---------------------------------------------------------------------------
describe('init and cleanup', () => {
  it('a plugin whose init fails does not load; the gateway says why and keeps running', async () => {
    const gw = await gateway([scripted('refuses', { init_error: 'no licence key configured' }, { on_error: 'fail-open' }), scripted('fine')]);
    try {
      const why = gw.logs.find((l) => l.plugin === 'refuses' && l.code === ErrorCode.pluginInitFailed);
      assert.ok(why, 'the refusal is logged with its code');
      assert.match(String(why.err), /no licence key configured/, 'and the plugin\'s reason');
      assert.deepEqual(gw.plugins.map((p) => p.name), ['fine']);
      const r = await gw.post(CHAT_PATH, CHAT());
      assert.equal(r.status, 200);
    } finally {
      await gw.close();
    }
  });

  it('cleanup is called when the gateway shuts down', async () => {
    const gw = await gateway([scripted('A')]);
    await gw.post(CHAT_PATH, CHAT());
    const instances = instancesOf(gw, 'A');
    await gw.close();
    const cleaned = gw.logs.filter((l) => l.plugin === 'A' && l.msg === 'scripted cleanup: A');
    assert.equal(cleaned.length, instances, 'once per instance (one per worker, and the main thread)');
  });
});
