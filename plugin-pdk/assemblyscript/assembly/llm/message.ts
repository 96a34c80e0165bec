// An OpenAI chat message (ABI.md §5.1 LlmMessage).

import { Reader } from "../msgpack/reader";
import { Writer } from "../msgpack/writer";
import { Value, readValue, writeValue } from "../value";
import { Extensible, extraSize, readExtra, writeExtra } from "./extensible";

export class LlmMessage extends Extensible {
  role: string;
  /** Text content; null for nil or when the content is not a string (see contentValue). */
  content: string | null;
  name: string | null = null;
  /** Non-string content as received (e.g. an array of content parts); written back when `content` is null. */
  contentValue: Value | null = null;

  constructor(role: string = "user", content: string | null = null) {
    super();
    this.role = role;
    this.content = content;
  }

  static decode(r: Reader): LlmMessage {
    const m = new LlmMessage("", null);
    // A streamed delta after the first has no role: remember that it had none, so an
    // untouched delta is written back without one (an empty role is not "no role").
    m.nils |= 2;
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("role")) { m.role = r.readString(); m.nils &= ~2; }
      else if (r.keyIs("content")) {
        if (r.tryNil()) m.content = null;
        else {
          const v = readValue(r, 1);
          if (v.isStr) m.content = v.asString();
          else m.contentValue = v;
        }
      } else if (r.keyIs("name")) {
        m.name = r.readStringOrNull();
        if (m.name === null) m.nils |= 1;
      } else m.extra = readExtra(r, m.extra);
    }
    return m;
  }

  encode(w: Writer): void {
    const name = this.name;
    const nameNil = name === null && (this.nils & 1) != 0;
    const noRole = this.role == "" && (this.nils & 2) != 0;
    w.mapHeader((noRole ? 1 : 2) + (name !== null || nameNil ? 1 : 0) + extraSize(this.extra));
    if (!noRole) { w.str("role"); w.str(this.role); }
    w.str("content");
    const c = this.content;
    const cv = this.contentValue;
    if (c !== null) w.str(c);
    else if (cv !== null) writeValue(w, cv);
    else w.nil();
    if (name !== null) { w.str("name"); w.str(name); }
    else if (nameNil) { w.str("name"); w.nil(); }
    writeExtra(w, this.extra);
  }
}

export function readMessages(r: Reader): Array<LlmMessage> {
  const n = r.readArrayHeader();
  const a = new Array<LlmMessage>(n);
  for (let i = 0; i < n; i++) unchecked(a[i] = LlmMessage.decode(r));
  return a;
}

export function writeMessages(w: Writer, a: Array<LlmMessage>): void {
  w.arrayHeader(a.length);
  for (let i = 0; i < a.length; i++) unchecked(a[i]).encode(w);
}
