// Part: streaming ("stream": true). First the side-by-side measurement of
// bench/sse-side-by-side.ts (bare proxy, 0 plugins, 5 x hello-world at 10
// concurrent 20-chunk streams in front of one upstream process). Then, for 0
// plugins and for 5 (hello-world x3 +
// redact x2: 7 hook calls per chunk), a fresh gateway child process (pinned to
// core 1 like the throughput part; the client here on core 0) streams from the
// mock provider, which sends one chunk per word of the request with no delay,
// so what is measured is the gateway's own work per chunk:
//
// A. Time to first byte: sequential streams of 16 chunks; from sending the
//    request to the first body byte (the first chunk, through every hook).
// B. Time per chunk: streams of 1,000 chunks; (last byte - first byte) /
//    (events - 1), and the gateway's CPU per chunk (/proc/<pid>/stat).
// C. Memory: one 10,000-chunk stream, the gateway's RSS (/proc/<pid>/status)
//    sampled every 50 ms against its RSS just before.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pinSelf, processCpuMicros, selfAffinity } from '../children.js';
import { type GatewayChild, startGatewayChild } from '../gateway-child.js';
import { type StreamTiming, streamRequest } from '../sse-client.js';
import { type SideBySide, sseSideBySide } from '../sse-side-by-side.js';
import { fmt, fmtInt, fmtSigned, mean, Samples, type Summary } from '../stats.js';
import type { BenchPart, Cell, PartContext, Section, TargetResult } from '../types.js';

const MEMORY_CHUNKS = 10_000;
const PER_CHUNK_CHUNKS = 1_000;
const TTFB_CHUNKS = 16;
const MEMORY_TARGET_MIB = 64;

interface Variant {
  id: string;
  label: string;
  plugins: { name: string; path: string }[];
  /** Hook calls per streamed chunk: post_llm_hook for each plugin exporting it, plus each chunk hook. */
  callsPerChunk: number;
}

/** One streamed completion of `chunks` words from the gateway's built-in mock, read as it arrives. */
function streamOnce(url: string, chunks: number, onData?: () => void): Promise<StreamTiming> {
  return streamRequest(url, JSON.stringify({ model: 'mock/echo', stream: true, messages: [{ role: 'user', content: 'w '.repeat(chunks).trim() }] }), onData);
}

function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

interface VariantResult {
  variant: Variant;
  ttfb: Summary;
  ttfbCount: number;
  perChunkMs: number;
  cpuPerChunkUs: number;
  memory: { chunks: number; seconds: number; beforeMiB: number; peakMiB: number; growthMiB: number; hwmMiB: number; done: boolean };
}

