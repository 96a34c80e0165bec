// A dynamic MessagePack value, for everything the ABI types as `any`:
// context values, plugin config, LLM `params`, streaming chunks.
//
// AssemblyScript has no union types, so one class holds a kind tag and the
// field that kind uses. Maps keep insertion order (AssemblyScript's Map does),
// so decode + encode reproduces the input bytes for canonical encodings.

import { MAX_DEPTH, Reader } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";

export enum ValueKind { Nil, Bool, Int, Float, Str, Bin, Array, Map }

export class Value {
  kind: ValueKind = ValueKind.Nil;
  private b: bool = false;
  private i: i64 = 0;
  private f: f64 = 0;
  private s: string | null = null;
  private bytes: Uint8Array | null = null;
  private arr: Array<Value> | null = null;
  private obj: Map<string, Value> | null = null;

  // ---- constructors

  static nil(): Value { return new Value(); }
  static bool(b: bool): Value { const v = new Value(); v.kind = ValueKind.Bool; v.b = b; return v; }
  static int(i: i64): Value { const v = new Value(); v.kind = ValueKind.Int; v.i = i; return v; }
  static float(f: f64): Value { const v = new Value(); v.kind = ValueKind.Float; v.f = f; return v; }
  static str(s: string): Value { const v = new Value(); v.kind = ValueKind.Str; v.s = s; return v; }
  static bin(b: Uint8Array): Value { const v = new Value(); v.kind = ValueKind.Bin; v.bytes = b; return v; }
  static array(items: Array<Value> = []): Value { const v = new Value(); v.kind = ValueKind.Array; v.arr = items; return v; }
  static map(entries: Map<string, Value> = new Map<string, Value>()): Value { const v = new Value(); v.kind = ValueKind.Map; v.obj = entries; return v; }

  // ---- kind tests

  get isNil(): bool { return this.kind == ValueKind.Nil; }
  get isBool(): bool { return this.kind == ValueKind.Bool; }
  get isInt(): bool { return this.kind == ValueKind.Int; }
  get isFloat(): bool { return this.kind == ValueKind.Float; }
  /** Int or Float. */
  get isNumber(): bool { return this.kind == ValueKind.Int || this.kind == ValueKind.Float; }
  get isStr(): bool { return this.kind == ValueKind.Str; }
  get isBin(): bool { return this.kind == ValueKind.Bin; }
  get isArray(): bool { return this.kind == ValueKind.Array; }
  get isMap(): bool { return this.kind == ValueKind.Map; }

  // ---- accessors: a wrong kind gives the default / null, never a trap

  asBool(def: bool = false): bool { return this.kind == ValueKind.Bool ? this.b : def; }

  /** Int, or a Float truncated (the host sends integers beyond 32 bits as float64). */
  asInt(def: i64 = 0): i64 {
    if (this.kind == ValueKind.Int) return this.i;
    if (this.kind == ValueKind.Float) return <i64>this.f;
    return def;
  }

  /** Float, or an Int converted. */
  asFloat(def: f64 = 0): f64 {
    if (this.kind == ValueKind.Float) return this.f;
    if (this.kind == ValueKind.Int) return <f64>this.i;
    return def;
  }

  asString(): string | null { return this.kind == ValueKind.Str ? this.s : null; }
  asBin(): Uint8Array | null { return this.kind == ValueKind.Bin ? this.bytes : null; }
  asArray(): Array<Value> | null { return this.kind == ValueKind.Array ? this.arr : null; }
  asMap(): Map<string, Value> | null { return this.kind == ValueKind.Map ? this.obj : null; }

  // ---- map helpers

  /** The entry `key` of a map, or null (also when this is not a map). */
  get(key: string): Value | null {
    if (this.kind != ValueKind.Map) return null;
    const m = this.obj!;
    return m.has(key) ? m.get(key) : null;
  }

  has(key: string): bool {
    return this.kind == ValueKind.Map && this.obj!.has(key);
  }

