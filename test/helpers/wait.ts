import assert from 'node:assert/strict';

/**
 * Polls `probe` until it gives a value (anything but undefined or false) and
 * resolves with it; fails the test, naming `what`, after `timeoutMs`.
 *
 * @example
 * const p = await waitFor('the refusal', async () => (await health()).last_reload?.result === 'refused' ? p : undefined);
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
