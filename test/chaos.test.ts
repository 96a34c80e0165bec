import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';
import { pool, timed } from './helpers/traffic.js';

// The chaos suite: concurrent traffic through a chain that mixes every kind of
// misbehaving plugin with healthy ones. The promises under test:
// - the gateway never dies and no request hangs past its deadlines plus slack;
// - requests that do not touch the faulty hooks all succeed meanwhile;
// - every failing request gets the outcome its plugin's policy says;
// - /metrics counts exactly what was sent; memory stays bounded.

const NO_BREAKER = { failure_threshold: 0 };
const LOOP_TIMEOUT_MS = 150;

/** Fail-open faulty plugins, each failing every pre_llm_hook call in its own way. */
const FAULTY = [
  { name: 'abort', fixture: 'abort-llm', kind: 'trap' },
  { name: 'div-zero', fixture: 'div-zero-llm', kind: 'trap' },
  { name: 'stack', fixture: 'stack-overflow-llm', kind: 'trap' },
  { name: 'garbage', fixture: 'garbage-llm', kind: 'bad_output' },
  { name: 'oversized', fixture: 'oversized-llm', kind: 'output_too_large', extra: { max_output_bytes: 65536 } },
  { name: 'hook-error', fixture: 'hook-error-llm', kind: 'hook_error' },
  { name: 'bomb', fixture: 'memory-bomb', kind: 'memory', extra: { memory_limit_mb: 16 } },
  { name: 'loop', fixture: 'loop-llm', kind: 'timeout', extra: { timeout_ms: LOOP_TIMEOUT_MS } },
];

/**
 * Documented slack: a request's worst case is the sum of the deadlines of the
 * hooks it crosses, plus waiting for a free worker while others are being
 * replaced after overruns. 10 s covers that on this 2-core machine many times over.
 */
const SLACK_MS = 10_000;

