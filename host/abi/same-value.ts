// Equality of decoded envelope values as the ABI defines it (ABI.md §5):
// by value, not by bytes. Map key order does not matter, nor an integer's
// encoding (fixint, int64 d3, uint64 cf or an integral float64 cb all decode
// to the same number), and an absent key equals a key set to nil (`T?`).

type Obj = Record<string, unknown>;

function isMap(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * Whether two decoded MessagePack values are the same by the ABI's rules.
 *
 * @example sameValue({ a: 1, b: null }, { a: 1 }) // true
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a == null || b == null) return false; // null and undefined are handled as absent keys below
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  }
  if (isMap(a) && isMap(b)) {
    for (const k of Object.keys(a)) if (!(a[k] == null ? b[k] == null : sameValue(a[k], b[k]))) return false;
    for (const k of Object.keys(b)) if (a[k] == null && b[k] != null) return false;
    return true;
  }
  return false; // different scalars (numbers are compared by value above: 1 === 1.0 in JS)
}
