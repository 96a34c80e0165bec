import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../host/config/load.js';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { startGateway } from '../host/main/start-gateway.js';
import { CHAT, startTestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture, ROOT } from './helpers/paths.js';

// Each way a plugin can fail, under each policy: the failing call gets its own
// code, the instance is replaced, and the counters say what happened.

const NO_BREAKER = { failure_threshold: 0 };

/**
 * `restarts`: instances created again over three failing calls (default 2: the first call failed on
 * the instance made at load, calls 2 and 3 each ran on a new one). A looping plugin's calls each run
 * on the main thread first, stopped at its budget, then again on the worker (ABI.md §7.6): a new
 * instance in both places for calls 2 and 3.
 */
const CASES: { fixture: string; kind: string; code: string; status: number; extra?: Record<string, unknown>; restarts?: number }[] = [
  { fixture: 'trap-llm', kind: 'trap', code: ErrorCode.pluginTrap, status: 500 },
  { fixture: 'div-zero-llm', kind: 'trap', code: ErrorCode.pluginTrap, status: 500 },
  { fixture: 'stack-overflow-llm', kind: 'trap', code: ErrorCode.pluginTrap, status: 500 },
  { fixture: 'abort-llm', kind: 'trap', code: ErrorCode.pluginTrap, status: 500 },
  { fixture: 'garbage-llm', kind: 'bad_output', code: ErrorCode.pluginBadOutput, status: 500 },
  { fixture: 'oversized-llm', kind: 'output_too_large', code: ErrorCode.pluginOutputTooLarge, status: 500, extra: { max_output_bytes: 65536 } },
  { fixture: 'hook-error-llm', kind: 'hook_error', code: ErrorCode.pluginHookError, status: 500 },
  { fixture: 'memory-bomb', kind: 'memory', code: ErrorCode.pluginMemory, status: 500, extra: { memory_limit_mb: 8 } },
  { fixture: 'refused-grow-trap', kind: 'memory', code: ErrorCode.pluginMemory, status: 500, extra: { memory_limit_mb: 1 } },
  // At its cap, but it never asked for more: the trap is the plugin's own.
  { fixture: 'full-memory-trap', kind: 'trap', code: ErrorCode.pluginTrap, status: 500, extra: { memory_limit_mb: 1 } },
  { fixture: 'loop-llm', kind: 'timeout', code: ErrorCode.pluginTimeout, status: 504, extra: { timeout_ms: 100 }, restarts: 4 },
  { fixture: 'slow-llm', kind: 'timeout', code: ErrorCode.pluginTimeout, status: 504, extra: { timeout_ms: 20 } },
];

describe('each failure kind, fail-closed', () => {
  for (const c of CASES) {
    it(`${c.fixture}: ${c.status} ${c.code}, counted as ${c.kind}, instance replaced`, async () => {
      // One worker: every call reaches the same worker, so each failure there is followed by a re-creation.
      const gw = await startTestGateway({
        log_level: 'info',
        runtime: { workers: 1 },
        plugins: [
          { name: 'healthy', path: fixture('noop-llm') },
          { name: 'faulty', path: fixture(c.fixture), circuit_breaker: NO_BREAKER, ...c.extra },
        ],
      });
      try {
        for (let i = 0; i < 3; i++) {
          const r = await gw.post('/v1/chat/completions', CHAT());
          assert.equal(r.status, c.status);
          assert.equal(r.json.error.code, c.code);
          assert.equal(r.json.error.plugin, 'faulty');
          assert.equal(r.json.error.hook, 'pre_llm_hook');
          assert.doesNotMatch(r.text, /unreachable|panic|divide|stack|database/i, 'no plugin internals reach the client');
        }
        const metrics = (await gw.get('/metrics')).text;
        assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'faulty', kind: c.kind }), 3);
        assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'healthy' }), 0);
        // Counted when an instance is created again, which happens at the plugin's next call: the first
        // call failed on the instance made at load, calls 2 and 3 each ran on a new one. A reused instance counts nothing.
        assert.equal(metricValue(metrics, 'sandgate_plugin_instance_restarts_total', { plugin: 'faulty' }), c.restarts ?? 2);
        const logged = gw.logs.filter((l) => l.msg === 'plugin failure' && l.plugin === 'faulty');
        assert.equal(logged.length, 3);
        assert.ok(logged.every((l) => l.kind === c.kind && typeof l.rid === 'string' && l.hook === 'pre_llm_hook'), 'one log line per failure with rid, plugin, hook, kind');
      } finally {
        await gw.close();
      }
    });
  }

  it('slow-llm under its deadline is no failure at all', async () => {
    const gw = await startTestGateway({ log_level: 'info', plugins: [{ name: 'slow', path: fixture('slow-llm'), timeout_ms: 500 }] });
    try {
      const r = await gw.post('/v1/chat/completions', CHAT());
      assert.equal(r.status, 200);
      assert.equal(metricValue((await gw.get('/metrics')).text, 'sandgate_plugin_failures_total', { plugin: 'slow' }), 0);
    } finally {
      await gw.close();
    }
  });
});

