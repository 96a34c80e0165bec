// MessagePack reader over bytes in linear memory.
//
// Every read is bounds-checked: malformed input throws (an abort, i.e. a trap
// the host counts as a plugin failure) instead of reading past the buffer.
// Typed decoders dispatch on map keys with keyIs(), which compares the raw
// UTF-8 bytes and so allocates no string for keys they know.

/**
 * The most levels of maps and arrays readValue() decodes in one value. It
 * recurses, one call per level: beyond this bound it throws a clear error
 * (the call aborts with that message) long before the stack could overflow.
 * The gateway sends nothing deeper than limits.max_json_depth (default 64)
 * per value, plus the envelope's own two levels.
 */
export const MAX_DEPTH: i32 = 256;

/**
 * ASCII lower-casing: header names are ASCII tokens, and String#toLowerCase
 * would pull Unicode case tables (~20 KB) into every plugin. Returns `s`
 * itself (no copy) when it has no upper-case letter.
 */
export function keysEqualCI(a: string, b: string): bool {
  const n = a.length;
  if (n != b.length) return false;
  for (let i = 0; i < n; i++) {
    let x = <u32>a.charCodeAt(i);
    let y = <u32>b.charCodeAt(i);
    if (x - 65 < 26) x += 32;
    if (y - 65 < 26) y += 32;
    if (x != y) return false;
  }
  return true;
}

export function asciiLower(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = <u32>s.charCodeAt(i);
    if (c - 65 < 26) break;
    i++;
  }
  if (i == n) return s;
  const out = changetype<string>(__new(<usize>n << 1, idof<string>()));
  memory.copy(changetype<usize>(out), changetype<usize>(s), <usize>n << 1);
  for (; i < n; i++) {
    const p = changetype<usize>(out) + (<usize>i << 1);
    const c = <u32>load<u16>(p);
    if (c - 65 < 26) store<u16>(p, <u16>(c + 32));
  }
  return out;
}

// MessagePack type families, as returned by Reader.peekType().
export enum MsgType { Nil, Bool, Int, Float, Str, Bin, Array, Map, Ext, Invalid }

export class Reader {
  pos: usize;
  end: usize;
  /** Set by readStrRaw(): where the last string's UTF-8 bytes are. */
  strPtr: usize = 0;
  strLen: usize = 0;
  /** The managed bytes being read, if any: views (bin, MapView) keep them alive. */
  source: Uint8Array | null = null;

  constructor(ptr: usize, len: usize) {
    this.pos = ptr;
    this.end = ptr + len;
  }

  static of(bytes: Uint8Array): Reader {
    const r = new Reader(bytes.dataStart, <usize>bytes.length);
    r.source = bytes;
    return r;
  }

  /** Points this reader at other bytes (lets a hot path reuse one Reader). */
  reset(ptr: usize, len: usize, source: Uint8Array | null): void {
    this.pos = ptr;
    this.end = ptr + len;
    this.source = source;
  }

  get remaining(): usize {
    return this.end - this.pos;
  }

  @inline
  private need(n: usize): void {
    if (n > this.end - this.pos) throw new Error("msgpack: truncated input");
  }

  @inline
  private get8(): u32 {
    this.need(1);
    const v = <u32>load<u8>(this.pos);
    this.pos += 1;
    return v;
  }

  @inline
  private get16(): u32 {
    this.need(2);
    const v = <u32>bswap<u16>(load<u16>(this.pos));
    this.pos += 2;
    return v;
  }

  @inline
  private get32(): u32 {
    this.need(4);
    const v = bswap<u32>(load<u32>(this.pos));
    this.pos += 4;
    return v;
  }

  @inline
  private get64(): u64 {
    this.need(8);
    const v = bswap<u64>(load<u64>(this.pos));
    this.pos += 8;
    return v;
  }

  peekByte(): u32 {
    this.need(1);
    return <u32>load<u8>(this.pos);
  }

  peekType(): MsgType {
    const b = this.peekByte();
    if (b <= 0x7f || b >= 0xe0) return MsgType.Int;
    if (b <= 0x8f) return MsgType.Map;
    if (b <= 0x9f) return MsgType.Array;
    if (b <= 0xbf) return MsgType.Str;
    switch (b) {
      case 0xc0: return MsgType.Nil;
      case 0xc2: case 0xc3: return MsgType.Bool;
      case 0xc4: case 0xc5: case 0xc6: return MsgType.Bin;
      case 0xc7: case 0xc8: case 0xc9: return MsgType.Ext;
      case 0xca: case 0xcb: return MsgType.Float;
      case 0xcc: case 0xcd: case 0xce: case 0xcf:
      case 0xd0: case 0xd1: case 0xd2: case 0xd3: return MsgType.Int;
      case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: return MsgType.Ext;
      case 0xd9: case 0xda: case 0xdb: return MsgType.Str;
      case 0xdc: case 0xdd: return MsgType.Array;
      case 0xde: case 0xdf: return MsgType.Map;
    }
    return MsgType.Invalid;
  }

