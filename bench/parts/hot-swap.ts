// Part: hot swap. One gateway child process (pinned to core 1 like the
// throughput part; the client here on core 0) with one plugin whose file is
// replaced while autocannon loads the chat route:
//
// A. Time from the file write to the new version serving: SWAPS swaps that
//    alternate between two builds (written in place and renamed over, in
//    turn); each is timed from the write until GET /v1/models, which goes
//    through the plugin, comes back with the new build's stamp. The watcher's
//    debounce (runtime.reload_debounce_ms, at its default) is part of it.
// B. What swapping costs the requests around it: the same load in three
//    phases on the same gateway, without swaps, during the swaps of A, and
//    without swaps again (a drift of the machine shows as a difference between
//    the two quiet phases); p99 during swaps against the quiet phases.

import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'undici';
import { DEFAULTS } from '../../host/config/schema.js';
import { swapAndWait, type SwapHow } from '../../test/helpers/plugin-swap.js';
import { stampPlugin } from '../../test/helpers/stamp-plugin.js';
import { pinSelf, selfAffinity } from '../children.js';
import { type GatewayChild, startGatewayChild } from '../gateway-child.js';
import { type LoadResult, runLoad } from '../load.js';
import { CHAT_BODY } from '../payloads.js';
import { fmt, fmtInt, mean, summarize } from '../stats.js';
import type { BenchPart, Cell, PartContext, Section } from '../types.js';

const CONNECTIONS = 20;
const SWAPS = 50;
/** Upper bound on the swapping phase, whatever happens. */
const SWAP_PHASE_MAX_S = 120;

interface Phase {
  name: string;
  result: LoadResult;
}

/** The load, as the throughput part sends it: the chat route, a ~2 KiB request. */
function load(url: string, seconds: number, until?: Promise<unknown>): Promise<LoadResult> {
  return runLoad({ url: `${url}/v1/chat/completions`, method: 'POST', connections: CONNECTIONS, seconds, headers: { 'content-type': 'application/json' }, body: CHAT_BODY, until });
}

