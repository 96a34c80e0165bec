import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CLOCK_TABLE_EXPORT, FUEL_EXPORT, START_EXPORT, watchDeadlines } from '../host/runtime/module/deadline-watch.js';
import { watchMemoryGrow } from '../host/runtime/module/grow-watch.js';
import { DeadlineClock, DeadlineExceeded } from '../host/runtime/sandbox/deadline-clock.js';
import { builtModules, ROOT } from './helpers/paths.js';
import { wat } from './helpers/wat.js';

// The deadline rewriter (host/runtime/module/deadline-watch.ts) and its clock
// (host/runtime/sandbox/deadline-clock.ts): every way guest code can keep
// running passes a fuel check, so an armed clock stops it; disarmed, the
// module computes exactly what it did before.

const watched = (source: string) => watchDeadlines(wat(source), 'test');

/** Instantiates a rewritten module, attaches a clock, and runs the deferred start function if there is one. */
function instantiate(bytes: Uint8Array<ArrayBuffer>): { exports: WebAssembly.Exports; clock: DeadlineClock } {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const clock = DeadlineClock.attach(instance.exports);
  assert.ok(clock, 'the rewritten module exports its fuel and clock table');
  const start = instance.exports[START_EXPORT];
  if (typeof start === 'function') (start as () => void)();
  return { exports: instance.exports, clock };
}

/** Runs `fn` with the clock armed `ms` from now; returns the error it threw, or undefined. */
function runArmed(clock: DeadlineClock, ms: number, fn: () => unknown): unknown {
  clock.arm(performance.now() + ms);
  try {
    fn();
    return undefined;
  } catch (e) {
    return e;
  } finally {
    clock.disarm();
  }
}

const SPINNERS: Record<string, string> = {
  'a tight loop': '(module (func (export "spin") (loop $l (br $l))))',
  'a loop nested in a block with a br_table': `(module (func (export "spin") (local i32)
    (loop $l (block $b (br_table $l $b (local.get 0))))))`,
  'mutual tail calls': `(module
    (func $a (export "spin") (return_call $b))
    (func $b (return_call $a)))`,
  'memory.fill of the whole memory, over and over': `(module (memory 16)
    (func (export "spin") (loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.const 1048576)) (br $l))))`,
  'memory.copy over and over': `(module (memory 16)
    (func (export "spin") (loop $l (memory.copy (i32.const 0) (i32.const 524288) (i32.const 524288)) (br $l))))`,
  'a loop that calls a function without loops': `(module
    (func $work (result i32) (i32.add (i32.const 1) (i32.const 2)))
    (func (export "spin") (loop $l (drop (call $work)) (br $l))))`,
};

/**
 * Runs a spinner's `spin` on a thread of its own with the clock armed 20 ms
 * ahead: what stopped it, or 'still running' if the clock did not (a guest
 * that never stops would otherwise hang the test run itself).
 */
async function spinOnThread(bytes: Uint8Array): Promise<string> {
  const clockUrl = pathToFileURL(path.join(ROOT, 'dist/host/runtime/sandbox/deadline-clock.js')).href;
  const thread = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     import(workerData.clockUrl).then(({ DeadlineClock }) => {
       const { exports } = new WebAssembly.Instance(new WebAssembly.Module(workerData.bytes), {});
       const clock = DeadlineClock.attach(exports);
       clock.arm(performance.now() + 20);
       try { exports.spin(); parentPort.postMessage('returned'); } catch (e) { parentPort.postMessage(e.name); }
     });`,
    { eval: true, workerData: { bytes, clockUrl } },
  );
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => resolve('still running'), 10_000);
      thread.once('message', (m: string) => {
        clearTimeout(timer);
        resolve(m);
      });
      thread.once('error', reject);
    });
  } finally {
    await thread.terminate();
  }
}

describe('an armed clock stops', () => {
  for (const [what, source] of Object.entries(SPINNERS)) {
    it(what, async () => {
      assert.equal(await spinOnThread(watched(source).bytes), 'DeadlineExceeded');
    });
  }

  it('a start function that never returns, once it is run under the clock', () => {
    const bytes = watched('(module (func $s (loop $l (br $l))) (start $s))').bytes;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}); // the start function no longer runs here
    const clock = DeadlineClock.attach(instance.exports)!;
    assert.ok(runArmed(clock, 20, instance.exports[START_EXPORT] as () => void) instanceof DeadlineExceeded);
  });

  it('a guest that keeps running after the check threw (its fuel stays empty)', () => {
    const { exports, clock } = instantiate(watched('(module (func (export "spin") (loop $l (br $l))))').bytes);
    clock.arm(performance.now() - 1);
    assert.throws(() => (exports.spin as () => void)(), DeadlineExceeded);
    // Never disarmed: the next entry finds no fuel and checks at once.
    assert.throws(() => (exports.spin as () => void)(), DeadlineExceeded);
  });
});

describe('a disarmed clock', () => {
  it('lets the same code run to its end with the same result', () => {
    const source = `(module (memory 1)
      (func $start (i32.store (i32.const 0) (i32.const 5)))
      (start $start)
      (func (export "sum") (param $n i32) (result i32) (local $acc i32)
        (memory.fill (i32.const 64) (i32.const 1) (i32.const 1000))
        (memory.copy (i32.const 2000) (i32.const 64) (i32.const 1000))
        (loop $l
          (local.set $acc (i32.add (local.get $acc) (local.get $n)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br_if $l (local.get $n)))
        (i32.add (i32.add (local.get $acc) (i32.load8_u (i32.const 2999))) (i32.load (i32.const 0)))))`;
    const plain = new WebAssembly.Instance(new WebAssembly.Module(wat(source)), {}).exports.sum as (n: number) => number;
    const { exports } = instantiate(watched(source).bytes);
    for (const n of [1, 10, 100_000, 10_000_000]) assert.equal((exports.sum as (n: number) => number)(n), plain(n), `sum(${n})`);
  });
});

describe('the rewrite', () => {
  it('reports what fuel cannot bound', () => {
    assert.deepEqual(watched('(module (func (export "f") (try (do nop) (catch_all))))').unbounded, ['exception handling']);
    assert.deepEqual(watched('(module (table 1 funcref) (func (export "f") (drop (table.grow (ref.null func) (i32.const 1)))))').unbounded, ['table.grow']);
    assert.deepEqual(watched('(module (memory 1) (data "x") (func (export "f") (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 1))))').unbounded, ['memory.init']);
    assert.deepEqual(watched('(module (memory 1) (func (export "f") (loop $l (br $l))))').unbounded, []);
  });

  it('refuses a module that brings a name it reserves', () => {
    for (const name of [FUEL_EXPORT, CLOCK_TABLE_EXPORT, START_EXPORT]) {
      assert.throws(() => watched(`(module (func (export "${name}")))`), (e: Error) => e.message.includes('reserves'));
    }
  });

  it('leaves every plugin and fixture of the repo valid, and the sample plugins fully bounded', () => {
    for (const file of builtModules()) {
      const { bytes, unbounded } = watchDeadlines(watchMemoryGrow(new Uint8Array(readFileSync(file)), 'x'), 'x');
      assert.ok(WebAssembly.validate(bytes), `${path.relative(ROOT, file)} still validates`);
      if (file.includes('sample-plugins')) assert.deepEqual(unbounded, [], path.relative(ROOT, file));
    }
  });
});
