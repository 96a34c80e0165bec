// The per-request context (ABI.md §5.1): the host sends it in full, the guest
// answers with a ContextPatch holding only the keys this call set or deleted.

import { logWarn } from "./host";
import { MapView } from "./msgpack/mapview";
import { Reader } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";
import { PatchMap } from "./patchmap";
import { Value } from "./value";

/** Keys written by the host only (request id, fallback index, provider, model, stream end). */
export const RESERVED_PREFIX = "sandgate.";

export class Context {
  private map: PatchMap<Value>;

  constructor(view: MapView | null = null) {
    this.map = new PatchMap<Value>(view, false);
  }

  static decode(r: Reader): Context {
    return new Context(MapView.read(r));
  }

  /** The current value (this call's changes included), or null if absent. Decoded on each call. */
  get(key: string): Value | null {
    return this.map.get(key);
  }

  has(key: string): bool {
    return this.map.has(key);
  }

  /** The value if it is a string, else null. */
  getString(key: string): string | null {
    const v = this.map.get(key);
    return v !== null ? v.asString() : null;
  }

  getInt(key: string, def: i64 = 0): i64 {
    const v = this.map.get(key);
    return v !== null ? v.asInt(def) : def;
  }

  getBool(key: string, def: bool = false): bool {
    const v = this.map.get(key);
    return v !== null ? v.asBool(def) : def;
  }

  /** Every key, this call's changes included. */
  keys(): Array<string> {
    return this.map.keys();
  }

  /** The whole context, decoded (read-only: change it with set()/delete()). */
  all(): Map<string, Value> {
    return this.map.all();
  }

  /**
   * Sets a key for every later hook of every plugin in this request. Editing a
   * Value returned by get() in place is not seen by the host: set it again.
   * Reserved `sandgate.*` keys are refused here (the host would ignore them anyway).
   */
  set(key: string, value: Value): void {
    if (reserved(key, "set")) return;
    this.map.set(key, value);
  }

  setString(key: string, value: string): void {
    this.set(key, Value.str(value));
  }

  /** Deletes a key (sent as nil in the patch). */
  delete(key: string): void {
    if (reserved(key, "delete")) return;
    this.map.delete(key);
  }

  /** The request id the gateway assigned (`sandgate.request_id`), or "". */
  get requestId(): string {
    const s = this.getString("sandgate.request_id");
    return s !== null ? s : "";
  }

  /** 0 for the primary attempt, 1.. for fallbacks (`sandgate.fallback_index`). */
  get fallbackIndex(): i32 {
    return <i32>this.getInt("sandgate.fallback_index");
  }

  /** Streaming only: true on the last delta (`sandgate.stream_end`). */
  get streamEnd(): bool {
    return this.getBool("sandgate.stream_end");
  }

  /** Whether this call changed anything. */
  get changed(): bool {
    return this.map.changed;
  }

  /** Writes the ContextPatch map. */
  encodePatch(w: Writer): void {
    this.map.encodePatch(w);
  }

  /** Writes the whole context as the next hook would see it (round-trip tests). */
  encodeFull(w: Writer): void {
    this.map.encodeAll(w);
  }
}

function reserved(key: string, op: string): bool {
  if (!key.startsWith(RESERVED_PREFIX)) return false;
  logWarn("ctx." + op + " ignored: '" + key + "' is reserved for the gateway");
  return true;
}
