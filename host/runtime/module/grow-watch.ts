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

import { ErrorCode, GatewayError } from '../../errors/codes.js';
import { forEachMemoryGrow, UnknownOpcode, VALUE_TYPES } from './instructions.js';
import { concat, insertSection, leb, Reader, readSections, SECTION, writeSections, type Section } from './wasm-binary.js';

/** The export holding the flag: a mutable i32, 1 once a memory.grow was refused. */
export const GROW_REFUSED_EXPORT = 'sandgate:grow_refused';

const I32 = 0x7f;
const FUNC_TYPE = 0x60;
const EXPORT_GLOBAL = 0x03;
const OP = { call: 0x10, localGet: 0x20, localTee: 0x22, globalSet: 0x24, memoryGrow: 0x40, i32Const: 0x41, i32Eq: 0x46, if: 0x04, end: 0x0b } as const;
const EMPTY_BLOCK = 0x40;

/**
 * The appended function, (i32) -> (i32) with one i32 local:
 *   local.get 0; memory.grow 0; local.tee 1; i32.const -1; i32.eq;
 *   if; i32.const 1; global.set $refused; end; local.get 1
 */
function growFunctionBody(refusedGlobal: number): Uint8Array {
  const code = [
    0x01, 0x01, I32, // locals: one i32
    OP.localGet, 0, OP.memoryGrow, 0, OP.localTee, 1,
    OP.i32Const, 0x7f /* -1 */, OP.i32Eq,
    OP.if, EMPTY_BLOCK, OP.i32Const, 1, OP.globalSet, ...leb(refusedGlobal), OP.end,
    OP.localGet, 1, OP.end,
  ];
  return new Uint8Array([...leb(code.length), ...code]);
}

/** What the rewrite needs to know about the module's index spaces. */
interface Counts {
  importedFunctions: number;
  importedGlobals: number;
  memories: number;
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.skipLeb();
  if (flags & 0x01) r.skipLeb();
}

function readImports(section: Section | undefined, counts: Counts): void {
  if (!section) return;
  const r = new Reader(section.body);
  for (let n = r.u32(); n > 0; n--) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === 0) {
      counts.importedFunctions++;
      r.u32();
    } else if (kind === 1) {
      r.byte();
      skipLimits(r);
    } else if (kind === 2) {
      counts.memories++;
      skipLimits(r);
    } else if (kind === 3) {
      counts.importedGlobals++;
      r.skip(2);
    } else if (kind === 4) {
      r.byte();
      r.u32();
    } else throw new Error(`unknown import kind ${kind}`);
  }
}

const countOf = (section: Section | undefined): number => (section ? new Reader(section.body).u32() : 0);

/** A vector section with its count raised by one and `entry` appended. */
function appendEntry(section: Section | undefined, id: number, entry: ArrayLike<number>): Section {
  if (!section) return { id, body: new Uint8Array([1, ...Array.from(entry)]) };
  const r = new Reader(section.body);
  const count = r.u32();
  return { id, body: concat([leb(count + 1), section.body.subarray(r.pos), entry]) };
}

/** Index of the type (i32) -> (i32), or -1; throws on a type form this reader does not know. */
function findGrowType(section: Section | undefined): { index: number; count: number } {
  if (!section) return { index: -1, count: 0 };
  const r = new Reader(section.body);
  const count = r.u32();
  let index = -1;
  for (let i = 0; i < count; i++) {
    const form = r.byte();
    if (form !== FUNC_TYPE) throw new UnknownOpcode(`type form 0x${form.toString(16)} in type ${i}`);
    const params: number[] = [];
    for (let n = r.u32(); n > 0; n--) params.push(r.byte());
    const results: number[] = [];
    for (let n = r.u32(); n > 0; n--) results.push(r.byte());
    if (index < 0 && params.length === 1 && params[0] === I32 && results.length === 1 && results[0] === I32) index = i;
  }
  return { index, count };
}

function exportNames(section: Section | undefined): string[] {
  if (!section) return [];
  const r = new Reader(section.body);
  const names: string[] = [];
  for (let n = r.u32(); n > 0; n--) {
    names.push(r.name());
    r.byte();
    r.u32();
  }
  return names;
}

