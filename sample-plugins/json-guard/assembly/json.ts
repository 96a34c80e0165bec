// A JSON syntax checker (RFC 8259): AssemblyScript has no JSON.parse, and the
// plugin only needs to know whether the text parses, and where it stops
// parsing when it does not. Works on UTF-16 code units; anything outside the
// grammar's ASCII tokens only appears inside strings, where it is allowed.

/** Why the last checkJson() failed, e.g. `expected ',' or '}' at offset 8`. */
export let jsonProblem = "";

// Deeper than this is refused rather than risking the guest's stack.
const MAX_DEPTH = 200;

let src = "";
let pos = 0;

/** Does `text` hold exactly one JSON value (an object when `needObject`), with only whitespace around it? */
export function checkJson(text: string, needObject: bool): bool {
  src = text;
  pos = 0;
  jsonProblem = "";
  skipSpace();
  if (pos >= src.length) return fail("the content is empty");
  if (needObject && peek() != 0x7b /* { */) return fail("expected a JSON object ('{') at offset " + pos.toString());
  if (!value(0)) return false;
  skipSpace();
  if (pos < src.length) return fail("unexpected text after the JSON value at offset " + pos.toString());
  return true;
}

function fail(problem: string): bool {
  jsonProblem = problem;
  return false;
}

function expected(what: string): bool {
  return fail(pos >= src.length ? "the text ends where " + what + " was expected" : "expected " + what + " at offset " + pos.toString());
}

@inline function peek(): i32 { return pos < src.length ? src.charCodeAt(pos) : -1; }

function skipSpace(): void {
  while (pos < src.length) {
    const c = src.charCodeAt(pos);
    if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) return;
    pos++;
  }
}

function value(depth: i32): bool {
  if (depth > MAX_DEPTH) return fail("nested deeper than " + MAX_DEPTH.toString() + " levels");
  const c = peek();
  if (c == 0x7b) return parseObject(depth + 1);
  if (c == 0x5b) return parseArray(depth + 1);
  if (c == 0x22) return parseString();
  if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber();
  if (literal("true") || literal("false") || literal("null")) return true;
  return expected("a JSON value");
}

function literal(word: string): bool {
  if (src.length - pos < word.length) return false;
  for (let i = 0; i < word.length; i++) if (src.charCodeAt(pos + i) != word.charCodeAt(i)) return false;
  pos += word.length;
  return true;
}

function parseObject(depth: i32): bool {
  pos++; // {
  skipSpace();
  if (peek() == 0x7d) { pos++; return true; }
  while (true) {
    if (peek() != 0x22) return expected("a key in double quotes");
    if (!parseString()) return false;
    skipSpace();
    if (peek() != 0x3a) return expected("':'");
    pos++;
    skipSpace();
    if (!value(depth)) return false;
    skipSpace();
    const c = peek();
    if (c == 0x7d) { pos++; return true; }
    if (c != 0x2c) return expected("',' or '}'");
    pos++;
    skipSpace();
  }
  return false;
}

function parseArray(depth: i32): bool {
  pos++; // [
  skipSpace();
  if (peek() == 0x5d) { pos++; return true; }
  while (true) {
    if (!value(depth)) return false;
    skipSpace();
    const c = peek();
    if (c == 0x5d) { pos++; return true; }
    if (c != 0x2c) return expected("',' or ']'");
    pos++;
    skipSpace();
  }
  return false;
}

@inline function isHex(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function parseString(): bool {
  pos++; // "
  while (pos < src.length) {
    const c = src.charCodeAt(pos);
    if (c == 0x22) { pos++; return true; }
    if (c < 0x20) return fail("a control character inside a string at offset " + pos.toString());
    if (c == 0x5c) {
      pos++;
      const e = peek();
      if (e == 0x75) { // \uXXXX
        for (let i = 1; i <= 4; i++) {
          if (pos + i >= src.length || !isHex(src.charCodeAt(pos + i))) return fail("a bad \\u escape at offset " + (pos - 1).toString());
        }
        pos += 5;
        continue;
      }
      // " \ / b f n r t
      if (e != 0x22 && e != 0x5c && e != 0x2f && e != 0x62 && e != 0x66 && e != 0x6e && e != 0x72 && e != 0x74) {
        return fail("a bad escape at offset " + (pos - 1).toString());
      }
    }
    pos++;
  }
  return fail("a string is not closed");
}

function digits(): i32 {
  const start = pos;
  while (pos < src.length) {
    const c = src.charCodeAt(pos);
    if (c < 0x30 || c > 0x39) break;
    pos++;
  }
  return pos - start;
}

function parseNumber(): bool {
  const start = pos;
  if (peek() == 0x2d) pos++;
  if (peek() == 0x30) {
    pos++;
    const c = peek();
    if (c >= 0x30 && c <= 0x39) return fail("a number with a leading zero at offset " + start.toString());
  } else if (digits() == 0) {
    return expected("a digit");
  }
  if (peek() == 0x2e) {
    pos++;
    if (digits() == 0) return expected("a digit after '.'");
  }
  const e = peek();
  if (e == 0x65 || e == 0x45) {
    pos++;
    const s = peek();
    if (s == 0x2b || s == 0x2d) pos++;
    if (digits() == 0) return expected("a digit in the exponent");
  }
  return true;
}
