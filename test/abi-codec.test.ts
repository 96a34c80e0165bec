import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { decode, encode } from '../host/abi/codec.js';
import { ROOT } from './helpers/paths.js';

// The conformance vectors every PDK's tests also decode and re-encode
// (plugin-pdk/conformance/vectors.json): the host codec must agree with them byte for byte.

interface Vector {
  name: string;
  hex: string;
  value: unknown;
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
    it(`${v.name}: encodes to the same bytes`, () => {
      const bytes = encode(revive(v.value));
      if (hasWideInts(v.value)) {
        // ABI.md §6: the host writes integers beyond 32 bits as float64; they must still read back exactly.
        assert.deepEqual(plain(decode(bytes)), revive(v.value));
        assert.ok(Buffer.from(bytes).includes(0xcb), 'wide integers travel as float64');
      } else {
        assert.equal(Buffer.from(bytes).toString('hex'), v.hex);
      }
    });
  }
});