  /** Consumes a nil if there is one. */
  tryNil(): bool {
    if (this.pos < this.end && load<u8>(this.pos) == 0xc0) {
      this.pos += 1;
      return true;
    }
    return false;
  }

  /** `tryNil()` if `cond` (lets a key dispatch chain branch on "this key, and nil"). */
  tryNilFor(cond: bool): bool {
    return cond && this.tryNil();
  }

  readMapHeader(): i32 {
    const b = this.get8();
    if ((b & 0xf0) == 0x80) return <i32>(b & 0x0f);
    if (b == 0xde) return <i32>this.get16();
    if (b == 0xdf) return this.count(this.get32());
    throw new Error("msgpack: expected a map");
  }

  /** A map header, or 0 for nil (optional maps). */
  readMapHeaderOrNil(): i32 {
    return this.tryNil() ? 0 : this.readMapHeader();
  }

  readArrayHeader(): i32 {
    const b = this.get8();
    if ((b & 0xf0) == 0x90) return <i32>(b & 0x0f);
    if (b == 0xdc) return <i32>this.get16();
    if (b == 0xdd) return this.count(this.get32());
    throw new Error("msgpack: expected an array");
  }

  // A count cannot exceed the bytes left (each element takes at least one):
  // stops a forged header from making us allocate gigabytes.
  private count(n: u32): i32 {
    if (<usize>n > this.end - this.pos) throw new Error("msgpack: truncated input");
    return <i32>n;
  }

  /** Reads a string header and records where its bytes are (strPtr/strLen) without decoding them. */
  readStrRaw(): void {
    const b = this.get8();
    let n: usize;
    if ((b & 0xe0) == 0xa0) n = <usize>(b & 0x1f);
    else if (b == 0xd9) n = <usize>this.get8();
    else if (b == 0xda) n = <usize>this.get16();
    else if (b == 0xdb) n = <usize>this.get32();
    else throw new Error("msgpack: expected a string");
    this.need(n);
    this.strPtr = this.pos;
    this.strLen = n;
    this.pos += n;
  }

  /** After readStrRaw(): whether the string equals `s`. Allocates only if `s` is not ASCII. */
  keyIs(s: string): bool {
    return this.compareKey(s, false);
  }

  /** Like keyIs, ignoring ASCII case (header names). */
  keyIsCI(s: string): bool {
    return this.compareKey(s, true);
  }

  private compareKey(s: string, ci: bool): bool {
    const n = <usize>s.length;
    const p = this.strPtr;
    const q = changetype<usize>(s);
    // UTF-8 is never shorter than UTF-16 code units; equal lengths with ASCII
    // text compare byte to code unit. Anything non-ASCII: decode and compare.
    if (this.strLen < n) return false;
    if (this.strLen == n) {
      for (let i: usize = 0; i < n; i++) {
        let c = <u32>load<u16>(q + (i << 1));
        if (c >= 0x80) return this.slowCompare(s, ci);
        let b = <u32>load<u8>(p + i);
        if (ci) {
          if (b - 65 < 26) b += 32;
          if (c - 65 < 26) c += 32;
        }
        if (b != c) return false;
      }
      return true;
    }
    for (let i: usize = 0; i < n; i++) {
      if (<u32>load<u16>(q + (i << 1)) >= 0x80) return this.slowCompare(s, ci);
    }
    return false; // `s` is ASCII, so its UTF-8 length is n != strLen
  }

  private slowCompare(s: string, ci: bool): bool {
    const k = this.lastStr();
    return ci ? keysEqualCI(k, s) : k == s;
  }

  /** After readStrRaw(): the string, decoded. */
  lastStr(): string {
    return String.UTF8.decodeUnsafe(this.strPtr, this.strLen);
  }

  readString(): string {
    this.readStrRaw();
    return this.lastStr();
  }

  readStringOrNull(): string | null {
    return this.tryNil() ? null : this.readString();
  }

