// Just enough of the WebAssembly binary format to read a module's sections
// and write a changed copy (spec: "Binary Format", LEB128 integers, names).
// Used at load time only, once per plugin version.

/** Section ids (WebAssembly spec §5.5.2). */
export const Section = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  table: 4,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  element: 9,
  code: 10,
  data: 11,
  dataCount: 12,
} as const;

/** Import and export kinds. */
export const ExternKind = { function: 0, table: 1, memory: 2, global: 3, tag: 4 } as const;

/** A cursor over module bytes. Throws on anything truncated. */
export class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    pos = 0,
  ) {
    this.pos = pos;
  }

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  byte(): number {
    if (this.pos >= this.bytes.length) throw new Error('unexpected end of module');
    return this.bytes[this.pos++];
  }

  /** An unsigned LEB128 integer of at most 32 bits. */
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 35) throw new Error('bad LEB128 integer');
    }
  }

  skip(n: number): void {
    if (this.pos + n > this.bytes.length) throw new Error('unexpected end of module');
    this.pos += n;
  }

  /** A UTF-8 name (vec of bytes). */
  name(): string {
    const len = this.u32();
    const start = this.pos;
    this.skip(len);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, len).toString('utf8');
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

/** Unsigned LEB128. */
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

export function encodeName(s: string): number[] {
  const bytes = Buffer.from(s, 'utf8');
  return [...leb(bytes.length), ...bytes];
}

export function encodeLimits(l: Limits): number[] {
  return l.max === undefined ? [l.flags & ~0x01, ...leb(l.min)] : [l.flags | 0x01, ...leb(l.min), ...leb(l.max)];
}

/** One section as found in the module: its id and the bounds of its body. */
export interface RawSection {
  id: number;
  start: number;
  bodyStart: number;
  end: number;
}

/** Lists a module's sections in order, after checking the header. */
export function sections(wasm: Uint8Array): RawSection[] {
  const r = new Reader(wasm, 8);
  const out: RawSection[] = [];
  while (!r.done) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const bodyStart = r.pos;
    r.skip(size);
    out.push({ id, start, bodyStart, end: r.pos });
  }
  return out;
}

/** A section with the given id and body, ready to concatenate. */
export function encodeSection(id: number, body: ArrayLike<number>): number[] {
  return [id, ...leb(body.length), ...Array.from(body)];
}

/** Concatenates parts into one module buffer. */
export function concat(parts: ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
