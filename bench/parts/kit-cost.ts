// Part: what one hook call costs in each language's kit. The same sample,
// hello-world, written with each PDK (AssemblyScript, Go, Rust, C), called on
// this thread without a worker (bench/inthread.ts: the gateway's own guest
// wrapper and host functions), one hook at a time, in one run, so the ratios
// against the AssemblyScript kit hold even on this noisy machine.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { encode } from '../../host/abi/codec.js';
import type { HookName } from '../../host/abi/types.js';
import { pinSelf, selfAffinity } from '../children.js';
import { inThreadPlugin } from '../inthread.js';
import { timeLoop } from '../measure.js';
import { llmEnvelope, transportEnvelope } from '../payloads.js';
import { fmt } from '../stats.js';
import type { BenchPart, Cell, PartContext, Section } from '../types.js';

const KITS = [
  { lang: 'AssemblyScript', dir: 'hello-world' },
  { lang: 'Go', dir: 'hello-world-go' },
  { lang: 'Rust', dir: 'hello-world-rust' },
  { lang: 'C', dir: 'hello-world-c' },
] as const;

/** Target from the "Any language" issue: a Go hook call within 2x of the AssemblyScript kit's. */
const GO_TARGET_RATIO = 2;

function envelopes(): { hook: HookName; envelope: unknown }[] {
  const llm = llmEnvelope();
  const transport = transportEnvelope(false);
  const response = {
    id: 'chatcmpl-bench', object: 'chat.completion', created: 1_700_000_000, model: 'echo',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello from the benchmark.' }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  };
  return [
    { hook: 'http_transport_pre_hook', envelope: transport },
    { hook: 'pre_llm_hook', envelope: llm },
    { hook: 'post_llm_hook', envelope: { ctx: llm.ctx, response } },
    { hook: 'http_transport_post_hook', envelope: { ...transport, resp: { status: 200, headers: { 'content-type': 'application/json' } } } },
  ];
}

export const kitCost: BenchPart = {
  id: 'kit-cost',
  title: 'Per-call cost of each kit',
  async run(ctx: PartContext): Promise<Section> {
    const loop = ctx.quick ? { warmupCalls: 200, warmupMaxMs: 500, calls: 1000, maxMs: 2000 } : { warmupCalls: 2000, warmupMaxMs: 3000, calls: 10_000, maxMs: 10_000 };
    const startAffinity = selfAffinity();
    if (ctx.taskset) pinSelf('0');
    const hooks = envelopes();
    const p50 = new Map<string, Map<HookName, number>>();
    const missing: string[] = [];
    try {
      for (const kit of KITS) {
        const file = path.join(ctx.root, 'sample-plugins', kit.dir, 'build', `${kit.dir}.wasm`);
        if (!existsSync(file)) {
          missing.push(`${kit.lang}: ${path.relative(ctx.root, file)} is not built`);
          continue;
        }
        ctx.log(`  ${kit.lang}`);
        const plugin = await inThreadPlugin(kit.dir, file);
        const row = new Map<HookName, number>();
        try {
          for (const { hook, envelope } of hooks) {
            const bytes = encode(envelope);
            await plugin.call(hook, bytes); // a failure here is a broken sample, not a figure
            row.set(hook, (await timeLoop(() => plugin.call(hook, bytes), loop)).latency.p50);
          }
        } finally {
          await plugin.close();
        }
        p50.set(kit.lang, row);
      }
    } finally {
      if (ctx.taskset && startAffinity) pinSelf(startAffinity);
    }
    const as = p50.get('AssemblyScript');
    const rows: Cell[][] = [...p50].map(([lang, row]) => [
      lang,
      ...hooks.flatMap(({ hook }) => {
        const v = row.get(hook);
        const base = as?.get(hook);
        return [fmt(v), v !== undefined && base ? `${fmt(v / base, 2)} x` : '-'];
      }),
    ]);
    const go = p50.get('Go');
    const worstGo = go && as ? Math.max(...hooks.map(({ hook }) => (go.get(hook) ?? 0) / (as.get(hook) ?? 1))) : undefined;
    return {
      intro:
        'The hello-world sample in each language (the same observable behaviour, tested in `test/`), each hook called on the benchmark thread without a plugin worker: encode the envelope, the Extism call through the gateway\'s own guest wrapper and host functions, the output back. p50 in microseconds, and the ratio to the AssemblyScript kit on the same hook in this run.',
      tables: [
        {
          columns: ['kit', ...hooks.flatMap(({ hook }) => [`${hook} p50 us`, 'vs AS'])],
          rows,
        },
      ],
      targets: [
        {
          name: 'Go kit hook call, worst hook, against the AssemblyScript kit',
          target: `<= ${GO_TARGET_RATIO}x`,
          measured: worstGo === undefined ? 'not measured' : `${fmt(worstGo, 2)}x`,
          met: worstGo === undefined ? null : worstGo <= GO_TARGET_RATIO,
        },
      ],
      notes: [
        `${fmt(loop.calls, 0)} timed calls per hook after ${fmt(loop.warmupCalls, 0)} warm-up calls, one at a time, the benchmark process pinned to core 0.`,
        'The plugin-worker crossing the gateway adds to every call (see the hook round trip part) is the same for every language and is left out here, so the ratios compare the kits themselves.',
        ...missing.map((m) => `Not measured: ${m}.`),
      ],
    };
  },
};
