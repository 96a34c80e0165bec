// The streaming part's side-by-side measurement (issue 10's SSE targets): 10
// concurrent 20-chunk streams through the bare Hono + undici proxy, the
// gateway with 0 plugins and with 5 x hello-world, all in front of the same
// OpenAI-style upstream process (bench/upstream-child.ts), each server pinned
// like the gateway elsewhere. Per variant: server CPU per stream, time to the
// first body byte at the client, streams per second.

import { processCpuMicros } from './children.js';
import { startGatewayChild, UPSTREAM_PROVIDER } from './gateway-child.js';
import { chatBody } from './payloads.js';
import { type ServerChild, startBareProxy, startUpstream } from './server-child.js';
import { streamLoad, streamRequest } from './sse-client.js';
import { fmt, fmtInt, fmtPct, fmtSigned, mean, spread, type Summary } from './stats.js';
import type { Cell, PartContext, Table, TargetResult } from './types.js';

const CONCURRENCY = 10;
/** Content chunks per stream: the upstream child's default. */
const CHUNKS = 20;
/** Issue 10's targets. */
const TARGET = { fiveCpuRatio: 2, zeroVsBareCpu: 1.3, ttfbDeltaMs: 1 };
const BODY = chatBody(`${UPSTREAM_PROVIDER}/echo`, true);
/** Run order: the baselines before and after, so drift of the machine shows as a difference between their runs. */
const SEQUENCE = ['bare', '0', '5', '0', 'bare'] as const;
/** Runs of one server whose CPU/stream differ by more than this from their mean: the machine disturbed the run. */
const NOISY_SPREAD = 0.15;

interface Variant {
  id: 'bare' | '0' | '5';
  label: string;
  plugins: { name: string; path: string }[];
}

interface Result {
  variant: Variant;
  events: number;
  streams: number;
  failed: number;
  firstError?: string;
  streamsPerS: number;
  cpuPerStreamUs: number;
  serverCpuShare: number;
  upstreamCpuShare: number;
  ttfb: Summary;
}

async function run(ctx: PartContext, v: Variant, upstream: ServerChild & { baseUrl: string }, cpus: string, warmS: number, measureS: number): Promise<Result> {
  ctx.log(`  SSE side by side: ${v.label}: starting`);
  let server: { pid: number; url: string; stop(): Promise<void> } | undefined;
  try {
    server = v.id === 'bare' ? await startBareProxy(ctx, upstream.baseUrl, cpus) : await startGatewayChild(ctx, { name: `bench-sse-${v.id}`, plugins: v.plugins, cpus, upstream: upstream.baseUrl });
    // A broken setup should fail loudly; a few tries, as a fresh gateway's first plugin calls may overrun on a busy machine.
    let events = 0;
    let last = '';
    for (let i = 0; i < 5 && !events; i++) {
      const t = await streamRequest(server.url, BODY).catch((e: Error) => e);
      if (!(t instanceof Error) && t.done && t.events >= CHUNKS + 2) events = t.events;
      else last = t instanceof Error ? t.message : `${t.events} events, [DONE] ${t.done}`;
    }
    if (!events) throw new Error(`probe stream through ${v.label}: ${last}`);

    await streamLoad(server.url, BODY, { concurrency: CONCURRENCY, seconds: warmS, events });
    const pid = server.pid;
    const cpu0 = processCpuMicros(pid);
    const up0 = processCpuMicros(upstream.pid);
    let cpu1 = cpu0;
    let up1 = up0;
    const r = await streamLoad(server.url, BODY, {
      concurrency: CONCURRENCY,
      seconds: measureS,
      events,
      atEnd: () => {
        cpu1 = processCpuMicros(pid);
        up1 = processCpuMicros(upstream.pid);
      },
    });
    const res: Result = {
      variant: v,
      events,
      streams: r.streams,
      failed: r.failed,
      firstError: r.firstError,
      streamsPerS: r.streams / r.elapsedS,
      cpuPerStreamUs: (cpu1 - cpu0) / Math.max(1, r.streams),
      serverCpuShare: (cpu1 - cpu0) / 1e6 / r.elapsedS,
      upstreamCpuShare: (up1 - up0) / 1e6 / r.elapsedS,
      ttfb: r.ttfbMs.summary(),
    };
    ctx.log(`  SSE side by side: ${v.label}: ${fmtInt(res.streamsPerS)} streams/s, ${fmtInt(res.cpuPerStreamUs)} us CPU/stream, TTFB p50 ${fmt(res.ttfb.p50, 2)} ms`);
    return res;
  } finally {
    await server?.stop();
  }
}

