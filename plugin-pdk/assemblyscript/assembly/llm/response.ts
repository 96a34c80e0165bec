// An OpenAI chat.completion (or, for streamed deltas, chat.completion.chunk)
// object (ABI.md §5.1 LlmResponse).

import { Reader } from "../msgpack/reader";
import { Writer } from "../msgpack/writer";
import { Extensible, extraSize, readExtra, writeExtra } from "./extensible";
import { LlmMessage } from "./message";

export class LlmChoice extends Extensible {
  index: i32 = 0;
  /** chat.completion: the message. Null when absent. */
  message: LlmMessage | null = null;
  /** chat.completion.chunk (streamed deltas): the delta. Null when absent. */
  delta: LlmMessage | null = null;
  finishReason: string | null = null;

  static decode(r: Reader): LlmChoice {
    const c = new LlmChoice();
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("index")) c.index = <i32>r.readInt();
      else if (r.keyIs("message")) {
        if (r.tryNil()) c.nils |= 1; else c.message = LlmMessage.decode(r);
      } else if (r.keyIs("delta")) {
        if (r.tryNil()) c.nils |= 2; else c.delta = LlmMessage.decode(r);
      }
      else if (r.keyIs("finish_reason")) c.finishReason = r.readStringOrNull();
      else c.extra = readExtra(r, c.extra);
    }
    return c;
  }

  encode(w: Writer): void {
    const m = this.message;
    const d = this.delta;
    const mNil = m === null && (this.nils & 1) != 0;
    const dNil = d === null && (this.nils & 2) != 0;
    w.mapHeader(2 + (m !== null || mNil ? 1 : 0) + (d !== null || dNil ? 1 : 0) + extraSize(this.extra));
    w.str("index"); w.int(this.index);
    if (m !== null) { w.str("message"); m.encode(w); } else if (mNil) { w.str("message"); w.nil(); }
    if (d !== null) { w.str("delta"); d.encode(w); } else if (dNil) { w.str("delta"); w.nil(); }
    w.str("finish_reason"); w.strOrNil(this.finishReason);
    writeExtra(w, this.extra);
  }
}

export class LlmUsage extends Extensible {
  constructor(
    public promptTokens: i64 = 0,
    public completionTokens: i64 = 0,
    public totalTokens: i64 = 0,
  ) {
    super();
  }

  static decode(r: Reader): LlmUsage {
    const u = new LlmUsage();
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("prompt_tokens")) u.promptTokens = r.readInt();
      else if (r.keyIs("completion_tokens")) u.completionTokens = r.readInt();
      else if (r.keyIs("total_tokens")) u.totalTokens = r.readInt();
      else u.extra = readExtra(r, u.extra);
    }
    return u;
  }

  encode(w: Writer): void {
    w.mapHeader(3 + extraSize(this.extra));
    w.str("prompt_tokens"); w.int(this.promptTokens);
    w.str("completion_tokens"); w.int(this.completionTokens);
    w.str("total_tokens"); w.int(this.totalTokens);
    writeExtra(w, this.extra);
  }
}

export class LlmResponse extends Extensible {
  id: string = "";
  object: string = "chat.completion";
  /** Unix seconds. A plugin has no clock: set it yourself for responses you build. */
  created: i64 = 0;
  model: string = "";
  choices: Array<LlmChoice> = new Array<LlmChoice>();
  usage: LlmUsage | null = null;

  /** A one-choice assistant reply (for short-circuits and recoveries). */
  static assistant(model: string, content: string, id: string = "chatcmpl-sandgate"): LlmResponse {
    const r = new LlmResponse();
    r.id = id;
    r.model = model;
    const c = new LlmChoice();
    c.message = new LlmMessage("assistant", content);
    c.finishReason = "stop";
    r.choices.push(c);
    return r;
  }

  /** The first choice's text (message or delta content), or null. */
  get text(): string | null {
    if (this.choices.length == 0) return null;
    const c = unchecked(this.choices[0]);
    const m = c.message !== null ? c.message : c.delta;
    return m !== null ? m.content : null;
  }

  /** Replaces the first choice's text (message, else delta). */
  setText(text: string): void {
    if (this.choices.length == 0) {
      const c = new LlmChoice();
      c.message = new LlmMessage("assistant", null);
      c.finishReason = "stop";
      this.choices.push(c);
    }
    const c = unchecked(this.choices[0]);
    const m = c.message !== null ? c.message : c.delta;
    if (m !== null) {
      m.content = text;
      m.contentValue = null;
    }
  }

  static decode(r: Reader): LlmResponse {
    const resp = new LlmResponse();
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("id")) resp.id = r.readString();
      else if (r.keyIs("object")) resp.object = r.readString();
      else if (r.keyIs("created")) resp.created = r.readInt();
      else if (r.keyIs("model")) resp.model = r.readString();
      else if (r.keyIs("choices")) {
        const k = r.readArrayHeader();
        const a = new Array<LlmChoice>(k);
        for (let j = 0; j < k; j++) unchecked(a[j] = LlmChoice.decode(r));
        resp.choices = a;
      } else if (r.keyIs("usage")) {
        if (r.tryNil()) resp.nils |= 1; else resp.usage = LlmUsage.decode(r);
      }
      else resp.extra = readExtra(r, resp.extra);
    }
    return resp;
  }

  encode(w: Writer): void {
    const u = this.usage;
    const uNil = u === null && (this.nils & 1) != 0;
    w.mapHeader(5 + (u !== null || uNil ? 1 : 0) + extraSize(this.extra));
    w.str("id"); w.str(this.id);
    w.str("object"); w.str(this.object);
    w.str("created"); w.int(this.created);
    w.str("model"); w.str(this.model);
    w.str("choices");
    w.arrayHeader(this.choices.length);
    for (let i = 0; i < this.choices.length; i++) unchecked(this.choices[i]).encode(w);
    if (u !== null) { w.str("usage"); u.encode(w); } else if (uNil) { w.str("usage"); w.nil(); }
    writeExtra(w, this.extra);
  }
}
