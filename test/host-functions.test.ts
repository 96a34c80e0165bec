import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../host/errors/codes.js';
import { guestBytes } from '../host/runtime/sandbox/guest-memory.js';
import { CHAT, instancesOf, startTestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture } from './helpers/paths.js';

// The host functions of ABI.md §4, each misused the way a buggy guest would:
// what the call's failure is, through the real gateway. And which exports may
// call them: every one, _initialize included.

const NO_BREAKER = { failure_threshold: 0 };

const FAULTS: { fixture: string; code: string; kind: string; status: number; says: RegExp; gateway?: Record<string, unknown>; extra?: Record<string, unknown> }[] = [
  { fixture: 'host-input-read-out-of-range', code: ErrorCode.pluginTrap, kind: 'trap', status: 500, says: /input_read: bytes 65535\.\.\d+ are outside the guest's memory \(65536 bytes\)/ },
  { fixture: 'host-output-write-out-of-range', code: ErrorCode.pluginTrap, kind: 'trap', status: 500, says: /output_write: bytes 65500\.\.65600 are outside the guest's memory/ },
  // Larger than the worker channel's output area: the other copy path checks the range as well.
  { fixture: 'host-output-write-past-memory', code: ErrorCode.pluginTrap, kind: 'trap', status: 500, says: /output_write: bytes 0\.\.131072 are outside the guest's memory/ },
  { fixture: 'host-output-write-negative-length', code: ErrorCode.pluginOutputTooLarge, kind: 'output_too_large', status: 500, says: /output of 4294967295 bytes is over the limit of 8388608/ },
  { fixture: 'oversized-llm', code: ErrorCode.pluginOutputTooLarge, kind: 'output_too_large', status: 500, says: /output of 98304 bytes is over the limit of 65536/, extra: { max_output_bytes: 65536 } },
  // A debug line the gateway would not log (log_level error) fails all the same: the range is checked first.
  { fixture: 'host-log-out-of-range', code: ErrorCode.pluginTrap, kind: 'trap', status: 500, says: /log: bytes 65500\.\.65600 are outside the guest's memory/, gateway: { log_level: 'error' } },
  { fixture: 'extism-input-load-past-end', code: ErrorCode.pluginTrap, kind: 'trap', status: 500, says: /Offset is outside the bounds of the DataView/ },
];

describe('a host function given a bad pointer or length fails only that call', () => {
  for (const f of FAULTS) {
    it(`${f.fixture}: ${f.status} ${f.code}, counted as ${f.kind}, the gateway goes on`, async () => {
      const gw = await startTestGateway({
        ...f.gateway,
        runtime: { workers: 1 },
        plugins: [{ name: 'faulty', path: fixture(f.fixture), circuit_breaker: NO_BREAKER, ...f.extra }],
      });
      try {
        for (let i = 0; i < 2; i++) {
          const r = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': `rid-${i}` });
          assert.equal(r.status, f.status);
          assert.equal(r.json.error.code, f.code);
          assert.equal(r.json.error.hook, 'pre_llm_hook');
        }
        const failure = gw.logs.find((l) => l.msg === 'plugin failure' && l.rid === 'rid-1');
        assert.ok(failure, 'the failure is logged with its request id');
        assert.equal(failure.kind, f.kind);
        assert.match(String(failure.err), f.says);
        assert.equal(metricValue((await gw.get('/metrics')).text, 'sandgate_plugin_failures_total', { plugin: 'faulty', kind: f.kind }), 2);
      } finally {
        await gw.close();
      }
    });
  }
});

describe('guestBytes reads pointers and lengths as the unsigned i32 the guest passed', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  it('a range inside the memory is a view of it', () => {
    new Uint8Array(memory.buffer).set([1, 2, 3], 65533);
    assert.deepEqual([...guestBytes(memory, 'f', 65533, 3)], [1, 2, 3]);
    assert.equal(guestBytes(memory, 'f', 65536, 0).length, 0, 'an empty range at the very end is inside');
  });
  it('a negative pointer is one above 2 GiB, a negative length one above 2 GiB: outside, and said so', () => {
    assert.throws(() => guestBytes(memory, 'input_read', -1, 1), /input_read: bytes 4294967295\.\.4294967296 are outside the guest's memory \(65536 bytes\)/);
    assert.throws(() => guestBytes(memory, 'log', 0, -1), /log: bytes 0\.\.4294967295 are outside/);
    assert.throws(() => guestBytes(memory, 'f', 65536, 1), /outside/);
  });
});

describe('every export may call the host functions', () => {
  it('_initialize, init, get_name, a hook and cleanup each read their input and log', async () => {
    const gw = await startTestGateway({ runtime: { workers: 1 }, plugins: [{ name: 'everywhere', path: fixture('host-calls-everywhere') }] });
    let closed = false;
    try {
      const r = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': 'rid-everywhere' });
      assert.equal(r.status, 200);
      const said = (text: string) => gw.logs.filter((l) => l.plugin === 'everywhere' && l.msg === text);
      const instances = instancesOf(gw, 'everywhere');
      assert.equal(instances, 2, 'one worker, and the main thread');
      for (const name of ['_initialize', 'init']) assert.equal(said(name).length, instances, `${name} logged once per instance at load`);
      assert.equal(said('get_name').length, 1, 'get_name logged once at load');
      assert.equal(said('pre_llm_hook')[0]?.rid, 'rid-everywhere', 'a hook logs with its request id');
      assert.equal(said('level 7')[0]?.level, 50, 'a level above 3 is read as error');
      assert.equal(said('level -1')[0]?.level, 20, 'a level below 0 is read as debug');
      await gw.close();
      closed = true;
      assert.equal(said('cleanup').length, instances, 'cleanup logged on shutdown, once per instance');
    } finally {
      if (!closed) await gw.close();
    }
  });
});

describe('Extism kernel answers as ABI.md §4.1 says', () => {
  it('config_get, http_request, get_log_level, and addresses that are no block', async () => {
    const gw = await startTestGateway({ plugins: [{ name: 'probe', path: fixture('extism-kernel-probe') }] });
    try {
      const r = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': 'rid-probe' });
      assert.equal(r.status, 200, `the probe found a difference: ${r.text}`);
      const line = gw.logs.find((l) => l.plugin === 'probe' && l.msg === 'http_request is not enabled');
      assert.equal(line?.level, 50, 'http_request logs one error line');
      assert.equal(line?.rid, 'rid-probe');
    } finally {
      await gw.close();
    }
  });
});
