import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CHAT, startTestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';
import { scripted } from './helpers/scripted.js';
import { contentOf, postStream } from './helpers/sse.js';

// sample-plugins/hello-world-go (the Go kit) must behave exactly as
// sample-plugins/hello-world (the AssemblyScript kit): each runs through the
// real gateway, what a client and the log can see is collected, and the two
// are compared. The committed .wasm is what runs (a machine with only Node).

const CHAT_PATH = '/v1/chat/completions';

interface Observed {
  status: number;
  headers: Record<string, string | null>;
  hooks: string[];
  said: string[];
  streamStatus: number;
  streamContent: string;
  streamDone: boolean;
  streamProcessedBy: string | null;
  streamSaid: string[];
  atLoad: string[];
  atClose: string[];
}

async function observe(dir: string): Promise<Observed> {
  const gw = await startTestGateway({
    providers: { mock: { type: 'mock' } },
    runtime: { workers: 1 },
    plugins: [
      { name: 'hello', path: samplePlugin(dir), config: { greeting: 'hello' } },
      // A probe after it: what a later plugin and the core saw of the request header it set.
      scripted('probe', {
        hooks: {
          http_transport_pre_hook: { header_to_ctx: { 'x-custom-header': 'probe.custom' } },
          http_transport_post_hook: { ctx_to_header: { 'probe.custom': 'x-probe-saw-custom' }, req_header_to_header: { 'x-custom-header': 'x-core-saw-custom' } },
        },
      }),
    ],
  });
  const said = (rid: string) => gw.logs.filter((l) => l.rid === rid && l.plugin === 'hello' && l.level === 30).map((l) => l.msg);
  try {
    const atLoad = gw.logs.filter((l) => l.plugin === 'hello' && !l.rid && l.level === 30).map((l) => l.msg);
    const r = await gw.post(CHAT_PATH, CHAT(), { 'x-request-id': `${dir}-1`, 'CONTENT-TYPE': 'application/json' });
    const s = await postStream(gw.url + CHAT_PATH, { ...CHAT('a b c'), stream: true }, { headers: { 'x-request-id': `${dir}-2` } });
    const observed = {
      status: r.status,
      headers: Object.fromEntries(['x-processed-by', 'x-hello-context', 'x-probe-saw-custom', 'x-core-saw-custom'].map((h) => [h, r.headers.get(h)])),
      hooks: gw.hooksFor(`${dir}-1`).filter((h) => h.startsWith('hello:')),
      said: said(`${dir}-1`),
      streamStatus: s.status,
      streamContent: contentOf(s.chunks),
      streamDone: s.done,
      streamProcessedBy: s.headers.get('x-processed-by'),
      streamSaid: said(`${dir}-2`),
      atLoad,
      atClose: [] as string[],
    };
    const before = gw.logs.length;
    await gw.close();
    observed.atClose = gw.logs.slice(before).filter((l) => l.plugin === 'hello' && l.level === 30).map((l) => l.msg);
    return observed;
  } catch (e) {
    await gw.close();
    throw e;
  }
}

describe('hello-world in Go behaves as hello-world in AssemblyScript, through the gateway', () => {
  let as: Observed;
  let go: Observed;
  before(async () => {
    as = await observe('hello-world');
    go = await observe('hello-world-go');
  });

  it('the Go sample does what the hello-world README says', () => {
    assert.equal(go.status, 200);
    assert.deepEqual(go.headers, {
      'x-processed-by': 'hello-world',
      'x-hello-context': 'pre-hook-value',
      'x-probe-saw-custom': 'custom-value',
      'x-core-saw-custom': 'custom-value',
    });
    assert.deepEqual(go.hooks, ['hello:http_transport_pre_hook', 'hello:pre_llm_hook', 'hello:post_llm_hook', 'hello:http_transport_post_hook']);
    assert.deepEqual(go.said, ['HTTPTransportPreHook called', 'PreLLMHook called', 'PostLLMHook called', 'HTTPTransportPostHook called']);
    assert.ok(go.atLoad.includes('Init called'), `init logged: ${go.atLoad}`);
    assert.ok(go.atClose.includes('Cleanup called'), `cleanup logged on close: ${go.atClose}`);
  });

  it('streaming: the chunks pass unchanged, post_llm_hook runs per chunk, no transport post-hook', () => {
    assert.equal(go.streamStatus, 200);
    assert.equal(go.streamContent, 'a b c');
    assert.equal(go.streamDone, true);
    assert.equal(go.streamProcessedBy, null);
    assert.equal(go.streamSaid.filter((m) => m === 'PostLLMHook called').length, 4); // three words and the finish chunk
  });

  it('every observation is the same for both languages', () => {
    assert.deepEqual(go, as);
  });
});
