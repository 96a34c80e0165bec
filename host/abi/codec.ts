import { Packr } from 'msgpackr';

// The one place that knows the wire encoding. Options, and why:
// - useRecords: false       plain MessagePack maps, readable by any language's decoder;
// - variableMapSize: true   smallest map header (fixmap), as other encoders write;
// - encodeUndefinedAsNil    an absent optional field is nil, never an extension type;
// - int64AsType: 'number'   int64 d3 and uint64 cf from guests arrive as JS numbers, not BigInt, so an
//                            integer reads the same in every encoding (and float64 cb with an integral
//                            value too: ABI.md §5). Exact up to 2^53, as any JSON number the gateway handles.
const packr = new Packr({
  useRecords: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  int64AsType: 'number',
});

/**
 * The deepest nesting decode() accepts when its caller gives no limit. msgpackr
 * decodes (and encodes) by recursion and overflows the stack at a few thousand
 * levels; this stays well below that.
 */
export const DECODE_MAX_DEPTH = 1000;

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * A value already encoded. A phase's plugins mostly see the same request or
 * response, one after another: the pipeline encodes it once and splices the
 * bytes into each plugin's envelope (encodeEnvelope) until a patch changes it.
 */
export class Encoded {
  constructor(readonly bytes: Uint8Array) {}
}

/** @example const req = encoded(llmRequest); // reuse in every envelope until the request changes */
export function encoded(value: unknown): Encoded {
  return new Encoded(encode(value));
}

/**
 * Encodes a value once for as long as the same object is asked for again: the
 * pipeline replaces what a plugin changed (a new response, a new chunk) rather
 * than changing it in place, so each following plugin of the phase reuses the bytes.
 *
 * @example const last = new LastEncoded(); encodeEnvelope({ ctx, chunk: last.of(chunk) });
 */
export class LastEncoded {
  private value: unknown;
  private bytes: Encoded | null = null;

  of(value: unknown): Encoded {
    if (this.bytes === null || this.value !== value) {
      this.value = value;
      this.bytes = encoded(value);
    }
    return this.bytes;
  }
}

const FIXMAP = 0x80;
const keyBytes = new Map<string, Uint8Array>();

/**
 * An envelope as encode() writes it (a map, keys in the object's order),
 * with the values given as Encoded spliced in rather than encoded again.
 * At most 15 keys (a fixmap), as every envelope has.
 *
 * @example encodeEnvelope({ ctx, req: encoded(req) }).bytes // the same bytes as encode({ ctx, req })
 */
