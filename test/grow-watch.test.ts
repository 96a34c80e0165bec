import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { sandboxModule } from '../host/runtime/module/sandbox-module.js';
import { WASI_FUNCTIONS } from '../host/runtime/sandbox/guest-wasi.js';

/** What compile.ts does before the rewriter: the sandbox's limits, with a memory cap of `pages`. */
const limitMemory = (wasm: Uint8Array, pages: number, name: string) => sandboxModule(wasm, { memoryPages: pages, wasiFunctions: WASI_FUNCTIONS }, name).bytes;
import { GROW_REFUSED_EXPORT, growRefusedFlag, watchMemoryGrow } from '../host/runtime/module/grow-watch.js';
import { builtModules, ROOT } from './helpers/paths.js';
import { wabt, wat, WAT_FEATURES as FEATURES } from './helpers/wat.js';

// The memory.grow rewriter (host/runtime/module/grow-watch.ts). It must find
// memory.grow only where an instruction starts, leave every other byte of the
// code as it was, and refuse what it cannot read.

/** The module as text, split into its top-level fields, by wabt (an independent decoder). */
function fields(bytes: Uint8Array): string[] {
  const mod = wabt.readWasm(bytes, { readDebugNames: false, ...FEATURES });
  try {
    const text = mod.toText({ foldExprs: false, inlineExport: false }).trimEnd();
    assert.ok(text.endsWith(')'));
    return text.slice(0, -1).split(/\n(?=  \()/).slice(1);
  } finally {
    mod.destroy();
  }
}

const growFunction = (index: number, type: number, global: number) =>
  [
    `  (func (;${index};) (type ${type}) (param i32) (result i32)`,
    '    (local i32)',
    '    local.get 0',
    '    memory.grow',
    '    local.tee 1',
    '    i32.const -1',
    '    i32.eq',
    '    if  ;; label = @1',
    '      i32.const 1',
    `      global.set ${global}`,
    '    end',
    '    local.get 1)',
  ].join('\n');

/**
 * Checks, through wabt's disassembly, that the instrumented module is the
 * original with each memory.grow turned into a call to the appended function,
 * plus that function, its type (unless one was there), the flag and its
 * export, and nothing else. Returns how many grows were replaced.
 */
function assertOnlyGrowsReplaced(original: Uint8Array<ArrayBuffer>, instrumented: Uint8Array<ArrayBuffer>): number {
  assert.ok(WebAssembly.validate(instrumented), 'the instrumented module validates');
  const before = fields(original);
  const after = fields(instrumented);
  const functions = before.filter((f) => /^ {2}\(func /.test(f) || /^ {2}\(import .*\(func/.test(f)).length;
  const globals = before.filter((f) => /^ {2}\(global /.test(f) || /^ {2}\(import .*\(global/.test(f)).length;
  let grows = 0;
  const expected = before.map((f) =>
    /^ {2}\(func /.test(f)
      ? f.replace(/^(\s+)memory\.grow(\)*)$/gm, (_, indent: string, close: string) => {
          grows++;
          return `${indent}call ${functions}${close}`;
        })
      : f,
  );
  if (grows === 0) {
    assert.deepEqual(after, before, 'a module without memory.grow is left as is');
    return 0;
  }
  const added = after.filter((f) => !expected.includes(f));
  assert.deepEqual(
    after.filter((f) => expected.includes(f)),
    expected,
    'every original field is kept, in order, with memory.grow replaced by the call',
  );
  const newType = added.find((f) => f.includes('(type (;'));
  const growType = newType ? Number(/\(type \(;(\d+);\)/.exec(newType)![1]) : Number(/\(type \(;(\d+);\) \(func \(param i32\) \(result i32\)\)\)/.exec(before.join('\n'))![1]);
  assert.deepEqual(
    added.filter((f) => f !== newType),
    [growFunction(functions, growType, globals), `  (global (;${globals};) (mut i32) (i32.const 0))`, `  (export "${GROW_REFUSED_EXPORT}" (global ${globals}))`],
  );
  if (newType) assert.equal(newType, `  (type (;${growType};) (func (param i32) (result i32)))`);
  return grows;
}

function instantiate(bytes: Uint8Array<ArrayBuffer>, imports: WebAssembly.Imports = {}): WebAssembly.Instance {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
}

describe('every plugin and fixture in the repo', () => {
  const files = builtModules();

  it('is found (built by npm run build:plugins)', () => {
    for (const want of ['sample-plugins/hello-world/', 'test/plugins/scripted/', 'test/fixtures/build/memory-bomb.wasm', 'plugin-pdk/assemblyscript/build/conformance.wasm']) {
      assert.ok(files.some((f) => f.includes(want)), `${want} is built`);
    }
  });

  it('still validates and differs from the original only where it grew memory', () => {
    let instrumented = 0;
    for (const file of files) {
      let capped: Uint8Array<ArrayBuffer>;
      try {
        capped = limitMemory(new Uint8Array(readFileSync(file)), 1024, 'p');
      } catch (e) {
        // Hostile fixtures the sandbox refuses at load (big-table, command-module, ...) never reach the rewriter.
        if (e instanceof GatewayError && e.code === ErrorCode.pluginLoadFailed) continue;
        throw e;
      }
      const out = watchMemoryGrow(capped, 'p');
      const grows = assertOnlyGrowsReplaced(capped, out);
      const flag = WebAssembly.Module.exports(new WebAssembly.Module(out)).find((e) => e.name === GROW_REFUSED_EXPORT);
      assert.equal(flag?.kind, grows > 0 ? 'global' : undefined, path.relative(ROOT, file));
      if (grows > 0) instrumented++;
    }
    // Every AssemblyScript build grows memory (its allocator), and so does memory-bomb.
    assert.ok(instrumented >= 8, `${instrumented} modules instrumented`);
  });
});

describe('a real plugin behaves the same', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'grow-watch-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const conformance = path.join(ROOT, 'plugin-pdk/assemblyscript/build/conformance.wasm');

  /** Loads through the PDK harness: the gateway's load path (sandboxed and watched), or the module as built. */
  async function load(bytes: Uint8Array, opts: { memoryLimitMb?: number; rewrite?: boolean } = {}) {
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.wasm`);
    writeFileSync(file, bytes);
    const harness = await import(pathToFileURL(path.join(ROOT, 'plugin-pdk/assemblyscript/harness.mjs')).href);
    return { harness, plugin: await harness.loadPlugin(file, opts) };
  }

  it('conformance.wasm answers every vector, and a 3 MB one, byte for byte as before', async () => {
    const raw = new Uint8Array(readFileSync(conformance));
    const { harness, plugin: original } = await load(raw, { rewrite: false });
    const { plugin: watched } = await load(raw);
    try {
      const vectors = JSON.parse(readFileSync(path.join(ROOT, 'plugin-pdk/conformance/vectors.json'), 'utf8')) as { hex: string }[];
      const inputs = [...vectors.map((v) => Buffer.from(v.hex, 'hex')), harness.pack({ big: new Uint8Array(3 << 20).fill(7) })];
      for (const input of inputs) {
        const a = await original.call('roundtrip', input);
        const b = await watched.call('roundtrip', input);
        assert.deepEqual(b.output, a.output);
      }
      assert.ok(watched.memory.buffer.byteLength > 3 << 20, 'the big input made it grow');
      assert.equal(watched.memory.buffer.byteLength, original.memory.buffer.byteLength);
      assert.equal(watched.growRefused?.value, 0, 'no grow was refused');
    } finally {
      await original.close();
      await watched.close();
    }
  });

  it('conformance.wasm over its cap raises the flag', async () => {
    // memory_limit_mb 2: 32 pages.
    const { harness, plugin } = await load(new Uint8Array(readFileSync(conformance)), { memoryLimitMb: 2 });
    try {
      await assert.rejects(plugin.call('roundtrip', harness.pack({ big: new Uint8Array(3 << 20) })));
      assert.equal(plugin.growRefused?.value, 1);
    } finally {
      await plugin.close();
    }
  });
});

describe('instructions around memory.grow', () => {
  // Each module below puts 0x40 (memory.grow's opcode) in immediates where a
  // byte-wise search would find it: empty block types, i32.const 64, offsets,
  // lanes, v128 constants, f32/f64 constants, local 64.
  const run = (bytes: Uint8Array<ArrayBuffer>, args: number[], imports?: WebAssembly.Imports) => {
    const exports = instantiate(bytes, imports).exports;
    const fn = exports.run as (n: number) => number;
    return { results: args.map((n) => fn(n)), flag: growRefusedFlag(exports)?.value };
  };

  function check(source: string, args: number[], expectedGrows: number, imports?: WebAssembly.Imports) {
    const original = wat(source);
    const out = watchMemoryGrow(original, 'p');
    assert.equal(assertOnlyGrowsReplaced(original, out), expectedGrows);
    const before = run(original, args, imports);
    const after = run(out, args, imports);
    assert.deepEqual(after.results, before.results, 'same results');
    return after;
  }

  it('SIMD: memargs, lanes, v128.const, i8x16.shuffle', () => {
    const r = check(
      `(module
        (memory 1 4)
        (func (export "run") (param $n i32) (result i32)
          (local $v v128)
          (local.set $v (v128.const i8x16 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40 0x40))
          (v128.store offset=64 (i32.const 0) (local.get $v))
          (local.set $v (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $v) (v128.load offset=64 align=1 (i32.const 0))))
          (local.set $v (v128.load8_lane offset=64 15 (i32.const 1) (local.get $v)))
          (local.set $v (i32x4.replace_lane 2 (local.get $v) (memory.grow (local.get $n))))
          (local.set $v (i8x16.add (local.get $v) (v128.load64_zero offset=64 (i32.const 0))))
          (i32.add (i32x4.extract_lane 2 (local.get $v)) (i32.add (i32x4.extract_lane 3 (local.get $v)) (memory.size)))))`,
      [1, 0, 64, 1, 1, 1],
      1,
    );
    assert.equal(r.flag, 1, 'the grow by 64 pages was refused');
  });

  it('bulk memory, reference types, typed select, br_table, numeric constants, local 64', () => {
    const r = check(
      `(module
        (memory 1 4)
        (data $d "\\40\\40\\40\\40")
        (table $t 2 8 funcref)
        (elem $e func $a $b)
        (func $a (result i32) (i32.const 64))
        (func $b (result i32) (i32.const 7))
        (func (export "run") (param $n i32) (result i32)
          (local ${'i32 '.repeat(63)}) (local $far i32) (local $x i32)
          (local.set $far (i32.const 64))
          (memory.init $d (i32.const 100) (i32.const 0) (i32.const 4))
          (memory.copy (i32.const 200) (i32.const 100) (i32.const 4))
          (memory.fill (i32.const 300) (i32.const 64) (i32.const 4))
          (table.init $t $e (i32.const 0) (i32.const 0) (i32.const 2))
          (drop (table.grow $t (ref.null func) (i32.const 1)))
          (table.set $t (i32.const 2) (ref.func $a))
          (table.fill $t (i32.const 3) (ref.func $b) (i32.const 0))
          (if (i32.eq (local.get $n) (i32.const 99)) (then (data.drop $d) (elem.drop $e)))
          (local.set $x
            (block $done (result i32)
              (block $two
                (block $one
                  (block $zero
                    (br_table $zero $one $two (i32.rem_u (local.get $n) (i32.const 3))))
                  (br $done (i32.const 10)))
                (br $done (i32.const 20)))
              (i32.const 30)))
          (local.set $x (i32.add (local.get $x) (memory.grow (i32.and (local.get $n) (i32.const 3)))))
          (local.set $x (i32.add (local.get $x)
            (select (result i32) (call_indirect $t (result i32) (i32.const 2)) (i32.load offset=64 (i32.const 136)) (local.get $n))))
          (local.set $x (i32.add (local.get $x) (i32.trunc_sat_f32_s (f32.const 2.0))))
          (local.set $x (i32.add (local.get $x) (i32.trunc_f64_s (f64.const 2.0))))
          (local.set $x (i32.add (local.get $x) (i32.wrap_i64 (i64.const 64))))
          (local.set $x (i32.add (local.get $x) (i32.extend8_s (i32.const 0x40))))
          (local.set $x (i32.add (local.get $x) (select (i32.const 1) (i32.const 2) (ref.is_null (table.get $t (i32.const 2))))))
          (i32.add (i32.add (local.get $x) (local.get $far)) (i32.add (table.size $t) (memory.size)))))`,
      [0, 1, 2, 3, 4, 5],
      1,
    );
    assert.equal(r.flag, 1, 'growing past 4 pages was refused');
  });

  it('exception handling and tail calls', () => {
    const r = check(
      `(module
        (memory 1 4)
        (tag $t (param i32))
        (type $g (func (param i32) (result i32)))
        (table 1 funcref)
        (elem (i32.const 0) func $grow)
        (func $thrower (param i32) (throw $t (local.get 0)))
        (func $grow (param i32) (result i32) (memory.grow (local.get 0)))
        (func $tail (param i32) (result i32) (return_call $grow (local.get 0)))
        (func $tail_indirect (param i32) (result i32) (return_call_indirect (type $g) (local.get 0) (i32.const 0)))
        (func (export "run") (param $n i32) (result i32)
          try (result i32)
            (call $thrower (local.get $n))
            i32.const 64
          catch $t
            call $tail
          end
          try (result i32)
            try
              (call $thrower (i32.const 64))
            delegate 0
            i32.const 64
          catch $t
            call $tail_indirect
          catch_all
            i32.const 64
          end
          i32.add
          block (result i32)
            try (result i32)
              try
                (call $thrower (i32.const 1))
              catch $t
                drop
                rethrow 0
              end
              i32.const 64
            catch_all
              (memory.grow (i32.const 0))
            end
          end
          i32.add))`,
      [0, 1, 0, 2],
      2,
    );
    assert.equal(r.flag, 1, 'growing by 64 pages was refused');
  });

  it('atomics, including atomic.fence', () => {
    check(
      `(module
        (memory 1 4)
        (func (export "run") (param $n i32) (result i32)
          atomic.fence
          (drop (i32.atomic.rmw.add offset=64 (i32.const 0) (i32.const 64)))
          (drop (memory.atomic.notify offset=64 (i32.const 0) (i32.const 0)))
          (i64.atomic.store offset=64 (i32.const 8) (i64.const 64))
          (i32.add (i32.atomic.load offset=64 (i32.const 0)) (i32.add (i32.wrap_i64 (i64.atomic.load offset=64 (i32.const 8))) (memory.grow (local.get $n))))))`,
      [0, 1, 2],
      1,
    );
  });

  it('imported functions, globals and memory shift the appended indices; an existing (i32)->(i32) type is reused', () => {
    const source = `(module
      (import "env" "f" (func $f (param i32) (result i32)))
      (import "env" "g" (global $g i32))
      (import "env" "memory" (memory 1 2))
      (global $mine (mut i32) (i32.const 5))
      (func (export "run") (param $n i32) (result i32)
        (i32.add (call $f (memory.grow (local.get $n))) (i32.add (global.get $g) (global.get $mine)))))`;
    const imports = () => ({ env: { f: (x: number) => x * 10, g: new WebAssembly.Global({ value: 'i32' }, 3), memory: new WebAssembly.Memory({ initial: 1, maximum: 2 }) } });
    const original = wat(source);
    const out = watchMemoryGrow(original, 'p');
    assert.equal(assertOnlyGrowsReplaced(original, out), 1);
    assert.ok(!fields(out).some((f) => f.startsWith('  (type (;1;)')), 'no type added');
    const before = run(original, [1, 1], imports());
    const after = run(out, [1, 1], imports());
    assert.deepEqual(after.results, before.results);
    assert.deepEqual(after.results, [18, -2]);
    assert.equal(after.flag, 1);
  });

  it('a module without globals or exports gets both sections, in order', () => {
    // The start function's grow is refused (maximum 1 page) while instantiating.
    const original = wat('(module (memory 1 1) (func $s (drop (memory.grow (i32.const 1)))) (start $s))');
    const out = watchMemoryGrow(original, 'p');
    assert.equal(assertOnlyGrowsReplaced(original, out), 1);
    assert.equal(growRefusedFlag(instantiate(out).exports)?.value, 1);
  });

  it('a grow that succeeds leaves the flag down', () => {
    const out = watchMemoryGrow(wat('(module (memory 1 2) (func (export "run") (param i32) (result i32) (memory.grow (local.get 0))))'), 'p');
    const exports = instantiate(out).exports;
    const grow = exports.run as (n: number) => number;
    assert.equal(grow(1), 1);
    assert.equal(growRefusedFlag(exports)?.value, 0);
    assert.equal(grow(1), -1);
    assert.equal(growRefusedFlag(exports)?.value, 1);
  });

  it('a module without memory, or without memory.grow, is returned as is', () => {
    for (const source of ['(module (func (export "f") (result i32) (i32.const 64)))', '(module (memory 1) (func (export "f") (result i32) (memory.size)))']) {
      const bytes = wat(source);
      assert.equal(watchMemoryGrow(bytes, 'p'), bytes);
    }
  });
});

describe('what the reader does not know', () => {
  /** A module with one memory and one function () -> () whose body is `code` (then end). */
  function moduleWithCode(code: number[]): Uint8Array<ArrayBuffer> {
    const section = (id: number, body: number[]) => [id, body.length, ...body];
    const body = [0x00, ...code, 0x0b];
    return new Uint8Array([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, [1, 0x60, 0, 0]),
      ...section(3, [1, 0]),
      ...section(5, [1, 0, 1]),
      ...section(10, [1, body.length, ...body]),
    ]);
  }
  const GROW = [0x41, 0x01, 0x40, 0x00, 0x1a]; // i32.const 1; memory.grow 0; drop

  it('the hand-made base module is valid and gets instrumented', () => {
    const bytes = moduleWithCode(GROW);
    assert.ok(WebAssembly.validate(bytes));
    assert.equal(assertOnlyGrowsReplaced(bytes, watchMemoryGrow(bytes, 'p')), 1);
  });

  const unknown: [string, number[], RegExp][] = [
    ['an unassigned opcode', [0x27], /function 0 uses opcode 0x27 at byte \d+/],
    ['a GC instruction (0xfb prefix)', [0xfb, 0x01, 0x00], /opcode 0xfb at byte \d+/],
    ['a typed function reference call (call_ref)', [0x14, 0x00], /opcode 0x14 at byte \d+/],
    ['an unassigned SIMD opcode', [0xfd, 0x9a, 0x01], /opcode 0xfd 154 at byte \d+/],
    ['an unknown 0xfc opcode', [0xfc, 0x12], /opcode 0xfc 18 at byte \d+/],
    ['a block type with a heap type', [0x02, 0x63, 0x70, 0x0b], /block type 0x63 at byte \d+/],
  ];
  for (const [what, code, message] of unknown) {
    it(`${what} refuses the module with plugin_load_failed`, () => {
      assert.throws(
        () => watchMemoryGrow(moduleWithCode([...GROW, ...code]), 'odd'),
        (e: unknown) => {
          assert.ok(e instanceof GatewayError);
          assert.equal(e.code, ErrorCode.pluginLoadFailed);
          assert.match(e.message, /^plugin "odd": cannot watch its memory.grow instructions: /);
          assert.match(e.message, message);
          assert.match(e.message, /does not know .*build the plugin without it/);
          return true;
        },
      );
    });
  }

  it('a body that does not end where its size says is refused', () => {
    const bytes = moduleWithCode([...GROW, 0x0b, 0x01]); // end, then a stray nop
    assert.throws(() => watchMemoryGrow(bytes, 'odd'), /plugin "odd": cannot watch its memory.grow instructions: function 0: function body has bytes after its final end/);
  });

  it(`a module exporting "${GROW_REFUSED_EXPORT}" itself is refused`, () => {
    const bytes = wat(`(module (memory 1) (global (export "${GROW_REFUSED_EXPORT}") i32 (i32.const 1)))`);
    assert.throws(() => watchMemoryGrow(bytes, 'odd'), (e: unknown) => e instanceof GatewayError && e.code === ErrorCode.pluginLoadFailed && /a name Sandgate reserves/.test(e.message));
  });
});
