// An LLM error (ABI.md §5.1 LlmError), with the fallback decision.

import { Reader } from "../msgpack/reader";
import { Writer } from "../msgpack/writer";
import { Extensible, extraSize, readExtra, writeExtra } from "./extensible";

const ERR_TYPE = 1, ERR_CODE = 2, ERR_STATUS = 4, ERR_FALLBACKS = 8, ERR_PROVIDER = 16, ERR_MODEL = 32;

/** `allow_fallbacks`: absent/nil (Unset) and True both let the gateway try the next fallback; False stops. */
export enum Tri { Unset = 0, True = 1, False = 2 }

export class LlmError extends Extensible {
  message: string;
  type: string | null = null;
  code: string | null = null;
  /** HTTP status; 0 = unset. */
  status: i32;
  allowFallbacks: Tri;
  provider: string | null = null;
  model: string | null = null;

  constructor(message: string, status: i32 = 0, allowFallbacks: Tri = Tri.Unset) {
    super();
    this.message = message;
    this.status = status;
    this.allowFallbacks = allowFallbacks;
  }

  /** An error that stops the fallback chain (allow_fallbacks: false). */
  static final(message: string, status: i32 = 0): LlmError {
    return new LlmError(message, status, Tri.False);
  }

  static decode(r: Reader): LlmError {
    const e = new LlmError("");
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("message")) e.message = r.readString();
      else if (r.tryNilFor(r.keyIs("type"))) e.nils |= ERR_TYPE;
      else if (r.keyIs("type")) e.type = r.readString();
      else if (r.tryNilFor(r.keyIs("code"))) e.nils |= ERR_CODE;
      else if (r.keyIs("code")) e.code = r.readString();
      else if (r.tryNilFor(r.keyIs("status"))) e.nils |= ERR_STATUS;
      else if (r.keyIs("status")) e.status = <i32>r.readInt();
      else if (r.tryNilFor(r.keyIs("allow_fallbacks"))) e.nils |= ERR_FALLBACKS;
      else if (r.keyIs("allow_fallbacks")) e.allowFallbacks = r.readBool() ? Tri.True : Tri.False;
      else if (r.tryNilFor(r.keyIs("provider"))) e.nils |= ERR_PROVIDER;
      else if (r.keyIs("provider")) e.provider = r.readString();
      else if (r.tryNilFor(r.keyIs("model"))) e.nils |= ERR_MODEL;
      else if (r.keyIs("model")) e.model = r.readString();
      else e.extra = readExtra(r, e.extra);
    }
    return e;
  }

  encode(w: Writer): void {
    const type = this.type;
    const code = this.code;
    const provider = this.provider;
    const model = this.model;
    // A field is written when set, or as nil when it arrived as nil and is still unset.
    const nils = this.nils;
    const hasType = type !== null || (nils & ERR_TYPE) != 0;
    const hasCode = code !== null || (nils & ERR_CODE) != 0;
    const hasStatus = this.status > 0 || (nils & ERR_STATUS) != 0;
    const hasFallbacks = this.allowFallbacks != Tri.Unset || (nils & ERR_FALLBACKS) != 0;
    const hasProvider = provider !== null || (nils & ERR_PROVIDER) != 0;
    const hasModel = model !== null || (nils & ERR_MODEL) != 0;
    w.mapHeader(1 + i32(hasType) + i32(hasCode) + i32(hasStatus) + i32(hasFallbacks) + i32(hasProvider) +
      i32(hasModel) + extraSize(this.extra));
    w.str("message"); w.str(this.message);
    if (hasType) { w.str("type"); w.strOrNil(type); }
    if (hasCode) { w.str("code"); w.strOrNil(code); }
    if (hasStatus) { w.str("status"); if (this.status > 0) w.int(this.status); else w.nil(); }
    if (hasFallbacks) {
      w.str("allow_fallbacks");
      if (this.allowFallbacks == Tri.Unset) w.nil(); else w.bool(this.allowFallbacks == Tri.True);
    }
    if (hasProvider) { w.str("provider"); w.strOrNil(provider); }
    if (hasModel) { w.str("model"); w.strOrNil(model); }
    writeExtra(w, this.extra);
  }
}