  getString(key: string): string | null {
    const v = this.get(key);
    return v !== null ? v.asString() : null;
  }

  getInt(key: string, def: i64 = 0): i64 {
    const v = this.get(key);
    return v !== null ? v.asInt(def) : def;
  }

  getFloat(key: string, def: f64 = 0): f64 {
    const v = this.get(key);
    return v !== null ? v.asFloat(def) : def;
  }

  getBool(key: string, def: bool = false): bool {
    const v = this.get(key);
    return v !== null ? v.asBool(def) : def;
  }

  /** Sets a map entry and returns this map (chainable). Throws if this is not a map. */
  set(key: string, value: Value): Value {
    if (this.kind != ValueKind.Map) throw new Error("Value.set: not a map");
    this.obj!.set(key, value);
    return this;
  }

  /** Removes a map entry; returns whether it existed. */
  remove(key: string): bool {
    if (this.kind != ValueKind.Map) return false;
    return this.obj!.delete(key);
  }

  /** Map keys in order (empty if this is not a map). */
  keys(): Array<string> {
    return this.kind == ValueKind.Map ? this.obj!.keys() : new Array<string>();
  }

  // ---- array helpers

  /** Element i of an array, or null. */
  at(i: i32): Value | null {
    if (this.kind != ValueKind.Array) return null;
    const a = this.arr!;
    return i >= 0 && i < a.length ? unchecked(a[i]) : null;
  }

  /** Appends to an array and returns this array (chainable). Throws if this is not an array. */
  push(item: Value): Value {
    if (this.kind != ValueKind.Array) throw new Error("Value.push: not an array");
    this.arr!.push(item);
    return this;
  }

  /** Element count of an array or map, byte length of str/bin, 0 otherwise. */
  get length(): i32 {
    switch (this.kind) {
      case ValueKind.Array: return this.arr!.length;
      case ValueKind.Map: return this.obj!.size;
      case ValueKind.Str: return String.UTF8.byteLength(this.s!);
      case ValueKind.Bin: return this.bytes!.length;
    }
    return 0;
  }

  // ---- MessagePack

  static decode(bytes: Uint8Array): Value {
    return readValue(Reader.of(bytes));
  }

  encode(): Uint8Array {
    const w = new Writer();
    writeValue(w, this);
    const out = w.toBytes();
    w.free();
    return out;
  }

  /** Compact JSON (for logs and debugging): bin as {"$bin":"<hex>"}, non-finite floats as null. */
  toJSON(): string {
    const parts = new Array<string>();
    jsonInto(parts, this);
    return parts.join("");
  }
}

/**
 * Decodes one value of any type. `depth` is how many maps and arrays enclose
 * it; a value nested more than MAX_DEPTH levels deep throws (a clear abort,
 * never a stack overflow).
 */
export function readValue(r: Reader, depth: i32 = 0): Value {
  const b = r.peekByte();
  if (b <= 0x7f || b >= 0xe0) return Value.int(r.readInt());
  const isMap = b <= 0x8f || b == 0xde || b == 0xdf;
  if ((isMap || b <= 0x9f || b == 0xdc || b == 0xdd) && depth >= MAX_DEPTH) {
    throw new Error("msgpack: a value nests deeper than " + MAX_DEPTH.toString() + " levels of maps and arrays (MAX_DEPTH)");
  }
  if (isMap) {
    const n = r.readMapHeader();
    const m = new Map<string, Value>();
    for (let i = 0; i < n; i++) {
      const k = r.readString(); // ABI: map keys are strings
      m.set(k, readValue(r, depth + 1));
    }
    return Value.map(m);
  }
  if (b <= 0x9f || b == 0xdc || b == 0xdd) {
    const n = r.readArrayHeader();
    const a = new Array<Value>(n);
    for (let i = 0; i < n; i++) unchecked(a[i] = readValue(r, depth + 1));
    return Value.array(a);
  }
  if (b <= 0xbf || b == 0xd9 || b == 0xda || b == 0xdb) return Value.str(r.readString());
  switch (b) {
    case 0xc0: r.pos += 1; return Value.nil();
    case 0xc2: case 0xc3: return Value.bool(r.readBool());
    case 0xc4: case 0xc5: case 0xc6: return Value.bin(r.readBin());
    case 0xca: case 0xcb: return Value.float(r.readFloat());
    case 0xcf: {
      // uint64 beyond int64's range cannot be an Int: keep it as a float.
      const save = r.pos;
      const i = r.readInt();
      if (i >= 0) return Value.int(i);
      r.pos = save;
      return Value.float(r.readFloat());
    }
    case 0xcc: case 0xcd: case 0xce:
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: return Value.int(r.readInt());
  }
  throw new Error("msgpack: unsupported type (ext or invalid)");
}