export const hotSwap: BenchPart = {
  id: 'hot-swap',
  title: 'Hot swap',
  async run(ctx: PartContext): Promise<Section> {
    const swaps = ctx.quick ? 10 : SWAPS;
    const warmS = ctx.quick ? 1 : 5;
    const quietS = ctx.quick ? 2 : 10;
    const file = path.join(ctx.tmpDir, 'hot-swap-stamp.wasm');
    const builds = ['a', 'b'].map((stamp) => ({ stamp, bytes: stampPlugin(stamp) }));
    writeFileSync(file, builds[0].bytes);

    const before = selfAffinity();
    const pinned = ctx.taskset && pinSelf('0');
    let gw: GatewayChild | undefined;
    let probe: Client | undefined;
    const phases: Phase[] = [];
    const swapMs: number[] = [];
    try {
      gw = await startGatewayChild(ctx, { name: 'bench-hot-swap', plugins: [{ name: 'stamp', path: file }], cpus: process.env.BENCH_GATEWAY_CPUS ?? '1' });
      probe = new Client(gw.url, { pipelining: 1 });
      const stampNow = async () => {
        const res = await probe!.request({ path: '/v1/models', method: 'GET' });
        await res.body.dump();
        return res.headers['x-stamp'];
      };
      if ((await stampNow()) !== 'a') throw new Error(`the stamp plugin did not stamp GET /v1/models:\n${gw.output()}`);

      ctx.log(`  warm-up ${warmS} s`);
      await load(gw.url, warmS);
      ctx.log(`  ${quietS} s without swaps`);
      phases.push({ name: 'without swaps', result: await load(gw.url, quietS) });

      ctx.log(`  ${swaps} swaps under the same load`);
      const swapping = (async () => {
        for (let i = 1; i <= swaps; i++) {
          const next = builds[i % 2];
          const how: SwapHow = i % 4 < 2 ? 'write' : 'rename';
          swapMs.push(await swapAndWait(file, next.bytes, how, async () => (await stampNow()) === next.stamp, { pollMs: 2 }));
        }
      })();
      const during = load(gw.url, SWAP_PHASE_MAX_S, swapping);
      await swapping;
      phases.push({ name: `during ${swaps} swaps`, result: await during });

      ctx.log(`  ${quietS} s without swaps again`);
      phases.push({ name: 'without swaps, again', result: await load(gw.url, quietS) });
    } finally {
      await probe?.close();
      await gw?.stop();
      if (pinned && before !== 'unknown') pinSelf(before);
    }

    const swapStats = summarize(swapMs);
    const lat = phases.map((p) => p.result.latencyMs.summary());
    const quietP99 = mean([lat[0].p99, lat[2].p99]);
    const debounce = DEFAULTS.reloadDebounceMs;
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(0, 12);

    const swapTable = {
      title: 'A. From the file write to the new version serving',
      columns: ['swaps', 'p50 ms', 'p99 ms', 'max ms', 'p50 after the debounce ms', 'p99 after the debounce ms'],
      rows: [[String(swapStats.count), fmt(swapStats.p50), fmt(swapStats.p99), fmt(swapStats.max), fmt(swapStats.p50 - debounce), fmt(swapStats.p99 - debounce)]] as Cell[][],
    };
    const loadTable = {
      title: `B. The same load (${CONNECTIONS} connections) without and during swaps`,
      columns: ['phase', 's', 'req/s', 'p50 ms', 'p99 ms', 'p99 vs without swaps', 'errors + non-2xx'],
      rows: phases.map((p, i): Cell[] => [
        p.name,
        fmt(p.result.elapsedS),
        fmtInt(p.result.ok / p.result.elapsedS),
        fmt(lat[i].p50, 2),
        fmt(lat[i].p99, 2),
        `${fmt(lat[i].p99 / quietP99, 2)} x`,
        fmtInt(p.result.errors + p.result.bad),
      ]),
    };
    const notes = [
      `One gateway process (\`node dist/host/main/cli.js\`, log_level warn, default runtime settings: reload_debounce_ms ${debounce}, ${gw?.workers ?? '?'} plugin worker threads), one plugin: a small WAT module (test/helpers/stamp-plugin.ts) that stamps responses with \`x-stamp\`, in two builds (sha256 ${builds.map((b) => sha(b.bytes)).join(', ')}). Load: autocannon, ${CONNECTIONS} connections, POST /v1/chat/completions with a ${fmtInt(CHAT_BODY.length)}-byte chat request, mock provider; ${warmS} s warm-up, then the three phases back to back.`,
      `A swap is timed from the write (in place, or a new file renamed over it, alternately) until a GET /v1/models on its own connection, polled every 2 ms during the load, comes back stamped by the new build: the debounce (${debounce} ms, quiet time after the last change), reading and validating the file, compiling, the ABI check, \`init\` in every worker, and the switch. "After the debounce" subtracts the ${debounce} ms; lower \`runtime.reload_debounce_ms\` to trade it for a higher chance of catching a copy mid-way (a file that is not valid WebAssembly yet is waited for anyway, up to reload_settle_ms).`,
      `"p99 vs without swaps" divides each phase's p99 by the mean p99 of the two phases without swaps.`,
      `Pinning: ${ctx.taskset ? `gateway \`taskset -c ${process.env.BENCH_GATEWAY_CPUS ?? '1'}\`, benchmark client ${pinned ? 'pinned to core 0' : 'NOT pinned (taskset -p failed)'}` : 'taskset not found: nothing pinned'}.`,
    ];
    const failed = phases.filter((p) => p.result.errors + p.result.bad > 0);
    if (failed.length) notes.push(`**${failed.map((p) => p.name).join(', ')}: errors or non-2xx responses (latencies count only 2xx answers).**`);
    return {
      intro: `How long a new build of a plugin takes to serve after its file is written, and what swapping costs the requests in flight: p99 latency of the same load during ${swaps} back-to-back swaps against the same gateway without swaps.`,
      tables: [swapTable, loadTable],
      notes,
    };
  },
};