describe('chaos: a chain of misbehaving plugins under concurrent traffic', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      log_level: 'warn',
      // This suite counts every failure by kind. Six requests at a time queue for the looping
      // plugin's one worker (its bulkhead), so the default queue bound would shed some of its
      // calls instead; shedding has its own suite (chaos-restart-storm.test.ts).
      runtime: { queue_timeout_ms: SLACK_MS },
      plugins: [
        { name: 'healthy-transport', path: fixture('set-header') },
        ...FAULTY.map((f) => ({ name: f.name, path: fixture(f.fixture), on_error: 'fail-open', circuit_breaker: NO_BREAKER, ...f.extra })),
        { name: 'slow-but-in-time', path: fixture('slow-llm'), timeout_ms: 1000 },
        { name: 'healthy-llm', path: fixture('noop-llm') },
        // Last, fail-closed: traps only on long inputs, so the client chooses which requests fail.
        { name: 'strict', path: fixture('trap-on-long-input'), circuit_breaker: NO_BREAKER },
      ],
    });
  });
  after(() => gw.close());

  it('keeps every promise', async (t) => {
    const SHORT = 24;
    const LONG = 8;
    const HEALTHY = 60;
    const rssBefore = process.memoryUsage().rss;

    const llm = [
      ...Array.from({ length: SHORT }, (_, i) => () => timed(() => gw.post('/v1/chat/completions', CHAT(`short ${i}`)))),
      ...Array.from({ length: LONG }, () => () => timed(() => gw.post('/v1/chat/completions', CHAT('x'.repeat(400))))),
    ];
    const healthy = Array.from({ length: HEALTHY }, () => () => timed(() => gw.get('/v1/models')));
    const [llmResults, healthyResults] = await Promise.all([pool(llm, 6), pool(healthy, 4)]);

    // Healthy requests (transport hooks only) all succeeded while the faulty hooks were being hit.
    assert.ok(healthyResults.every((r) => r.status === 200), 'every healthy request succeeded');

    // Fail-open faults are skipped: short requests succeed with the right content.
    const short = llmResults.slice(0, SHORT);
    short.forEach((r, i) => {
      assert.equal(r.status, 200, `short request ${i}: ${r.text}`);
      assert.equal(r.json.choices[0].message.content, `short ${i}`);
    });
    // The fail-closed plugin's failures answer 500 naming it.
    for (const r of llmResults.slice(SHORT)) {
      assert.equal(r.status, 500);
      assert.equal(r.json.error.code, ErrorCode.pluginTrap);
      assert.equal(r.json.error.plugin, 'strict');
    }

    // No request hung: each finished within the deadlines it crossed plus the documented slack.
    const budget = LOOP_TIMEOUT_MS + 1000 + SLACK_MS;
    const slowest = Math.max(...llmResults.map((r) => r.ms), ...healthyResults.map((r) => r.ms));
    assert.ok(slowest < budget, `slowest request took ${slowest} ms (budget ${budget} ms)`);
    t.diagnostic(`slowest request ${slowest} ms; slowest healthy request ${Math.max(...healthyResults.map((r) => r.ms))} ms`);

    // The counters match what was sent.
    const metrics = (await gw.get('/metrics')).text;
    for (const f of FAULTY) {
      assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: f.name }), SHORT + LONG, `${f.name} failures`);
      assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: f.name, kind: f.kind }), SHORT + LONG, `${f.name} failures of kind ${f.kind}`);
    }
    assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'strict', kind: 'trap' }), LONG);
    for (const healthyPlugin of ['healthy-transport', 'slow-but-in-time', 'healthy-llm']) {
      assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: healthyPlugin }), 0, `${healthyPlugin} never failed`);
    }
    assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'healthy-transport', hook: 'http_transport_pre_hook' }), SHORT + LONG + HEALTHY);
    assert.equal(metricValue(metrics, 'sandgate_http_requests_total', { route: '/v1/chat/completions', status: '200' }), SHORT);
    assert.equal(metricValue(metrics, 'sandgate_http_requests_total', { route: '/v1/chat/completions', status: '500' }), LONG);
    assert.equal(metricValue(metrics, 'sandgate_http_requests_total', { route: '/v1/models', status: '200' }), HEALTHY);
    // The looping guests stop themselves at their deadline (deadline checks added at load): their workers live
    // on. One that does not report back in time is still replaced, so not every overrun is asserted.
    const restarts = metricValue(metrics, 'sandgate_plugin_worker_restarts_total');
    assert.ok(restarts < SHORT + LONG, `the overruns were stopped by their workers, not by replacing them (${restarts} of ${SHORT + LONG} replaced)`);

    // The gateway is still healthy, and its memory stayed bounded (the memory bomb hit its 16 MiB cap 32 times).
    assert.equal((await gw.get('/health')).status, 200);
    const grownMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grownMb < 512, `RSS grew by ${grownMb.toFixed(0)} MiB`);
    t.diagnostic(`RSS grew by ${grownMb.toFixed(0)} MiB over the run`);
  });
});

describe('a memory bomb hit again and again', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      log_level: 'warn',
      plugins: [{ name: 'bomb', path: fixture('memory-bomb'), memory_limit_mb: 32, on_error: 'fail-open', circuit_breaker: NO_BREAKER }],
    });
  });
  after(() => gw.close());

  it('keeps the gateway memory bounded: discarded instances are freed', async (t) => {
    const samples: number[] = [];
    for (let round = 0; round < 4; round++) {
      await pool(Array.from({ length: 25 }, () => () => gw.post('/v1/chat/completions', CHAT())), 4);
      samples.push(process.memoryUsage().rss);
    }
    // 100 calls each filled 32 MiB; without freeing, RSS would grow by gigabytes.
    const growthMb = (samples[3] - samples[0]) / 2 ** 20;
    assert.ok(growthMb < 256, `RSS grew ${growthMb.toFixed(0)} MiB between round 1 and round 4 (samples ${samples.map((s) => (s / 2 ** 20).toFixed(0)).join(', ')} MiB)`);
    t.diagnostic(`RSS per round: ${samples.map((s) => (s / 2 ** 20).toFixed(0)).join(', ')} MiB`);
    const metrics = (await gw.get('/metrics')).text;
    assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'bomb', kind: 'memory' }), 100);
  });
});