export interface SideBySide {
  table: Table;
  targets: TargetResult[];
  notes: string[];
}

/**
 * @example
 * const side = await sseSideBySide(ctx, { helloPath, helloLabel: 'hello-world', isHelloWorld: true, cpus: '1', clientPinned: true });
 * section.tables.push(side.table);
 */
export async function sseSideBySide(ctx: PartContext, o: { helloPath: string; helloLabel: string; isHelloWorld: boolean; cpus: string; clientPinned: boolean }): Promise<SideBySide> {
  const warmS = ctx.quick ? 1 : 2;
  const measureS = ctx.quick ? 2 : 5;
  const upstreamCpus = process.env.BENCH_UPSTREAM_CPUS ?? '0';
  const variants: Record<Variant['id'], Variant> = {
    bare: { id: 'bare', label: 'bare Hono + undici proxy', plugins: [] },
    '0': { id: '0', label: 'Sandgate, 0 plugins', plugins: [] },
    '5': { id: '5', label: `5 x ${o.helloLabel}`, plugins: Array.from({ length: 5 }, (_, i) => ({ name: `hello-${i + 1}`, path: o.helloPath })) },
  };
  const upstream = await startUpstream(ctx, upstreamCpus);
  const runs: Result[] = [];
  try {
    for (const id of SEQUENCE) runs.push(await run(ctx, variants[id], upstream, o.cpus, warmS, measureS));
  } finally {
    await upstream.stop();
  }
  const agg = (id: Variant['id']) => {
    const rs = runs.filter((r) => r.variant.id === id);
    return {
      variant: variants[id],
      runs: rs.length,
      events: rs[0].events,
      streams: rs.reduce((n, r) => n + r.streams, 0),
      failed: rs.reduce((n, r) => n + r.failed, 0),
      firstError: rs.find((r) => r.firstError)?.firstError,
      streamsPerS: mean(rs.map((r) => r.streamsPerS)),
      cpuPerStreamUs: mean(rs.map((r) => r.cpuPerStreamUs)),
      cpuSpread: spread(rs.map((r) => r.cpuPerStreamUs)),
      serverCpuShare: mean(rs.map((r) => r.serverCpuShare)),
      upstreamCpuShare: mean(rs.map((r) => r.upstreamCpuShare)),
      ttfbP50: mean(rs.map((r) => r.ttfb.p50)),
      ttfbP99: mean(rs.map((r) => r.ttfb.p99)),
    };
  };
  const results = (['bare', '0', '5'] as const).map(agg);
  const [bare, zero, five] = results;

  const table: Table = {
    title: `Side by side: ${CONCURRENCY} concurrent ${CHUNKS}-chunk streams, every server in front of the same upstream process (mean of each server's runs)`,
    columns: ['server', 'runs', 'streams/s', 'server CPU/stream us', 'CPU/stream vs bare', 'CPU/stream vs 0', 'TTFB p50 ms', 'TTFB p99 ms', 'TTFB p50 vs bare', 'server CPU (cores)', 'upstream CPU (cores)', 'streams', 'failed'],
    rows: results.map((r): Cell[] => [
      r.variant.label,
      String(r.runs),
      fmtInt(r.streamsPerS),
      fmtInt(r.cpuPerStreamUs),
      `${fmt(r.cpuPerStreamUs / bare.cpuPerStreamUs, 2)}x`,
      r.variant.id === 'bare' ? '-' : `${fmt(r.cpuPerStreamUs / zero.cpuPerStreamUs, 2)}x`,
      fmt(r.ttfbP50, 2),
      fmt(r.ttfbP99, 2),
      r === bare ? '-' : `${fmtSigned(r.ttfbP50 - bare.ttfbP50, 2)} ms`,
      fmt(r.serverCpuShare, 2),
      fmt(r.upstreamCpuShare, 2),
      fmtInt(r.streams),
      fmtInt(r.failed),
    ]),
  };

  /** Said in a target's measured text when a baseline's runs disagree: the machine disturbed this run. */
  const noise = (...aggs: (typeof bare)[]) => {
    const bad = aggs.filter((a) => a.runs > 1 && a.cpuSpread > NOISY_SPREAD);
    return bad.length ? ` [noisy run: the ${bad.map((a) => a.variant.label).join(' and ')} runs differ by up to ${bad.map((a) => fmtPct(a.cpuSpread)).join(' and ')} in CPU/stream]` : '';
  };
  const fiveRatio = five.cpuPerStreamUs / zero.cpuPerStreamUs;
  const zeroRatio = zero.cpuPerStreamUs / bare.cpuPerStreamUs;
  const ttfbDelta = zero.ttfbP50 - bare.ttfbP50;
  const targets: TargetResult[] = [
    {
      name: `5 x ${o.helloLabel}, SSE ${CHUNKS} chunks: CPU/stream vs 0 plugins (issue 10)`,
      target: `<= ${fmt(TARGET.fiveCpuRatio, 2)}x`,
      measured: `${fmt(fiveRatio, 2)}x (${fmtInt(five.cpuPerStreamUs)} vs ${fmtInt(zero.cpuPerStreamUs)} us)${noise(zero)}`,
      met: o.isHelloWorld ? fiveRatio <= TARGET.fiveCpuRatio : null,
    },
    {
      name: `0 plugins, SSE ${CHUNKS} chunks: CPU/stream vs a bare Hono + undici proxy (issue 10)`,
      target: `<= ${fmt(TARGET.zeroVsBareCpu, 2)}x`,
      measured: `${fmt(zeroRatio, 2)}x (${fmtInt(zero.cpuPerStreamUs)} vs ${fmtInt(bare.cpuPerStreamUs)} us)${noise(zero, bare)}`,
      met: zeroRatio <= TARGET.zeroVsBareCpu,
    },
    {
      name: '0 plugins, SSE: TTFB p50 vs a bare Hono + undici proxy (issue 10)',
      target: `within ${TARGET.ttfbDeltaMs} ms`,
      measured: `${fmtSigned(ttfbDelta, 2)} ms (${fmt(zero.ttfbP50, 2)} vs ${fmt(bare.ttfbP50, 2)} ms)${noise(zero, bare)}`,
      met: ttfbDelta <= TARGET.ttfbDeltaMs,
    },
  ];

  const notes = [
    `Side by side: one upstream process (bench/upstream-child.ts, ${ctx.taskset ? `\`taskset -c ${upstreamCpus}\`` : 'not pinned'}) answers every stream with ${CHUNKS} content chunks, one per event-loop turn, then a finish chunk and [DONE] (${results.map((r) => r.events).join(', ')} events per stream through the three servers). In front of it, one at a time, a fresh server ${ctx.taskset ? `pinned with \`taskset -c ${o.cpus}\`` : '(not pinned)'}: the bare proxy (the same one as in the throughput part: the event stream piped through), or the gateway through its \`openai\` provider. ${CONCURRENCY} lanes in the benchmark process (undici request(), ${o.clientPinned ? 'on core 0' : 'NOT pinned'}) each open one stream after another (the ~2 KiB chat request with \`"stream": true\`); ${warmS} s warm-up, ${measureS} s measured.`,
    'Server CPU/stream: user+system time of the whole server process over the measured window (/proc/<pid>/stat) divided by the streams completed in it. TTFB: from sending the request to the first body byte at the client, under this load (so it includes waiting behind the other lanes\' chunks). With 5 x hello-world every content chunk goes through each plugin\'s post_llm_hook.',
  ];
  notes.push(
    `Run order ${SEQUENCE.join(', ')}; each server's figures are the mean of its runs. CPU/stream of the runs of the same server differ by up to ${fmtPct(bare.cpuSpread)} (bare proxy) and ${fmtPct(zero.cpuSpread)} (0 plugins) from their mean. A "server CPU (cores)" well below 1.00 means the server was not the bottleneck (the client and the upstream share core 0, or another process held the core); CPU/stream is less affected than streams/s.`,
  );
  const failed = results.filter((r) => r.failed > 0);
  if (failed.length) notes.push(`**Streams failed or broke off in: ${failed.map((r) => `${r.variant.label} (${r.failed}: ${r.firstError})`).join('; ')}.**`);
  return { table, targets, notes };
}
