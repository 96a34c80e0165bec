import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fstatSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { MAX_GLOBALS } from '../host/runtime/module/sandbox-module.js';
import { startCli } from './helpers/cli.js';
import { CHAT, startGatewayFails, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { metricValue } from './helpers/metrics.js';
import { fixture, ROOT } from './helpers/paths.js';

// The chaos suite, sandbox part: hostile modules that try to reach the host
// process through WASI, or to make the gateway hold memory outside their
// linear-memory cap (kernel blocks, variables, log output, tables, globals).
// Each must cost at most its own call, and the gateway keeps serving.

const NO_BREAKER = { failure_threshold: 0 };
const tmp = mkdtempSync(path.join(tmpdir(), 'sandgate-sandbox-'));

/** Threads, open descriptors and resident memory of a process, from /proc. */
function processStats(pid: number): { threads: number; fds: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)![1]);
  return { threads: field('Threads'), fds: readdirSync(`/proc/${pid}/fd`).length, rssMiB: field('VmRSS') / 1024 };
}


const chat = (url: string) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT()) });

/** Whether something accepts TCP connections on a loopback port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Fail-open hostile plugins of every kind the sandbox closes, with the failure each must get. */
const HOSTILE = [
  { name: 'sleeper', fixture: 'wasi-sleep', kind: 'timeout', extra: { timeout_ms: 100 } },
  { name: 'exit', fixture: 'wasi-exit', kind: 'trap' },
  { name: 'close-stdio', fixture: 'wasi-close-stdio', kind: 'trap' },
  { name: 'var-flood', fixture: 'var-flood', kind: 'memory' },
  { name: 'kernel-flood', fixture: 'kernel-flood', kind: 'memory', extra: { memory_limit_mb: 16 } },
  { name: 'memory-bomb', fixture: 'memory-bomb', kind: 'memory', extra: { memory_limit_mb: 16 } },
  { name: 'deep-ctx', fixture: 'deep-ctx', kind: 'bad_output' },
  { name: 'huge-ctx', fixture: 'huge-ctx', kind: 'bad_output' },
  { name: 'crlf-header', fixture: 'respond-crlf-header', kind: 'bad_output' },
] as const;

