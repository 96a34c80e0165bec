// A map the host sends in full and takes back as a merge patch (ABI.md §5):
// headers, query, the context, LLM params. Reads see this call's changes;
// only the changes are written back (a set key, or nil for a deleted one).
//
// The received map stays a MapView (undecoded bytes) until a plugin asks for
// all of it, so a hook that reads two headers out of thirty decodes two. The
// patch is a short list rather than a Map: a hook changes a handful of keys,
// and a Map costs three allocations before the first one.

import { MapView } from "./msgpack/mapview";
import { asciiLower, keysEqualCI } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";
import { Value, writeValue } from "./value";

class Change<V> {
  next: Change<V> | null = null;
  constructor(public key: string, public value: V | null) {}
}

/** V is `string` (headers, query) or `Value` (context, params). */
export class PatchMap<V> {
  private view: MapView | null;
  /** ASCII case-insensitive keys, stored lower-case (HTTP header names). */
  private ci: bool;
  private full: Map<string, V> | null = null;
  private first: Change<V> | null = null;
  private last: Change<V> | null = null;

  constructor(view: MapView | null, ci: bool) {
    this.view = view;
    this.ci = ci;
  }

  private findChange(key: string): Change<V> | null {
    let c = this.first;
    while (c !== null) {
      if (this.ci ? keysEqualCI(c.key, key) : c.key == key) return c;
      c = c.next;
    }
    return null;
  }

  /** The current value of `key` (this call's changes included), or null. */
  get(key: string): V | null {
    const c = this.findChange(key);
    if (c !== null) return c.value;
    const f = this.full;
    if (f !== null) {
      if (f.has(key)) return f.get(key);
      if (this.ci) {
        const keys = f.keys();
        for (let i = 0; i < keys.length; i++) {
          if (keysEqualCI(unchecked(keys[i]), key)) return f.get(unchecked(keys[i]));
        }
      }
      return null;
    }
    const v = this.view;
    if (v === null) return null;
    if (isString<V>()) return changetype<V | null>(v.getString(key, this.ci));
    return changetype<V | null>(v.getValue(key));
  }

  has(key: string): bool {
    return this.get(key) !== null;
  }

  set(key: string, value: V): void {
    this.record(key, value);
  }

  delete(key: string): void {
    this.record(key, null);
  }

  private record(key: string, value: V | null): void {
    const k = this.ci ? asciiLower(key) : key;
    let c = this.findChange(k);
    if (c !== null) c.value = value;
    else {
      c = new Change<V>(k, value);
      const last = this.last;
      if (last === null) this.first = c; else last.next = c;
      this.last = c;
    }
    const f = this.full;
    if (f !== null) {
      if (value === null) f.delete(k); else f.set(k, value);
    }
  }

  /** The whole map with this call's changes, decoded on first use. Read it; change it with set()/delete(). */
  all(): Map<string, V> {
    let f = this.full;
    if (f !== null) return f;
    const v = this.view;
    if (v === null) f = new Map<string, V>();
    else if (isString<V>()) f = changetype<Map<string, V>>(v.toStringMap());
    else f = changetype<Map<string, V>>(v.toValueMap());
    let c = this.first;
    while (c !== null) {
      const x = c.value;
      if (x === null) f.delete(c.key); else f.set(c.key, x);
      c = c.next;
    }
    this.full = f;
    return f;
  }

  keys(): Array<string> {
    return this.all().keys();
  }

  get changed(): bool {
    return this.first !== null;
  }

  /** Writes the merge patch: changed keys with their value, deleted keys with nil. */
  encodePatch(w: Writer): void {
    let n = 0;
    let c = this.first;
    while (c !== null) { n++; c = c.next; }
    w.mapHeader(n);
    c = this.first;
    while (c !== null) {
      w.str(c.key);
      const x = c.value;
      if (x === null) w.nil(); else writeItem<V>(w, x);
      c = c.next;
    }
  }

  /** Writes the whole map (round trips, full objects). */
  encodeAll(w: Writer): void {
    const f = this.all();
    const keys = f.keys();
    w.mapHeader(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = unchecked(keys[i]);
      w.str(k);
      writeItem<V>(w, f.get(k));
    }
  }
}

function writeItem<V>(w: Writer, x: V): void {
  if (isString<V>()) w.str(changetype<string>(x));
  else writeValue(w, changetype<Value>(x));
}
