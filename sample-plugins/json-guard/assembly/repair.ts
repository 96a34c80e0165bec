// The near-misses models produce when asked for JSON, undone in order, each
// followed by a check: a Markdown code fence around the JSON (```json ... ```),
// then text before and after it ("Here is the JSON: {...} Hope this helps").
// Nothing is invented: a repair only removes text around a value that already
// parses.

import { checkJson } from "./json";

const FENCE = "```";

/** The JSON inside `text`, or null when none of the repairs gives a value that checks. */
export function repairJson(text: string, needObject: bool): string | null {
  const trimmed = text.trim();
  if (checkJson(trimmed, needObject)) return trimmed;

  const fenced = insideFence(trimmed);
  if (fenced !== null && checkJson(fenced, needObject)) return fenced;

  const from = fenced !== null ? fenced : trimmed;
  const objects = between(from, "{", "}");
  if (objects !== null && checkJson(objects, needObject)) return objects;
  if (needObject) return null;
  const arrays = between(from, "[", "]");
  if (arrays !== null && checkJson(arrays, needObject)) return arrays;
  return null;
}

/** The text of the first ``` block (its language tag line skipped), trimmed; null without a fence. */
function insideFence(text: string): string | null {
  const open = text.indexOf(FENCE);
  if (open < 0) return null;
  let start = text.indexOf("\n", open + FENCE.length);
  if (start < 0) return null;
  start++;
  const close = text.indexOf(FENCE, start);
  const body = close < 0 ? text.slice(start) : text.slice(start, close);
  return body.trim();
}

/** From the first `open` to the last `close`, both included; null when there is no such span. */
function between(text: string, open: string, close: string): string | null {
  const a = text.indexOf(open);
  const b = text.lastIndexOf(close);
  if (a < 0 || b <= a) return null;
  return text.slice(a, b + 1);
}
