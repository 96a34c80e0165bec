// The C PDK's own suite (plugin-pdk/c/test/conformance.c), compiled natively
// and run here so that a drift between the C kit and the conformance vectors
// fails `npm test`: every vector decodes to its value and re-encodes to its
// bytes, and the hook runners write exactly the output vectors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { ROOT, testPlugin } from './helpers/paths.js';

const KIT = path.join(ROOT, 'plugin-pdk/c');
const VECTORS = path.join(ROOT, 'plugin-pdk/conformance/vectors.json');

/** The first native C compiler on PATH, or undefined. */
function nativeCompiler(): string | undefined {
  for (const cc of ['cc', 'clang', 'gcc', 'clang-14']) {
    if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0) return cc;
  }
  return undefined;
}

describe('C PDK (plugin-pdk/c): conformance vectors and hook runners, natively', () => {
  const cc = nativeCompiler();

  it('decodes and re-encodes every vector; the runners write the output vectors', { skip: cc ? false : 'no C compiler on PATH (cc, clang or gcc): .ci/run installs clang' }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-kit-c-'));
    try {
      const exe = path.join(dir, 'conformance');
      const sources = readdirSync(path.join(KIT, 'src')).filter((f) => f.endsWith('.c')).map((f) => path.join(KIT, 'src', f));
      const compile = spawnSync(cc!, ['-std=c11', '-O1', '-Wall', '-Wextra', '-Werror', '-I', path.join(KIT, 'include'),
        '-o', exe, path.join(KIT, 'test/conformance.c'), ...sources], { encoding: 'utf8' });
      assert.equal(compile.status, 0, `the C kit does not compile natively:\n${compile.stderr}`);

      const run = spawnSync(exe, [VECTORS], { encoding: 'utf8' });
      const failed = run.stdout.split('\n').filter((l) => l.startsWith('FAIL')).join('\n');
      assert.equal(run.status, 0, `C kit conformance failed (status ${run.status}, signal ${run.signal}):\n${failed}\n${run.stderr}`);

      const summary = /^ok (\d+) checks, 0 failed, (\d+) vectors$/m.exec(run.stdout);
      assert.ok(summary, `no summary line in:\n${run.stdout}`);
      const vectorCount = (JSON.parse(readFileSync(VECTORS, 'utf8')) as unknown[]).length;
      assert.equal(Number(summary[2]), vectorCount, 'every vector in vectors.json was checked');
      // at least decode + value + re-encode per vector, plus the runner checks
      assert.ok(Number(summary[1]) >= 3 * vectorCount + 20, `only ${summary[1]} checks ran`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('C PDK: sg_fail explains the failure (test/plugins/c-fail through the gateway)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: { mock: { type: 'mock' } },
      plugins: [{ name: 'c-fail', path: testPlugin('c-fail'), on_error: 'fail-closed' }],
    });
  });
  after(() => gw.close());

  it('a typed response built in C short-circuits the provider', async () => {
    const r = await gw.post('/v1/chat/completions', CHAT('shout this'));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'SHOUT THIS');
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.equal(r.json.object, 'chat.completion');
  });

  it('sg_fail logs its message at error level and traps: the call fails as plugin_trap', async () => {
    const id = 'c-fail-1';
    const r = await gw.post('/v1/chat/completions', CHAT('fail on purpose'), { 'x-request-id': id });
    assert.equal(r.status, 500, r.text);
    assert.equal(r.json.error.code, 'plugin_trap');
    const said = gw.logs.filter((l) => l.rid === id && l.plugin === 'c-fail' && l.level === 50).map((l) => l.msg);
    assert.ok(said.includes('plugin failed: deliberate failure: fail on purpose'), `error lines: ${JSON.stringify(said)}`);
  });
});
