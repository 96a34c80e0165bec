// OpenAI objects carry more fields than the ABI names (tool_calls, logprobs,
// system_fingerprint, ...). Unknown keys are kept in `extra` and written back,
// so a plugin that edits one field does not drop the others.

import { Reader } from "../msgpack/reader";
import { Writer } from "../msgpack/writer";
import { Value, readValue, writeValue } from "../value";

// ---- unknown-key bags

export function readExtra(r: Reader, extra: Map<string, Value> | null): Map<string, Value> {
  const m = extra !== null ? extra : new Map<string, Value>();
  m.set(r.lastStr(), readValue(r, 1));
  return m;
}

export function extraSize(extra: Map<string, Value> | null): i32 {
  return extra !== null ? extra.size : 0;
}

export function writeExtra(w: Writer, extra: Map<string, Value> | null): void {
  if (extra === null) return;
  const keys = extra.keys();
  for (let i = 0; i < keys.length; i++) {
    const k = unchecked(keys[i]);
    w.str(k);
    writeValue(w, extra.get(k));
  }
}

/** Fields of an OpenAI object the PDK does not model. */
export class Extensible {
  extra: Map<string, Value> | null = null;
  // Optional fields that arrived as an explicit nil (bit per field), written
  // back as nil while still unset: an untouched object re-encodes to the same
  // bytes, so change detection does not mistake it for an edit.
  protected nils: i32 = 0;

  /** An unmodelled field (e.g. "tool_calls", "system_fingerprint"), or null. */
  getExtra(key: string): Value | null {
    const e = this.extra;
    return e !== null && e.has(key) ? e.get(key) : null;
  }

  setExtra(key: string, value: Value): void {
    if (this.extra === null) this.extra = new Map<string, Value>();
    this.extra!.set(key, value);
  }

  removeExtra(key: string): void {
    if (this.extra !== null) this.extra!.delete(key);
  }
}
