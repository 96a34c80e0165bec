// Makes a guest's running time observable from inside, so that the host can
// stop a call that runs past its deadline without killing the thread it runs
// on (sandbox/deadline-clock.ts). Before compiling, the module gets:
// - a fuel counter (an exported mutable i32 global);
// - at every function entry and every loop header, code that takes fuel and,
//   once the counter drops below 1, calls the host's clock check through a
//   one-slot funcref table the module exports (the host fills the slot after
//   instantiation); the check throws past the deadline, otherwise refills;
// - memory.copy and memory.fill routed through appended functions that take
//   fuel in proportion to their length before doing the copy or fill.
//
// Every backward jump in WebAssembly goes to a loop header, and every call
// enters a function, so no code runs for long without taking fuel. Fuel is not
// time: it only says when to look at the clock. Each site takes 1 unit plus
// 1 per 16 instructions of its loop body (or function), so a unit stands for
// a bounded amount of straight-line work and the clock is read every few tens
// of microseconds at most, for a cost well under 1% of a tight loop.
//
// Nothing is renumbered: the global, the table, the functions and the exports
// are appended (module-editor.ts), so the module's own code cannot name them.
// A start function is deferred (START_EXPORT) so that it, too, runs under the clock.
// Some instructions take time this counting cannot bound (table bulk
// operations, memory.init, exception handling, which could catch the check's
// error, atomic waits): they are reported in `unbounded`, and such a module
// is only ever run where its thread can be terminated (a plugin worker).

import { forEachInstruction } from './instructions.js';
import { inFunction, ModuleEditor, rewriteFailed, skipLocals, type FunctionBody } from './module-editor.js';
import { concat, EXTERN_KIND, leb, Reader, SECTION } from './wasm-binary.js';

/** The exported fuel counter (mutable i32). */
export const FUEL_EXPORT = 'sandgate:fuel';
/** The exported one-slot funcref table whose slot 0 the host fills with its clock check, () -> (). */
export const CLOCK_TABLE_EXPORT = 'sandgate:clock';
/**
 * Fuel before the host attaches its clock: only a start function runs that
 * early, and it gets this much before it traps on the empty slot (far longer
 * than any init_timeout_ms, which bounds it in a worker).
 */
const INITIAL_FUEL = 0x7fffffff;
/**
 * A start function would run during instantiation, before the host can attach
 * its clock, so it is no longer the start function: it is exported under this
 * name, and the host calls it right after attaching the clock, before anything else.
 */
export const START_EXPORT = 'sandgate:start';
/** Straight-line instructions one unit of fuel stands for. */
const INSTRUCTIONS_PER_UNIT = 16;
/** Bytes of memory.copy or memory.fill one unit of fuel stands for (as a shift: 64 bytes). */
const BYTES_PER_UNIT_SHIFT = 6;
const MAX_WEIGHT = 1 << 20;

const I32 = 0x7f;
const FUNCREF = 0x70;
const EMPTY_BLOCK = 0x40;
const OP = {
  block: 0x02, loop: 0x03, if: 0x04, try: 0x06, catch: 0x07, throw: 0x08, rethrow: 0x09, end: 0x0b, delegate: 0x18, catchAll: 0x19,
  call: 0x10, callIndirect: 0x11, localGet: 0x20, globalGet: 0x23, globalSet: 0x24, i32Const: 0x41, i32LtS: 0x48, i32Sub: 0x6b, i32ShrU: 0x76,
  misc: 0xfc, atomic: 0xfe,
} as const;
const MISC = { memoryInit: 8, memoryCopy: 10, memoryFill: 11, tableInit: 12, tableCopy: 14, tableGrow: 15, tableFill: 17 } as const;

/** What the rewrite could not bound, by instruction (its readers are people: the names say what to remove). */
const UNBOUNDED: Record<string, string> = {
  [`${OP.misc}:${MISC.memoryInit}`]: 'memory.init',
  [`${OP.misc}:${MISC.tableInit}`]: 'table.init',
  [`${OP.misc}:${MISC.tableCopy}`]: 'table.copy',
  [`${OP.misc}:${MISC.tableGrow}`]: 'table.grow',
  [`${OP.misc}:${MISC.tableFill}`]: 'table.fill',
  [`${OP.try}:-1`]: 'exception handling',
  [`${OP.throw}:-1`]: 'exception handling',
  [`${OP.atomic}:0`]: 'atomics',
  [`${OP.atomic}:1`]: 'atomics',
  [`${OP.atomic}:2`]: 'atomics',
};

export interface DeadlineWatchedModule {
  bytes: Uint8Array<ArrayBuffer>;
  /** Features whose running time fuel does not bound (empty: every path takes fuel). */
  unbounded: string[];
}

/** A signed LEB128 of a non-negative number (i32.const's immediate). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>>= 7;
    if (n === 0 && (b & 0x40) === 0) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

/** fuel -= weight; if (fuel < 1) outOfFuel() */
function takeFuel(fuel: number, weight: readonly number[], outOfFuel: number): number[] {
  return [
    OP.globalGet, ...leb(fuel), ...weight, OP.i32Sub, OP.globalSet, ...leb(fuel),
    OP.globalGet, ...leb(fuel), OP.i32Const, 1, OP.i32LtS, OP.if, EMPTY_BLOCK, OP.call, ...leb(outOfFuel), OP.end,
  ];
}

const weightOf = (instructions: number): number[] => [OP.i32Const, ...sleb(Math.min(MAX_WEIGHT, 1 + Math.floor(instructions / INSTRUCTIONS_PER_UNIT)))];

