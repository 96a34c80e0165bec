import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CHAT, instancesOf, startTestGateway } from './helpers/gateway.js';
import { samplePlugin } from './helpers/paths.js';
import { scripted } from './helpers/scripted.js';
import { postStream } from './helpers/sse.js';

// sample-plugins/hello-world exists in four languages: AssemblyScript (the
// reference), Go, Rust and C. Each runs through the real gateway with the same
// config and the same requests; what a client, a later plugin and the log can
// see is collected, then checked against the hello-world README's promises
// (so four equally broken plugins still fail) and against the AssemblyScript
// one. The committed .wasm files are what runs (a machine with only Node).

const CHAT_PATH = '/v1/chat/completions';
const WORKERS = 2;
const SAMPLES = { assemblyscript: 'hello-world', go: 'hello-world-go', rust: 'hello-world-rust', c: 'hello-world-c' } as const;
type Language = keyof typeof SAMPLES;

/** The four imports of the fast path (ABI.md §4): a kit that fell back to Extism's kernel would import extism:host/env. */
const FAST_PATH = ['sandgate:host/v1.input_length', 'sandgate:host/v1.input_read', 'sandgate:host/v1.log', 'sandgate:host/v1.output_write'];
const HOOK_EXPORTS = ['cleanup', 'get_name', 'http_transport_post_hook', 'http_transport_pre_hook', 'init', 'post_llm_hook', 'pre_llm_hook', 'sandgate_abi_v1'];

interface Observed {
  /** The ABI exports (hooks and the version marker), and where its imports come from. */
  hookExports: string[];
  hostImports: string[];
  importModules: string[];
  status: number;
  content: string | undefined;
  headers: Record<string, string | null>;
  hooks: string[];
  said: string[];
  /** Its debug lines: Content-Type read case-insensitively, the context value read back. */
  debug: string[];
  stream: {
    status: number;
    /** Each chunk's delta content and finish_reason, in order: the chunks pass unchanged. */
    chunks: [string | null, string | null][];
    done: boolean;
    error: unknown;
    processedBy: string | null;
    helloContext: string | null;
    hooks: string[];
    said: string[];
  };
  initsAtLoad: number;
  /** Instances made at load: one per worker, and one on the main thread if it runs there (ABI.md §7.6). */
  instancesAtLoad: number;
  atClose: string[];
}

