import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decode, encode, encoded, encodeEnvelope, LastEncoded, nestsDeeper, TooDeep } from '../host/abi/codec.js';
import { tooDeepAt } from '../host/pipeline/client-json.js';
import { ROOT } from './helpers/paths.js';

// The conformance vectors every PDK's tests also decode and re-encode
// (plugin-pdk/conformance/vectors.json): the host codec must agree with them byte for byte.

interface Vector {
  name: string;
  hex: string;
  value: unknown;
  /** The vector whose bytes a re-encoder writes: `hex` is a legal wider encoding of the same value. */
  canonical?: string;
}

const vectors = JSON.parse(readFileSync(path.join(ROOT, 'plugin-pdk/conformance/vectors.json'), 'utf8')) as Vector[];

/** JSON cannot hold binary: vectors write it as {"$bin": "<hex>"}. */
function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$bin === 'string' && Object.keys(o).length === 1) return new Uint8Array(Buffer.from(o.$bin, 'hex'));
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revive(x)]));
  }
  return v;
}

/** Decoded binary arrives as a Buffer; compare it as plain bytes. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Whether a value holds an integer outside the 32-bit range (which the host encodes as float64). */
function hasWideInts(v: unknown): boolean {
  if (typeof v === 'number') return Number.isInteger(v) && (v > 0xffffffff || v < -0x80000000);
  if (Array.isArray(v)) return v.some(hasWideInts);
  if (v && typeof v === 'object') return Object.values(v).some(hasWideInts);
  return false;
}

describe('host codec against the conformance vectors', () => {
  assert.ok(vectors.length >= 10, 'the vectors file is there and not empty');
  for (const v of vectors) {
    it(`${v.name}: decodes to the expected value`, () => {
      assert.deepEqual(plain(decode(Buffer.from(v.hex, 'hex'))), revive(v.value));
    });
    it(`${v.name}: encodes to the same bytes${v.canonical ? ` as ${v.canonical}` : ''}`, () => {
      const bytes = encode(revive(v.value));
      const expected = v.canonical ? vectors.find((c) => c.name === v.canonical)!.hex : v.hex;
      if (hasWideInts(v.value)) {
        // ABI.md §6: the host writes integers beyond 32 bits as float64; they must still read back exactly.
        assert.deepEqual(plain(decode(bytes)), revive(v.value));
        assert.ok(Buffer.from(bytes).includes(0xcb), 'wide integers travel as float64');
      } else {
        assert.equal(Buffer.from(bytes).toString('hex'), expected);
      }
    });
  }

  it('has vectors that write integers as uint64 cf, int64 d3 and float64 cb, each decoding to the canonical value', () => {
    for (const [label, type] of [['uint64', 0xcf], ['int64', 0xd3], ['float64', 0xcb]] as const) {
      const v = vectors.find((x) => x.name === `llm-post-input-response-${label}`);
      assert.ok(v?.canonical, `vector llm-post-input-response-${label} with a canonical vector`);
      const canonical = vectors.find((x) => x.name === v.canonical)!;
      assert.ok(Buffer.from(v.hex, 'hex').includes(type), `${v.name} holds 0x${type.toString(16)}`);
      assert.notEqual(v.hex, canonical.hex);
      assert.deepEqual(decode(Buffer.from(v.hex, 'hex')), decode(Buffer.from(canonical.hex, 'hex')));
    }
  });
});

/** Nesting depth by recursion (fine for these small samples): a scalar is 0, a container 1 + its deepest child. */
function depthOf(v: unknown): number {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return 0;
  return 1 + Math.max(0, ...Object.values(v).map(depthOf));
}

// Every MessagePack type the host may meet, at several depths, in containers of every header size.
const NESTING_SAMPLES: unknown[] = [
  1, -5, 300, -200, 70_000, -40_000, 2 ** 40, 1.5, true, null, 'x', 'y'.repeat(300), 'z'.repeat(70_000),
  new Uint8Array(10), new Uint8Array(300), new Uint8Array(70_000),
  [], {}, [[1]], [[], [[]], {}], { a: {}, b: [[[[]]]] }, [1, [2, [3, [4]]], 5],
  { a: [1, { b: [] }], c: 'x'.repeat(300), d: new Uint8Array(70_000), e: [2 ** 40, -1.25] },
  { m: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, [i, { x: [i] }]])) },
  Array.from({ length: 70_000 }, (_, i) => (i % 3 ? [i] : 'abc')),
];

describe('nesting bounds (limits.max_json_depth)', () => {
  it('nestsDeeper agrees with the depth of the encoded value, for every limit around it', () => {
    for (const v of NESTING_SAMPLES) {
      const bytes = encode(v);
      const depth = depthOf(v);
      for (let limit = 0; limit <= depth + 1; limit++) assert.equal(nestsDeeper(bytes, limit), depth > limit, `depth ${depth}, limit ${limit}`);
    }
  });

  it('tooDeepAt agrees with the depth of a parsed JSON value and names where it goes too deep', () => {
    for (const v of NESTING_SAMPLES.filter((x) => !(x instanceof Uint8Array))) {
      const depth = depthOf(v);
      for (let limit = 0; limit <= depth + 1; limit++) assert.equal(tooDeepAt(v, limit) !== null, depth > limit, `depth ${depth}, limit ${limit}`);
    }
    assert.deepEqual(tooDeepAt({ a: [{ b: [[1]] }] }, 3), ['a', 0, 'b']);
  });

  it('decode refuses nesting past its bound before decoding: 100,000 levels cost no stack', () => {
    const deep = Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]);
    assert.throws(() => decode(deep), TooDeep);
    assert.throws(() => decode(deep, 64), (e: unknown) => e instanceof TooDeep && e.limit === 64);
    const within = Buffer.concat([Buffer.alloc(64, 0x91), Buffer.from([0xc0])]);
    assert.equal(depthOf(decode(within, 64)), 64);
  });

  it('tooDeepAt walks a million levels without a stack', () => {
    const parsed: unknown = JSON.parse('['.repeat(1_000_000) + ']'.repeat(1_000_000));
    assert.equal(tooDeepAt(parsed, 64)?.length, 64);
  });
});

describe('an envelope spliced from encoded parts', () => {
  it('is byte for byte what encoding the whole envelope gives', () => {
    const value = fc.oneof(fc.jsonValue(), fc.uint8Array({ maxLength: 8 }), fc.constant(undefined));
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 12 }), value, { maxKeys: 15 }), fc.array(fc.boolean(), { maxLength: 15 }), (fields, spliced) => {
        // Some values pre-encoded, others left for encodeEnvelope to encode.
        const parts = Object.fromEntries(Object.entries(fields).map(([k, v], i) => [k, spliced[i] ? encoded(v) : v]));
        assert.deepEqual(Buffer.from(encodeEnvelope(parts).bytes), Buffer.from(encode(fields)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('LastEncoded', () => {
  it('encodes again only when asked for another object', () => {
    const last = new LastEncoded();
    const a = { choices: [{ delta: { content: 'a' } }] };
    const first = last.of(a);
    assert.equal(last.of(a), first, 'the same object: the same bytes, not encoded again');
    const b = { choices: [{ delta: { content: 'b' } }] };
    assert.deepEqual(Buffer.from(last.of(b).bytes), Buffer.from(encode(b)));
    assert.deepEqual(Buffer.from(last.of(a).bytes), Buffer.from(encode(a)), 'back to the first object: its own bytes');
  });
});