/** Byte ranges of every memory.grow in each function body of the code section. */
function findGrows(wasm: Uint8Array, code: Section, firstFunction: number): { bodies: Uint8Array[]; grows: [number, number][][] } {
  if (code.offset === undefined) throw new Error('the code section was not read from this module');
  const r = new Reader(wasm, code.offset);
  const count = r.u32();
  const bodies: Uint8Array[] = [];
  const grows: [number, number][][] = [];
  for (let i = 0; i < count; i++) {
    const size = r.u32();
    const start = r.pos;
    const end = start + size;
    const found: [number, number][] = [];
    try {
      for (let groups = r.u32(); groups > 0; groups--) {
        r.u32();
        const t = r.byte();
        if (!VALUE_TYPES.has(t)) throw new UnknownOpcode(`local type 0x${t.toString(16)} at byte ${r.pos - 1}`);
      }
      forEachMemoryGrow(r, end, (s, e) => found.push([s - start, e - start]));
    } catch (e) {
      const where = `function ${firstFunction + i}`;
      if (e instanceof UnknownOpcode) throw new UnknownOpcode(`${where} uses ${e.message}`);
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    bodies.push(wasm.subarray(start, end));
    grows.push(found);
  }
  return { bodies, grows };
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
  const code = concat(parts);
  return concat([leb(code.length), code]);
}

function instrument(wasm: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const sections = readSections(wasm);
  const find = (id: number) => sections.find((s) => s.id === id);
  // The worker trusts this export as the flag: a module may not bring its own.
  if (exportNames(find(SECTION.export)).includes(GROW_REFUSED_EXPORT)) throw new Error(`it exports "${GROW_REFUSED_EXPORT}", a name Sandgate reserves`);
  const counts: Counts = { importedFunctions: 0, importedGlobals: 0, memories: countOf(find(SECTION.memory)) };
  readImports(find(SECTION.import), counts);
  const code = find(SECTION.code);
  // No memory: no grow. Several memories (not enabled in Node 20): left alone.
  if (counts.memories !== 1 || !code) return wasm;

  const growFunction = counts.importedFunctions + countOf(find(SECTION.function));
  const { bodies, grows } = findGrows(wasm, code, counts.importedFunctions);
  if (grows.every((g) => g.length === 0)) return wasm;

  const types = findGrowType(find(SECTION.type));
  let typeIndex = types.index;
  const replace = (id: number, next: Section) => {
    const at = sections.findIndex((s) => s.id === id);
    if (at >= 0) sections[at] = next;
    else insertSection(sections, next);
  };
  if (typeIndex < 0) {
    typeIndex = types.count;
    replace(SECTION.type, appendEntry(find(SECTION.type), SECTION.type, [FUNC_TYPE, 1, I32, 1, I32]));
  }
  replace(SECTION.function, appendEntry(find(SECTION.function), SECTION.function, leb(typeIndex)));
  const refusedGlobal = counts.importedGlobals + countOf(find(SECTION.global));
  replace(SECTION.global, appendEntry(find(SECTION.global), SECTION.global, [I32, 1, OP.i32Const, 0, OP.end]));
  const name = Buffer.from(GROW_REFUSED_EXPORT, 'utf8');
  replace(SECTION.export, appendEntry(find(SECTION.export), SECTION.export, [...leb(name.length), ...name, EXPORT_GLOBAL, ...leb(refusedGlobal)]));
  const newBodies = bodies.map((body, i) => (grows[i].length ? replaceGrows(body, grows[i], growFunction) : concat([leb(body.length), body])));
  replace(SECTION.code, { id: SECTION.code, body: concat([leb(bodies.length + 1), ...newBodies, growFunctionBody(refusedGlobal)]) });
  return writeSections(sections);
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
    const reason =
      e instanceof UnknownOpcode
        ? `${e.message}, which Sandgate's instruction reader does not know (a WebAssembly feature newer than Node 20's): build the plugin without it`
        : (e as Error).message;
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${plugin}": cannot watch its memory.grow instructions: ${reason}`, { plugin });
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
