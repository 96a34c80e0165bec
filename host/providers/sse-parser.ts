// An incremental text/event-stream parser (the WHATWG "event stream
// interpretation", without id/retry, which a relay has no use for). Fed raw
// network buffers, it returns the events they complete; a line split across
// buffers (or a UTF-8 character split across them) is kept until its end
// arrives. Works on bytes: a line break byte never occurs inside a UTF-8 sequence.

export interface SseEvent {
  /** The `event:` field, "message" when absent. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
}

/** An event (or a line) over the parser's size bound: the upstream is not sending chunks. */
export class SseTooLarge extends Error {
  constructor(limit: number) {
    super(`an event-stream event is over ${limit} bytes`);
    this.name = 'SseTooLarge';
  }
}

const LF = 0x0a;
const CR = 0x0d;

export class SseParser {
  private parts: Buffer[] = [];
  private partsLength = 0;
  /** The previous buffer ended with CR: an LF opening the next one ends the same line. */
  private skipLf = false;
  private firstLine = true;
  private data: string[] = [];
  private dataLength = 0;
  private event = '';

  constructor(private readonly maxEventBytes = 1024 * 1024) {}

  /** Feeds one buffer; returns the events it completed, in order. */
  push(chunk: Uint8Array): SseEvent[] {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const events: SseEvent[] = [];
    let pos = 0;
    if (this.skipLf && b.length > 0) {
      if (b[0] === LF) pos = 1;
      this.skipLf = false;
    }
    while (pos < b.length) {
      let end = pos;
      while (end < b.length && b[end] !== LF && b[end] !== CR) end++;
      if (end === b.length) {
        this.keep(b.subarray(pos));
        break;
      }
      const line = this.takeLine(b.subarray(pos, end));
      if (b[end] === CR) {
        if (end + 1 < b.length) {
          if (b[end + 1] === LF) end++;
        } else this.skipLf = true;
      }
      pos = end + 1;
      const ev = this.onLine(line);
      if (ev) events.push(ev);
    }
    return events;
  }

  /** True when bytes of an unfinished line or event are held (the stream stopped mid-event). */
  get midEvent(): boolean {
    return this.partsLength > 0 || this.data.length > 0;
  }

  private keep(rest: Buffer): void {
    this.partsLength += rest.length;
    if (this.partsLength > this.maxEventBytes) throw new SseTooLarge(this.maxEventBytes);
    // A copy: the network buffer is not ours to hold on to.
    this.parts.push(Buffer.from(rest));
  }

  private takeLine(tail: Buffer): string {
    if (this.parts.length === 0) return tail.toString('utf8');
    this.parts.push(tail);
    const line = Buffer.concat(this.parts, this.partsLength + tail.length).toString('utf8');
    this.parts = [];
    this.partsLength = 0;
    return line;
  }

  private onLine(raw: string): SseEvent | undefined {
    let line = raw;
    if (this.firstLine) {
      this.firstLine = false;
      if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    }
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return undefined;
      }
      const ev = { event: this.event || 'message', data: this.data.join('\n') };
      this.data = [];
      this.dataLength = 0;
      this.event = '';
      return ev;
    }
    if (line.charCodeAt(0) === 0x3a /* ':' */) return undefined; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 0x20) value = value.slice(1);
    if (field === 'data') {
      this.dataLength += value.length + 1;
      if (this.dataLength > this.maxEventBytes) throw new SseTooLarge(this.maxEventBytes);
      this.data.push(value);
    } else if (field === 'event') {
      this.event = value;
    }
    return undefined;
  }
}
