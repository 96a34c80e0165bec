import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { CircuitBreaker, type CircuitState } from '../host/plugins/circuit-breaker.js';
import { CHAT, startTestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';

// trap-on-long-input fails only on long inputs, so the client decides when it fails.
const LONG = CHAT('x'.repeat(400));
const SHORT = CHAT('hi');

describe('CircuitBreaker', () => {
  it('opens after the threshold, lets one trial through after the cool-down, and closes on success', () => {
    let now = 0;
    const states: CircuitState[] = [];
    const b = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 100 }, (s) => states.push(s), () => now);
    assert.equal(b.admit(), true);
    b.onFailure();
    assert.equal(b.state, 'closed', 'one failure is below the threshold');
    b.onSuccess();
    b.onFailure();
    assert.equal(b.state, 'closed', 'a success resets the count: failures must be consecutive');
    b.onFailure();
    assert.equal(b.state, 'open');
    assert.equal(b.admit(), false);
    now = 100;
    assert.equal(b.admit(), true, 'the trial call');
    assert.equal(b.state, 'half_open');
    assert.equal(b.admit(), false, 'only one trial at a time');
    b.onFailure();
    assert.equal(b.state, 'open', 'a failed trial opens it again');
    now = 150;
    assert.equal(b.admit(), false, 'for a new cool-down');
    now = 200;
    assert.equal(b.admit(), true);
    b.onSuccess();
    assert.equal(b.state, 'closed');
    assert.deepEqual(states, ['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('a call that was not made (shed) counts neither way, and does not use up the half-open trial', () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 100 }, () => {}, () => now);
    b.onFailure();
    b.onNoVerdict();
    b.onFailure();
    assert.equal(b.state, 'open', 'the failures either side of it are still consecutive');
    now = 100;
    assert.equal(b.admit(), true, 'the trial call');
    b.onNoVerdict();
    assert.equal(b.state, 'half_open');
    assert.equal(b.admit(), true, 'the trial was shed: the next call is the trial');
    b.onSuccess();
    assert.equal(b.state, 'closed');
  });

  it('a threshold of 0 never opens', () => {
    const b = new CircuitBreaker({ failureThreshold: 0, cooldownMs: 10 });
    for (let i = 0; i < 100; i++) b.onFailure();
    assert.equal(b.state, 'closed');
  });
});

describe('circuit breaker in the gateway', () => {
  it('fail-closed: rejects at once while open (503, plugin not called), then a trial decides', async () => {
    const gw = await startTestGateway({
      log_level: 'info',
      plugins: [{ name: 'flaky', path: fixture('trap-on-long-input'), circuit_breaker: { failure_threshold: 3, cooldown_ms: 400 } }],
    });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await gw.post('/v1/chat/completions', LONG)).json.error.code, ErrorCode.pluginTrap);
      const rejected = await gw.post('/v1/chat/completions', SHORT);
      assert.equal(rejected.status, 503);
      assert.equal(rejected.json.error.code, ErrorCode.pluginCircuitOpen);
      assert.equal(rejected.json.error.plugin, 'flaky');
      let metrics = (await gw.get('/metrics')).text;
      assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'flaky' }), 3, 'not called while open');
      assert.equal(metricValue(metrics, 'sandgate_plugin_circuit_rejections_total', { plugin: 'flaky' }), 1);
      assert.equal(metricValue(metrics, 'sandgate_plugin_circuit_state', { plugin: 'flaky' }), 1);
      const health = await gw.get('/health');
      assert.equal(health.json.status, 'degraded');
      assert.equal(health.json.plugins[0].circuit, 'open');

      await sleep(450);
      const trial = await gw.post('/v1/chat/completions', SHORT);
      assert.equal(trial.status, 200, 'the trial call succeeds and closes the circuit');
      assert.equal((await gw.post('/v1/chat/completions', SHORT)).status, 200);
      metrics = (await gw.get('/metrics')).text;
      assert.equal(metricValue(metrics, 'sandgate_plugin_circuit_state', { plugin: 'flaky' }), 0);
      assert.equal((await gw.get('/health')).json.status, 'ok');
    } finally {
      await gw.close();
    }
  });

  it('a failed trial opens the circuit for another cool-down', async () => {
    const gw = await startTestGateway({
      log_level: 'info',
      plugins: [{ name: 'flaky', path: fixture('trap-on-long-input'), circuit_breaker: { failure_threshold: 1, cooldown_ms: 300 } }],
    });
    try {
      assert.equal((await gw.post('/v1/chat/completions', LONG)).json.error.code, ErrorCode.pluginTrap);
      await sleep(350);
      assert.equal((await gw.post('/v1/chat/completions', LONG)).json.error.code, ErrorCode.pluginTrap, 'the trial fails');
      assert.equal((await gw.post('/v1/chat/completions', SHORT)).json.error.code, ErrorCode.pluginCircuitOpen, 'open again');
    } finally {
      await gw.close();
    }
  });

  it('fail-open: skipped while open, requests succeed without calling it', async () => {
    const gw = await startTestGateway({
      log_level: 'info',
      plugins: [{ name: 'flaky', path: fixture('trap-on-long-input'), on_error: 'fail-open', circuit_breaker: { failure_threshold: 2, cooldown_ms: 60_000 } }],
    });
    try {
      for (let i = 0; i < 6; i++) assert.equal((await gw.post('/v1/chat/completions', LONG)).status, 200);
      const metrics = (await gw.get('/metrics')).text;
      assert.equal(metricValue(metrics, 'sandgate_plugin_calls_total', { plugin: 'flaky' }), 2);
      assert.equal(metricValue(metrics, 'sandgate_plugin_circuit_rejections_total', { plugin: 'flaky' }), 4);
    } finally {
      await gw.close();
    }
  });
});
