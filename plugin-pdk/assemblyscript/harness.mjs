// Test support (kept out of test/: node --test runs every file under a test/ dir).
// Loads a Sandgate plugin the way the gateway does, from the gateway's own
// build (run `npm run build` first): the same load path (compilePlugin: ABI
// marker check, sandboxed module, memory cap), the same guest wrapper
// (sandbox/guest.ts) and the same `sandgate:host/v1` host functions
// (sandbox/host-functions.ts), and the gateway's codec. What the kit's tests
// show is therefore what the gateway does, minus the worker thread. Not a test file.

import { readFileSync } from 'node:fs';
import { encode, decode } from '../../dist/host/abi/codec.js';
import { DEFAULTS } from '../../dist/host/config/schema.js';
import { compilePlugin } from '../../dist/host/runtime/compile.js';
import { Guest } from '../../dist/host/runtime/sandbox/guest.js';
import { sandgateHostFunctions } from '../../dist/host/runtime/sandbox/host-functions.js';

export const pack = (v) => encode(v);
export const unpack = (b) => (b === null || b.length === 0 ? null : decode(b));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * @param {string} wasmFile
 * @param {{ memoryLimitMb?: number, rewrite?: boolean }} [opts] memory_limit_mb; `rewrite: false` loads the
 *   module as built, without the gateway's load path (only to compare what that path changes)
 * @returns {Promise<{ call(name: string, input?: Uint8Array): Promise<{output: Uint8Array|null, logs: [number,string][]}>,
 *   hooks: ReadonlySet<string>, memory: WebAssembly.Memory, growRefused: WebAssembly.Global | null, close(): Promise<void> }>}
 *   A failed call rejects with an error whose `logs` holds what the plugin logged before it failed.
 */
export async function loadPlugin(wasmFile, { memoryLimitMb = DEFAULTS.memoryLimitMb, rewrite = true } = {}) {
  const compiled = rewrite
    ? await compilePlugin('pdk-test', wasmFile, memoryLimitMb)
    : { module: await WebAssembly.compile(readFileSync(wasmFile)), hasInitialize: false, hooks: new Set() };
  /** The call in progress: its input, output and log lines. */
  let hc = { input: new Uint8Array(0), output: null, logs: [] };
  const guest = await Guest.create({
    module: compiled.module,
    hasInitialize: compiled.hasInitialize,
    maxVarBytes: DEFAULTS.maxVarBytes,
    kernelBytesPerCall: memoryLimitMb << 20,
    hostFunctions: (memory) => sandgateHostFunctions(memory, {
      input: () => hc.input,
      maxOutputBytes: DEFAULTS.maxOutputBytes,
      // Copy: guest memory is reused by the next call.
      output: (bytes) => void (hc.output = bytes.slice()),
      // Fatal decoder: a PDK that logs invalid UTF-8 fails the test.
      log: (level, bytes) => void hc.logs.push([level, utf8.decode(bytes)]),
    }),
    write: () => {},
    logger: console,
  });
  return {
    hooks: compiled.hooks,
    memory: guest.requireMemory(),
    growRefused: guest.growRefused,
    async call(name, input = new Uint8Array(0)) {
      hc = { input, output: null, logs: [] };
      const current = hc;
      try {
        await guest.call(name);
      } catch (e) {
        e.logs = current.logs; // what the plugin said before it failed (an abort logs its message)
        throw e;
      }
      return current;
    },
    close: () => guest.close(),
  };
}

/** JSON form used by vectors.json: bin as {"$bin": hex}. */
export function toJson(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Uint8Array) return { $bin: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  return v;
}
