import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../host/config/load.js';
import { DEFAULTS } from '../host/config/schema.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { PLUGIN_THREAD_NAME } from '../host/runtime/worker/os-thread.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { fixture, ROOT } from './helpers/paths.js';
import { waitFor } from './helpers/wait.js';

// Plugin worker threads run at a lower CPU priority than the main thread
// (runtime.worker_nice), so a guest that spins cannot starve the thread that
// serves HTTP and answers its deadline. Read from the kernel: each thread's
// niceness in /proc/self/task/<tid>/stat (the gateway runs in this process).

const LINUX = existsSync('/proc/thread-self');

/** Niceness of one thread of this process: field 19 of its stat line (fields counted after the ")" of the name). */
function niceOf(tid: string): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** The plugin threads of this process (they name themselves) and their niceness. */
function pluginThreads(): { tid: string; nice: number }[] {
  const out: { tid: string; nice: number }[] = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() === PLUGIN_THREAD_NAME) out.push({ tid, nice: niceOf(tid) });
    } catch {
      // A thread that ended while we looked.
    }
  }
  return out;
}

const mainNice = () => niceOf(String(process.pid));

describe('plugin worker threads at a lower CPU priority', { skip: !LINUX && 'needs Linux /proc' }, () => {
  const WORKERS = 2;
  const NICE = 7;
  let gw: TestGateway;
  let niceBefore: number;
  before(async () => {
    niceBefore = mainNice();
    gw = await startTestGateway({
      log_level: 'warn',
      runtime: { workers: WORKERS, worker_nice: NICE, long_call_nice: NICE, watch_plugins: false, watch_config: false },
      plugins: [
        { name: 'hello', path: fixture('set-header') },
        { name: 'loop', path: fixture('loop-llm'), timeout_ms: 100, on_error: 'fail-open', circuit_breaker: { failure_threshold: 0 } },
      ],
    });
  });
  after(() => gw.close());

  it('every plugin thread runs at runtime.worker_nice; the main thread keeps its own priority', () => {
    const threads = pluginThreads();
    assert.ok(threads.length >= WORKERS, `at least ${WORKERS} plugin threads: ${JSON.stringify(threads)}`);
    for (const t of threads) assert.equal(t.nice, NICE, `thread ${t.tid} niceness`);
    assert.equal(mainNice(), niceBefore, 'the main thread is not reniced');
  });

  it('after a deadline, every plugin thread (the spare too) runs at worker_nice', async () => {
    const r = await gw.post('/v1/chat/completions', CHAT('reaches the loop'));
    assert.equal(r.status, 200, r.text);
    await waitFor('the pool back to full strength', () => {
      const s = gw.pool.stats();
      return s.ready === WORKERS && s.busy === 0;
    });
    const threads = pluginThreads();
    assert.ok(threads.length >= WORKERS);
    for (const t of threads) assert.equal(t.nice, NICE, `thread ${t.tid} niceness`);
    assert.equal(mainNice(), niceBefore);
  });
});

describe('a long call runs at runtime.long_call_nice until it ends', { skip: !LINUX && 'needs Linux /proc' }, () => {
  const WORKERS = 2;
  const NICE = 3;
  const LONG = 17;
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      log_level: 'warn',
      runtime: { workers: WORKERS, worker_nice: NICE, long_call_nice: LONG, watch_plugins: false, watch_config: false },
      plugins: [
        { name: 'loop', path: fixture('loop-llm'), timeout_ms: 3000, on_error: 'fail-open', circuit_breaker: { failure_threshold: 0 } },
      ],
    });
    await waitFor('the spare up', () => gw.pool.stats().spare === 'ready', 10_000);
  });
  after(() => gw.close());

  it('a looping call\'s thread drops to long_call_nice while it runs; the others keep worker_nice', async () => {
    const looping = gw.post('/v1/chat/completions', CHAT('reaches the loop'));
    const lowered = await waitFor('a plugin thread at long_call_nice', () => {
      const l = pluginThreads().filter((t) => t.nice === LONG);
      return l.length > 0 && l;
    });
    assert.equal(lowered.length, 1, JSON.stringify(pluginThreads()));
    assert.deepEqual(pluginThreads().filter((t) => t.nice !== LONG).map((t) => t.nice), Array(WORKERS).fill(NICE), 'the other worker and the spare');
    assert.equal((await looping).status, 200);
  });

});

describe('a long call that returns gets its priority back', { skip: !LINUX && 'needs Linux /proc' }, () => {
  const WORKERS = 2;
  const NICE = 3;
  const LONG = 17;
  let gw: TestGateway;
  const settled = () => gw.pool.stats().ready === WORKERS && gw.pool.stats().spare === 'ready';
  before(async () => {
    gw = await startTestGateway({
      log_level: 'warn',
      runtime: { workers: WORKERS, worker_nice: NICE, long_call_nice: LONG, watch_plugins: false, watch_config: false },
      // pre_llm_hook busy-waits 50 ms and returns: a long call that ends well.
      plugins: [{ name: 'slow', path: fixture('slow-llm'), timeout_ms: 5000 }],
    });
    await waitFor('the pool settled', settled, 10_000);
  });
  after(() => gw.close());

  it('its thread is back at worker_nice, and the worker stays', async () => {
    assert.equal(pluginThreads().length, WORKERS + 1, 'the workers and the spare');
    const r = await gw.post('/v1/chat/completions', CHAT('slow but in time'));
    assert.equal(r.status, 200, r.text);
    await waitFor('the pool settled', settled, 10_000);
    assert.deepEqual(pluginThreads().map((t) => t.nice), Array(WORKERS + 1).fill(NICE), 'every plugin thread back at worker_nice');
    // Raising a priority again needs CAP_SYS_NICE: without it the worker is replaced instead (also at worker_nice).
    if (process.getuid?.() === 0) assert.equal(gw.logs.filter((l) => l.msg === 'plugin worker replaced').length, 0, 'no worker replaced');
  });
});

describe('runtime.worker_nice 0 leaves plugin threads at the gateway priority', { skip: !LINUX && 'needs Linux /proc' }, () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ log_level: 'warn', runtime: { workers: 2, worker_nice: 0, watch_plugins: false, watch_config: false }, plugins: [{ name: 'hello', path: fixture('set-header') }] });
  });
  after(() => gw.close());

  it('the plugin threads have the main thread niceness', () => {
    const threads = pluginThreads();
    assert.ok(threads.length >= 2);
    for (const t of threads) assert.equal(t.nice, mainNice(), `thread ${t.tid}`);
  });
});

describe('runtime.worker_nice and long_call_nice are validated', () => {
  it('refuses a niceness outside 0..19; defaults from DEFAULTS', () => {
    for (const nice of [-1, 20, 1.5]) {
      for (const key of ['worker_nice', 'long_call_nice']) {
        assert.throws(() => parseConfig({ runtime: { [key]: nice } }, { baseDir: ROOT }), (e) => e instanceof GatewayError && e.code === ErrorCode.configInvalid, `${key} ${nice}`);
      }
    }
    const { runtime } = parseConfig({}, { baseDir: ROOT });
    assert.equal(runtime.worker_nice, DEFAULTS.workerNice);
    assert.equal(runtime.long_call_nice, DEFAULTS.longCallNice);
  });
});