async function measure(ctx: PartContext, v: Variant): Promise<VariantResult> {
  let gw: GatewayChild | undefined;
  try {
    ctx.log(`  ${v.label}: starting gateway`);
    gw = await startGatewayChild(ctx, { name: `bench-stream-${v.id}`, plugins: v.plugins, cpus: process.env.BENCH_GATEWAY_CPUS ?? '1' });
    const probe = await streamOnce(gw.url, 3);
    if (!probe.done || probe.events !== 3 + 2) throw new Error(`probe stream: ${probe.events} events, [DONE] ${probe.done}`);

    // A. time to first byte
    const ttfbRuns = ctx.quick ? 20 : 300;
    const ttfbMaxMs = ctx.quick ? 2000 : 6000;
    for (let i = 0; i < (ctx.quick ? 5 : 50); i++) await streamOnce(gw.url, TTFB_CHUNKS);
    const ttfb = new Samples(ttfbRuns);
    const until = performance.now() + ttfbMaxMs;
    for (let i = 0; i < ttfbRuns && performance.now() < until; i++) ttfb.add((await streamOnce(gw.url, TTFB_CHUNKS)).ttfbMs);
    ctx.log(`  ${v.label}: TTFB p50 ${fmt(ttfb.summary().p50, 2)} ms over ${ttfb.count} streams`);

    // B. time and CPU per chunk
    const reps = ctx.quick ? 1 : 3;
    await streamOnce(gw.url, PER_CHUNK_CHUNKS);
    const spans: number[] = [];
    let chunks = 0;
    const cpu0 = processCpuMicros(gw.pid);
    for (let i = 0; i < reps; i++) {
      const t = await streamOnce(gw.url, PER_CHUNK_CHUNKS);
      spans.push(t.spanMs / (t.events - 1));
      chunks += t.events - 1;
    }
    const cpuPerChunkUs = (processCpuMicros(gw.pid) - cpu0) / chunks;
    ctx.log(`  ${v.label}: ${fmt(mean(spans), 3)} ms per chunk, ${fmtInt(cpuPerChunkUs)} us CPU per chunk`);

    // C. memory over a long stream
    const n = ctx.quick ? 2_000 : MEMORY_CHUNKS;
    const pid = gw.pid;
    const before = rssKiB(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssKiB(pid));
    }, 50);
    let t: StreamTiming;
    try {
      t = await streamOnce(gw.url, n);
    } finally {
      clearInterval(sampler);
    }
    peak = Math.max(peak, rssKiB(pid));
    const memory = {
      chunks: n,
      seconds: t.totalMs / 1000,
      beforeMiB: before / 1024,
      peakMiB: peak / 1024,
      growthMiB: (peak - before) / 1024,
      hwmMiB: rssKiB(pid, 'VmHWM') / 1024,
      done: t.done,
    };
    ctx.log(`  ${v.label}: ${n} chunks in ${fmt(memory.seconds, 1)} s, RSS ${fmtInt(memory.beforeMiB)} -> peak ${fmtInt(memory.peakMiB)} MiB`);
    return { variant: v, ttfb: ttfb.summary(), ttfbCount: ttfb.count, perChunkMs: mean(spans), cpuPerChunkUs, memory };
  } finally {
    await gw?.stop();
  }
}

