import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import initWabt from 'wabt';
import { ErrorCode, GatewayError } from '../host/errors/codes.js';
import { sandboxModule } from '../host/runtime/module/sandbox-module.js';
import { WASI_FUNCTIONS } from '../host/runtime/sandbox/guest-wasi.js';

// The module rewriter (host/runtime/module/sandbox-module.ts), on its own:
// every memory a module declares gets the cap (memory_limit_mb) as its
// maximum, a smaller declared maximum is kept, a memory that needs more at
// start and an imported memory are refused at load. The rewritten bytes are
// read back with wabt and, where Node can, instantiated.

const wabt = await initWabt();
const FEATURES = { multi_memory: true, threads: true, memory64: true };
const CAP = 16; // pages: 1 MiB

function wat(source: string): Uint8Array<ArrayBuffer> {
  const mod = wabt.parseWat('test.wat', source, FEATURES);
  try {
    return mod.toBinary({}).buffer as Uint8Array<ArrayBuffer>;
  } finally {
    mod.destroy();
  }
}

const sandbox = (source: string) => sandboxModule(wat(source), { memoryPages: CAP, wasiFunctions: WASI_FUNCTIONS }, 'rewritten').bytes;

/** The memory declarations of a binary module, as wabt prints them: "min max". */
function memories(bytes: Uint8Array): string[] {
  const mod = wabt.readWasm(bytes, FEATURES);
  try {
    return [...mod.toText({}).matchAll(/\(memory \(;\d+;\) ([^)]*)\)/g)].map((m) => m[1].trim());
  } finally {
    mod.destroy();
  }
}

function refused(source: string, reason: RegExp): void {
  assert.throws(
    () => sandbox(source),
    (e: unknown) => e instanceof GatewayError && e.code === ErrorCode.pluginLoadFailed && /plugin "rewritten"/.test(e.message) && reason.test(e.message),
  );
}

describe('the memory cap written into the module', () => {
  it('a memory without a declared maximum gets the cap, and cannot grow past it', () => {
    const bytes = sandbox('(module (memory (export "memory") 1))');
    assert.deepEqual(memories(bytes), [`1 ${CAP}`]);
    const { memory } = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as { memory: WebAssembly.Memory };
    memory.grow(CAP - 1);
    assert.throws(() => memory.grow(1), RangeError, 'one page past the cap');
  });

  it('a declared maximum over the cap is lowered to it; one under the cap is kept', () => {
    assert.deepEqual(memories(sandbox('(module (memory 1 1000))')), [`1 ${CAP}`]);
    assert.deepEqual(memories(sandbox('(module (memory 2 4))')), ['2 4']);
    assert.deepEqual(memories(sandbox(`(module (memory ${CAP} ${CAP}))`)), [`${CAP} ${CAP}`]);
  });

  it('every memory of a multi-memory module is capped', () => {
    assert.deepEqual(memories(sandbox('(module (memory 1) (memory 2 5) (memory 3 900))')), [`1 ${CAP}`, '2 5', `3 ${CAP}`]);
  });

  it('a memory that needs more than the cap at start is refused, saying what to raise', () => {
    refused(`(module (memory ${CAP + 1}))`, new RegExp(`memory 0 needs ${CAP + 1} pages .* over the limit of ${CAP} pages: raise memory_limit_mb`));
    refused(`(module (memory 1) (memory ${CAP + 1}))`, /memory 1 needs/);
  });

  it('an imported memory is refused: a plugin exports its memory', () => {
    refused('(module (import "env" "memory" (memory 1)))', /import "env" "memory" is a memory; a plugin may import only functions \(export its memory instead\)/);
  });

  it('shared and 64-bit memories are refused', () => {
    refused('(module (memory 1 2 shared))', /shared memory/);
    refused('(module (memory i64 1))', /64-bit memory/);
  });

  it('a module without a memory passes unchanged in that respect', () => {
    assert.deepEqual(memories(sandbox('(module (func (export "f")))')), []);
  });
});