async function observe(sample: string): Promise<Observed> {
  const mod = new WebAssembly.Module(readFileSync(samplePlugin(sample)));
  const imports = WebAssembly.Module.imports(mod);
  const gw = await startTestGateway({
    providers: { mock: { type: 'mock' } },
    runtime: { workers: WORKERS },
    plugins: [
      { name: 'hello', path: samplePlugin(sample), config: { greeting: 'hello' }, on_error: 'fail-closed' },
      // A probe after it: what a later plugin and the core saw of the request header it set.
      scripted('probe', {
        hooks: {
          http_transport_pre_hook: { header_to_ctx: { 'x-custom-header': 'probe.custom' } },
          http_transport_post_hook: { ctx_to_header: { 'probe.custom': 'x-probe-saw-custom' }, req_header_to_header: { 'x-custom-header': 'x-core-saw-custom' } },
        },
      }),
    ],
  });
  const mine = (rid: string, level: number) => gw.logs.filter((l) => l.rid === rid && l.plugin === 'hello' && l.level === level).map((l) => l.msg);
  try {
    const initsAtLoad = gw.logs.filter((l) => l.plugin === 'hello' && !l.rid && l.msg === 'Init called').length;
    const instancesAtLoad = instancesOf(gw, 'hello');
    // The envelope carries header names in lower case; each plugin asks for "Content-Type".
    const r = await gw.post(CHAT_PATH, CHAT('Hello from everywhere'), { 'x-request-id': `${sample}-1` });
    const s = await postStream(gw.url + CHAT_PATH, { ...CHAT('a b c'), stream: true }, { headers: { 'x-request-id': `${sample}-2` } });
    const observed: Observed = {
      hookExports: WebAssembly.Module.exports(mod).map((e) => e.name).filter((n) => HOOK_EXPORTS.includes(n)).sort(),
      hostImports: imports.filter((i) => i.module.startsWith('sandgate:')).map((i) => `${i.module}.${i.name}`).sort(),
      importModules: [...new Set(imports.map((i) => i.module))].sort(),
      status: r.status,
      content: r.json?.choices?.[0]?.message?.content,
      headers: Object.fromEntries(['x-processed-by', 'x-hello-context', 'x-probe-saw-custom', 'x-core-saw-custom'].map((h) => [h, r.headers.get(h)])),
      hooks: gw.hooksFor(`${sample}-1`).filter((h) => h.startsWith('hello:')),
      said: mine(`${sample}-1`, 30),
      debug: mine(`${sample}-1`, 20).filter((m) => /^(Content-Type|Context value):/.test(m)),
      stream: {
        status: s.status,
        chunks: s.chunks.map((c) => [c.choices?.[0]?.delta?.content ?? null, c.choices?.[0]?.finish_reason ?? null]),
        done: s.done,
        error: s.error ?? null,
        processedBy: s.headers.get('x-processed-by'),
        helloContext: s.headers.get('x-hello-context'),
        hooks: gw.hooksFor(`${sample}-2`).filter((h) => h.startsWith('hello:')),
        said: mine(`${sample}-2`, 30),
      },
      initsAtLoad,
      instancesAtLoad,
      atClose: [],
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

describe('hello-world in AssemblyScript, Go, Rust and C: the same behaviour through the gateway', () => {
  const seen = {} as Record<Language, Observed>;
  before(async () => {
    // One at a time: each is a whole gateway with its workers, on a 2-core machine.
    for (const [language, sample] of Object.entries(SAMPLES) as [Language, string][]) seen[language] = await observe(sample);
  });

  for (const language of Object.keys(SAMPLES) as Language[]) {
    describe(`${language} (sample-plugins/${SAMPLES[language]})`, () => {
      it('is an ABI v1 module exporting every hook of the README, using the fast path only', () => {
        const o = seen[language];
        assert.deepEqual(o.hookExports, HOOK_EXPORTS);
        assert.deepEqual(o.hostImports, FAST_PATH);
        // Go's runtime needs WASI (the gateway's own, ABI.md §7.2); the other kits import nothing else.
        assert.deepEqual(o.importModules, language === 'go' ? ['sandgate:host/v1', 'wasi_snapshot_preview1'] : ['sandgate:host/v1']);
      });

      it('init ran on every instance (every worker, and the main thread where it runs there) before any hook', () => {
        assert.equal(seen[language].initsAtLoad, seen[language].instancesAtLoad);
        assert.equal(seen[language].instancesAtLoad, language === 'go' ? WORKERS : WORKERS + 1, 'only Go (WASI) stays off the main thread');
      });

      it('a request: its headers, the context value across hooks, the hooks and log lines in order, the body untouched', () => {
        const o = seen[language];
        assert.equal(o.status, 200);
        assert.equal(o.content, 'Hello from everywhere');
        assert.deepEqual(o.headers, {
          'x-processed-by': 'hello-world',
          'x-hello-context': 'pre-hook-value', // set in the context by the pre-hook, read back by the post-hook
          'x-probe-saw-custom': 'custom-value', // the request header it set, as the next plugin saw it
          'x-core-saw-custom': 'custom-value', // ... and as the gateway's core kept it
        });
        assert.deepEqual(o.hooks, ['hello:http_transport_pre_hook', 'hello:pre_llm_hook', 'hello:post_llm_hook', 'hello:http_transport_post_hook']);
        assert.deepEqual(o.said, ['HTTPTransportPreHook called', 'PreLLMHook called', 'PostLLMHook called', 'HTTPTransportPostHook called']);
        assert.deepEqual(o.debug, ['Content-Type: application/json', 'Context value: pre-hook-value']);
      });

      it('streaming: every chunk passes unchanged; no post_llm_hook per chunk (init said stream_deltas: false), no transport post-hook', () => {
        const s = seen[language].stream;
        assert.equal(s.status, 200);
        assert.deepEqual(s.chunks.map(([content]) => content).join(''), 'a b c');
        assert.equal(s.chunks.at(-1)?.[1], 'stop');
        assert.equal(s.done, true);
        assert.equal(s.error, null);
        assert.equal(s.processedBy, null);
        assert.equal(s.helloContext, null);
        assert.equal(s.chunks.length, 4); // three words and the finish chunk
        assert.deepEqual(s.hooks, ['hello:http_transport_pre_hook', 'hello:pre_llm_hook']);
        assert.deepEqual(s.said, ['HTTPTransportPreHook called', 'PreLLMHook called']);
      });

      it('cleanup ran once per instance when the gateway closed', () => {
        const cleanups = seen[language].atClose.filter((m) => m === 'Cleanup called').length;
        assert.equal(cleanups, seen[language].instancesAtLoad, `logged on close: ${seen[language].atClose}`);
      });

      if (language !== 'assemblyscript') {
        it('every observation is the same as the AssemblyScript one (only the imports of its runtime may differ)', () => {
          // Go runs on the workers only (ABI.md §7.6): one instance fewer, so one init and one cleanup fewer.
          const { importModules: _mine, initsAtLoad: _i, instancesAtLoad: _n, atClose: _c, ...rest } = seen[language];
          const { importModules: _ref, initsAtLoad: _ri, instancesAtLoad: _rn, atClose: _rc, ...reference } = seen.assemblyscript;
          assert.deepEqual(rest, reference);
        });
      }
    });
  }
});
