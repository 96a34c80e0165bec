// MessagePack writer over a growable, unmanaged buffer.
//
// Encodings are the smallest form (the "preferred serialization"), so that a
// decoded value re-encodes byte for byte. Integers that do not fit in 32 bits
// use int64 (0xd3) even when positive: same size as uint64, and what msgpackr
// (the host's codec) writes for BigInt.

export class Writer {
  ptr: usize = 0;
  cap: usize = 0;
  len: usize = 0;

  // Explicit on purpose: asc 0.27 can crash ("registerConcreteElement"
  // assertion) synthesizing a default constructor for a class first
  // instantiated through a lazily initialized global.
  constructor() {}

  reset(): void {
    this.len = 0;
  }

  /** Releases the buffer if it grew beyond `keep` bytes. */
  trim(keep: usize): void {
    if (this.cap > keep) {
      heap.free(this.ptr);
      this.ptr = 0;
      this.cap = 0;
    }
    this.len = 0;
  }

  /** Frees the buffer (for temporary writers; the object stays usable). */
  free(): void {
    this.trim(0);
  }

  /** Copies the written bytes into a new Uint8Array. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(<i32>this.len);
    memory.copy(out.dataStart, this.ptr, this.len);
    return out;
  }

  @inline
  private ensure(n: usize): void {
    if (this.len + n > this.cap) this.grow(n);
  }

  private grow(n: usize): void {
    let cap = this.cap ? this.cap << 1 : 256;
    while (cap < this.len + n) cap <<= 1;
    this.ptr = this.ptr ? heap.realloc(this.ptr, cap) : heap.alloc(cap);
    this.cap = cap;
  }

  @inline
  private put8(b: u32): void {
    store<u8>(this.ptr + this.len, <u8>b);
    this.len += 1;
  }

  @inline
  private put16(v: u32): void {
    store<u16>(this.ptr + this.len, bswap<u16>(<u16>v));
    this.len += 2;
  }

  @inline
  private put32(v: u32): void {
    store<u32>(this.ptr + this.len, bswap<u32>(v));
    this.len += 4;
  }

  @inline
  private put64(v: u64): void {
    store<u64>(this.ptr + this.len, bswap<u64>(v));
    this.len += 8;
  }

  nil(): void {
    this.ensure(1);
    this.put8(0xc0);
  }

  bool(b: bool): void {
    this.ensure(1);
    this.put8(b ? 0xc3 : 0xc2);
  }

  int(v: i64): void {
    this.ensure(9);
    if (v >= 0) {
      if (v < 0x80) this.put8(<u32>v);
      else if (v < 0x100) { this.put8(0xcc); this.put8(<u32>v); }
      else if (v < 0x10000) { this.put8(0xcd); this.put16(<u32>v); }
      else if (v < 0x100000000) { this.put8(0xce); this.put32(<u32>v); }
      else { this.put8(0xd3); this.put64(<u64>v); }
    } else {
      if (v >= -32) this.put8(<u32>(<i32>v & 0xff));
      else if (v >= -128) { this.put8(0xd0); this.put8(<u32>(<i32>v & 0xff)); }
      else if (v >= -32768) { this.put8(0xd1); this.put16(<u32>(<i32>v & 0xffff)); }
      else if (v >= -2147483648) { this.put8(0xd2); this.put32(<u32>(<i32>v)); }
      else { this.put8(0xd3); this.put64(<u64>v); }
    }
  }

  /** Always float64: the host's codec (msgpackr) writes non-integer numbers the same way. */
  float(v: f64): void {
    this.ensure(9);
    this.put8(0xcb);
    this.put64(reinterpret<u64>(v));
  }

  /** A string as UTF-8 (lone UTF-16 surrogates become U+FFFD, so the output is always valid UTF-8). */
  str(s: string): void {
    const n = <usize>String.UTF8.byteLength(s);
    this.ensure(n + 5);
    this.strHeader(n);
    this.len += String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.ptr + this.len, false, String.UTF8.ErrorMode.REPLACE);
  }

  /** Raw UTF-8 bytes of `s`, no MessagePack header (log messages). */
  utf8(s: string): void {
    const n = <usize>String.UTF8.byteLength(s);
    this.ensure(n);
    this.len += String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.ptr + this.len, false, String.UTF8.ErrorMode.REPLACE);
  }

  strOrNil(s: string | null): void {
    if (s === null) this.nil();
    else this.str(s);
  }

  private strHeader(n: usize): void {
    if (n < 32) this.put8(0xa0 | <u32>n);
    else if (n < 0x100) { this.put8(0xd9); this.put8(<u32>n); }
    else if (n < 0x10000) { this.put8(0xda); this.put16(<u32>n); }
    else { this.put8(0xdb); this.put32(<u32>n); }
  }

  bin(b: Uint8Array): void {
    this.binRaw(b.dataStart, <usize>b.length);
  }

  binRaw(src: usize, n: usize): void {
    this.ensure(n + 5);
    if (n < 0x100) { this.put8(0xc4); this.put8(<u32>n); }
    else if (n < 0x10000) { this.put8(0xc5); this.put16(<u32>n); }
    else { this.put8(0xc6); this.put32(<u32>n); }
    memory.copy(this.ptr + this.len, src, n);
    this.len += n;
  }

  arrayHeader(n: i32): void {
    this.ensure(5);
    if (n < 16) this.put8(0x90 | <u32>n);
    else if (n < 0x10000) { this.put8(0xdc); this.put16(<u32>n); }
    else { this.put8(0xdd); this.put32(<u32>n); }
  }

  mapHeader(n: i32): void {
    this.ensure(5);
    if (n < 16) this.put8(0x80 | <u32>n);
    else if (n < 0x10000) { this.put8(0xde); this.put16(<u32>n); }
    else { this.put8(0xdf); this.put32(<u32>n); }
  }

  /**
   * Starts a map with fewer than 16 entries whose count is not known yet
   * (envelopes and patch objects: their fields are fixed, so always < 16).
   * Returns the header's offset for endSmallMap.
   */
  beginSmallMap(): usize {
    this.ensure(1);
    const at = this.len;
    this.put8(0x80);
    return at;
  }

  endSmallMap(at: usize, count: i32): void {
    assert(count < 16, "endSmallMap: too many fields");
    store<u8>(this.ptr + at, <u8>(0x80 | count));
  }

  /** Appends already-encoded MessagePack bytes. */
  raw(src: usize, n: usize): void {
    this.ensure(n);
    memory.copy(this.ptr + this.len, src, n);
    this.len += n;
  }

  /** True if the bytes written since `from` equal the `n` bytes at `src`. */
  sameSince(from: usize, src: usize, n: usize): bool {
    return this.len - from == n && memory.compare(this.ptr + from, src, n) == 0;
  }
}