  readBin(): Uint8Array {
    const b = this.get8();
    let n: usize;
    if (b == 0xc4) n = <usize>this.get8();
    else if (b == 0xc5) n = <usize>this.get16();
    else if (b == 0xc6) n = <usize>this.get32();
    else {
      // ABI.md says bodies are always bin; a str is accepted as its UTF-8 bytes.
      this.pos -= 1;
      this.readStrRaw();
      return this.copy(this.strPtr, this.strLen);
    }
    this.need(n);
    // Zero-copy when reading managed bytes: a view into the input.
    const src = this.source;
    const out = src !== null
      ? src.subarray(<i32>(this.pos - src.dataStart), <i32>(this.pos + n - src.dataStart))
      : this.copy(this.pos, n);
    this.pos += n;
    return out;
  }

  readBinOrNull(): Uint8Array | null {
    return this.tryNil() ? null : this.readBin();
  }

  private copy(src: usize, n: usize): Uint8Array {
    const out = new Uint8Array(<i32>n);
    memory.copy(out.dataStart, src, n);
    return out;
  }

  readBool(): bool {
    const b = this.get8();
    if (b == 0xc3) return true;
    if (b == 0xc2) return false;
    throw new Error("msgpack: expected a boolean");
  }

  /** Any integer; a float is truncated (the host's codec sends integers beyond 32 bits as float64). */
  readInt(): i64 {
    const b = this.get8();
    if (b <= 0x7f) return <i64>b;
    if (b >= 0xe0) return <i64><i8><u8>b;
    switch (b) {
      case 0xcc: return <i64>this.get8();
      case 0xcd: return <i64>this.get16();
      case 0xce: return <i64>this.get32();
      case 0xcf: return <i64>this.get64();
      case 0xd0: return <i64><i8><u8>this.get8();
      case 0xd1: return <i64><i16><u16>this.get16();
      case 0xd2: return <i64><i32>this.get32();
      case 0xd3: return <i64>this.get64();
      case 0xca: return <i64>reinterpret<f32>(this.get32());
      case 0xcb: return <i64>reinterpret<f64>(this.get64());
    }
    throw new Error("msgpack: expected an integer");
  }

  readFloat(): f64 {
    const b = this.peekByte();
    if (b == 0xcb) { this.pos += 1; return reinterpret<f64>(this.get64()); }
    if (b == 0xca) { this.pos += 1; return <f64>reinterpret<f32>(this.get32()); }
    if (b == 0xcf) { this.pos += 1; return <f64>this.get64(); }
    return <f64>this.readInt();
  }

  /** Skips one value of any type (unknown keys must be ignored, ABI.md §5). */
  skip(): void {
    // Iterative: `pending` counts values still to skip, so nesting depth costs no stack.
    let pending: i64 = 1;
    while (pending > 0) {
      pending--;
      const b = this.get8();
      if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) continue;
      if (b <= 0x8f) { pending += <i64>(b & 0x0f) * 2; continue; }
      if (b <= 0x9f) { pending += <i64>(b & 0x0f); continue; }
      if (b <= 0xbf) { this.advance(<usize>(b & 0x1f)); continue; }
      switch (b) {
        case 0xc4: case 0xd9: this.advance(<usize>this.get8()); break;
        case 0xc5: case 0xda: this.advance(<usize>this.get16()); break;
        case 0xc6: case 0xdb: this.advance(<usize>this.get32()); break;
        case 0xc7: this.advance(<usize>this.get8() + 1); break;
        case 0xc8: this.advance(<usize>this.get16() + 1); break;
        case 0xc9: this.advance(<usize>this.get32() + 1); break;
        case 0xca: this.advance(4); break;
        case 0xcb: this.advance(8); break;
        case 0xcc: case 0xd0: this.advance(1); break;
        case 0xcd: case 0xd1: this.advance(2); break;
        case 0xce: case 0xd2: this.advance(4); break;
        case 0xcf: case 0xd3: this.advance(8); break;
        case 0xd4: this.advance(2); break;
        case 0xd5: this.advance(3); break;
        case 0xd6: this.advance(5); break;
        case 0xd7: this.advance(9); break;
        case 0xd8: this.advance(17); break;
        case 0xdc: pending += <i64>this.get16(); break;
        case 0xdd: pending += <i64>this.get32(); break;
        case 0xde: pending += <i64>this.get16() * 2; break;
        case 0xdf: pending += <i64>this.get32() * 2; break;
        default: throw new Error("msgpack: invalid type byte");
      }
    }
  }

  private advance(n: usize): void {
    this.need(n);
    this.pos += n;
  }
}
