// Part 2: the whole gateway under load. For each variant (0, 1 and 5 plugins)
// a fresh gateway child process pinned to core 1 serves POST
// /v1/chat/completions (mock provider, ~2 KiB request) to 50 concurrent
// connections from autocannon in this process, pinned to core 0. After a
// warm-up, we record requests/s, latency percentiles and the gateway's CPU time
// per request (from /proc/<pid>/stat, all threads).

import { readFile } from 'node:fs/promises';
import { type LoadResult, runLoad } from '../load.js';
import { pinSelf, processCpuMicros, selfAffinity } from '../children.js';
import { type GatewayChild, startGatewayChild } from '../gateway-child.js';
import { CHAT_BODY, CLIENT_HEADERS } from '../payloads.js';
import { minimalPlugin, samplePlugin } from '../plugins.js';
import { fmt, fmtInt, fmtPct, fmtSigned, mean, spread } from '../stats.js';
import type { BenchPart, Cell, PartContext, Section, TargetResult } from '../types.js';

const CONNECTIONS = 50;
/**
 * Variants in run order, interleaved so drift of the machine shows up as a
 * difference between the two 0-plugin runs. "5m" is five copies of the minimal
 * plugin (bench/plugins.ts): the host's own cost of 20 hook calls per request.
 */
const DEFAULT_SEQUENCE = ['0', '1', '5', '5m', '0'];
const VARIANT = /^(\d{1,2})(m?)$/;
const TARGET_RATIO = 0.5;
const PER_REQUEST_HOOKS = ['http_transport_pre_hook', 'pre_llm_hook', 'post_llm_hook', 'http_transport_post_hook'] as const;

interface Variant {
  /** As written in the sequence: "0", "1", "5", "5m". */
  id: string;
  plugins: number;
  minimal: boolean;
}

function parseVariant(id: string): Variant | null {
  const m = VARIANT.exec(id.trim());
  return m ? { id: id.trim(), plugins: Number(m[1]), minimal: m[2] === 'm' && Number(m[1]) > 0 } : null;
}

interface RunResult {
  variant: Variant;
  plugins: number;
  requests: number;
  elapsedS: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  gatewayCpuPerReqUs: number;
  gatewayCpuShare: number;
  clientCpuShare: number;
  errors: number;
  non2xx: number;
  workers: number | undefined;
}

/** One load run against the chat route, as a client with realistic headers would send it. */
function load(url: string, seconds: number): Promise<LoadResult> {
  const headers = Object.fromEntries(Object.entries(CLIENT_HEADERS).filter(([k]) => k !== 'host' && k !== 'content-length'));
  return runLoad({ url: `${url}/v1/chat/completions`, method: 'POST', connections: CONNECTIONS, seconds, headers, body: CHAT_BODY });
}

async function hooksPerRequest(file: string): Promise<number> {
  const module = await WebAssembly.compile(await readFile(file));
  const exported = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  return PER_REQUEST_HOOKS.filter((h) => exported.has(h)).length;
}

async function oneRun(ctx: PartContext, index: number, variant: Variant, pluginPath: string, warmS: number, measureS: number, workers: number | undefined): Promise<RunResult> {
  const plugins = variant.plugins;
  const entries = Array.from({ length: plugins }, (_, i) => ({ name: `${variant.minimal ? 'minimal' : 'hello'}-${i + 1}`, path: pluginPath }));
  ctx.log(`  run ${index + 1}: variant ${variant.id}: starting gateway`);
  let gw: GatewayChild | undefined;
  try {
    gw = await startGatewayChild(ctx, { name: `bench-gw-${index + 1}-${variant.id}`, plugins: entries, cpus: process.env.BENCH_GATEWAY_CPUS ?? '1', workers });

    // One request first: a broken setup should fail loudly, not measure error responses.
    const probe = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: CHAT_BODY.toString('utf8') });
    const text = await probe.text();
    if (probe.status !== 200) throw new Error(`probe request answered ${probe.status}: ${text.slice(0, 500)}`);

    ctx.log(`  run ${index + 1}: warm-up ${warmS} s`);
    await load(gw.url, warmS);

    ctx.log(`  run ${index + 1}: measuring ${measureS} s`);
    const gw0 = processCpuMicros(gw.pid);
    const c0 = process.cpuUsage();
    const r = await load(gw.url, measureS);
    const gw1 = processCpuMicros(gw.pid);
    const c = process.cpuUsage(c0);

    const lat = r.latencyMs.summary();
    const res: RunResult = {
      variant,
      plugins,
      requests: r.ok,
      elapsedS: r.elapsedS,
      rps: r.ok / r.elapsedS,
      p50ms: lat.p50,
      p99ms: lat.p99,
      gatewayCpuPerReqUs: (gw1 - gw0) / Math.max(1, r.ok),
      gatewayCpuShare: (gw1 - gw0) / 1e6 / r.elapsedS,
      clientCpuShare: (c.user + c.system) / 1e6 / r.elapsedS,
      errors: r.errors,
      non2xx: r.bad,
      workers: gw.workers,
    };
    ctx.log(`  run ${index + 1}: ${fmtInt(res.rps)} req/s, ${fmtInt(res.gatewayCpuPerReqUs)} us CPU/request`);
    return res;
  } finally {
    await gw?.stop();
  }
}

