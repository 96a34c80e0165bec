import { Packr } from 'msgpackr';

// The one place that knows the wire encoding. Options, and why:
// - useRecords: false       plain MessagePack maps, readable by any language's decoder;
// - variableMapSize: true   smallest map header (fixmap), as other encoders write;
// - encodeUndefinedAsNil    an absent optional field is nil, never an extension type;
// - int64AsType: 'number'   int64 from guests arrive as JS numbers, not BigInt.
const packr = new Packr({
  useRecords: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  int64AsType: 'number',
});

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes exactly one MessagePack value; trailing bytes or truncation throw. */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
