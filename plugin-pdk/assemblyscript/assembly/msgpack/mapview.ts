// A MessagePack map left undecoded in the input envelope.
//
// Most hooks read one or two headers or context keys out of dozens. Decoding
// every entry into a Map costs two string allocations per entry plus hashing;
// a MapView answers a lookup by scanning the bytes, allocating only the value
// it returns, and builds a Map only when a plugin asks for the whole thing.

import { Reader } from "./reader";
import { Value, readValue } from "../value";

// Lookups happen one at a time, so they share one Reader instead of allocating one each.
// @ts-ignore: decorator
@lazy let scratch: Reader | null = null;

export class MapView {
  constructor(
    /** Keeps the input bytes alive for as long as the view is. */
    private source: Uint8Array | null,
    private start: usize,
    private end: usize,
    readonly count: i32,
  ) {}

  /** Records the map at the reader's position and skips it. Nil gives null. */
  static read(r: Reader): MapView | null {
    if (r.tryNil()) return null;
    const n = r.readMapHeader();
    const start = r.pos;
    for (let i = 0; i < n; i++) {
      r.readStrRaw(); // keys must be strings (ABI.md §5)
      r.skip();
    }
    return new MapView(r.source, start, r.pos, n);
  }

  private reader(): Reader {
    const r = new Reader(this.start, this.end - this.start);
    r.source = this.source;
    return r;
  }

  /**
   * A reader positioned at the value of `key` (ASCII case-insensitive if
   * `ci`), or null. The reader is shared scratch: use it before the next find().
   */
  find(key: string, ci: bool = false): Reader | null {
    let r: Reader | null = scratch;
    if (r === null) {
      r = new Reader(0, 0);
      scratch = r;
    }
    r.reset(this.start, this.end - this.start, this.source);
    for (let i = 0; i < this.count; i++) {
      r.readStrRaw();
      if (ci ? r.keyIsCI(key) : r.keyIs(key)) return r;
      r.skip();
    }
    return null;
  }

  /** The string at `key`; null if absent, nil or not a string. */
  getString(key: string, ci: bool = false): string | null {
    const r = this.find(key, ci);
    if (r === null || r.tryNil()) return null;
    const b = r.peekByte();
    if ((b & 0xe0) == 0xa0 || b == 0xd9 || b == 0xda || b == 0xdb) return r.readString();
    return null;
  }

  /** The value at `key`, decoded, or null if absent. */
  getValue(key: string): Value | null {
    const r = this.find(key);
    return r !== null ? readValue(r, 1) : null;
  }

  has(key: string): bool {
    return this.find(key) !== null;
  }

  keys(): Array<string> {
    const out = new Array<string>();
    const r = this.reader();
    for (let i = 0; i < this.count; i++) {
      out.push(r.readString());
      r.skip();
    }
    return out;
  }

  /** Decodes a map<str,str> (nil values are left out). */
  toStringMap(): Map<string, string> {
    const m = new Map<string, string>();
    const r = this.reader();
    for (let i = 0; i < this.count; i++) {
      const k = r.readString();
      const v = r.readStringOrNull();
      if (v !== null) m.set(k, v);
    }
    return m;
  }

  /** Decodes a map<str, any>. */
  toValueMap(): Map<string, Value> {
    const m = new Map<string, Value>();
    const r = this.reader();
    for (let i = 0; i < this.count; i++) {
      const k = r.readString();
      m.set(k, readValue(r, 1));
    }
    return m;
  }
}
