import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import createPlugin from '@extism/extism';
import { ErrorCode } from '../host/errors/codes.js';
import { fromExtismError, GuestReportedError } from '../host/runtime/sandbox/extism-errors.js';
import { CHAT, startTestGateway } from './helpers/gateway.js';
import { fixture } from './helpers/paths.js';

// host/runtime/sandbox/extism-errors.ts relies on how @extism/extism words an
// error a guest set with error_set. These tests run real plugins through the
// real library: if a new version words it differently, or reports a trap the
// same way, they fail here rather than a hook error turning into a trap.

async function extismError(name: string, hook: string): Promise<unknown> {
  const plugin = await createPlugin({ wasm: [{ data: readFileSync(fixture(name)) }] }, { useWasi: false });
  try {
    await plugin.call(hook);
  } catch (e) {
    return e;
  } finally {
    await plugin.close();
  }
  assert.fail(`${name}: ${hook} should have failed`);
}

describe('the Extism error adapter, against the real library', () => {
  it("recognises a guest's error_set and keeps exactly its text", async () => {
    const e = fromExtismError(await extismError('hook-error-llm', 'pre_llm_hook'));
    assert.ok(e instanceof GuestReportedError, `not recognised as error_set: ${String(e)}`);
    assert.equal(e.message, 'database unavailable');
  });

  it('does not take a trap for a reported error', async () => {
    const raw = await extismError('trap-llm', 'pre_llm_hook');
    assert.equal(fromExtismError(raw), raw);
  });

  it('through the gateway: error_set is plugin_hook_error, the guest text in the log', async () => {
    const gw = await startTestGateway({ plugins: [{ name: 'reporter', path: fixture('hook-error-llm') }] });
    try {
      const r = await gw.post('/v1/chat/completions', CHAT());
      assert.equal(r.status, 500);
      assert.equal(r.json.error.code, ErrorCode.pluginHookError);
      const failure = gw.logs.find((l) => l.msg === 'plugin failure' && l.plugin === 'reporter');
      assert.equal(failure?.kind, 'hook_error');
      assert.match(JSON.stringify(failure), /"database unavailable"/, 'the guest text, exactly, without the library prefix');
    } finally {
      await gw.close();
    }
  });
});
