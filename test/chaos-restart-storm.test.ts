import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CHAT, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';
import { pool, timed, type TimedResponse } from './helpers/traffic.js';

// A restart storm: a plugin whose init succeeds at load but never returns when
// its instance is created again after a failure. The promises under test:
// - creating an instance again is part of one call of that plugin, bounded by
//   its init_timeout_ms: the other plugins' calls and the plugin-free and
//   operator routes keep being answered;
// - those failures open the plugin's circuit, so worker restarts stop;
// - afterwards the gateway is back to its baseline (threads, memory).
// And the queue bound: a call that waits too long for a worker is shed with a
// 503 naming its plugin, counted in /metrics, never held indefinitely.

/** The OS threads of this process (the gateway runs in it); null where /proc is missing. */
function osThreads(): number | null {
  if (!existsSync('/proc/self/status')) return null;
  const m = /^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : null;
}

/** Waits until the pool has all its workers up and idle again (bounded). */
async function settled(gw: TestGateway, workers: number): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    const s = gw.pool.stats();
    if (s.workers === workers && s.ready === workers && s.busy === 0 && s.queued === 0) return;
    assert.ok(Date.now() < until, `the pool did not settle: ${JSON.stringify(s)}`);
    await sleep(50);
  }
}

describe('a restart storm: an init that loops whenever an instance is created again', () => {
  const WORKERS = 2;
  const INIT_TIMEOUT_MS = 500;
  const FAILURE_THRESHOLD = 3;
  const STORM_REQUESTS = 16;
  const STORM_CONCURRENCY = 4;
  const HEALTHY_CONCURRENCY = 4;
  /**
   * The storm begins this long after the test starts: every instance created
   * at load (before it) starts normally; every one created later loops. The
   * gateway must have started by then (asserted); this machine needs well under a second.
   */
  const STORM_MARGIN_MS = 3000;
  /**
   * The worst a healthy call may wait: the storm holds at most one worker (the
   * bulkhead) for INIT_TIMEOUT_MS, and when its worker is replaced the
   * storm's next call may take the other one while the replacement's thread
   * starts. Generous for this shared 2-core machine.
   */
  const HEALTHY_BOUND_MS = 2500;

  let gw: TestGateway;
  let stormAt: number;
  before(async () => {
    stormAt = Date.now() + STORM_MARGIN_MS;
    gw = await startTestGateway({
      log_level: 'warn',
      runtime: { workers: WORKERS },
      plugins: [
        // Its transport hook runs on every request, GET /v1/models included: the "other plugin".
        { name: 'healthy', path: fixture('set-header') },
        {
          name: 'storm',
          path: fixture('init-loop-after-time'),
          config: String(stormAt),
          timeout_ms: 200,
          init_timeout_ms: INIT_TIMEOUT_MS,
          circuit_breaker: { failure_threshold: FAILURE_THRESHOLD, cooldown_ms: 60_000 },
        },
      ],
    });
  });
  after(() => gw.close());

  // A storm that is not contained hangs requests: fail instead of waiting for them.
  it('keeps the other plugins, /v1/models, /health and /metrics answering, opens the circuit, and bounds the restarts', { timeout: 60_000 }, async (t) => {
    assert.ok(Date.now() < stormAt - 200, `the gateway started too slowly for this test (raise STORM_MARGIN_MS): ${stormAt - Date.now()} ms were left`);

    // Baseline, before the storm: warm, both workers up, no chat request yet (it would reach the storm plugin).
    const warm = await pool(Array.from({ length: 40 }, () => () => gw.get('/v1/models')), HEALTHY_CONCURRENCY);
    assert.ok(warm.every((r) => r.status === 200));
    await settled(gw, WORKERS);
    const threadsBefore = osThreads();
    const rssBefore = process.memoryUsage().rss;
    await sleep(Math.max(0, stormAt - Date.now() + 50));

    // The storm, with healthy traffic beside it for as long as it lasts.
    let storming = true;
    const healthy: TimedResponse[] = [];
    const operator: TimedResponse[] = [];
    const healthyTraffic = Promise.all(
      Array.from({ length: HEALTHY_CONCURRENCY }, async (_, i) => {
        while (storming) {
          healthy.push(await timed(() => gw.get('/v1/models')));
          if (i === 0) operator.push(await timed(() => gw.get('/health')), await timed(() => gw.get('/metrics')));
        }
      }),
    );
    const storm = await pool(Array.from({ length: STORM_REQUESTS }, () => () => timed(() => gw.post('/v1/chat/completions', CHAT()))), STORM_CONCURRENCY);
    storming = false;
    await healthyTraffic;

    // Healthy traffic was served all along, in bounded time.
    assert.ok(healthy.length >= 20, `healthy requests were sent during the storm (${healthy.length})`);
    assert.deepEqual(healthy.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text}`), [], 'every GET /v1/models succeeded during the storm');
    assert.ok(operator.every((r) => r.status === 200), 'every /health and /metrics answered during the storm');
    const slowestHealthy = Math.max(...healthy.map((r) => r.ms), ...operator.map((r) => r.ms));
    assert.ok(slowestHealthy < HEALTHY_BOUND_MS, `slowest healthy request took ${slowestHealthy} ms`);

    // Every storm request failed in a way that names the plugin, and the circuit ended them.
    const outcomes = storm.map((r) => `${r.status} ${r.json?.error?.code}`);
    for (const r of storm) assert.equal(r.json?.error?.plugin, 'storm', r.text);
    const allowed = new Set([`500 ${ErrorCode.pluginTrap}`, `504 ${ErrorCode.pluginTimeout}`, `503 ${ErrorCode.pluginOverloaded}`, `503 ${ErrorCode.pluginCircuitOpen}`]);
    assert.deepEqual(outcomes.filter((o) => !allowed.has(o)), [], 'only the storm plugin\'s own failures');
    assert.ok(outcomes.includes(`504 ${ErrorCode.pluginTimeout}`), `an instance creation overran init_timeout_ms: ${outcomes.join(', ')}`);
    assert.ok(outcomes.includes(`503 ${ErrorCode.pluginCircuitOpen}`), `the circuit opened: ${outcomes.join(', ')}`);
    const slowestStorm = Math.max(...storm.map((r) => r.ms));
    // Queue wait (1000 ms default) plus creating an instance (INIT_TIMEOUT_MS), plus slack.
    assert.ok(slowestStorm < 1000 + INIT_TIMEOUT_MS + 1500, `slowest storm request took ${slowestStorm} ms`);

    const metrics = (await gw.get('/metrics')).text;
    assert.equal(metricValue(metrics, 'sandgate_plugin_circuit_state', { plugin: 'storm' }), 1, 'circuit open');
    const health = (await gw.get('/health')).json;
    assert.equal(health.plugins.find((p: { name: string }) => p.name === 'storm').circuit, 'open');
    assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'healthy' }), 0, 'the healthy plugin never failed');

    // Worker restarts: one per instance creation that overran, and each such call was admitted by the
    // breaker before it opened: at most the threshold plus the calls already in flight then.
    const restarts = metricValue(metrics, 'sandgate_plugin_worker_restarts_total');
    assert.ok(restarts >= 1, 'the storm did replace a worker');
    assert.ok(restarts <= FAILURE_THRESHOLD + STORM_CONCURRENCY - 1, `worker restarts bounded: ${restarts}`);
    // And they stopped: with the circuit open, more requests cost no restart.
    const more = await pool(Array.from({ length: 8 }, () => () => gw.post('/v1/chat/completions', CHAT())), STORM_CONCURRENCY);
    assert.ok(more.every((r) => r.json?.error?.code === ErrorCode.pluginCircuitOpen));
    await sleep(INIT_TIMEOUT_MS + 200);
    assert.equal(metricValue((await gw.get('/metrics')).text, 'sandgate_plugin_worker_restarts_total'), restarts, 'no restart once the circuit is open');

    // Back to baseline: both workers up and idle, the replaced threads gone, memory near where it was.
    await settled(gw, WORKERS);
    const threadsAfter = osThreads();
    if (threadsBefore !== null && threadsAfter !== null) assert.ok(threadsAfter <= threadsBefore + 1, `threads: ${threadsBefore} before, ${threadsAfter} after`);
    const grownMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grownMb < 128, `RSS grew by ${grownMb.toFixed(0)} MiB`);
    t.diagnostic(
      `storm: ${outcomes.join(', ')}; worker restarts ${restarts}; ${healthy.length} healthy requests, slowest healthy ${slowestHealthy} ms, slowest storm ${slowestStorm} ms; threads ${threadsBefore} -> ${threadsAfter}; RSS +${grownMb.toFixed(0)} MiB`,
    );
  });
});

describe('creating an instance again has its own deadline', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      log_level: 'warn',
      runtime: { workers: 1 },
      plugins: [
        // init takes 200 ms, four times the hook deadline: it must be bounded by init_timeout_ms, not timeout_ms.
        { name: 'slow-init', path: fixture('slow-init'), timeout_ms: 50, init_timeout_ms: 2000, circuit_breaker: { failure_threshold: 0 } },
      ],
    });
  });
  after(() => gw.close());

  it('a call that must create the instance first gets init_timeout_ms for that, then timeout_ms for the hook', async () => {
    for (let round = 0; round < 3; round++) {
      const failed = await gw.post('/v1/chat/completions', CHAT('x'.repeat(400)));
      assert.equal(failed.json?.error?.code, ErrorCode.pluginTrap, 'a long input traps: the instance is discarded');
      const next = await timed(() => gw.post('/v1/chat/completions', CHAT('short')));
      assert.equal(next.status, 200, `the next call creates a new instance (init 200 ms) and then runs: ${next.text}`);
      assert.ok(next.ms >= 200, `it waited for init (${next.ms} ms)`);
    }
    const metrics = (await gw.get('/metrics')).text;
    assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'slow-init', kind: 'timeout' }), 0);
    assert.equal(metricValue(metrics, 'sandgate_plugin_worker_restarts_total'), 0, 'no worker was replaced: a trap costs only its instance');
  });
});

describe('a hook that loops in a replacement worker', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      log_level: 'warn',
      runtime: { workers: 1 },
      plugins: [{ name: 'loop', path: fixture('loop-llm'), timeout_ms: 200, init_timeout_ms: 5000, circuit_breaker: { failure_threshold: 0 } }],
    });
  });
  after(() => gw.close());

  it('times out at timeout_ms, not init_timeout_ms plus timeout_ms, though its instance is created first', async () => {
    for (let i = 0; i < 3; i++) {
      // After the first overrun, each call lands on a fresh worker with no instance yet.
      const r = await timed(() => gw.post('/v1/chat/completions', CHAT()));
      assert.equal(r.json?.error?.code, ErrorCode.pluginTimeout);
      assert.ok(r.ms < 200 + 1500, `call ${i} answered after ${r.ms} ms`);
    }
  });
});

describe('the queue bound: calls that wait too long for a worker are shed', () => {
  const QUEUE_TIMEOUT_MS = 100;
  const TIMEOUT_MS = 300;
  const REQUESTS = 16;

  async function burst(gw: TestGateway): Promise<TimedResponse[]> {
    // All at once: the slow plugin (50 ms a call) may occupy one worker of two (its bulkhead), so most wait.
    return Promise.all(Array.from({ length: REQUESTS }, () => timed(() => gw.post('/v1/chat/completions', CHAT()))));
  }

  describe('fail-closed', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startTestGateway({
        log_level: 'warn',
        runtime: { workers: 2, queue_timeout_ms: QUEUE_TIMEOUT_MS },
        // The default breaker (5 consecutive failures): shedding must not open it.
        plugins: [{ name: 'slow', path: fixture('slow-llm'), timeout_ms: TIMEOUT_MS }],
      });
    });
    after(() => gw.close());

    it('answers 503 plugin_overloaded naming the plugin, counts it, never waits past the bound, and leaves the circuit closed', async (t) => {
      const results = await burst(gw);
      const ok = results.filter((r) => r.status === 200);
      const shed = results.filter((r) => r.status !== 200);
      assert.ok(ok.length >= 1, 'the calls a worker took in time succeeded');
      assert.ok(shed.length >= REQUESTS / 2, `most were shed (${shed.length} of ${REQUESTS})`);
      for (const r of shed) {
        assert.equal(r.status, 503, r.text);
        assert.equal(r.json.error.code, ErrorCode.pluginOverloaded);
        assert.equal(r.json.error.plugin, 'slow');
        assert.equal(r.json.error.hook, 'pre_llm_hook');
        assert.match(r.json.error.message, /plugin "slow" is overloaded/);
      }
      // Documented bound: queue_timeout_ms, then timeout_ms once a worker took the call; 500 ms slack for this machine.
      const slowest = Math.max(...results.map((r) => r.ms));
      assert.ok(slowest < QUEUE_TIMEOUT_MS + TIMEOUT_MS + 500, `slowest request took ${slowest} ms`);

      const metrics = (await gw.get('/metrics')).text;
      assert.equal(metricValue(metrics, 'sandgate_plugin_shed_total', { plugin: 'slow', hook: 'pre_llm_hook' }), shed.length);
      assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'slow' }), ok.length, 'a shed call is no call');
      assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'slow' }), 0, 'nor a failure of the plugin');
      assert.equal(metricValue(metrics, 'sandgate_http_requests_total', { route: '/v1/chat/completions', status: '503' }), shed.length);
      assert.deepEqual(gw.logs.filter((l) => l.plugin === 'slow' && l.circuit !== undefined).map((l) => l.circuit), [], 'shedding never opened the circuit');
      assert.equal(gw.logs.filter((l) => l.msg === 'plugin call shed: no worker free in time' && l.plugin === 'slow').length, shed.length, 'one log line per shed call');

      // Once the burst is over the plugin serves normally again.
      assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
      t.diagnostic(`${ok.length} served, ${shed.length} shed; slowest ${slowest} ms`);
    });
  });

  describe('fail-open', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startTestGateway({
        log_level: 'warn',
        runtime: { workers: 2, queue_timeout_ms: QUEUE_TIMEOUT_MS },
        plugins: [{ name: 'slow', path: fixture('slow-llm'), timeout_ms: TIMEOUT_MS, on_error: 'fail-open' }],
      });
    });
    after(() => gw.close());

    it('skips the shed plugin: every request succeeds, and the sheds are counted', async () => {
      const results = await burst(gw);
      assert.ok(results.every((r) => r.status === 200 && r.json.choices[0].message.content === 'Hello!'));
      const metrics = (await gw.get('/metrics')).text;
      const shed = metricValue(metrics, 'sandgate_plugin_shed_total', { plugin: 'slow' });
      assert.ok(shed >= REQUESTS / 2, `most calls were shed (${shed})`);
      assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'slow' }) + shed, REQUESTS);
    });
  });
});
