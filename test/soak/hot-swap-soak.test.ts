import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { Client } from 'undici';
import { metricValue } from '../helpers/metrics.js';
import { swapAndWait, type SwapHow } from '../helpers/plugin-swap.js';
import { stampPlugin } from '../helpers/stamp-plugin.js';
import { type GatewayProcess, startGatewayProcess } from './gateway-process.js';
import { type LoadFigures, startLoad } from './load.js';

// The hot-swap soak (issue 8, rule 8): the real gateway CLI in a child process,
// 20 clients on loopback (10 JSON, 10 streaming) sending requests back to back,
// while a plugin's file is swapped between two versions 200 times, once to a
// broken file in the middle. It checks that nothing failed, that every answer
// and every chunk came from exactly one version, that each retired version ran
// cleanup once per instance, and that memory, threads and open files did not
// grow. `npm run test:soak` runs it (in .ci/run, after npm test).

const WORKERS = 2;
const SWAPS = 200;
const BROKEN_AFTER = 100;
/** RSS is compared with where it stood after this many swaps (allocators and JIT have warmed up by then). */
const RSS_BASE_AFTER = 10;
const RSS_MARGIN = 20 * 1024 * 1024;
/** 1 MiB of resident linear memory per instance: a version never released (2 instances each) would add far more than the margin. */
const PLUGIN_PAGES = 16;
const MiB = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Full GC in every isolate of the gateway, a moment for freed pages to go back, then its RSS. */
async function rssAfterGc(gw: GatewayProcess): Promise<number> {
  await gw.gc.collect();
  await sleep(300);
  await gw.gc.collect();
  await sleep(300);
  return gw.rss();
}

