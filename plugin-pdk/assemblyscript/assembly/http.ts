// HTTP request/response as the transport hooks see them (ABI.md §5.1, §5.3).
//
// Headers and query are merge patches on the wire: change them with the
// setters (setHeader/removeHeader, setQuery/removeQuery), which also record
// what goes back to the host. Scalars (method, path, status) and `body` are
// assigned directly: the PDK compares them with what it received.

import { MapView } from "./msgpack/mapview";
import { Reader, asciiLower } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";
import { PatchMap } from "./patchmap";

// ---- helpers

/** Decodes a map<str,str> (nil values are left out). */
export function readStringMap(r: Reader): Map<string, string> {
  const m = new Map<string, string>();
  const n = r.readMapHeaderOrNil();
  for (let i = 0; i < n; i++) {
    const k = r.readString();
    const v = r.readStringOrNull();
    if (v !== null) m.set(k, v);
  }
  return m;
}

export function writeStringMap(w: Writer, m: Map<string, string>): void {
  const keys = m.keys();
  w.mapHeader(keys.length);
  for (let i = 0; i < keys.length; i++) {
    const k = unchecked(keys[i]);
    w.str(k);
    w.str(m.get(k));
  }
}

/** Case-insensitive lookup in a plain header map. */
export function lookupHeader(headers: Map<string, string>, name: string): string | null {
  const lower = asciiLower(name);
  if (headers.has(lower)) return headers.get(lower);
  const keys = headers.keys();
  for (let i = 0; i < keys.length; i++) {
    const k = unchecked(keys[i]);
    if (asciiLower(k) == lower) return headers.get(k);
  }
  return null;
}

/** A body as text (UTF-8), or null when absent. */
export function bodyText(body: Uint8Array | null): string | null {
  return body === null ? null : String.UTF8.decodeUnsafe(body.dataStart, <usize>body.length);
}

/** `s` as UTF-8 bytes. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE));
}

function sameRef<T>(a: T, b: T): bool {
  return changetype<usize>(a) == changetype<usize>(b);
}

function writeBody(w: Writer, body: Uint8Array | null): void {
  // null means "empty": the ABI has no way to remove a body.
  if (body !== null) w.bin(body); else w.binRaw(0, 0);
}

// ---- HttpRequest

export class HttpRequest {
  method: string;
  path: string;
  /**
   * Null when absent (the plugin's init asked for no request bodies). Assign a
   * new array to replace it; writing into this array is not detected.
   */
  body: Uint8Array | null;

  private hdrs: PatchMap<string>;
  private qry: PatchMap<string>;
  private origMethod: string;
  private origPath: string;
  private origBody: Uint8Array | null;

  constructor(
    method: string = "GET",
    path: string = "/",
    headers: MapView | null = null,
    query: MapView | null = null,
    body: Uint8Array | null = null,
  ) {
    this.method = this.origMethod = method;
    this.path = this.origPath = path;
    this.hdrs = new PatchMap<string>(headers, true);
    this.qry = new PatchMap<string>(query, false);
    this.body = this.origBody = body;
  }

  static decode(r: Reader): HttpRequest {
    let method = "GET";
    let path = "/";
    let headers: MapView | null = null;
    let query: MapView | null = null;
    let body: Uint8Array | null = null;
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("method")) method = r.readString();
      else if (r.keyIs("path")) path = r.readString();
      else if (r.keyIs("query")) query = MapView.read(r);
      else if (r.keyIs("headers")) headers = MapView.read(r);
      else if (r.keyIs("body")) body = r.readBinOrNull();
      else r.skip();
    }
    return new HttpRequest(method, path, headers, query, body);
  }

  /** Header value by name, case-insensitive; null if absent. */
  header(name: string): string | null {
    return this.hdrs.get(name);
  }

  /** Sets a header (name lower-cased); sent back as a patch. */
  setHeader(name: string, value: string): void {
    this.hdrs.set(name, value);
  }

  /** Removes a header (sent back as nil). */
  removeHeader(name: string): void {
    this.hdrs.delete(name);
  }

  /** All headers (lower-case names, this call's changes included). Read-only: use the setters. */
  get headers(): Map<string, string> {
    return this.hdrs.all();
  }

  /** Query parameter by name (case-sensitive), or null. */
  queryParam(name: string): string | null {
    return this.qry.get(name);
  }

  setQuery(name: string, value: string): void {
    this.qry.set(name, value);
  }

  removeQuery(name: string): void {
    this.qry.delete(name);
  }

  /** All query parameters. Read-only: use setQuery()/removeQuery(). */
  get query(): Map<string, string> {
    return this.qry.all();
  }

  /** The body decoded as UTF-8, or null. */
  bodyText(): string | null {
    return bodyText(this.body);
  }

  setBodyText(text: string): void {
    this.body = utf8(text);
  }

  /** Writes the `req` patch of TransportPreOutput; returns its field count (0: nothing changed). */
  encodePatch(w: Writer): i32 {
    const at = w.beginSmallMap();
    let n = 0;
    if (this.method != this.origMethod) { w.str("method"); w.str(this.method); n++; }
    if (this.path != this.origPath) { w.str("path"); w.str(this.path); n++; }
    if (this.hdrs.changed) { w.str("headers"); this.hdrs.encodePatch(w); n++; }
    if (this.qry.changed) { w.str("query"); this.qry.encodePatch(w); n++; }
    if (!sameRef(this.body, this.origBody)) { w.str("body"); writeBody(w, this.body); n++; }
    w.endSmallMap(at, n);
    return n;
  }

  /** The whole request (round-trip tests). */
  encodeFull(w: Writer): void {
    const b = this.body;
    w.mapHeader(b !== null ? 5 : 4);
    w.str("method"); w.str(this.method);
    w.str("path"); w.str(this.path);
    w.str("query"); this.qry.encodeAll(w);
    w.str("headers"); this.hdrs.encodeAll(w);
    if (b !== null) { w.str("body"); w.bin(b); }
  }
}

