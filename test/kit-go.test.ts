import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './helpers/paths.js';

// The Go kit's own suite (plugin-pdk/go, `go test`, natively): it decodes and
// re-encodes every vector of plugin-pdk/conformance/vectors.json, so a drift
// between the Go kit and the shared vectors fails `npm test`.

function goTest(dir: string): { status: number | null; out: string } {
  const r = spawnSync('go', ['test', '-count=1', '-v', './...'], {
    cwd: path.join(ROOT, dir),
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
  });
  if (r.error) throw new Error(`running \`go test\` in ${dir} needs Go 1.24 or later on PATH (.ci/run installs it): ${r.error.message}`);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('Go kit (plugin-pdk/go)', () => {
  it('go test passes: every conformance vector decodes and re-encodes, typed envelopes included', () => {
    const { status, out } = goTest('plugin-pdk/go');
    assert.equal(status, 0, out);
    const passed = out.match(/^\s*--- PASS: TestEveryVectorDecodesAndReencodes\//gm) ?? [];
    assert.ok(passed.length >= 22, `every vector ran as its own subtest (${passed.length}):\n${out}`);
    assert.doesNotMatch(out, /--- FAIL/);
  });

  it("the Go samples' own go test passes (hooks called natively through the kit)", () => {
    for (const dir of ['sample-plugins/hello-world-go']) {
      const { status, out } = goTest(dir);
      assert.equal(status, 0, out);
      assert.match(out, /--- PASS: TestPreHookSetsHeaderAndContext/);
    }
  });
});
