// The LLM request as pre_llm_hook sees it (ABI.md §5.4).
//
// Change detection: `messages` are decoded only when read, and then
// re-encoded and compared with the input bytes; only a real change is sent
// back. `params` is a merge patch: use setParam/removeParam.

import { MapView } from "../msgpack/mapview";
import { Reader } from "../msgpack/reader";
import { Writer } from "../msgpack/writer";
import { PatchMap } from "../patchmap";
import { Value } from "../value";
import { LlmMessage, readMessages, writeMessages } from "./message";

export class LlmRequest {
  provider: string = "";
  model: string = "";
  /** Read-only on the wire: the host decides streaming. */
  stream: bool = false;

  private msgs: Array<LlmMessage> | null = null;
  // Where `messages` were in the input: decoded on first access, and compared
  // on output, so an untouched conversation costs neither.
  private msgSource: Uint8Array | null = null;
  private msgPtr: usize = 0;
  private msgLen: usize = 0;
  private prms: PatchMap<Value> = new PatchMap<Value>(null, false);
  // Upstream headers (ABI.md §5.4): what earlier pre_llm_hooks set; sent back as a patch.
  private hdrs: PatchMap<string> = new PatchMap<string>(null, true);
  private origProvider: string = "";
  private origModel: string = "";

  static decode(r: Reader): LlmRequest {
    const req = new LlmRequest();
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("provider")) req.provider = r.readString();
      else if (r.keyIs("model")) req.model = r.readString();
      else if (r.keyIs("messages")) {
        req.msgSource = r.source;
        req.msgPtr = r.pos;
        r.skip();
        req.msgLen = r.pos - req.msgPtr;
      } else if (r.keyIs("stream")) req.stream = r.tryNil() ? false : r.readBool();
      else if (r.keyIs("params")) req.prms = new PatchMap<Value>(MapView.read(r), false);
      else if (r.keyIs("headers")) req.hdrs = new PatchMap<string>(MapView.read(r), true);
      else r.skip();
    }
    req.origProvider = req.provider;
    req.origModel = req.model;
    return req;
  }

  /** The conversation. Edit in place or assign: sent back only if it differs from the input. */
  get messages(): Array<LlmMessage> {
    let m = this.msgs;
    if (m === null) {
      if (this.msgLen > 0) {
        const r = new Reader(this.msgPtr, this.msgLen);
        r.source = this.msgSource;
        m = readMessages(r);
      } else m = new Array<LlmMessage>();
      this.msgs = m;
    }
    return m;
  }

  set messages(m: Array<LlmMessage>) {
    this.msgs = m;
  }

  /** A parameter (temperature, max_tokens, ...), or null. */
  param(key: string): Value | null {
    return this.prms.get(key);
  }

  /** Sets a parameter; sent back as a merge patch. */
  setParam(key: string, value: Value): void {
    this.prms.set(key, value);
  }

  /** Removes a parameter (sent back as nil). */
  removeParam(key: string): void {
    this.prms.delete(key);
  }

  /** All parameters (this call's changes included). Read-only: use setParam()/removeParam(). */
  get params(): Map<string, Value> {
    return this.prms.all();
  }

  /**
   * An upstream header set by an earlier pre_llm_hook, or null. The client's own
   * headers are not here: they reach the upstream only through the provider's
   * forward_headers (ABI.md §5.4).
   */
  upstreamHeader(name: string): string | null {
    return this.hdrs.get(name);
  }

  /** Sets a header on the upstream request (name lower-cased); the gateway's own content-type, accept and api_key win. */
  setUpstreamHeader(name: string, value: string): void {
    this.hdrs.set(name, value);
  }

  /** Removes an upstream header an earlier pre_llm_hook set (sent back as nil). */
  removeUpstreamHeader(name: string): void {
    this.hdrs.delete(name);
  }

  /** The last message with this role (default "user"), or null. */
  lastMessage(role: string = "user"): LlmMessage | null {
    const msgs = this.messages;
    for (let i = msgs.length - 1; i >= 0; i--) {
      const m = unchecked(msgs[i]);
      if (m.role == role) return m;
    }
    return null;
  }

  /** Writes the `req` patch of LlmPreOutput; returns its field count (0: nothing changed). */
  encodePatch(w: Writer): i32 {
    const at = w.beginSmallMap();
    let n = 0;
    if (this.provider != this.origProvider) { w.str("provider"); w.str(this.provider); n++; }
    if (this.model != this.origModel) { w.str("model"); w.str(this.model); n++; }
    const msgs = this.msgs;
    if (msgs !== null) {
      const keyAt = w.len;
      w.str("messages");
      const valAt = w.len;
      writeMessages(w, msgs);
      if (w.sameSince(valAt, this.msgPtr, this.msgLen)) w.len = keyAt; else n++;
    }
    if (this.prms.changed) { w.str("params"); this.prms.encodePatch(w); n++; }
    if (this.hdrs.changed) { w.str("headers"); this.hdrs.encodePatch(w); n++; }
    w.endSmallMap(at, n);
    return n;
  }

  /** The whole request (round-trip tests). */
  encodeFull(w: Writer): void {
    w.mapHeader(5);
    w.str("provider"); w.str(this.provider);
    w.str("model"); w.str(this.model);
    w.str("messages"); writeMessages(w, this.messages);
    w.str("stream"); w.bool(this.stream);
    w.str("params"); this.prms.encodeAll(w);
  }
}
