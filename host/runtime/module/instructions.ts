// Walks a function body instruction by instruction. Only the immediates'
// lengths matter (to find where each instruction starts), so this is a table
// of immediate shapes for every opcode Node 20 (V8 11.3) accepts: the MVP,
// sign extension, saturating truncation, bulk memory, reference types,
// multi-value, tail calls, exception handling, SIMD and atomics (and relaxed
// SIMD, which has no immediates). An opcode not in the table throws
// UnknownOpcode: guessing its length could split an instruction in the wrong
// place, and a rewriter must never do that.

import { Reader } from './wasm-binary.js';

export class UnknownOpcode extends Error {}

export const OP_MEMORY_GROW = 0x40;

/** Value types without a heap-type operand: numbers, v128, funcref, externref. */
export const VALUE_TYPES: ReadonlySet<number> = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);
const EMPTY_BLOCK = 0x40;

type Immediate = (r: Reader) => void;

const none: Immediate = () => {};
const index: Immediate = (r) => r.u32();
const twoIndices: Immediate = (r) => {
  r.u32();
  r.u32();
};
/** align, then (if align's bit 6 is set) a memory index, then offset. */
const memarg: Immediate = (r) => {
  const align = r.u32();
  if (align & 0x40) r.u32();
  r.skipLeb();
};
const lane: Immediate = (r) => r.skip(1);

function valueType(r: Reader, at: number): void {
  const t = r.byte();
  if (!VALUE_TYPES.has(t)) throw new UnknownOpcode(`value type 0x${t.toString(16)} at byte ${at}`);
}

const blockType: Immediate = (r) => {
  const at = r.pos;
  const first = r.bytes[at];
  if (first === EMPTY_BLOCK || VALUE_TYPES.has(first)) {
    r.skip(1);
    return;
  }
  // Otherwise a type index (multi-value), as a non-negative s33.
  if (r.s33() < 0) throw new UnknownOpcode(`block type 0x${first.toString(16)} at byte ${at}`);
};

const brTable: Immediate = (r) => {
  const n = r.u32();
  for (let i = 0; i <= n; i++) r.u32();
};

const selectTyped: Immediate = (r) => {
  const n = r.u32();
  for (let i = 0; i < n; i++) valueType(r, r.pos);
};

const refNull: Immediate = (r) => valueType(r, r.pos);

/** Single-byte opcodes by immediate shape. */
const SINGLE = new Map<number, Immediate>();
const set = (table: Map<number, Immediate>, ops: Iterable<number>, imm: Immediate) => {
  for (const op of ops) table.set(op, imm);
};
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

set(SINGLE, [0x00, 0x01, 0x05, 0x0b, 0x0f, 0x19, 0x1a, 0x1b], none); // unreachable nop else end return catch_all drop select
set(SINGLE, [0x02, 0x03, 0x04, 0x06], blockType); // block loop if try
set(SINGLE, [0x07, 0x08, 0x09, 0x18], index); // catch throw rethrow delegate
set(SINGLE, [0x0c, 0x0d], index); // br br_if
SINGLE.set(0x0e, brTable);
set(SINGLE, [0x10, 0x12], index); // call return_call
set(SINGLE, [0x11, 0x13], twoIndices); // call_indirect return_call_indirect: type, table
SINGLE.set(0x1c, selectTyped);
set(SINGLE, range(0x20, 0x26), index); // local.get/set/tee global.get/set table.get/set
set(SINGLE, range(0x28, 0x3e), memarg); // loads and stores
set(SINGLE, [0x3f, OP_MEMORY_GROW], index); // memory.size memory.grow: memory index
SINGLE.set(0x41, (r) => r.skipLeb()); // i32.const
SINGLE.set(0x42, (r) => r.skipLeb()); // i64.const
SINGLE.set(0x43, (r) => r.skip(4)); // f32.const
SINGLE.set(0x44, (r) => r.skip(8)); // f64.const
set(SINGLE, range(0x45, 0xc4), none); // numeric operators, sign extension
SINGLE.set(0xd0, refNull);
SINGLE.set(0xd1, none); // ref.is_null
SINGLE.set(0xd2, index); // ref.func

