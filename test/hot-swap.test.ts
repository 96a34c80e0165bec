import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';
import { postStream } from './helpers/sse.js';
import { stampPlugin } from './helpers/stamp-plugin.js';
import { waitFor } from './helpers/wait.js';

// Hot swap through the real gateway: a plugin's .wasm replaced while it runs.
// New requests get the new version; requests that started on the old one
// finish there (a stream never mixes versions); a replacement that cannot load
// is refused and the old version keeps serving; a retired version's cleanup
// runs once per instance.

const WORKERS = 2;


describe('hot swap: replacing a plugin file while the gateway runs', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-swap-'));
  const file = path.join(dir, 'stamp.wasm');
  let gw: TestGateway;

  const stampNow = async () => (await gw.get('/v1/models')).headers.get('x-stamp');
  const health = async () => (await gw.get('/health')).json.plugins.find((p: { name: string }) => p.name === 'stamp');
  const reloads = async (result: string) => metricValue((await gw.get('/metrics')).text, 'sandgate_plugin_reloads_total', { plugin: 'stamp', result });
  const cleanups = (stamp: string) => gw.logs.filter((l) => l.plugin === 'stamp' && l.msg === `cleanup ${stamp}`).length;
  /** Replaces the file and waits until the new stamp serves. */
  const swapTo = async (stamp: string, write: () => void) => {
    write();
    await waitFor(`stamp ${stamp}`, async () => ((await stampNow()) === stamp ? true : undefined));
  };

  before(async () => {
    writeFileSync(file, stampPlugin('a'));
    gw = await startTestGateway({
      runtime: { workers: WORKERS, reload_debounce_ms: 50, reload_settle_ms: 600 },
      providers: { mock: { type: 'mock', stream_chunks: 8, stream_delay_ms: 40 } },
      plugins: [{ name: 'stamp', path: file, init_timeout_ms: 500, memory_limit_mb: 1 }],
    });
  });
  after(() => gw.close());

  it('a write in place swaps the version; the old one is retired with one cleanup per instance', async () => {
    assert.equal(await stampNow(), 'a');
    const before = await health();
    await swapTo('b', () => writeFileSync(file, stampPlugin('b')));
    const now = await health();
    assert.notEqual(now.sha256, before.sha256);
    assert.ok(now.generation > before.generation);
    assert.equal(now.last_reload.result, 'ok');
    assert.equal(now.last_reload.trigger, 'file');
    assert.equal(await reloads('ok'), 1);
    await waitFor('cleanup of a', () => (cleanups('a') === WORKERS ? true : undefined));
    assert.equal(cleanups('b'), 0, 'the new version is not cleaned up');
  });

  it('a rename over the file swaps it too', async () => {
    const next = path.join(dir, 'stamp.wasm.tmp');
    await swapTo('c', () => {
      writeFileSync(next, stampPlugin('c'));
      renameSync(next, file);
    });
    await waitFor('cleanup of b', () => (cleanups('b') === WORKERS ? true : undefined));
  });

  it('a file written in two steps is loaded once complete, never half-written', async () => {
    const refusedBefore = await reloads('refused');
    const bytes = stampPlugin('d');
    await swapTo('d', () => {
      writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
      setTimeout(() => writeFileSync(file, bytes), 200).unref(); // past the debounce, within the settle time
    });
    assert.equal(await reloads('refused'), refusedBefore, 'the half-written file was not refused');
  });

  it('the same bytes again (a touch, a copy of the same build) change nothing', async () => {
    const okBefore = await reloads('ok');
    const gen = (await health()).generation;
    writeFileSync(file, stampPlugin('d'));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal((await health()).generation, gen);
    assert.equal(await reloads('ok'), okBefore);
  });

  for (const [what, bytes, reason] of [
    ['not WebAssembly (after the settle time)', () => Buffer.from('definitely not wasm'), /not a valid WebAssembly module/],
    ['built for another ABI version', () => stampPlugin('x', { abi: 2 }), /built for Sandgate ABI v2/],
    ['an init that traps', () => stampPlugin('x', { initTraps: true }), /failed to initialise: .*unreachable/],
    ['an init slower than init_timeout_ms', () => stampPlugin('x', { initDelayMs: 2000 }), /failed to initialise: .*500 ms/],
    ['over its memory cap at start', () => readFileSync(fixture('big-initial-memory')), /needs 32 pages .* over the limit of 16 pages/],
  ] as const) {
    it(`a replacement that is ${what} is refused; the running version keeps serving`, async () => {
      const refusedBefore = await reloads('refused');
      const served = (await health()).sha256;
      writeFileSync(file, bytes());
      const h = await waitFor('the refusal', async () => {
        const p = await health();
        return p.last_reload?.result === 'refused' && reason.test(p.last_reload.error) ? p : undefined;
      }, 8000);
      assert.equal(await reloads('refused'), refusedBefore + 1, 'refused once: the events of one write are one reload');
      assert.equal(h.sha256, served, 'the running version stayed');
      assert.equal(await stampNow(), 'd');
      assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
      assert.ok(gw.logs.some((l) => l.plugin === 'stamp' && l.msg === 'plugin reload refused; the running version keeps serving'), 'one log line says why');
    });
  }

  it('a stream that started on the old version finishes on it; the old version is retired only after it', async () => {
    await swapTo('e', () => writeFileSync(file, stampPlugin('e')));
    let swapped: Promise<void> | undefined;
    const reply = await postStream(`${gw.url}/v1/chat/completions`, { ...CHAT('one two three four five six seven eight'), stream: true }, {
      headers: { 'x-request-id': 'swap-stream' },
      onEvent: (_d, i) => {
        if (i === 1) swapped = swapTo('f', () => writeFileSync(file, stampPlugin('f')));
      },
    });
    await swapped;
    assert.equal(reply.status, 200);
    assert.ok(reply.done, 'the stream completed');
    const stamps = new Set(gw.logs.filter((l) => l.rid === 'swap-stream' && l.msg.startsWith('chunk ')).map((l) => l.msg));
    assert.deepEqual([...stamps], ['chunk e'], 'every chunk went through the version the stream started on');
    assert.equal(await stampNow(), 'f', 'new requests got the new version meanwhile');
    await waitFor('cleanup of e', () => (cleanups('e') === WORKERS ? true : undefined));
    const lastChunk = gw.logs.map((l) => l.rid === 'swap-stream' && l.msg === 'chunk e').lastIndexOf(true);
    const firstCleanup = gw.logs.findIndex((l) => l.msg === 'cleanup e');
    assert.ok(firstCleanup > lastChunk, 'cleanup ran after the stream ended');
  });
});

describe('hot swap: a replacement that fails its integrity check is refused', () => {
  it('a pinned sha256 refuses other bytes; the pinned version keeps serving', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-swap-pinned-'));
    const file = path.join(dir, 'stamp.wasm');
    const pinned = stampPlugin('p');
    writeFileSync(file, pinned);
    const sha256 = createHash('sha256').update(pinned).digest('hex');
    const gw = await startTestGateway({ runtime: { reload_debounce_ms: 50 }, plugins: [{ name: 'stamp', path: file, sha256 }] });
    try {
      writeFileSync(file, stampPlugin('q'));
      const refused = await waitFor('the refusal', async () => {
        const p = (await gw.get('/health')).json.plugins[0];
        return p.last_reload?.result === 'refused' ? p : undefined;
      });
      assert.match(refused.last_reload.error, /sha256/);
      assert.equal(refused.sha256, sha256);
      assert.equal((await gw.get('/v1/models')).headers.get('x-stamp'), 'p');
    } finally {
      await gw.close();
    }
  });
});
