// Test support (kept out of test/: node --test runs every file under a test/ dir).
// Loads a Sandgate plugin the way the gateway does (foreground Extism plugin
// with the `sandgate:host/v1` fast path) for the PDK's tests. Not a test file.

import { readFileSync } from 'node:fs';
import createPlugin from '@extism/extism';
import { Packr } from 'msgpackr';

export const packr = new Packr({ useRecords: false, variableMapSize: true, encodeUndefinedAsNil: true, int64AsType: 'number' });
export const pack = (v) => packr.pack(v);
export const unpack = (b) => (b === null || b.length === 0 ? null : packr.unpack(b));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * @returns {Promise<{ call(name: string, input?: Uint8Array): Promise<{output: Uint8Array|null, logs: [number,string][]}>,
 *   instance: WebAssembly.Instance, plugin: any, close(): Promise<void> }>}
 */
export async function loadPlugin(wasmFile) {
  const bytes = readFileSync(wasmFile);
  let memory = null;
  const plugin = await createPlugin({ wasm: [{ data: bytes }] }, {
    useWasi: false,
    functions: {
      'sandgate:host/v1': {
        input_length: (cc) => cc.hostContext().input.length,
        input_read: (cc, dst) => {
          const { input } = cc.hostContext();
          new Uint8Array(memory.buffer, dst, input.length).set(input);
        },
        output_write: (cc, src, len) => {
          // Copy: guest memory is reused by the next call.
          cc.hostContext().output = new Uint8Array(memory.buffer.slice(src, src + len));
        },
        log: (cc, level, src, len) => {
          // fatal decoder: a PDK that logs invalid UTF-8 fails the test.
          cc.hostContext().logs.push([level, utf8.decode(new Uint8Array(memory.buffer, src, len))]);
        },
      },
    },
  });
  const instance = await plugin.getInstance();
  memory = instance.exports.memory;
  return {
    plugin,
    instance,
    memory,
    async call(name, input = new Uint8Array(0)) {
      const hc = { input, output: null, logs: [] };
      try {
        await plugin.call(name, new Uint8Array(0), hc);
      } catch (e) {
        e.logs = hc.logs; // what the plugin said before it failed (an abort logs its message)
        throw e;
      }
      return hc;
    },
    close: () => plugin.close(),
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