describe('memory failures are told by a refused grow', () => {
  it('a grow refused in an earlier call does not make a later trap a memory failure', async () => {
    // One worker: both calls reach the same instance.
    const gw = await startTestGateway({
      log_level: 'info',
      runtime: { workers: 1 },
      plugins: [{ name: 'survivor', path: fixture('refused-grow-survived'), memory_limit_mb: 1, circuit_breaker: NO_BREAKER }],
    });
    try {
      const ok = await gw.post('/v1/chat/completions', CHAT('short'));
      assert.equal(ok.status, 200, 'a refused grow the plugin survives is no failure');
      const failed = await gw.post('/v1/chat/completions', CHAT('x'.repeat(400)));
      assert.equal(failed.status, 500);
      assert.equal(failed.json.error.code, ErrorCode.pluginTrap);
      const again = await gw.post('/v1/chat/completions', CHAT('short'));
      assert.equal(again.status, 200, "the replaced instance serves again");
      assert.equal(metricValue((await gw.get('/metrics')).text, 'sandgate_plugin_failures_total', { plugin: 'survivor', kind: 'trap' }), 1);
    } finally {
      await gw.close();
    }
  });

  it('the failure message names the pages and memory_limit_mb', async () => {
    const gw = await startTestGateway({ log_level: 'info', plugins: [{ name: 'bomb', path: fixture('refused-grow-trap'), memory_limit_mb: 1, circuit_breaker: NO_BREAKER }] });
    try {
      assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 500);
      const logged = gw.logs.find((l) => l.msg === 'plugin failure' && l.plugin === 'bomb');
      assert.match(String(logged?.err), /memory\.grow refused at 16 of 16 pages \(memory_limit_mb\)/);
    } finally {
      await gw.close();
    }
  });
});

describe('each failure kind, fail-open', () => {
  it('every faulty plugin is skipped and the request succeeds', async () => {
    const gw = await startTestGateway({
      log_level: 'info',
      plugins: CASES.map((c, i) => ({ name: `faulty-${i}`, path: fixture(c.fixture), on_error: 'fail-open', circuit_breaker: NO_BREAKER, ...c.extra })),
    });
    try {
      const r = await gw.post('/v1/chat/completions', CHAT('through all of them'), { 'x-request-id': 'rid-fail-open' });
      assert.equal(r.status, 200);
      assert.equal(r.json.choices[0].message.content, 'through all of them');
      const kinds = gw.logs.filter((l) => l.rid === 'rid-fail-open' && l.msg === 'plugin failure').map((l) => l.kind);
      assert.deepEqual(kinds, CASES.map((c) => c.kind));
    } finally {
      await gw.close();
    }
  });
});

describe('init failures', () => {
  async function startWith(name: string, extra: Record<string, unknown>): Promise<GatewayError | null> {
    const config = parseConfig({ log_level: 'silent', server: { port: 0 }, plugins: [{ name: 'bad-init', path: fixture(name), ...extra }] }, { baseDir: ROOT });
    try {
      const gw = await startGateway(config);
      await gw.close();
      return null;
    } catch (e) {
      assert.ok(e instanceof GatewayError);
      return e;
    }
  }

  it('an init that loops is stopped at init_timeout_ms and the plugin does not load', async () => {
    const started = Date.now();
    const e = await startWith('init-loop', { init_timeout_ms: 300 });
    assert.equal(e?.code, ErrorCode.pluginInitFailed);
    assert.match(e!.message, /did not return within 300 ms/);
    assert.ok(Date.now() - started < 5000);
  });

  it('an init that traps does not load', async () => {
    const e = await startWith('init-trap', {});
    assert.equal(e?.code, ErrorCode.pluginInitFailed);
  });

  it('fail-open plugins whose init fails are skipped', async () => {
    assert.equal(await startWith('init-loop', { init_timeout_ms: 300, on_error: 'fail-open' }), null);
    assert.equal(await startWith('init-trap', { on_error: 'fail-open' }), null);
  });
});
