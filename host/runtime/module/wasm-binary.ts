// Reading and writing the WebAssembly binary format: the few primitives the
// load-time module rewriters (sandbox-module.ts, grow-watch.ts) share.

/** A cursor over a module's bytes. Every read throws on a truncated module. */
export class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
  ) {
    this.pos = pos;
  }
  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('unexpected end of module');
    return this.bytes[this.pos++];
  }
  /** An unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 28) throw new Error('bad LEB128');
    }
  }
  /** A signed LEB128 of at most 33 bits (block types). */
  s33(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return b & 0x40 ? result - mul : result;
    }
    throw new Error('bad LEB128');
  }
  /** Any LEB128 (signed or not, up to 64 bits) whose value is not needed. */
  skipLeb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw new Error('bad LEB128');
  }
  skip(n: number): void {
    if (this.pos + n > this.bytes.length) throw new Error('unexpected end of module');
    this.pos += n;
  }
  name(): string {
    const len = this.u32();
    this.skip(len);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos - len, len).toString('utf8');
  }
  /** The limits of a memory or a table: flags, min, optional max. */
  limits(): Limits {
    const flags = this.byte();
    const min = this.u32();
    const max = flags & 0x01 ? this.u32() : undefined;
    return { flags, min, max };
  }
}

export interface Limits {
  flags: number;
  min: number;
  max: number | undefined;
}

/** Import and export kinds. */
export const EXTERN_KIND = { function: 0, table: 1, memory: 2, global: 3, tag: 4 } as const;

/** A UTF-8 name as the binary format writes it (length, then bytes). */
export function encodeName(s: string): number[] {
  const bytes = Buffer.from(s, 'utf8');
  return [...leb(bytes.length), ...bytes];
}

export function encodeLimits(l: Limits): number[] {
  return l.max === undefined ? [l.flags & ~0x01, ...leb(l.min)] : [l.flags | 0x01, ...leb(l.min), ...leb(l.max)];
}

/** Unsigned LEB128 encoding. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** Concatenates byte parts into one new buffer. */
export function concat(parts: readonly ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  const total = parts.reduce((n, part) => n + part.length, 0);
  const result = new Uint8Array(total);
  let off = 0;
  for (const part of parts) {
    result.set(part, off);
    off += part.length;
  }
  return result;
}

export const SECTION = { custom: 0, type: 1, import: 2, function: 3, table: 4, memory: 5, global: 6, export: 7, start: 8, element: 9, code: 10, data: 11, dataCount: 12, tag: 13 } as const;

/** The order known sections must appear in (the tag section sits between memory and global). */
const SECTION_ORDER: readonly number[] = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11];

export interface Section {
  id: number;
  body: Uint8Array;
  /** Where the body starts in the module it was read from (for error messages). */
  offset?: number;
}

const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/** Splits a module into its sections, in file order. */
export function readSections(wasm: Uint8Array): Section[] {
  for (let i = 0; i < 8; i++) if (wasm[i] !== MAGIC_AND_VERSION[i]) throw new Error('not a WebAssembly 1.0 module');
  const r = new Reader(wasm, 8);
  const sections: Section[] = [];
  while (r.pos < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    sections.push({ id, body: wasm.subarray(start, r.pos), offset: start });
  }
  return sections;
}

/** Joins sections back into a module. */
export function writeSections(sections: readonly Section[]): Uint8Array<ArrayBuffer> {
  return concat([MAGIC_AND_VERSION, ...sections.flatMap((s) => [[s.id, ...leb(s.body.length)], s.body])]);
}

/**
 * Puts a new known section where the format wants it: before the first known
 * section that must follow it (custom sections stay where they are).
 */
export function insertSection(sections: Section[], added: Section): void {
  const rank = SECTION_ORDER.indexOf(added.id);
  const at = sections.findIndex((s) => s.id !== SECTION.custom && SECTION_ORDER.indexOf(s.id) > rank);
  sections.splice(at < 0 ? sections.length : at, 0, added);
}