describe('sandbox: WASI cannot reach the gateway process', () => {
  it('signals are refused, hostile plugins of every kind cost only their calls, nothing is left behind, SIGTERM still drains', async () => {
    const gw = await startCli({
      log_level: 'info',
      runtime: { workers: 2 },
      plugins: [
        // Fail-closed: if any signal were raised, the request would fail (or the gateway would be gone).
        { name: 'signals', path: fixture('wasi-signals') },
        ...HOSTILE.map((h) => ({ name: h.name, path: fixture(h.fixture), on_error: 'fail-open', circuit_breaker: NO_BREAKER, ...('extra' in h ? h.extra : {}) })),
        { name: 'log-flood', path: fixture('log-flood') },
        { name: 'stdout-flood', path: fixture('stdout-flood') },
      ],
    });
    const pid = gw.child.pid!;
    try {
      // Warm up, then take the baseline.
      assert.equal((await chat(gw.url)).status, 200);
      await new Promise((r) => setTimeout(r, 500));
      const baseline = processStats(pid);

      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) {
        const started = Date.now();
        const res = await chat(gw.url);
        statuses.push(res.status);
        await res.arrayBuffer();
        // The 60 s sleep ends at the 100 ms deadline (plus a worker hand-over), not after 60 s.
        assert.ok(Date.now() - started < 5000, `request ${i} took ${Date.now() - started} ms`);
      }
      // Every signal was refused and every hostile plugin failed open: every request is answered 200.
      assert.deepEqual(statuses, Array(20).fill(200));
      assert.equal(gw.child.exitCode, null, 'the gateway is still running');
      assert.equal(await listening(9229), false, "SIGUSR1 did not open Node's inspector");

      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      for (const h of HOSTILE) {
        assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: h.name, kind: h.kind }), 21, `${h.name}: the warm-up and the 20 calls failed as ${h.kind}`);
      }
      assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'signals' }), 0);
      assert.ok(metricValue(metrics, 'sandgate_plugin_log_dropped_bytes_total', { plugin: 'log-flood' }) > 0);
      // The sleeper's sleep ends at its call's deadline, where the guest stops: its worker lives on
      // (one that does not report back in time is still replaced, so not every timeout is asserted).
      const restarts = metricValue(metrics, 'sandgate_plugin_worker_restarts_total');
      assert.ok(restarts < 21, `the sleeping calls were stopped by their worker, not by replacing it (${restarts} of 21 replaced)`);

      // A replaced worker's threads and their descriptors are gone, and
      // what the floods and bombs took was given back. Bounds: +2 threads, +4 descriptors, +150 MiB.
      let now = processStats(pid);
      for (let i = 0; i < 40 && (now.threads > baseline.threads + 2 || now.fds > baseline.fds + 4); i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = processStats(pid);
      }
      assert.ok(now.threads <= baseline.threads + 2, `threads ${baseline.threads} -> ${now.threads}`);
      assert.ok(now.fds <= baseline.fds + 4, `open descriptors ${baseline.fds} -> ${now.fds}`);
      assert.ok(now.rssMiB <= baseline.rssMiB + 150, `RSS ${baseline.rssMiB.toFixed(0)} -> ${now.rssMiB.toFixed(0)} MiB`);
    } finally {
      const exited = new Promise<number | null>((resolve) => gw.child.on('exit', resolve));
      gw.child.kill('SIGTERM');
      assert.equal(await exited, 0, `SIGTERM still drains and exits 0:\n${gw.output().slice(-2000)}`);
    }
  });

  describe('in process', () => {
    let gw: TestGateway;
    before(async () => {
      gw = await startTestGateway({
        plugins: [
          { name: 'probe', path: fixture('wasi-probe') },
          { name: 'exit', path: fixture('wasi-exit'), enabled: true, on_error: 'fail-open', circuit_breaker: NO_BREAKER },
          { name: 'close-stdio', path: fixture('wasi-close-stdio'), on_error: 'fail-open', circuit_breaker: NO_BREAKER },
        ],
      });
    });
    after(() => gw.close());

    it('a reactor gets clocks, random and stdout in _initialize, and no arguments, environment, files or other descriptors', async () => {
      const res = await gw.post('/v1/chat/completions', CHAT());
      assert.equal(res.status, 200, res.text);
      assert.ok(gw.logs.some((l) => l.plugin === 'probe' && l.msg === 'stdout: initialized'), '_initialize wrote to stdout, and it reached the log');
    });

    it('proc_exit fails only the call, with the panic message from stderr in the failure', async () => {
      const res = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': 'exit-1' });
      assert.equal(res.status, 200, 'exit and close-stdio fail open');
      const failure = gw.logs.find((l) => l.rid === 'exit-1' && l.plugin === 'exit' && l.kind === 'trap');
      assert.ok(failure, 'the exit is logged as a trap of that call');
      assert.match(String(failure.err ?? failure.msg), /exited with code 2.*stderr: panic: boom/);
      assert.ok(gw.logs.some((l) => l.rid === 'exit-1' && l.plugin === 'exit' && /^stderr: panic: boom/.test(l.msg)), 'stderr reached the log with the request id');
    });

    it('closing stdio changes nothing for the gateway', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
      // The guest's fd_close never reaches the process: its own stdin, stdout and stderr are still open.
      for (const fd of [0, 1, 2]) assert.doesNotThrow(() => fstatSync(fd), `descriptor ${fd} is still open`);
      const metrics = await (await gw.get('/metrics')).text;
      assert.ok(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'close-stdio', kind: 'trap' }) >= 3);
    });
  });
});

