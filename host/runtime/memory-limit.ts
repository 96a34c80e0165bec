import { ErrorCode, GatewayError } from '../errors/codes.js';
import { concat, leb, Reader } from './module/wasm-binary.js';

// Caps a module's linear memory by rewriting the limits of its memories in
// the binary before compiling. Extism's `memory.maxPages` only bounds its own
// JS-side blocks (EXTISM-NOTES.md); a declared maximum makes `memory.grow`
// return -1 past the cap, which the guest turns into a trap we can classify.

const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;

/** Re-encodes one memory's limits at r.pos with the cap applied; returns the new bytes. */
function capLimits(r: Reader, maxPages: number, what: string): number[] {
  const flags = r.byte();
  if (flags & 0x04) throw new Error(`${what} is a 64-bit memory, which Sandgate does not support`);
  const min = r.u32();
  const max = flags & 0x01 ? r.u32() : undefined;
  if (min > maxPages) {
    throw new Error(`${what} needs ${min} pages (${(min / 16).toFixed(1)} MiB) at start, over the limit of ${maxPages} pages: raise memory_limit_mb`);
  }
  const newMax = max === undefined ? maxPages : Math.min(max, maxPages);
  return [flags | 0x01, ...leb(min), ...leb(newMax)];
}

/** Returns a copy of the module with every memory's maximum set to at most maxPages. */
export function limitMemory(wasm: Uint8Array, maxPages: number, plugin: string): Uint8Array<ArrayBuffer> {
  try {
    const r = new Reader(wasm, 8);
    const out: ArrayLike<number>[] = [wasm.subarray(0, 8)];
    while (r.pos < wasm.length) {
      const start = r.pos;
      const id = r.byte();
      const size = r.u32();
      const bodyStart = r.pos;
      const bodyEnd = bodyStart + size;
      if (id !== SECTION_IMPORT && id !== SECTION_MEMORY) {
        out.push(wasm.subarray(start, bodyEnd));
        r.pos = bodyEnd;
        continue;
      }
      const body: number[] = [];
      const count = r.u32();
      body.push(...leb(count));
      for (let i = 0; i < count; i++) {
        if (id === SECTION_MEMORY) {
          body.push(...capLimits(r, maxPages, `memory ${i}`));
          continue;
        }
        const entryStart = r.pos;
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 2) {
          body.push(...wasm.subarray(entryStart, r.pos));
          body.push(...capLimits(r, maxPages, 'imported memory'));
          continue;
        }
        if (kind === 0) r.u32();
        else if (kind === 1) {
          r.byte();
          const f = r.byte();
          r.u32();
          if (f & 1) r.u32();
        } else if (kind === 3) r.skip(2);
        else if (kind === 4) {
          r.byte();
          r.u32();
        } else throw new Error(`unknown import kind ${kind}`);
        body.push(...wasm.subarray(entryStart, r.pos));
      }
      if (r.pos !== bodyEnd) throw new Error(`section ${id} has trailing bytes`);
      out.push([id, ...leb(body.length), ...body]);
    }
    return concat(out);
  } catch (e) {
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${plugin}": cannot apply the memory limit: ${(e as Error).message}`, { plugin });
  }
}