/** 0xFC: saturating truncation, bulk memory and table operators. */
const MISC = new Map<number, Immediate>();
set(MISC, range(0, 7), none); // *.trunc_sat_*
MISC.set(8, twoIndices); // memory.init: data, memory
MISC.set(9, index); // data.drop
MISC.set(10, twoIndices); // memory.copy: memory, memory
MISC.set(11, index); // memory.fill
MISC.set(12, twoIndices); // table.init: element, table
MISC.set(13, index); // elem.drop
MISC.set(14, twoIndices); // table.copy
set(MISC, [15, 16, 17], index); // table.grow table.size table.fill

/** 0xFD: SIMD. The numbers missing between 94 and 255 are unassigned. */
const SIMD = new Map<number, Immediate>();
set(SIMD, range(0, 11), memarg); // v128.load* v128.store
SIMD.set(12, (r) => r.skip(16)); // v128.const
SIMD.set(13, (r) => r.skip(16)); // i8x16.shuffle
set(SIMD, range(14, 20), none); // swizzle, splats
set(SIMD, range(21, 34), lane); // extract_lane / replace_lane
set(SIMD, range(35, 83), none); // comparisons, bitwise, any_true
set(SIMD, range(84, 91), (r) => {
  memarg(r);
  lane(r);
}); // v128.load*_lane v128.store*_lane
set(SIMD, [92, 93], memarg); // v128.load32_zero v128.load64_zero
const SIMD_UNASSIGNED = new Set([154, 162, 165, 166, 175, 176, 178, 179, 180, 187, 194, 197, 198, 207, 208, 210, 211, 212, 226, 238]);
set(SIMD, range(94, 255).filter((op) => !SIMD_UNASSIGNED.has(op)), none);
set(SIMD, range(0x100, 0x113), none); // relaxed SIMD

/** 0xFE: atomics. */
const ATOMIC = new Map<number, Immediate>();
set(ATOMIC, [0, 1, 2], memarg); // notify wait32 wait64
ATOMIC.set(3, (r) => {
  if (r.byte() !== 0) throw new UnknownOpcode(`atomic.fence with a non-zero immediate at byte ${r.pos - 1}`);
});
set(ATOMIC, range(0x10, 0x4e), memarg); // atomic loads, stores, read-modify-writes

const PREFIXED = new Map<number, { name: string; table: Map<number, Immediate> }>([
  [0xfc, { name: '0xfc', table: MISC }],
  [0xfd, { name: '0xfd', table: SIMD }],
  [0xfe, { name: '0xfe', table: ATOMIC }],
]);

/** What an instruction visitor is told: its opcode, its sub-opcode (-1 if none), and its byte range. */
export type InstructionVisitor = (op: number, sub: number, start: number, end: number) => void;

/**
 * Reads one function body's code (after its locals) up to its final `end`,
 * calling visit for every instruction (its own final `end` included).
 * Throws UnknownOpcode for an opcode it cannot size, and Error if the body
 * does not end where its size says.
 */
export function forEachInstruction(r: Reader, bodyEnd: number, visit: InstructionVisitor): void {
  let depth = 1; // the function body is itself a block
  while (depth > 0) {
    if (r.pos >= bodyEnd) throw new Error('function body ends inside a block');
    const start = r.pos;
    const op = r.byte();
    const prefix = PREFIXED.get(op);
    if (prefix) {
      const sub = r.u32();
      const imm = prefix.table.get(sub);
      if (!imm) throw new UnknownOpcode(`opcode ${prefix.name} ${sub} at byte ${start}`);
      imm(r);
      visit(op, sub, start, r.pos);
      continue;
    }
    const imm = SINGLE.get(op);
    if (!imm) throw new UnknownOpcode(`opcode 0x${op.toString(16)} at byte ${start}`);
    imm(r);
    if (op === 0x02 || op === 0x03 || op === 0x04 || op === 0x06) depth++;
    else if (op === 0x0b || op === 0x18) depth--; // end; delegate closes its try
    visit(op, -1, start, r.pos);
  }
  if (r.pos !== bodyEnd) throw new Error('function body has bytes after its final end');
}

/**
 * Reads one function body's code (after its locals) up to its final `end`,
 * calling onGrow(start, end) with the byte range of each `memory.grow`.
 */
export function forEachMemoryGrow(r: Reader, bodyEnd: number, onGrow: (start: number, end: number) => void): void {
  forEachInstruction(r, bodyEnd, (op, sub, start, end) => {
    if (op === OP_MEMORY_GROW && sub === -1) onGrow(start, end);
  });
}