interface Edit {
  start: number;
  end: number;
  bytes: readonly number[];
}

interface Appended {
  fuel: number;
  outOfFuel: number;
  copy: number;
  fill: number;
}

/** The edits of one body: fuel at its entry and loop headers, bulk memory routed through the charging functions. */
function editBody(body: FunctionBody, fn: Appended, unbounded: Set<string>): Uint8Array {
  const codeStart = skipLocals(body.bytes);
  const r = new Reader(body.bytes, codeStart);
  const edits: Edit[] = [];
  /** Open blocks: where a loop's fuel goes, and the instruction count when it opened. */
  const open: { loopAt: number; count: number }[] = [{ loopAt: -1, count: 0 }];
  let count = 0;
  forEachInstruction(r, body.bytes.length, (op, sub, start, end) => {
    count++;
    const what = UNBOUNDED[`${op}:${sub}`];
    if (what) unbounded.add(what);
    if (op === OP.block || op === OP.if || op === OP.try) open.push({ loopAt: -1, count });
    else if (op === OP.loop) open.push({ loopAt: end, count });
    else if ((op === OP.end || op === OP.delegate) && sub === -1) {
      const block = open.pop()!;
      if (block.loopAt >= 0) edits.push({ start: block.loopAt, end: block.loopAt, bytes: takeFuel(fn.fuel, weightOf(count - block.count), fn.outOfFuel) });
    } else if (op === OP.misc && sub === MISC.memoryCopy) edits.push({ start, end, bytes: [OP.call, ...leb(fn.copy)] });
    else if (op === OP.misc && sub === MISC.memoryFill) edits.push({ start, end, bytes: [OP.call, ...leb(fn.fill)] });
  });
  edits.push({ start: codeStart, end: codeStart, bytes: takeFuel(fn.fuel, weightOf(count), fn.outOfFuel) });
  edits.sort((a, b) => a.start - b.start);
  const parts: ArrayLike<number>[] = [];
  let at = 0;
  for (const e of edits) {
    parts.push(body.bytes.subarray(at, e.start), e.bytes);
    at = e.end;
  }
  parts.push(body.bytes.subarray(at));
  return concat(parts);
}

/** (d, s|value, n) -> (): take fuel for n bytes, then do the operation. */
function bulkBody(fuel: number, outOfFuel: number, operation: readonly number[]): number[] {
  return [
    0x00, // no locals
    OP.globalGet, ...leb(fuel), OP.localGet, 2, OP.i32Const, BYTES_PER_UNIT_SHIFT, OP.i32ShrU, OP.i32Sub, OP.globalSet, ...leb(fuel),
    OP.globalGet, ...leb(fuel), OP.i32Const, 1, OP.i32LtS, OP.if, EMPTY_BLOCK, OP.call, ...leb(outOfFuel), OP.end,
    OP.localGet, 0, OP.localGet, 1, OP.localGet, 2, ...operation, OP.end,
  ];
}

function instrument(wasm: Uint8Array<ArrayBuffer>): DeadlineWatchedModule {
  const edit = new ModuleEditor(wasm);
  for (const name of [FUEL_EXPORT, CLOCK_TABLE_EXPORT, START_EXPORT]) {
    if (edit.exportNames().includes(name)) throw new Error(`it exports "${name}", a name Sandgate reserves`);
  }
  const bodies = edit.bodies();
  const unbounded = new Set<string>();
  const start = edit.removeSection(SECTION.start);
  if (start) edit.addExport(START_EXPORT, EXTERN_KIND.function, new Reader(start.body).u32());
  const voidType = edit.typeIndex([], []);
  const fuel = edit.addGlobal([I32, 1, OP.i32Const, ...sleb(INITIAL_FUEL), OP.end]);
  const table = edit.addTable([FUNCREF, 0x01, 1, 1]);
  const outOfFuel = edit.addFunction(voidType, [0x00, OP.i32Const, 0, OP.callIndirect, ...leb(voidType), ...leb(table), OP.end]);
  const bulk = edit.typeIndex([I32, I32, I32], []);
  // Without a memory there is no bulk memory instruction to route; the functions would not validate.
  const hasMemory = edit.memories > 0;
  const copy = hasMemory ? edit.addFunction(bulk, bulkBody(fuel, outOfFuel, [OP.misc, MISC.memoryCopy, 0, 0])) : -1;
  const fill = hasMemory ? edit.addFunction(bulk, bulkBody(fuel, outOfFuel, [OP.misc, MISC.memoryFill, 0])) : -1;
  edit.addExport(FUEL_EXPORT, EXTERN_KIND.global, fuel);
  edit.addExport(CLOCK_TABLE_EXPORT, EXTERN_KIND.table, table);
  const rewritten = bodies.map((body) => inFunction(body.index, () => editBody(body, { fuel, outOfFuel, copy, fill }, unbounded)));
  return { bytes: edit.write(rewritten), unbounded: [...unbounded] };
}

/**
 * Returns the module with fuel taken at every function entry, loop header and
 * bulk memory operation (see the top of this file), and what it could not bound.
 *
 * @example
 * const { bytes, unbounded } = watchDeadlines(watchMemoryGrow(sandboxed.bytes, name), name);
 * const module = await WebAssembly.compile(bytes);
 */
export function watchDeadlines(wasm: Uint8Array<ArrayBuffer>, plugin: string): DeadlineWatchedModule {
  try {
    return instrument(wasm);
  } catch (e) {
    throw rewriteFailed(e, plugin, 'cannot add deadline checks to its code');
  }
}
