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
import { fmt, fmtInt, fmtSigned, type Summary } from './stats.js';
import type { Cell, PartContext, Table, TargetResult } from './types.js';

const CONCURRENCY = 10;
/** Content chunks per stream: the upstream child's default. */
const CHUNKS = 20;
/** Issue 10's targets. */
const TARGET = { fiveCpuRatio: 2, zeroVsBareCpu: 1.3, ttfbDeltaMs: 1 };
const BODY = chatBody(`${UPSTREAM_PROVIDER}/echo`, true);

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

export async function sseSideBySide(ctx: PartContext, o: { helloPath: string; helloLabel: string; isHelloWorld: boolean; cpus: string; clientPinned: boolean }): Promise<SideBySide> {
  const warmS = ctx.quick ? 1 : 2;
  const measureS = ctx.quick ? 2 : 5;
  const upstreamCpus = process.env.BENCH_UPSTREAM_CPUS ?? '0';
  const variants: Variant[] = [
    { id: 'bare', label: 'bare Hono + undici proxy', plugins: [] },
    { id: '0', label: 'Sandgate, 0 plugins', plugins: [] },
    { id: '5', label: `5 x ${o.helloLabel}`, plugins: Array.from({ length: 5 }, (_, i) => ({ name: `hello-${i + 1}`, path: o.helloPath })) },
  ];
  const upstream = await startUpstream(ctx, upstreamCpus);
  const results: Result[] = [];
  try {
    for (const v of variants) results.push(await run(ctx, v, upstream, o.cpus, warmS, measureS));
  } finally {
    await upstream.stop();
  }
  const [bare, zero, five] = results;

  const table: Table = {
    title: `Side by side: ${CONCURRENCY} concurrent ${CHUNKS}-chunk streams, every server in front of the same upstream process`,
    columns: ['server', 'streams/s', 'server CPU/stream us', 'CPU/stream vs bare', 'CPU/stream vs 0', 'TTFB p50 ms', 'TTFB p99 ms', 'TTFB p50 vs bare', 'server CPU (cores)', 'upstream CPU (cores)', 'streams', 'failed'],
    rows: results.map((r): Cell[] => [
      r.variant.label,
      fmtInt(r.streamsPerS),
      fmtInt(r.cpuPerStreamUs),
      `${fmt(r.cpuPerStreamUs / bare.cpuPerStreamUs, 2)}x`,
      r.variant.id === 'bare' ? '-' : `${fmt(r.cpuPerStreamUs / zero.cpuPerStreamUs, 2)}x`,
      fmt(r.ttfb.p50, 2),
      fmt(r.ttfb.p99, 2),
      r === bare ? '-' : `${fmtSigned(r.ttfb.p50 - bare.ttfb.p50, 2)} ms`,
      fmt(r.serverCpuShare, 2),
      fmt(r.upstreamCpuShare, 2),
      fmtInt(r.streams),
      fmtInt(r.failed),
    ]),
  };

  const fiveRatio = five.cpuPerStreamUs / zero.cpuPerStreamUs;
  const zeroRatio = zero.cpuPerStreamUs / bare.cpuPerStreamUs;
  const ttfbDelta = zero.ttfb.p50 - bare.ttfb.p50;
  const targets: TargetResult[] = [
    {
      name: `5 x ${o.helloLabel}, SSE ${CHUNKS} chunks: CPU/stream vs 0 plugins (issue 10)`,
      target: `<= ${fmt(TARGET.fiveCpuRatio, 2)}x`,
      measured: `${fmt(fiveRatio, 2)}x (${fmtInt(five.cpuPerStreamUs)} vs ${fmtInt(zero.cpuPerStreamUs)} us)`,
      met: o.isHelloWorld ? fiveRatio <= TARGET.fiveCpuRatio : null,
    },
    {
      name: `0 plugins, SSE ${CHUNKS} chunks: CPU/stream vs a bare Hono + undici proxy (issue 10)`,
      target: `<= ${fmt(TARGET.zeroVsBareCpu, 2)}x`,
      measured: `${fmt(zeroRatio, 2)}x (${fmtInt(zero.cpuPerStreamUs)} vs ${fmtInt(bare.cpuPerStreamUs)} us)`,
      met: zeroRatio <= TARGET.zeroVsBareCpu,
    },
    {
      name: '0 plugins, SSE: TTFB p50 vs a bare Hono + undici proxy (issue 10)',
      target: `within ${TARGET.ttfbDeltaMs} ms`,
      measured: `${fmtSigned(ttfbDelta, 2)} ms (${fmt(zero.ttfb.p50, 2)} vs ${fmt(bare.ttfb.p50, 2)} ms)`,
      met: ttfbDelta <= TARGET.ttfbDeltaMs,
    },
  ];

  const notes = [
    `Side by side: one upstream process (bench/upstream-child.ts, ${ctx.taskset ? `\`taskset -c ${upstreamCpus}\`` : 'not pinned'}) answers every stream with ${CHUNKS} content chunks, one per event-loop turn, then a finish chunk and [DONE] (${results.map((r) => r.events).join(', ')} events through the three servers). In front of it, one at a time, a fresh server ${ctx.taskset ? `pinned with \`taskset -c ${o.cpus}\`` : '(not pinned)'}: the bare proxy (the same one as in the throughput part: the event stream piped through), or the gateway through its \`openai\` provider. ${CONCURRENCY} lanes in the benchmark process (undici request(), ${o.clientPinned ? 'on core 0' : 'NOT pinned'}) each open one stream after another (the ~2 KiB chat request with \`"stream": true\`); ${warmS} s warm-up, ${measureS} s measured.`,
    'Server CPU/stream: user+system time of the whole server process over the measured window (/proc/<pid>/stat) divided by the streams completed in it. TTFB: from sending the request to the first body byte at the client, under this load (so it includes waiting behind the other lanes\' chunks). With 5 x hello-world every content chunk goes through each plugin\'s post_llm_hook.',
  ];
  const failed = results.filter((r) => r.failed > 0);
  if (failed.length) notes.push(`**Streams failed or broke off in: ${failed.map((r) => `${r.variant.label} (${r.failed}: ${r.firstError})`).join('; ')}.**`);
  return { table, targets, notes };
}