export function writeValue(w: Writer, v: Value): void {
  switch (v.kind) {
    case ValueKind.Nil: w.nil(); break;
    case ValueKind.Bool: w.bool(v.asBool()); break;
    case ValueKind.Int: w.int(v.asInt()); break;
    case ValueKind.Float: w.float(v.asFloat()); break;
    case ValueKind.Str: w.str(v.asString()!); break;
    case ValueKind.Bin: w.bin(v.asBin()!); break;
    case ValueKind.Array: {
      const a = v.asArray()!;
      w.arrayHeader(a.length);
      for (let i = 0, n = a.length; i < n; i++) writeValue(w, unchecked(a[i]));
      break;
    }
    case ValueKind.Map: writeValueMap(w, v.asMap()!); break;
  }
}

export function writeValueMap(w: Writer, m: Map<string, Value>): void {
  const keys = m.keys();
  const n = keys.length;
  w.mapHeader(n);
  for (let i = 0; i < n; i++) {
    const k = unchecked(keys[i]);
    w.str(k);
    writeValue(w, m.get(k));
  }
}

/** Decodes a map<str, any> into a Map (nil gives an empty map). */
export function readValueMap(r: Reader): Map<string, Value> {
  const m = new Map<string, Value>();
  const n = r.readMapHeaderOrNil();
  for (let i = 0; i < n; i++) {
    const k = r.readString();
    m.set(k, readValue(r, 1));
  }
  return m;
}

// ---- JSON (debug output only)

const HEX = "0123456789abcdef";

function jsonInto(out: Array<string>, v: Value): void {
  switch (v.kind) {
    case ValueKind.Nil: out.push("null"); break;
    case ValueKind.Bool: out.push(v.asBool() ? "true" : "false"); break;
    case ValueKind.Int: out.push(v.asInt().toString()); break;
    case ValueKind.Float: {
      const f = v.asFloat();
      out.push(isFinite(f) ? f.toString() : "null");
      break;
    }
    case ValueKind.Str: out.push(jsonString(v.asString()!)); break;
    case ValueKind.Bin: {
      const b = v.asBin()!;
      let hex = "";
      for (let i = 0; i < b.length; i++) {
        const x = <i32>unchecked(b[i]);
        hex += HEX.charAt(x >> 4) + HEX.charAt(x & 15);
      }
      out.push('{"$bin":"' + hex + '"}');
      break;
    }
    case ValueKind.Array: {
      const a = v.asArray()!;
      out.push("[");
      for (let i = 0; i < a.length; i++) {
        if (i > 0) out.push(",");
        jsonInto(out, unchecked(a[i]));
      }
      out.push("]");
      break;
    }
    case ValueKind.Map: {
      const m = v.asMap()!;
      const keys = m.keys();
      out.push("{");
      for (let i = 0; i < keys.length; i++) {
        if (i > 0) out.push(",");
        out.push(jsonString(unchecked(keys[i])));
        out.push(":");
        jsonInto(out, m.get(unchecked(keys[i])));
      }
      out.push("}");
      break;
    }
  }
}

export function jsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(start, i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
    start = i + 1;
  }
  return out + s.substring(start) + '"';
}
