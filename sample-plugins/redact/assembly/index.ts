// redact: replaces secrets (API-key-like strings) in what the model answers,
// streamed or not. A pattern is a literal prefix followed by at least `min`
// characters of one class, e.g. "sk-" + 20 or more alphanumerics; the match
// runs as long as the class does. (AssemblyScript has no regular expressions;
// these are matched by hand.)
//
// Streaming: a secret may be split across chunks ("...sk-abc" | "def..."), and
// consecutive chunks of one request may run on different instances in
// different worker threads. So the text that could still become a match (the
// "tail") is held back in the request context, not in a module variable, and
// sent with the next chunk, or flushed on the chunk that ends the choice
// (finish_reason set, or sandgate.stream_end).

import {
  ChunkResult, Context, InitResult, LlmError, LlmPostResult, LlmResponse, Value,
  runGetName, runInit, runPostLlm, runStreamChunk,
} from "../../../plugin-pdk/assemblyscript/assembly";

// Required: the ABI marker (the gateway refuses modules without it).
export { sandgate_abi_v1 } from "../../../plugin-pdk/assemblyscript/assembly";

// ---- character classes

enum Chars { Alnum, Word, UpperAlnum, Hex, Digit }

function charsFromName(name: string): i32 {
  if (name == "alnum") return Chars.Alnum;
  if (name == "word") return Chars.Word;
  if (name == "upper_alnum") return Chars.UpperAlnum;
  if (name == "hex") return Chars.Hex;
  if (name == "digit") return Chars.Digit;
  return -1;
}

@inline function isDigit(c: i32): bool { return c >= 48 && c <= 57; }
@inline function isUpper(c: i32): bool { return c >= 65 && c <= 90; }
@inline function isLower(c: i32): bool { return c >= 97 && c <= 122; }

function inClass(chars: i32, c: i32): bool {
  switch (chars) {
    case Chars.Alnum: return isDigit(c) || isUpper(c) || isLower(c);
    case Chars.Word: return isDigit(c) || isUpper(c) || isLower(c) || c == 95 /* _ */ || c == 45 /* - */;
    case Chars.UpperAlnum: return isDigit(c) || isUpper(c);
    case Chars.Hex: return isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
    default: return isDigit(c);
  }
}

class Pattern {
  constructor(public prefix: string, public chars: i32, public min: i32) {}
}

// Configuration: the same in every instance (each runs init with the plugin's config).
let patterns: Pattern[] = [];
let replacement = "[REDACTED]";

function defaultPatterns(): Pattern[] {
  return [
    new Pattern("sk-", Chars.Alnum, 20),       // OpenAI-style secret keys
    new Pattern("sk-proj-", Chars.Word, 20),   // OpenAI project keys (with - and _)
    new Pattern("AKIA", Chars.UpperAlnum, 16), // AWS access key ids
  ];
}

export function init(): i32 {
  return runInit(onInit);
}

function onInit(config: Value, name: string): InitResult {
  patterns = defaultPatterns();
  replacement = "[REDACTED]";
  if (!config.isMap) return headersOnlyNoDeltas();
  const r = config.getString("replacement");
  if (r !== null) replacement = r;
  const list = config.get("patterns");
  if (list !== null) {
    const items = list.asArray();
    if (items === null) return InitResult.error("config.patterns must be an array of { prefix, chars, min }");
    const parsed = new Array<Pattern>();
    for (let i = 0; i < items.length; i++) {
      const p = unchecked(items[i]);
      const prefix = p.getString("prefix");
      if (prefix === null || prefix.length == 0) return InitResult.error("config.patterns[" + i.toString() + "].prefix must be a non-empty string");
      const charsName = p.getString("chars");
      const chars = charsFromName(charsName !== null ? charsName : "alnum");
      if (chars < 0) return InitResult.error("config.patterns[" + i.toString() + "].chars must be one of alnum, word, upper_alnum, hex, digit");
      const min = <i32>p.getInt("min", 20);
      if (min < 1) return InitResult.error("config.patterns[" + i.toString() + "].min must be at least 1");
      parsed.push(new Pattern(prefix, chars, min));
    }
    patterns = parsed;
  }
  return headersOnlyNoDeltas();
}

/**
 * Only the LLM hooks and the chunk hook matter: no HTTP bodies, ever. And no
 * post_llm_hook per streamed delta: the chunk hook redacts streams (it keeps
 * the state between chunks); post_llm_hook only has work on full responses.
 */
function headersOnlyNoDeltas(): InitResult {
  return InitResult.ok().requestBody(false).responseBody(false).streamDeltas(false);
}

export function get_name(): i32 {
  return runGetName("redact");
}

// ---- the scanner

const NONE = 0;
const MATCH = 1;
const HOLD = 2;

/** What one pass over a piece of text gives: text to send, text to hold back, and a secret still running at the end. */
class Scan {
  out: string = "";
  tail: string = "";
  /** Pattern index whose secret ran to the end of the text (its rest, in the next chunk, is swallowed), or -1. */
  skip: i32 = -1;
}

// Set by probe(): where the match (or the held-back text) ends.
let probeEnd: i32 = 0;

