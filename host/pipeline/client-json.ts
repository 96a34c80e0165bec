import { jsonPath } from '../config/load.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';

// The client's JSON body, parsed once at the edge and bounded in depth. Every
// value from it is re-encoded into plugin envelopes, and deep nesting costs
// recursion in every encoder and decoder on the way (the host's MessagePack
// codec, structuredClone, a plugin kit's decoder): bounding it here means a
// hostile body is the client's 400, never a plugin failure.

/** One open container of the walk: its children still to visit. */
interface Frame {
  key: PropertyKey;
  children: unknown[];
  keys: readonly PropertyKey[];
  next: number;
}

/**
 * Where a parsed JSON value nests deeper than `limit` (a scalar is depth 0,
 * `{}` depth 1, `{"a":[1]}` depth 2): the path of the first container beyond
 * it, or null. Iterative, so any depth costs no call stack; visits each
 * container once and stops at the first too deep.
 *
 * @example tooDeepAt({ a: [[1]] }, 2) // ['a', 0]
 */
export function tooDeepAt(value: unknown, limit: number): PropertyKey[] | null {
  const stack: Frame[] = [];
  const open = (key: PropertyKey, v: object): boolean => {
    if (stack.length >= limit) return false;
    const keys = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
    const children = Array.isArray(v) ? v : Object.values(v);
    stack.push({ key, children, keys, next: 0 });
    return true;
  };
  const pathTo = (key: PropertyKey) => [...stack.slice(1).map((f) => f.key), key];
  if (value === null || typeof value !== 'object') return null;
  if (!open('', value)) return [];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next === top.children.length) {
      stack.pop();
      continue;
    }
    const i = top.next++;
    const child = top.children[i];
    if (child !== null && typeof child === 'object' && !open(top.keys[i], child)) return pathTo(top.keys[i]);
  }
  return null;
}

/** A path of at most a few segments, for a message that must stay short. */
function shortPath(path: PropertyKey[]): string {
  const SHOWN = 6;
  return path.length > SHOWN ? `${jsonPath(path.slice(0, SHOWN))}…` : jsonPath(path);
}

/**
 * Parses a client's JSON body. Not JSON is 400 invalid_json; nesting deeper
 * than `maxDepth` is 400 request_too_deep, naming the limit and its setting.
 */
export function parseClientJson(body: Uint8Array | undefined, maxDepth: number): unknown {
  let value: unknown;
  try {
    // V8's JSON.parse is iterative: any depth parses; the walk below bounds it.
    value = JSON.parse(Buffer.from(body ?? new Uint8Array(0)).toString('utf8'));
  } catch (e) {
    throw new GatewayError(ErrorCode.invalidJson, `request body is not valid JSON: ${(e as Error).message}`);
  }
  const at = tooDeepAt(value, maxDepth);
  if (at) {
    throw new GatewayError(
      ErrorCode.requestTooDeep,
      `request body nests deeper than the limit of ${maxDepth} levels (limits.max_json_depth), at ${shortPath(at)}; flatten it or raise the limit`,
    );
  }
  return value;
}
