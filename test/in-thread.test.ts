import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture, samplePlugin } from './helpers/paths.js';

// Where hook calls run (ABI.md §7.6): on the main thread for plugins the
// gateway can stop there, on the plugin workers otherwise, and a plugin that
// runs past its main-thread budget moves to the workers for good, with the
// call that ran over run again there.

async function metric(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue((await gw.metrics.render()).body, name, labels);
}

const placementOf = (gw: TestGateway, name: string) => {
  const p = gw.plugins.find((x) => x.name === name);
  assert.ok(p, `plugin ${name} is loaded`);
  return { placement: p.placement, reason: p.placementReason };
};

describe('placement at load', () => {
  it('hello-world (AssemblyScript) runs on the main thread and answers as on a worker', async () => {
    for (const budget of [2, 0]) {
      const gw = await startTestGateway({ runtime: { in_thread_budget_ms: budget }, plugins: [{ name: 'hello-world', path: samplePlugin('hello-world') }] });
      try {
        assert.deepEqual(placementOf(gw, 'hello-world'), budget > 0 ? { placement: 'main-thread', reason: null } : { placement: 'workers', reason: 'runtime.in_thread_budget_ms is 0' });
        const res = await gw.post('/v1/chat/completions', CHAT('ping'));
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-processed-by'), 'hello-world');
        assert.equal(res.headers.get('x-hello-context'), 'pre-hook-value');
        assert.equal(res.json.choices[0].message.content, 'ping');
      } finally {
        await gw.close();
      }
    }
  });

  it('a plugin that imports WASI runs on the workers, and says why', async () => {
    const gw = await startTestGateway({ plugins: [{ name: 'hello-go', path: samplePlugin('hello-world-go') }] });
    try {
      const { placement, reason } = placementOf(gw, 'hello-go');
      assert.equal(placement, 'workers');
      assert.match(reason ?? '', /imports from "sandgate:wasi_snapshot_preview1"/);
      assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
    } finally {
      await gw.close();
    }
  });
});

describe('a plugin that runs past the main-thread budget', () => {
  it('has each such call run again on a worker, and after three it stays on the workers', async () => {
    const gw = await startTestGateway({
      plugins: [{ name: 'loop', path: fixture('loop-llm'), timeout_ms: 300, on_error: 'fail-open', circuit_breaker: { failure_threshold: 0 } }],
    });
    const timeouts = () => metric(gw, 'sandgate_plugin_failures_total', { plugin: 'loop', hook: 'pre_llm_hook', kind: 'timeout' });
    try {
      assert.equal(placementOf(gw, 'loop').placement, 'main-thread');
      for (let i = 1; i <= 3; i++) {
        assert.equal(placementOf(gw, 'loop').placement, 'main-thread', `still on the main thread before overrun ${i}`);
        const res = await gw.post('/v1/chat/completions', CHAT());
        assert.equal(res.status, 200, 'fail-open: the request goes on without the plugin');
        // One call, one failure: the main-thread attempt is not counted, the worker's timeout is.
        assert.equal(await timeouts(), i);
      }
      const { placement, reason } = placementOf(gw, 'loop');
      assert.equal(placement, 'workers');
      assert.match(reason ?? '', /in_thread_budget_ms/);
      assert.equal(await metric(gw, 'sandgate_plugin_moved_to_workers_total', { plugin: 'loop' }), 1);
      assert.ok(gw.logs.some((l) => l.msg === 'plugin calls moved off the main thread to the plugin workers' && l.plugin === 'loop'));

      assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
      assert.equal(await timeouts(), 4);
      assert.equal(await metric(gw, 'sandgate_plugin_moved_to_workers_total', { plugin: 'loop' }), 1, 'moved once');
    } finally {
      await gw.close();
    }
  });

  it('times out on the main thread when its deadline is shorter than the budget, then moves', async () => {
    const gw = await startTestGateway({
      runtime: { in_thread_budget_ms: 50 },
      plugins: [{ name: 'loop', path: fixture('loop-llm'), timeout_ms: 20 }],
    });
    try {
      const res = await gw.post('/v1/chat/completions', CHAT());
      assert.equal(res.status, 504);
      assert.equal(res.json.error.code, ErrorCode.pluginTimeout);
      assert.equal(placementOf(gw, 'loop').placement, 'workers');
      assert.equal(await metric(gw, 'sandgate_plugin_worker_restarts_total'), 0, 'stopped where it ran: no worker was involved');
    } finally {
      await gw.close();
    }
  });
});

describe('a failure on the main thread', () => {
  it('drops that instance and creates a new one there for the next call', async () => {
    const gw = await startTestGateway({ plugins: [{ name: 'dirty', path: fixture('dirty-after-trap') }] });
    try {
      const long = await gw.post('/v1/chat/completions', CHAT('x'.repeat(400)));
      assert.equal(long.status, 500);
      assert.equal(long.json.error.code, ErrorCode.pluginTrap);
      // The trapped instance marked itself dirty: only a new one lets a short request through.
      assert.equal((await gw.post('/v1/chat/completions', CHAT('short'))).status, 200);
      assert.equal(placementOf(gw, 'dirty').placement, 'main-thread', 'a trap is not a reason to move');
    } finally {
      await gw.close();
    }
  });
});