/** Does pattern p match at i in s? MATCH (probeEnd = end of the run), HOLD (the text ends before we can tell), or NONE. */
function probe(p: Pattern, s: string, i: i32, final: bool): i32 {
  const n = s.length;
  const pre = p.prefix;
  const k = pre.length;
  for (let j = 0; j < k; j++) {
    if (i + j >= n) return final ? NONE : HOLD; // the text ends inside the prefix
    if (s.charCodeAt(i + j) != pre.charCodeAt(j)) return NONE;
  }
  let e = i + k;
  while (e < n && inClass(p.chars, s.charCodeAt(e))) e++;
  const run = e - i - k;
  if (e == n && !final && run < p.min) return HOLD; // may still grow long enough
  if (run < p.min) return NONE;
  probeEnd = e;
  return MATCH;
}

/**
 * Redacts `s`. `final`: nothing follows (flush everything). `skipFrom`: a secret
 * from the previous chunk still running (pattern index), or -1.
 */
function scan(s: string, skipFrom: i32, final: bool): Scan {
  const res = new Scan();
  const n = s.length;
  let i = 0;
  if (skipFrom >= 0 && skipFrom < patterns.length) {
    const chars = unchecked(patterns[skipFrom]).chars;
    while (i < n && inClass(chars, s.charCodeAt(i))) i++;
    if (i == n && !final) {
      res.skip = skipFrom;
      return res;
    }
  }
  const parts = new Array<string>();
  let emitted = i;
  while (i < n) {
    let best = NONE;
    let bestEnd = 0;
    let bestPattern = -1;
    for (let q = 0; q < patterns.length; q++) {
      const st = probe(unchecked(patterns[q]), s, i, final);
      if (st == HOLD) {
        best = HOLD;
        break;
      }
      if (st == MATCH && probeEnd > bestEnd) {
        best = MATCH;
        bestEnd = probeEnd;
        bestPattern = q;
      }
    }
    if (best == HOLD) {
      parts.push(s.substring(emitted, i));
      res.out = parts.join("");
      res.tail = s.substring(i);
      return res;
    }
    if (best == MATCH) {
      parts.push(s.substring(emitted, i));
      parts.push(replacement);
      if (bestEnd == n && !final) res.skip = bestPattern; // the secret may go on in the next chunk
      i = bestEnd;
      emitted = i;
      continue;
    }
    i++;
  }
  parts.push(s.substring(emitted, n));
  res.out = parts.join("");
  return res;
}

// ---- streamed chunks (http_transport_stream_chunk_hook)

function tailKey(index: i64): string { return "redact.tail." + index.toString(); }
function skipKey(index: i64): string { return "redact.skip." + index.toString(); }

export function http_transport_stream_chunk_hook(): i32 {
  return runStreamChunk(onChunk);
}

function onChunk(ctx: Context, chunk: Value): ChunkResult {
  const choices = chunk.get("choices");
  if (choices === null || !choices.isArray) return ChunkResult.pass();
  const streamEnd = ctx.streamEnd;
  let changed = false;
  let droppable = !chunk.has("usage");
  for (let c = 0; c < choices.length; c++) {
    const choice = choices.at(c)!;
    const delta = choice.get("delta");
    if (delta === null || !delta.isMap) {
      droppable = false;
      continue;
    }
    const index = choice.getInt("index", 0);
    const fr = choice.get("finish_reason");
    const final = streamEnd || (fr !== null && !fr.isNil);
    const cv = delta.get("content");
    const content = cv !== null ? cv.asString() : null;
    const tk = tailKey(index);
    const sk = skipKey(index);
    const held = ctx.getString(tk);
    const skipping = <i32>ctx.getInt(sk, -1);
    if (content === null && held === null && skipping < 0) {
      droppable = false;
      continue;
    }
    const text = held !== null ? held + (content !== null ? content : "") : (content !== null ? content : "");
    const r = scan(text, skipping, final);
    // Per-request state goes into the context: the next chunk may run anywhere.
    if (r.tail.length > 0) ctx.setString(tk, r.tail); else if (held !== null) ctx.delete(tk);
    if (r.skip >= 0) { if (r.skip != skipping) ctx.set(sk, Value.int(r.skip)); } else if (skipping >= 0) ctx.delete(sk);
    if (content === null ? r.out.length > 0 : r.out != content) {
      delta.set("content", Value.str(r.out));
      changed = true;
    }
    // A chunk that carried only text, all of it held back, need not be sent.
    if (r.out.length > 0 || final || delta.keys().length != 1) droppable = false;
  }
  if (changed && droppable && choices.length > 0) return ChunkResult.drop();
  return changed ? ChunkResult.replace(chunk) : ChunkResult.pass();
}

// ---- full responses (post_llm_hook)

export function post_llm_hook(): i32 {
  return runPostLlm(onPostLlm);
}

function onPostLlm(ctx: Context, response: LlmResponse | null, error: LlmError | null): LlmPostResult {
  if (response === null) return LlmPostResult.continue();
  for (let i = 0; i < response.choices.length; i++) {
    const message = unchecked(response.choices[i]).message;
    // Deltas (a stream) are redacted by the chunk hook, which keeps the state between chunks
    // (init opts out of deltas; a response without a message is skipped all the same).
    if (message === null) continue;
    const content = message.content;
    if (content === null) continue;
    const r = scan(content, -1, true);
    if (r.out != content) message.content = r.out; // edited in place: the PDK sends it back
  }
  return LlmPostResult.continue();
}
