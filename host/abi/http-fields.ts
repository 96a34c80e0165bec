// What a plugin may put into HTTP: header names, header values and statuses.
// The rules of RFC 9110 the HTTP layer would otherwise enforce by throwing
// (a bare 500, or worse, a split or desynchronised response), checked here so
// a plugin's bad field is refused as plugin_bad_output naming the field.

/**
 * Headers that frame the client's connection. Only the gateway sets them: a
 * plugin's stale or false value would make the client read the next response
 * as part of this one's body (content-length, transfer-encoding), drop or
 * hijack the keep-alive connection (connection, keep-alive, upgrade), or
 * announce trailers the gateway never sends (te, trailer).
 */
export const HOST_OWNED_HEADERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);

/**
 * Headers of a provider's upstream request that only the gateway sets: the
 * body's framing and type, what it accepts back, and the connection. Neither
 * a provider's forward_headers (refused in the config) nor a pre_llm_hook's
 * req.headers (skipped) can set them.
 */
export const GATEWAY_UPSTREAM_HEADERS: ReadonlySet<string> = new Set(['host', 'content-type', 'accept', ...HOST_OWNED_HEADERS]);

/**
 * A final HTTP status (200-599): the only kind a plugin may set, and the only kind
 * the gateway sends. A 1xx would go out as an interim response, not as the answer.
 */
export function isFinalStatus(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 200 && v <= 599;
}

// RFC 9110 §5.6.2 token: 1*tchar.
const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 9110 §5.5 field-value characters: VCHAR, SP, HTAB and obs-text (0x80-0xFF, so Latin-1).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** An RFC 9110 token: what header names and methods are made of. */
export function isToken(s: string): boolean {
  return TOKEN.test(s);
}

const CHAR_NAMES: Record<number, string> = { 0x00: 'NUL', 0x0a: 'LF', 0x0d: 'CR', 0x7f: 'DEL' };

function codePoint(cp: number): string {
  const hex = cp.toString(16).toUpperCase().padStart(4, '0');
  return CHAR_NAMES[cp] ? `${CHAR_NAMES[cp]} (U+${hex})` : `U+${hex}`;
}

/**
 * Why a header name is not allowed, or null when it is.
 * @example headerNameProblem('x-trace') // null
 * @example headerNameProblem('bad header') // 'the name is not an RFC 9110 token: U+0020 at index 3; ...'
 */
export function headerNameProblem(name: string): string | null {
  if (TOKEN.test(name)) return null;
  if (name.length === 0) return 'the name is empty; a header name is an RFC 9110 token (letters, digits and !#$%&\'*+-.^_`|~)';
  let i = 0;
  while (TCHAR.test(name[i])) i++;
  const cp = name.codePointAt(i) as number;
  const shown = cp > 0x20 && cp !== 0x7f ? `"${String.fromCodePoint(cp)}" (U+${cp.toString(16).toUpperCase().padStart(4, '0')})` : codePoint(cp);
  return `the name is not an RFC 9110 token: ${shown} at index ${i}; use only letters, digits and !#$%&'*+-.^_\`|~`;
}

/**
 * Why a header value is not allowed, or null when it is: no control characters
 * but HTAB (CR and LF would split the response), and Latin-1 only (HTTP has no
 * other encoding for field values).
 * @example headerValueProblem('a\r\nb') // 'the value contains CR (U+000D) at index 1; ...'
 */
export function headerValueProblem(value: string): string | null {
  if (FIELD_VALUE.test(value)) return null;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff) {
      return `the value contains ${codePoint(value.codePointAt(i) as number)} at index ${i}, beyond Latin-1; header values must be Latin-1 (code points up to U+00FF): encode other text (e.g. percent-encoding)`;
    }
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) {
      return `the value contains ${codePoint(c)} at index ${i}; header values may not hold CR, LF, NUL or other control characters (HTAB is allowed)`;
    }
  }
  return null; // unreachable: FIELD_VALUE refused some character
}

/** Why a plugin may not set this header (host-owned), or null. Names compare case-insensitively. */
export function hostOwnedProblem(name: string): string | null {
  const lower = name.toLowerCase();
  return HOST_OWNED_HEADERS.has(lower) ? `${lower} is set by the gateway, never by a plugin (it frames the client's connection); remove it` : null;
}