export function encodeEnvelope(fields: Record<string, unknown>): Encoded {
  const keys = Object.keys(fields);
  if (keys.length > 15) throw new Error('an envelope has at most 15 keys');
  const parts: Uint8Array[] = [Uint8Array.of(FIXMAP | keys.length)];
  let size = 1;
  for (const key of keys) {
    let k = keyBytes.get(key);
    if (!k) {
      k = encode(key).slice();
      keyBytes.set(key, k);
    }
    const v = fields[key];
    const value = v instanceof Encoded ? v.bytes : encode(v);
    parts.push(k, value);
    size += k.length + value.length;
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return new Encoded(out);
}

/** Nesting deeper than a decoder accepts: checked before decoding, so it never costs the decoder's stack. */
export class TooDeep extends Error {
  constructor(readonly limit: number) {
    super(`nests deeper than ${limit} levels`);
    this.name = 'TooDeep';
  }
}

/**
 * Decodes exactly one MessagePack value; trailing bytes or truncation throw,
 * and so does nesting deeper than `maxDepth` (TooDeep).
 */
export function decode(bytes: Uint8Array, maxDepth = DECODE_MAX_DEPTH): unknown {
  if (nestsDeeper(bytes, maxDepth)) throw new TooDeep(maxDepth);
  return packr.unpack(bytes);
}

const u8 = (bytes: Uint8Array, i: number): number => bytes[i] ?? 0;
const u16 = (bytes: Uint8Array, i: number): number => (u8(bytes, i) << 8) | u8(bytes, i + 1);
const u32 = (bytes: Uint8Array, i: number): number => u8(bytes, i) * 0x1000000 + ((u8(bytes, i + 1) << 16) | (u8(bytes, i + 2) << 8) | u8(bytes, i + 3));

/** For a non-container type byte from 0xc4 up: where the next value starts (past lengths and payloads); -1 for 0xc1 (never used). */
function skipScalar(b: number, bytes: Uint8Array, at: number): number {
  switch (b) {
    case 0xc4: case 0xd9: return at + 2 + u8(bytes, at + 1);
    case 0xc5: case 0xda: return at + 3 + u16(bytes, at + 1);
    case 0xc6: case 0xdb: return at + 5 + u32(bytes, at + 1);
    case 0xc7: return at + 3 + u8(bytes, at + 1);
    case 0xc8: return at + 4 + u16(bytes, at + 1);
    case 0xc9: return at + 6 + u32(bytes, at + 1);
    case 0xca: case 0xce: case 0xd2: return at + 5;
    case 0xcb: case 0xcf: case 0xd3: return at + 9;
    case 0xcc: case 0xd0: return at + 2;
    case 0xcd: case 0xd1: return at + 3;
    case 0xd4: return at + 3;
    case 0xd5: return at + 4;
    case 0xd6: return at + 6;
    case 0xd7: return at + 10;
    case 0xd8: return at + 18;
    default: return -1;
  }
}

/**
 * Whether MessagePack bytes nest maps and arrays deeper than `limit` (a scalar
 * is depth 0, `[]` depth 1, `[[1]]` depth 2). One pass over the headers, with
 * an explicit stack of "elements left" per open container, so any depth costs
 * no call stack, and str/bin payloads are skipped by their length. Malformed
 * bytes are left for the decoder to report.
 *
 * @example nestsDeeper(encode([[1]]), 1) // true
 */
export function nestsDeeper(bytes: Uint8Array, limit: number): boolean {
  const open: number[] = []; // per open container: elements still to read
  let at = 0;
  while (at < bytes.length) {
    const b = bytes[at];
    let container = false;
    let children = 0;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      at += 1;
    } else if (b <= 0x9f) {
      container = true;
      children = b <= 0x8f ? 2 * (b & 0x0f) : b & 0x0f;
      at += 1;
    } else if (b <= 0xbf) {
      at += 1 + (b & 0x1f);
    } else if (b >= 0xdc) {
      // array16, array32, map16, map32
      container = true;
      const wide = b === 0xdd || b === 0xdf;
      const n = wide ? u32(bytes, at + 1) : u16(bytes, at + 1);
      children = b >= 0xde ? 2 * n : n;
      at += wide ? 5 : 3;
    } else {
      at = skipScalar(b, bytes, at);
      if (at < 0) return false;
    }
    if (container && open.length >= limit) return true;
    if (children > 0) {
      open.push(children);
      continue;
    }
    // A whole value was read: it completes one element of the container it is in, and maybe that container too.
    for (;;) {
      if (open.length === 0) return false; // the top-level value is complete (trailing bytes are the decoder's to refuse)
      if (--open[open.length - 1] > 0) break;
      open.pop();
    }
  }
  return false;
}

// ---- byte offsets, for error messages only (the success path never walks the bytes twice)

/**
 * Where the value starting at `at` ends: the offset just past it. Past
 * `bytes.length` when the data ends inside it (truncated, or a map or array
 * count larger than its entries); -1 at the byte 0xc1, which MessagePack
 * never uses (the offset of that byte is then `badByteAt`).
 */