export const streaming: BenchPart = {
  id: 'streaming',
  title: 'Streaming',
  async run(ctx: PartContext): Promise<Section> {
    const hello = path.join(ctx.root, 'sample-plugins/hello-world/build/hello-world.wasm');
    const redact = path.join(ctx.root, 'sample-plugins/redact/build/redact.wasm');
    for (const f of [hello, redact]) if (!existsSync(f)) throw new Error(`${f} is missing: run "npm run build" first`);
    const variants: Variant[] = [
      { id: '0', label: '0 plugins', plugins: [], callsPerChunk: 0 },
      {
        id: '5',
        label: '5 plugins (hello-world x3, redact x2)',
        plugins: [
          { name: 'hello-1', path: hello },
          { name: 'redact-1', path: redact },
          { name: 'hello-2', path: hello },
          { name: 'redact-2', path: redact },
          { name: 'hello-3', path: hello },
        ],
        // Both opt out of post_llm_hook per streamed delta (init's stream_deltas: false):
        // hello-world makes no call per chunk, redact one (http_transport_stream_chunk_hook).
        callsPerChunk: 3 * 0 + 2 * 1,
      },
    ];

    const before = selfAffinity();
    const pinned = ctx.taskset && pinSelf('0');
    const results: VariantResult[] = [];
    let side: SideBySide;
    try {
      side = await sseSideBySide(ctx, { helloPath: hello, helloLabel: 'hello-world', isHelloWorld: true, cpus: process.env.BENCH_GATEWAY_CPUS ?? '1', clientPinned: pinned });
      for (const v of variants) results.push(await measure(ctx, v));
    } finally {
      if (pinned && before !== 'unknown') pinSelf(before);
    }

    const base = results[0];
    const latency = {
      title: 'Time to first byte and time per chunk (mock provider, no delay: the gateway is the only cost)',
      columns: ['plugins', 'hook calls/chunk', `TTFB p50 ms (${TTFB_CHUNKS}-chunk streams)`, 'TTFB p99 ms', 'streams', `ms per chunk (${fmtInt(PER_CHUNK_CHUNKS)}-chunk streams)`, 'added per chunk vs 0', 'gateway CPU/chunk us', 'added per hook call'],
      rows: results.map((r): Cell[] => {
        const added = r.perChunkMs - base.perChunkMs;
        return [
          r.variant.label,
          String(r.variant.callsPerChunk),
          fmt(r.ttfb.p50, 2),
          fmt(r.ttfb.p99, 2),
          fmtInt(r.ttfbCount),
          fmt(r.perChunkMs, 3),
          r === base ? '-' : `${fmtSigned(added * 1000)} us`,
          fmtInt(r.cpuPerChunkUs),
          r === base || !r.variant.callsPerChunk ? '-' : `${fmtSigned((added * 1000) / r.variant.callsPerChunk)} us`,
        ];
      }),
    };
    const memory = {
      title: `Gateway memory over one long stream (RSS of the gateway process, all threads)`,
      columns: ['plugins', 'chunks', 'seconds', 'RSS before MiB', 'peak RSS MiB', 'growth MiB', 'VmHWM MiB (process lifetime)', 'ended with [DONE]'],
      rows: results.map((r): Cell[] => [
        r.variant.label,
        fmtInt(r.memory.chunks),
        fmt(r.memory.seconds, 1),
        fmt(r.memory.beforeMiB, 1),
        fmt(r.memory.peakMiB, 1),
        fmtSigned(r.memory.growthMiB, 1),
        fmt(r.memory.hwmMiB, 1),
        r.memory.done ? 'yes' : '**no**',
      ]),
    };
    const five = results[1];
    const targets: TargetResult[] = [
      ...side.targets,
      {
        name: `gateway RSS growth over a ${fmtInt(five.memory.chunks)}-chunk stream through 5 plugins`,
        target: `< ${MEMORY_TARGET_MIB} MiB`,
        measured: `${fmtSigned(five.memory.growthMiB, 1)} MiB`,
        met: ctx.quick ? null : five.memory.growthMiB < MEMORY_TARGET_MIB,
      },
    ];
    return {
      intro:
        'Server-sent events from `"stream": true`. First, side by side against a bare proxy in front of the same upstream process: CPU per stream, time to first byte and streams/s at 10 concurrent 20-chunk streams. Then, against the built-in mock provider (no upstream: the gateway is the only cost), through 0 and 5 plugins: time to first byte, time and CPU per chunk, and the gateway\'s memory over a 10,000-chunk stream. Every chunk crosses to a plugin worker once per hook call (post_llm_hook, then http_transport_stream_chunk_hook), so per-chunk cost is hook calls x the hook round trip above.',
      tables: [side.table, latency, memory],
      targets,
      notes: [
        ...side.notes,
        `Mock-provider tables, each variant: a fresh gateway process (\`node dist/host/main/cli.js\`, log_level warn, default plugin workers, mock provider without delay: one chunk per word of the request, then a finish chunk and [DONE]), ${ctx.taskset ? `pinned with \`taskset -c ${process.env.BENCH_GATEWAY_CPUS ?? '1'}\`; the client (undici request(), in the benchmark process) ${pinned ? 'on core 0' : 'NOT pinned'}` : 'nothing pinned (no taskset)'}.`,
        `TTFB: from sending the request to the first body byte, which is the first chunk after it went through every hook (the response head is flushed just before it). ${ctx.quick ? 'Quick mode: few streams.' : `Up to 300 sequential ${TTFB_CHUNKS}-chunk streams after 50 warm-up streams, capped at 6 s.`}`,
        `Time per chunk: the ${fmtInt(PER_CHUNK_CHUNKS)}-chunk streams' time between first and last body byte divided by their events; the stream is pull-based, so this is the gateway's throughput per stream (one chunk in flight at a time), not a queueing delay. CPU per chunk: user+system time of the whole gateway process over ${ctx.quick ? 1 : 3} such streams, divided by their chunks.`,
        'Memory: VmRSS from /proc/<pid>/status sampled every 50 ms during the stream, against the value just before it (after the runs above warmed the process up). Nothing in the gateway holds the stream: a chunk is produced when the client has taken the previous one.',
      ],
    };
  },
};