// ---- HttpResponse

export class HttpResponse {
  status: i32;
  /**
   * Null when absent. Assign a new array (or setBodyText) to replace it;
   * writing into this array is not detected.
   */
  body: Uint8Array | null;

  private hdrs: PatchMap<string>;
  private origStatus: i32;
  private origBody: Uint8Array | null;

  constructor(status: i32 = 200, headers: MapView | null = null, body: Uint8Array | null = null) {
    this.status = this.origStatus = status;
    this.hdrs = new PatchMap<string>(headers, true);
    this.body = this.origBody = body;
  }

  /** A response with a JSON body and `content-type: application/json` (for short-circuits). */
  static json(status: i32, json: string): HttpResponse {
    const r = new HttpResponse(status);
    r.setHeader("content-type", "application/json");
    r.setBodyText(json);
    return r;
  }

  /** A response with a text body and `content-type: text/plain; charset=utf-8`. */
  static text(status: i32, text: string): HttpResponse {
    const r = new HttpResponse(status);
    r.setHeader("content-type", "text/plain; charset=utf-8");
    r.setBodyText(text);
    return r;
  }

  static decode(r: Reader): HttpResponse {
    let status = 0;
    let headers: MapView | null = null;
    let body: Uint8Array | null = null;
    const n = r.readMapHeader();
    for (let i = 0; i < n; i++) {
      r.readStrRaw();
      if (r.keyIs("status")) status = <i32>r.readInt();
      else if (r.keyIs("headers")) headers = MapView.read(r);
      else if (r.keyIs("body")) body = r.readBinOrNull();
      else r.skip();
    }
    return new HttpResponse(status, headers, body);
  }

  header(name: string): string | null {
    return this.hdrs.get(name);
  }

  setHeader(name: string, value: string): void {
    this.hdrs.set(name, value);
  }

  removeHeader(name: string): void {
    this.hdrs.delete(name);
  }

  /** All headers (lower-case names, this call's changes included). Read-only: use the setters. */
  get headers(): Map<string, string> {
    return this.hdrs.all();
  }

  bodyText(): string | null {
    return bodyText(this.body);
  }

  setBodyText(text: string): void {
    this.body = utf8(text);
  }

  /** Writes the `resp` patch of TransportPostOutput; returns its field count (0: nothing changed). */
  encodePatch(w: Writer): i32 {
    const at = w.beginSmallMap();
    let n = 0;
    if (this.status != this.origStatus) { w.str("status"); w.int(this.status); n++; }
    if (this.hdrs.changed) { w.str("headers"); this.hdrs.encodePatch(w); n++; }
    if (!sameRef(this.body, this.origBody)) { w.str("body"); writeBody(w, this.body); n++; }
    w.endSmallMap(at, n);
    return n;
  }

  /** The whole response (short-circuits, round trips). */
  encodeFull(w: Writer): void {
    const b = this.body;
    w.mapHeader(b !== null ? 3 : 2);
    w.str("status"); w.int(this.status);
    w.str("headers"); this.hdrs.encodeAll(w);
    if (b !== null) { w.str("body"); w.bin(b); }
  }
}

// ---- HookError

/** A deliberate error from a transport hook: the client gets `status` (default 500) and an OpenAI-shaped error body. */
export class HookError {
  constructor(
    public message: string,
    public status: i32 = 500,
    public code: string | null = null,
  ) {}

  encode(w: Writer): void {
    const at = w.beginSmallMap();
    let n = 1;
    w.str("message"); w.str(this.message);
    if (this.status > 0) { w.str("status"); w.int(this.status); n++; }
    const c = this.code;
    if (c !== null) { w.str("code"); w.str(c); n++; }
    w.endSmallMap(at, n);
  }
}