describe("sandbox: a Go plugin runs on the gateway's WASI", () => {
  let gw: TestGateway;
  before(async () => {
    // Built here, not by npm run build: starting the gateway must not need Go.
    const out = path.join(ROOT, 'test/fixtures/build/go-wasi.wasm');
    try {
      execFileSync('go', ['build', '-buildmode=c-shared', '-o', out, '.'], {
        cwd: path.join(ROOT, 'test/fixtures/go-wasi'),
        env: { ...process.env, GOOS: 'wasip1', GOARCH: 'wasm' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    } catch (e) {
      throw new Error(`building test/fixtures/go-wasi needs Go 1.24 or later on PATH: ${(e as Error).message}`);
    }
    gw = await startTestGateway({ plugins: [{ name: 'go', path: out, circuit_breaker: NO_BREAKER }] });
  });
  after(() => gw?.close());

  it('timers, random and stdout work; no files, no environment; a panic fails only its call, with its message', async () => {
    const ok = await gw.post('/v1/chat/completions', CHAT('short'), { 'x-request-id': 'go-1' });
    assert.equal(ok.status, 200, ok.text);
    assert.ok(gw.logs.some((l) => l.rid === 'go-1' && l.plugin === 'go' && /^stdout: go hook call \d+: \d+ input bytes$/.test(l.msg)), 'Go wrote to stdout');

    const panicked = await gw.post('/v1/chat/completions', CHAT('x'.repeat(400)), { 'x-request-id': 'go-2' });
    assert.equal(panicked.status, 500);
    assert.equal(panicked.json.error.code, ErrorCode.pluginTrap);
    const failure = gw.logs.find((l) => l.rid === 'go-2' && l.msg === 'plugin failure');
    assert.match(String(failure?.err), /stderr: panic: input of \d+ bytes is over 300/);

    const after = await gw.post('/v1/chat/completions', CHAT('short again'));
    assert.equal(after.status, 200, 'a fresh instance serves the next call');
  });
});

describe('sandbox: log text across calls is rate-limited per plugin and worker', () => {
  const RATE = 4096;
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      runtime: { workers: 1 },
      plugins: [{ name: 'log-flood', path: fixture('log-flood'), max_log_bytes_per_second: RATE }],
    });
  });
  after(() => gw.close());

  it('keeps at most max_log_bytes_per_second (a bucket of one second), drops and counts the rest, and says so', async () => {
    const started = performance.now();
    for (let i = 0; i < 5; i++) {
      const res = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': `rate-${i}` });
      assert.equal(res.status, 200);
    }
    const seconds = (performance.now() - started) / 1000;
    const guestLines = gw.logs.filter((l) => l.plugin === 'log-flood' && /^rate-/.test(String(l.rid)) && /^y+$/.test(l.msg));
    const kept = guestLines.reduce((n, l) => n + Buffer.byteLength(l.msg), 0);
    // The per-call cap alone would keep 5 x 16 KiB; the bucket keeps one second's worth plus what refilled.
    assert.ok(kept >= RATE, `the first call gets the full bucket (${kept} bytes kept)`);
    assert.ok(kept <= RATE * (1 + seconds) + 1, `${kept} bytes kept in ${seconds.toFixed(2)} s at ${RATE} bytes a second`);
    const reports = gw.logs.filter((l) => l.plugin === 'log-flood' && /over max_log_bytes_per_second \(4096 bytes a second in this worker\)/.test(l.msg));
    assert.ok(reports.length >= 1 && reports.length <= 1 + seconds, `one report line a second at most (${reports.length})`);
    const metrics = await (await gw.get('/metrics')).text;
    // Every byte the guest tried to log is either kept or counted as dropped.
    assert.equal(metricValue(metrics, 'sandgate_plugin_log_dropped_bytes_total', { plugin: 'log-flood' }), 5 * 100 * 65536 - kept);
  });
});

describe('sandbox: memory outside the linear-memory cap is bounded', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      plugins: [
        // The rate across calls is tested on its own below: here only the per-call cap may cut.
        { name: 'stdout-flood', path: fixture('stdout-flood'), max_log_bytes_per_call: 8192, max_log_bytes_per_second: 1 << 30 },
        { name: 'log-flood', path: fixture('log-flood'), max_log_bytes_per_second: 1 << 30 },
        { name: 'table-grow', path: fixture('table-grow') },
      ],
    });
  });
  after(() => gw.close());

  it('log output (host log, stdout) is cut at max_log_bytes_per_call, and the rest is counted once', async () => {
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 10; i++) {
      const res = await gw.post('/v1/chat/completions', CHAT(), { 'x-request-id': `flood-${i}` });
      assert.equal(res.status, 200);
    }
    for (const [plugin, budget] of [['stdout-flood', 8192], ['log-flood', 16384]] as const) {
      const lines = gw.logs.filter((l) => l.rid === 'flood-3' && l.plugin === plugin);
      const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l.msg), 0);
      // Each kept line carries a short prefix ("stdout: "); the budget counts the guest's bytes.
      assert.ok(bytes <= budget + 512, `${plugin} logged ${bytes} bytes in one call`);
      assert.ok(bytes >= budget / 2, `${plugin} still logged within its budget (${bytes} bytes)`);
      const dropped = lines.filter((l) => /over max_log_bytes_per_call/.test(l.msg));
      assert.equal(dropped.length, 1, `${plugin}: one line says what was dropped`);
    }
    const metrics = await (await gw.get('/metrics')).text;
    // 1 MiB - 8 KiB of stdout and 6.4 MiB - 16 KiB of log lines dropped in each of the 10 calls.
    assert.equal(metricValue(metrics, 'sandgate_plugin_log_dropped_bytes_total', { plugin: 'stdout-flood' }), 10 * (1024 * 1024 - 8192));
    assert.equal(metricValue(metrics, 'sandgate_plugin_log_dropped_bytes_total', { plugin: 'log-flood' }), 10 * (100 * 65536 - 16384));
    // 10 calls each tried to log 7.4 MiB; well under that stayed.
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'the floods did not stay in memory');
  });

  it('a table cannot grow past the host limit', async () => {
    const res = await gw.post('/v1/chat/completions', CHAT());
    assert.equal(res.status, 200, 'table.grow by 200,000 returned -1');
  });
});