export function skipValue(bytes: Uint8Array, at: number): { end: number; badByteAt?: number } {
  let left = 1; // values still to skip, containers' elements included
  while (left > 0) {
    if (at >= bytes.length) return { end: bytes.length + 1 };
    const b = bytes[at];
    left--;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) at += 1;
    else if (b <= 0x8f) (left += 2 * (b & 0x0f)), (at += 1);
    else if (b <= 0x9f) (left += b & 0x0f), (at += 1);
    else if (b <= 0xbf) at += 1 + (b & 0x1f);
    else if (b >= 0xdc) {
      const wide = b === 0xdd || b === 0xdf;
      const n = wide ? u32(bytes, at + 1) : u16(bytes, at + 1);
      left += b >= 0xde ? 2 * n : n;
      at += wide ? 5 : 3;
    } else {
      const next = skipScalar(b, bytes, at);
      if (next < 0) return { end: -1, badByteAt: at };
      at = next;
    }
  }
  return { end: Math.min(at, bytes.length + 1) };
}

/** The string at `at` if it is one (a map key), and where it ends. */
function readStr(bytes: Uint8Array, at: number): { text: string; end: number } | undefined {
  const b = bytes[at];
  let start: number;
  let len: number;
  if (b >= 0xa0 && b <= 0xbf) (start = at + 1), (len = b & 0x1f);
  else if (b === 0xd9) (start = at + 2), (len = u8(bytes, at + 1));
  else if (b === 0xda) (start = at + 3), (len = u16(bytes, at + 1));
  else if (b === 0xdb) (start = at + 5), (len = u32(bytes, at + 1));
  else return undefined;
  if (start + len > bytes.length) return undefined;
  return { text: Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('utf8'), end: start + len };
}

/** A container header at `at`: whether a map, its entry count, where its first entry starts. */
function container(bytes: Uint8Array, at: number): { map: boolean; count: number; first: number } | undefined {
  const b = bytes[at];
  if (b >= 0x80 && b <= 0x8f) return { map: true, count: b & 0x0f, first: at + 1 };
  if (b >= 0x90 && b <= 0x9f) return { map: false, count: b & 0x0f, first: at + 1 };
  if (b === 0xdc || b === 0xde) return { map: b === 0xde, count: u16(bytes, at + 1), first: at + 3 };
  if (b === 0xdd || b === 0xdf) return { map: b === 0xdf, count: u32(bytes, at + 1), first: at + 5 };
  return undefined;
}

/**
 * The byte offset of the value at `path` (map keys and array indexes from the
 * top-level value) in well-formed MessagePack bytes; undefined if there is none.
 *
 * @example offsetOf(encode({ a: [1, 'x'] }), ['a', 1]) // 5
 */
export function offsetOf(bytes: Uint8Array, path: readonly (string | number)[]): number | undefined {
  let at = 0;
  for (const step of path) {
    const c = container(bytes, at);
    if (!c) return undefined;
    at = c.first;
    let found = false;
    for (let i = 0; i < c.count && !found; i++) {
      if (c.map) {
        const key = readStr(bytes, at);
        const valueAt = key ? key.end : skipValue(bytes, at).end;
        if (valueAt < 0 || valueAt > bytes.length) return undefined;
        if (key && key.text === step) found = true;
        at = valueAt;
      } else if (i === step) found = true;
      if (!found) {
        at = skipValue(bytes, at).end;
        if (at < 0 || at > bytes.length) return undefined;
      }
    }
    if (!found) return undefined;
  }
  return at;
}

/**
 * Why bytes that msgpackr refused are not one MessagePack value, with the
 * byte offset: what a plugin author needs to find the fault in a dump.
 */
export function malformedReason(bytes: Uint8Array, decoderMessage: string): string {
  const { end, badByteAt } = skipValue(bytes, 0);
  if (badByteAt !== undefined) return `byte ${badByteAt} is 0xc1, which MessagePack never uses`;
  if (end > bytes.length) {
    return `the data ends at byte ${bytes.length} inside a value (a map or array announces more entries than follow, or a length runs past the end)`;
  }
  if (end < bytes.length) {
    const first = bytes[0];
    const json = first === 0x7b || first === 0x5b || first === 0x22 ? ` (it starts with "${String.fromCharCode(first)}": JSON? hooks answer MessagePack, ABI.md §5)` : '';
    return `one value ends at byte ${end} but ${bytes.length - end} more byte(s) follow${json}`;
  }
  return decoderMessage;
}
