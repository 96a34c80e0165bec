// The benchmark harness: `npm run bench` (build, then `node dist/bench/run.js`).
//
//   node dist/bench/run.js [--only <part-id>[,<part-id>]] [--quick] [--no-write]
//
// Runs every part in bench/parts/index.ts, prints each section to stdout and
// regenerates BENCHMARKS.md (keeping the blocks of parts not run). Every child
// process is killed when the run ends, however it ends.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Children, hasTaskset, selfAffinity } from './children.js';
import { machineInfo } from './machine.js';
import { PARTS } from './parts/index.js';
import { renderSection, writeReport } from './report.js';
import type { BenchPart, PartContext, Section } from './types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

async function main(): Promise<number> {
  const { values: args } = parseArgs({
    options: { only: { type: 'string' }, quick: { type: 'boolean', default: false }, 'no-write': { type: 'boolean', default: false }, help: { type: 'boolean' } },
    strict: true,
  });
  if (args.help) {
    console.log(`usage: node dist/bench/run.js [--only ${PARTS.map((p) => p.id).join(',')}] [--quick] [--no-write]`);
    return 0;
  }
  const wanted = args.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted?.filter((id) => !PARTS.some((p) => p.id === id)) ?? [];
  if (unknown.length) throw new Error(`unknown part(s): ${unknown.join(', ')}; known: ${PARTS.map((p) => p.id).join(', ')}`);
  const parts = wanted ? PARTS.filter((p) => wanted.includes(p.id)) : PARTS;

  const children = new Children();
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'sandgate-bench-'));
  process.once('exit', () => {
    children.killAllNow();
    rmSync(tmpDir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      children.killAllNow();
      process.exit(130);
    });
  }

  const taskset = hasTaskset();
  const ctx: PartContext = {
    root: ROOT,
    tmpDir,
    quick: args.quick,
    taskset,
    children,
    log: (msg) => process.stderr.write(`[bench] ${msg}\n`),
  };
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const started = performance.now();
  const results = new Map<string, { part: BenchPart; section: Section }>();
  try {
    ctx.log(`affinity at start: ${taskset ? selfAffinity() : 'taskset not available'}${args.quick ? '; QUICK mode (figures not meaningful)' : ''}`);
    for (const part of parts) {
      ctx.log(`${part.id}: start`);
      const t0 = performance.now();
      const section = await part.run(ctx);
      ctx.log(`${part.id}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      results.set(part.id, { part, section });
      process.stdout.write(`\n${renderSection(part, section, date)}\n`);
    }
  } finally {
    await children.stopAll();
    rmSync(tmpDir, { recursive: true, force: true });
  }

  const total = (performance.now() - started) / 1000;
  if (!args['no-write'] && !args.quick) {
    const file = path.join(ROOT, 'BENCHMARKS.md');
    writeReport(file, {
      date,
      command: 'npm run bench',
      machine: machineInfo(),
      details: [`Whole run: ${total.toFixed(0)} s${wanted ? ` (only: ${wanted.join(', ')})` : ''}`],
      parts: PARTS,
      results,
    });
    ctx.log(`wrote ${file}`);
  } else {
    ctx.log('BENCHMARKS.md not written (--quick or --no-write)');
  }
  ctx.log(`total ${total.toFixed(1)} s`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`bench failed: ${(e as Error)?.stack ?? e}`);
    process.exit(1);
  },
);