/** Polls `read` until it returns `want` (true) or `ms` passed (false): counts that settle once connections close. */
async function settlesTo(read: () => number, want: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (read() !== want) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

it(`soak: ${SWAPS} plugin swaps under continuous load, with no failed request, no mixed version and no leak`, { timeout: 170_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sandgate-soak-'));
  const file = path.join(dir, 'stamp.wasm');
  const versions = ['a', 'b'].map((stamp) => ({ stamp, bytes: stampPlugin(stamp, { stampChunks: true, memoryPages: PLUGIN_PAGES }) })).map((v) => ({ ...v, sha: sha256(v.bytes) }));
  writeFileSync(file, versions[0].bytes);
  const gw = await startGatewayProcess(dir, {
    log_level: 'info',
    runtime: { workers: WORKERS, reload_debounce_ms: 20, reload_settle_ms: 300 },
    providers: { mock: { type: 'mock', stream_chunks: 10, stream_delay_ms: 5 } },
    plugins: [{ name: 'stamp', path: file }],
  });
  try {
    // Where threads and open files start: the gateway has served both kinds of request and its connections are closed again.
    const warm = await startLoad({ url: gw.url, jsonClients: 2, streamClients: 2, stamps: ['a'] });
    await sleep(500);
    const warmFigures = await warm.stop();
    assert.equal(warmFigures.failures, 0, `warm-up failed: ${warmFigures.failureSamples.join('; ')}`);
    await sleep(500);
    assert.equal(gw.gc.workerCount, WORKERS + 1, 'the inspector is attached to every plugin worker and to the spare (worker-pool.ts)');
    const threadsAtStart = gw.threads();
    const fdsAtStart = gw.fds();

    const control = new Client(gw.url, { pipelining: 1 });
    const getJson = async (p: string) => JSON.parse(await (await control.request({ path: p, method: 'GET' })).body.text());
    const stampHealth = async () => (await getJson('/health')).plugins.find((p: { name: string }) => p.name === 'stamp');
    const load = startLoad({ url: gw.url, jsonClients: 10, streamClients: 10, stamps: versions.map((v) => v.stamp) });
    const started = performance.now();
    const swapMs: number[] = [];
    /** When each swap was seen to have taken (performance.now()). */
    const swappedAt: number[] = [];
    let rssAtBase = 0;
    let rssAtEnd = 0;
    let refusal: { error: string } | undefined;
    let figures: LoadFigures;
    try {
      await sleep(300); // the load is running before the first swap
      for (let i = 1; i <= SWAPS; i++) {
        const next = versions[i % 2];
        const how: SwapHow = i % 4 < 2 ? 'write' : 'rename';
        swapMs.push(await swapAndWait(file, next.bytes, how, async () => (await stampHealth()).sha256 === next.sha, { pollMs: 5 }));
        swappedAt.push(performance.now());
        if (i === RSS_BASE_AFTER) rssAtBase = await rssAfterGc(gw);
        if (i === BROKEN_AFTER) {
          // A broken file in the middle: refused once the settle time has passed; the running version stays.
          const before = await stampHealth();
          writeFileSync(file, Buffer.from('this is not WebAssembly'));
          const deadline = Date.now() + 10_000;
          let h = before;
          while (!(h.last_reload.result === 'refused' && h.last_reload.at !== before.last_reload.at) && Date.now() < deadline) {
            await sleep(20);
            h = await stampHealth();
          }
          assert.equal(h.last_reload.result, 'refused', 'the broken file was refused');
          assert.equal(h.sha256, before.sha256, 'the running version kept serving');
          refusal = h.last_reload;
        }
      }
      rssAtEnd = await rssAfterGc(gw);
    } finally {
      figures = await load.stop();
    }
    const elapsedS = (performance.now() - started) / 1000;
    // Streams that were running when a swap took: the ones whose single stamp shows they kept their version.
    const spanning = figures.streamSpans.filter(([from, to]) => swappedAt.some((t) => t > from && t < to)).length;

    // Every retired version (each swap retires one) ran cleanup once per worker, and no other ran it.
    const retired = SWAPS;
    await settlesTo(() => gw.count('plugin version retired'), retired, 10_000);
    const health = await stampHealth();
    const metrics = await (await control.request({ path: '/metrics', method: 'GET' })).body.text();
    await control.close();
    const cleanups = Object.fromEntries(versions.map((v) => [v.stamp, gw.count(`cleanup ${v.stamp}`)]));

    // Threads and open files once the load's connections are closed (a closed socket leaves the fd table a moment later).
    const fdsSettled = await settlesTo(() => gw.fds(), fdsAtStart, 5000);
    const threadsAtEnd = gw.threads();
    const fdsAtEnd = gw.fds();

    const report = {
      elapsed_s: Number(elapsedS.toFixed(1)),
      swaps: SWAPS,
      refused_swaps: 1,
      json_requests: figures.requests,
      streams: figures.streams,
      stream_chunks: figures.chunks,
      streams_spanning_a_swap: spanning,
      failures: figures.failures,
      stamps_seen: Object.fromEntries(figures.stampsSeen),
      swap_ms_p50: Number(percentile(swapMs, 50).toFixed(1)),
      swap_ms_p99: Number(percentile(swapMs, 99).toFixed(1)),
      swap_ms_max: Number(Math.max(...swapMs).toFixed(1)),
      rss_mib_after_10: Number(MiB(rssAtBase)),
      rss_mib_after_200: Number(MiB(rssAtEnd)),
      threads_start_end: [threadsAtStart, threadsAtEnd],
      fds_start_end: [fdsAtStart, fdsAtEnd],
      cleanups,
      retired_versions: gw.count('plugin version retired'),
    };
    console.log(`soak figures: ${JSON.stringify(report)}`);

    assert.equal(figures.failures, 0, `failed requests: ${figures.failureSamples.join('\n')}`);
    assert.ok(figures.requests > SWAPS && figures.streams > SWAPS, 'the load ran throughout');
    assert.ok(spanning > SWAPS / 2, `streams ran across swaps (${spanning} did)`);
    for (const v of versions) assert.ok((figures.stampsSeen.get(v.stamp) ?? 0) > 0, `version ${v.stamp} served some requests`);
    assert.match(refusal?.error ?? '', /not a valid WebAssembly module/);
    assert.equal(metricValue(metrics, 'sandgate_plugin_reloads_total', { plugin: 'stamp', result: 'ok' }), SWAPS);
    assert.equal(metricValue(metrics, 'sandgate_plugin_reloads_total', { plugin: 'stamp', result: 'refused' }), 1);
    assert.equal(health.sha256, versions[SWAPS % 2].sha, 'the last version written is the one serving');
    assert.equal(health.draining_versions, 0, 'no version is left draining');
    assert.equal(gw.count('plugin version retired'), retired, 'every replaced version was retired');
    // Versions alternate starting from a: each retired half and half.
    assert.deepEqual(cleanups, { a: (retired / 2) * WORKERS, b: (retired / 2) * WORKERS }, 'cleanup ran once per retired instance');
    assert.ok(rssAtEnd - rssAtBase <= RSS_MARGIN, `RSS grew by ${MiB(rssAtEnd - rssAtBase)} MiB between swap ${RSS_BASE_AFTER} and swap ${SWAPS} (limit ${MiB(RSS_MARGIN)} MiB)`);
    assert.equal(threadsAtEnd, threadsAtStart, 'threads are where they started');
    assert.ok(fdsSettled, `open files are where they started (${fdsAtStart} at the start, ${fdsAtEnd} at the end)`);
    assert.deepEqual(gw.problems.filter((p) => p.msg !== 'plugin reload refused; the running version keeps serving'), [], 'nothing else was logged as a warning or error');
  } finally {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
