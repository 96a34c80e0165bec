// Tells a refused memory.grow apart from any other trap. A guest at its memory
// cap sees memory.grow return -1 and then traps (AssemblyScript aborts, Rust
// panics); the trap itself says nothing about memory. So before compiling,
// every `memory.grow` in the code becomes a `call` to one function appended
// to the module, which does the grow and raises an exported flag when it
// returns -1 (the memory's maximum, which sandbox-module.ts set to at most
// memory_limit_mb, was reached). The guest (sandbox/guest.ts) lowers the flag before each
// call and reads it after a failed one: raised means the failure is
// `plugin_memory`, otherwise it is a plain trap.
//
// Cost: the rewrite reads every instruction of the module once per compiled
// plugin version, at load (2-3 ms for a 50 KB module). At run time a grow is
// one extra wasm call, lost in memory.grow's own ~400 ns, and lowering the
// flag adds ~20 ns to a hook call (a healthy call measured the same, ~6 µs).

import { forEachMemoryGrow } from './instructions.js';
import { inFunction, ModuleEditor, rewriteFailed, skipLocals, type FunctionBody } from './module-editor.js';
import { concat, EXTERN_KIND, leb, Reader } from './wasm-binary.js';

/** The export holding the flag: a mutable i32, 1 once a memory.grow was refused. */
export const GROW_REFUSED_EXPORT = 'sandgate:grow_refused';

const I32 = 0x7f;
const OP = { call: 0x10, localGet: 0x20, localTee: 0x22, globalSet: 0x24, memoryGrow: 0x40, i32Const: 0x41, i32Eq: 0x46, if: 0x04, end: 0x0b } as const;
const EMPTY_BLOCK = 0x40;

/**
 * The appended function, (i32) -> (i32) with one i32 local:
 *   local.get 0; memory.grow 0; local.tee 1; i32.const -1; i32.eq;
 *   if; i32.const 1; global.set $refused; end; local.get 1
 */
function growFunctionBody(refusedGlobal: number): number[] {
  return [
    0x01, 0x01, I32, // locals: one i32
    OP.localGet, 0, OP.memoryGrow, 0, OP.localTee, 1,
    OP.i32Const, 0x7f /* -1 */, OP.i32Eq,
    OP.if, EMPTY_BLOCK, OP.i32Const, 1, OP.globalSet, ...leb(refusedGlobal), OP.end,
    OP.localGet, 1, OP.end,
  ];
}

/** Byte ranges (relative to the body) of every memory.grow in a function body. */
function findGrows(body: FunctionBody): [number, number][] {
  const found: [number, number][] = [];
  inFunction(body.index, () => forEachMemoryGrow(new Reader(body.bytes, skipLocals(body.bytes)), body.bytes.length, (s, e) => found.push([s, e])));
  return found;
}

/** A body with each memory.grow range replaced by `call fn`. */
function replaceGrows(body: Uint8Array, grows: [number, number][], fn: number): Uint8Array {
  const call = [OP.call, ...leb(fn)];
  const parts: ArrayLike<number>[] = [];
  let at = 0;
  for (const [s, e] of grows) {
    parts.push(body.subarray(at, s), call);
    at = e;
  }
  parts.push(body.subarray(at));
  return concat(parts);
}

function instrument(wasm: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const edit = new ModuleEditor(wasm);
  // The worker trusts this export as the flag: a module may not bring its own.
  if (edit.exportNames().includes(GROW_REFUSED_EXPORT)) throw new Error(`it exports "${GROW_REFUSED_EXPORT}", a name Sandgate reserves`);
  const bodies = edit.bodies();
  // No memory: no grow. Several memories (not enabled in Node 20): left alone.
  if (edit.memories !== 1 || bodies.length === 0) return wasm;
  const grows = bodies.map(findGrows);
  if (grows.every((g) => g.length === 0)) return wasm;

  const refusedGlobal = edit.addGlobal([I32, 1, OP.i32Const, 0, OP.end]);
  const growFunction = edit.addFunction(edit.typeIndex([I32], [I32]), growFunctionBody(refusedGlobal));
  edit.addExport(GROW_REFUSED_EXPORT, EXTERN_KIND.global, refusedGlobal);
  return edit.write(bodies.map((body, i) => (grows[i].length ? replaceGrows(body.bytes, grows[i], growFunction) : body.bytes)));
}

/**
 * Returns the module with every `memory.grow` routed through a function that
 * raises the `sandgate:grow_refused` flag when the grow is refused, or the
 * module itself when there is nothing to watch (no memory, or no grow).
 *
 * @example
 * const module = await WebAssembly.compile(watchMemoryGrow(sandboxModule(raw, limits, name).bytes, name));
 */
export function watchMemoryGrow(wasm: Uint8Array<ArrayBuffer>, plugin: string): Uint8Array<ArrayBuffer> {
  try {
    return instrument(wasm);
  } catch (e) {
    throw rewriteFailed(e, plugin, 'cannot watch its memory.grow instructions');
  }
}

/**
 * The instance's refused-grow flag, or null when its module was left as is
 * (then no grow can have been refused). The host sets it to 0 before a call
 * and reads it after a failure.
 */
export function growRefusedFlag(exports: WebAssembly.Exports): WebAssembly.Global | null {
  const flag = exports[GROW_REFUSED_EXPORT];
  return flag instanceof WebAssembly.Global ? flag : null;
}