describe('sandbox: Extism kernel blocks and variables count as the plugin\'s memory', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      plugins: [
        { name: 'var-flood', path: fixture('var-flood'), on_error: 'fail-open', circuit_breaker: NO_BREAKER },
        { name: 'kernel-flood', path: fixture('kernel-flood'), memory_limit_mb: 16, on_error: 'fail-open', circuit_breaker: NO_BREAKER },
      ],
    });
  });
  after(() => gw.close());

  it('var_set past max_var_bytes and kernel allocations past memory_limit_mb fail the call as plugin_memory', async () => {
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 10; i++) assert.equal((await gw.post('/v1/chat/completions', CHAT())).status, 200);
    const metrics = await (await gw.get('/metrics')).text;
    assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'var-flood', kind: 'memory' }), 10);
    assert.equal(metricValue(metrics, 'sandgate_plugin_failures_total', { plugin: 'kernel-flood', kind: 'memory' }), 10);
    assert.ok(gw.logs.some((l) => l.plugin === 'var-flood' && /max_var_bytes/.test(String(l.err))));
    assert.ok(gw.logs.some((l) => l.plugin === 'kernel-flood' && /memory_limit_mb/.test(String(l.err))));
    // Without the bounds: 15 MiB of variables and hundreds of MiB of blocks per call.
    assert.ok(process.memoryUsage().rss - before < 128 * 1024 * 1024, `RSS grew ${((process.memoryUsage().rss - before) / 2 ** 20).toFixed(0)} MiB`);
  });
});

describe('sandbox: modules the sandbox cannot hold are refused at load, saying why', () => {
  async function loadFails(file: string): Promise<GatewayError> {
    const e = await startGatewayFails({ plugins: [{ name: 'hostile', path: file }] });
    assert.equal(e.code, ErrorCode.pluginLoadFailed);
    return e;
  }

  it('a table too large at start', async () => {
    assert.match((await loadFails(fixture('big-table'))).message, /table 0 needs 1000000 elements at start, over the limit of 100000/);
  });

  it('too many globals', async () => {
    const wabt = await (await import('wabt')).default();
    const globals = Array.from({ length: MAX_GLOBALS + 1 }, (_, i) => `(global $g${i} (mut i32) (i32.const 0))`).join('\n');
    const wat = `(module (memory (export "memory") 1) ${globals} (func (export "sandgate_abi_v1") (result i32) (i32.const 1)))`;
    const mod = wabt.parseWat('globals.wat', wat);
    const file = path.join(tmp, 'globals.wasm');
    writeFileSync(file, mod.toBinary({}).buffer);
    assert.match((await loadFails(file)).message, new RegExp(`declares ${MAX_GLOBALS + 1} globals, over the limit of ${MAX_GLOBALS}`));
  });

  it('a WASI command module, with how to rebuild it as a reactor', async () => {
    assert.match((await loadFails(fixture('command-module'))).message, /command module.*-buildmode=c-shared/);
  });

  it('an imported memory', async () => {
    assert.match((await loadFails(fixture('import-memory'))).message, /import "env" "memory" is a memory; a plugin may import only functions/);
  });

  it('a WASI function the gateway does not provide', async () => {
    assert.match((await loadFails(fixture('unknown-wasi'))).message, /Sandgate's WASI has no function "sock_open"/);
  });
});