export const gatewayThroughput: BenchPart = {
  id: 'gateway-throughput',
  title: 'Gateway throughput',
  async run(ctx: PartContext): Promise<Section> {
    const warmS = ctx.quick ? 2 : 8;
    const measureS = ctx.quick ? 3 : 10;
    const requested = (process.env.BENCH_GATEWAY_SEQUENCE ?? '').split(',').filter((t) => t.trim());
    const parsed = requested.map(parseVariant);
    const order = (requested.length && parsed.every((v) => v !== null) ? parsed : DEFAULT_SEQUENCE.map(parseVariant)) as Variant[];
    // Knobs for exploring (the report says when they were used): plugin workers and the gateway's cores.
    const workersEnv = Number(process.env.BENCH_GATEWAY_WORKERS);
    const workers = Number.isInteger(workersEnv) && workersEnv > 0 && workersEnv <= 64 ? workersEnv : undefined;
    const sample = samplePlugin(ctx.root);
    const minimalPath = order.some((v) => v.minimal) ? await minimalPlugin(ctx.tmpDir) : '';
    const hooks = await hooksPerRequest(sample.path);
    const minimalHooks = minimalPath ? await hooksPerRequest(minimalPath) : 0;

    const before = selfAffinity();
    const pinned = ctx.taskset && pinSelf('0');
    const runs: RunResult[] = [];
    try {
      for (let i = 0; i < order.length; i++) runs.push(await oneRun(ctx, i, order[i], order[i].minimal ? minimalPath : sample.path, warmS, measureS, workers));
    } finally {
      if (pinned && before !== 'unknown') pinSelf(before);
    }

    // Variants in report order: by plugin count, the sample plugin before the minimal one.
    const variants = [...new Map(order.map((v) => [v.id, v])).values()].sort((a, b) => a.plugins - b.plugins || Number(a.minimal) - Number(b.minimal));
    const label = (v: Variant) => (v.plugins === 0 ? '0' : `${v.plugins} x ${v.minimal ? 'minimal' : sample.label}`);
    const agg = (id: string) => {
      const rs = runs.filter((r) => r.variant.id === id);
      return {
        runs: rs.length,
        rps: mean(rs.map((r) => r.rps)),
        p50: mean(rs.map((r) => r.p50ms)),
        p99: mean(rs.map((r) => r.p99ms)),
        cpu: mean(rs.map((r) => r.gatewayCpuPerReqUs)),
        rpsSpread: spread(rs.map((r) => r.rps)),
        cpuSpread: spread(rs.map((r) => r.gatewayCpuPerReqUs)),
      };
    };
    const base = runs.some((r) => r.plugins === 0) ? agg('0') : undefined;

    const perRun = {
      title: 'Every run, in the order it ran',
      columns: ['run', 'plugins', 'req/s', 'p50 ms', 'p99 ms', 'gateway CPU/req us', 'gateway CPU (cores)', 'client CPU (cores)', 'errors + non-2xx'],
      rows: runs.map((r, i): Cell[] => [
        String(i + 1),
        label(r.variant),
        fmtInt(r.rps),
        fmt(r.p50ms, 2),
        fmt(r.p99ms, 2),
        fmtInt(r.gatewayCpuPerReqUs),
        fmt(r.gatewayCpuShare, 2),
        fmt(r.clientCpuShare, 2),
        fmtInt(r.errors + r.non2xx),
      ]),
    };

    const summary = {
      title: `By variant (mean of its runs), against the 0-plugin baseline of this run`,
      columns: ['plugins', 'hook calls/req', 'runs', 'req/s', 'throughput vs 0', 'p50 ms', 'p99 ms', 'CPU/req us', 'CPU/req vs 0', 'CPU/req per plugin', 'CPU per hook call'],
      rows: variants.map((v): Cell[] => {
        const a = agg(v.id);
        const calls = v.plugins * (v.minimal ? minimalHooks : hooks);
        const extra = base ? a.cpu - base.cpu : NaN;
        return [
          label(v),
          String(calls),
          String(a.runs),
          fmtInt(a.rps),
          base ? fmtPct(a.rps / base.rps) : 'n/a',
          fmt(a.p50, 2),
          fmt(a.p99, 2),
          fmtInt(a.cpu),
          base && v.plugins > 0 ? `${fmtSigned(extra)} us` : '-',
          base && v.plugins > 0 ? `${fmtSigned(extra / v.plugins)} us` : '-',
          base && calls > 0 ? `${fmtSigned(extra / calls)} us` : '-',
        ];
      }),
    };

    const targets: TargetResult[] = [];
    const five = runs.some((r) => r.variant.id === '5') ? agg('5') : undefined;
    if (base && five) {
      const ratio = five.rps / base.rps;
      const cpuRatio = base.cpu / five.cpu;
      targets.push({
        name: '5 plugins keep >= 50% of the 0-plugin throughput',
        target: `>= ${fmtPct(TARGET_RATIO)}`,
        measured: `${fmtPct(ratio)} by req/s; ${fmtPct(cpuRatio)} by CPU/request`,
        met: sample.isHelloWorld ? ratio >= TARGET_RATIO : null,
      });
    }

    const gwWorkers = runs.find((r) => r.workers !== undefined)?.workers;
    const notes = [
      `${CONNECTIONS} connections, POST /v1/chat/completions with a ${fmtInt(CHAT_BODY.length)}-byte chat request, mock provider (no delay, echoes the last user message). Each run: a fresh gateway process (\`node dist/host/main/cli.js\`, log_level warn, ${gwWorkers ?? '?'} plugin worker threads${workers ? ' (set by BENCH_GATEWAY_WORKERS)' : ' (the default)'}), ${warmS} s warm-up, ${measureS} s measured.`,
      `Pinning: ${ctx.taskset ? `gateway \`taskset -c ${process.env.BENCH_GATEWAY_CPUS ?? '1'}\`, benchmark client (autocannon, in the benchmark process) ${pinned ? 'pinned to core 0' : 'NOT pinned (taskset -p failed)'}` : 'taskset not found: nothing pinned, client and gateway share the cores'}.`,
      `"gateway CPU/req" is user+system time of the gateway process (every thread: main, plugin workers, V8) over the measured window, from /proc/<pid>/stat, divided by the 2xx responses; "(cores)" columns are CPU seconds per second (1.00 = one core busy). A gateway near 1.00 is the bottleneck, as intended; a client near 1.00 means the load generator limited the figure.`,
      `With ${sample.label}, every plugin runs ${hooks} hook(s) per request (${PER_REQUEST_HOOKS.join(', ')}), each a round trip to a plugin worker thread.${minimalPath ? ` The "minimal" plugin (see the hook round trip part) exports the same ${minimalHooks} hooks, reads its input and returns nothing: 5 x minimal is what 20 hook calls per request cost the host with no guest work, no logs and no outputs to apply.` : ''}`,
    ];
    if (base && base.runs > 1) {
      notes.push(
        `Run-to-run noise: the ${base.runs} 0-plugin runs differ by up to ${fmtPct(base.rpsSpread)} from their mean in req/s and ${fmtPct(base.cpuSpread)} in CPU/request.`,
      );
    }
    const unsaturated = runs.map((r, i) => ({ r, i })).filter(({ r }) => r.gatewayCpuShare < 0.9);
    if (unsaturated.length) {
      notes.push(
        `In run(s) ${unsaturated.map(({ i }) => i + 1).join(', ')} the gateway used less than 0.9 of its core (${unsaturated.map(({ r }) => fmt(r.gatewayCpuShare, 2)).join(', ')}) while the client was not saturated either: something outside the gateway held it back (VM scheduling on this machine), so req/s understates the capacity there. CPU/request is much less affected, which is why the target also shows the ratio by CPU/request.`,
      );
    }
    const failed = runs.filter((r) => r.errors + r.non2xx > 0);
    if (failed.length) notes.push(`**${failed.length} run(s) saw errors or non-2xx responses; their req/s count only 2xx answers.**`);
    if (!sample.isHelloWorld) notes.push('**hello-world was not built when this ran; the set-header test fixture (transport pre-hook only) stood in, so the target is not evaluated.**');

    return {
      intro: `Requests/s, latency and gateway CPU per request at ${CONNECTIONS} concurrent connections against the mock provider, with 0, 1 and 5 plugins (5 = ${sample.label} loaded five times under different names)${minimalPath ? ', and 5 copies of the minimal plugin for reference' : ''}.${requested.length ? ` Variant order set by BENCH_GATEWAY_SEQUENCE=${requested.join(',')}.` : ''}`,
      tables: [summary, perRun],
      targets,
      notes,
    };
  },
};
