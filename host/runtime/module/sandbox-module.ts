import { ErrorCode, GatewayError } from '../../errors/codes.js';
import { encodeLimits, encodeName, EXTERN_KIND, leb, type Limits, Reader, readSections, SECTION, writeSections } from './wasm-binary.js';

// Rewrites a plugin module before it is compiled, so that what it can take
// from the gateway is bounded by the module itself (ABI.md §7):
// - every memory gets a declared maximum of at most the plugin's cap, so
//   `memory.grow` returns -1 past it (Extism's own maxPages does not cap
//   guest memory);
// - every table gets a maximum of at most MAX_TABLE_ELEMENTS, and modules that
//   need more at start, or declare more than MAX_GLOBALS globals, are refused;
// - WASI imports are renamed to the gateway's own WASI (sandbox/guest-wasi.ts), so
//   Node's WASI, which sends real signals and blocks in C++, is never linked;
// - `_initialize` and `_start` are renamed so that the worker, not Extism,
//   runs `_initialize`, once the guest's memory is known to the host functions.

/** Module name under which the gateway provides WASI preview 1 to a guest. */
export const GUEST_WASI_MODULE = 'sandgate:wasi_snapshot_preview1';
const WASI_MODULE = 'wasi_snapshot_preview1';
/** A reactor's initialiser, under the name the worker calls it by. */
export const GUEST_INITIALIZE = 'sandgate:_initialize';
const RENAMED_EXPORTS: Record<string, string> = { _initialize: GUEST_INITIALIZE, _start: 'sandgate:_start' };

/** Elements one table may hold (an element costs the gateway 8 bytes or more). */
export const MAX_TABLE_ELEMENTS = 100_000;
/** Globals a module may declare (each one costs the gateway memory per instance). */
export const MAX_GLOBALS = 10_000;

export interface SandboxLimits {
  /** Linear memory cap in 64 KiB pages (memory_limit_mb). */
  memoryPages: number;
  /** WASI functions the gateway provides; an import of any other WASI name is refused at load. */
  wasiFunctions: ReadonlySet<string>;
}

export interface SandboxedModule {
  bytes: Uint8Array<ArrayBuffer>;
  /** The module exports `_initialize` (a WASI reactor): run it once per instance before init. */
  hasInitialize: boolean;
  /** The module imports WASI functions. */
  usesWasi: boolean;
}

class Refused extends Error {}

function capMemory(l: Limits, cap: number, what: string): number[] {
  if (l.flags & 0x04) throw new Refused(`${what} is a 64-bit memory, which Sandgate does not support`);
  if (l.flags & 0x02) throw new Refused(`${what} is a shared memory, which Sandgate does not support`);
  if (l.min > cap) throw new Refused(`${what} needs ${l.min} pages (${(l.min / 16).toFixed(1)} MiB) at start, over the limit of ${cap} pages: raise memory_limit_mb`);
  return encodeLimits({ ...l, max: Math.min(l.max ?? cap, cap) });
}

function capTable(r: Reader, what: string): number[] {
  const refType = r.byte();
  const l = r.limits();
  if (l.min > MAX_TABLE_ELEMENTS) throw new Refused(`${what} needs ${l.min} elements at start, over the limit of ${MAX_TABLE_ELEMENTS}`);
  return [refType, ...encodeLimits({ ...l, max: Math.min(l.max ?? MAX_TABLE_ELEMENTS, MAX_TABLE_ELEMENTS) })];
}

function rewriteImports(r: Reader, end: number, limits: SandboxLimits, facts: { usesWasi: boolean }): number[] {
  const count = r.u32();
  const body = [...leb(count)];
  for (let i = 0; i < count; i++) {
    const module = r.name();
    const name = r.name();
    const kind = r.byte();
    const what = `import "${module}" "${name}"`;
    if (kind !== EXTERN_KIND.function) {
      const kinds = ['function', 'table', 'memory', 'global', 'tag'];
      throw new Refused(`${what} is a ${kinds[kind] ?? `kind ${kind}`}; a plugin may import only functions (export its memory instead)`);
    }
    const typeIndex = r.u32();
    let target = module;
    if (module === WASI_MODULE) {
      if (!limits.wasiFunctions.has(name)) throw new Refused(`${what}: Sandgate's WASI has no function "${name}" (ABI.md §7 lists what a guest gets)`);
      target = GUEST_WASI_MODULE;
      facts.usesWasi = true;
    }
    body.push(...encodeName(target), ...encodeName(name), kind, ...leb(typeIndex));
  }
  if (r.pos !== end) throw new Refused('the import section has trailing bytes');
  return body;
}

/** Re-encodes a vector of entries, applying `entry` to each one. */
function rewriteVector(r: Reader, end: number, what: string, entry: (i: number) => number[]): number[] {
  const count = r.u32();
  const body = [...leb(count)];
  for (let i = 0; i < count; i++) body.push(...entry(i));
  if (r.pos !== end) throw new Refused(`the ${what} section has trailing bytes`);
  return body;
}

/**
 * Returns a copy of the module with the sandbox's limits written into it.
 * Throws plugin_load_failed, naming the plugin and what to change, for a
 * module the sandbox cannot hold.
 *
 * @example
 * const { bytes } = sandboxModule(await readFile(path), { memoryPages: 1024, wasiFunctions: WASI_FUNCTIONS }, 'hello-world');
 * const module = await WebAssembly.compile(bytes);
 */
export function sandboxModule(wasm: Uint8Array, limits: SandboxLimits, plugin: string): SandboxedModule {
  try {
    const facts = { usesWasi: false };
    const exported = new Set<string>();
    const sections = readSections(wasm);
    for (const s of sections) {
      const r = new Reader(s.body);
      const end = s.body.length;
      let body: number[] | null = null;
      switch (s.id) {
        case SECTION.import:
          body = rewriteImports(r, end, limits, facts);
          break;
        case SECTION.memory:
          body = rewriteVector(r, end, 'memory', (i) => capMemory(r.limits(), limits.memoryPages, `memory ${i}`));
          break;
        case SECTION.table:
          body = rewriteVector(r, end, 'table', (i) => capTable(r, `table ${i}`));
          break;
        case SECTION.global: {
          // Only counted: imported globals are refused above, so this is every global the module has.
          const globals = r.u32();
          if (globals > MAX_GLOBALS) throw new Refused(`the module declares ${globals} globals, over the limit of ${MAX_GLOBALS}`);
          break;
        }
        case SECTION.export:
          body = rewriteVector(r, end, 'export', () => {
            const name = r.name();
            const kind = r.byte();
            const index = r.u32();
            exported.add(name);
            return [...encodeName(RENAMED_EXPORTS[name] ?? name), kind, ...leb(index)];
          });
          break;
      }
      if (body) s.body = new Uint8Array(body);
    }
    if (exported.has('_start') && !exported.has('_initialize')) {
      throw new Refused(
        'it is a WASI command module (it exports _start): a plugin must be a reactor, a library whose exports the gateway calls. ' +
          'Rebuild it as one (Go: go build -buildmode=c-shared; Rust: crate-type = ["cdylib"]; C: -mexec-model=reactor)',
      );
    }
    return { bytes: writeSections(sections), hasInitialize: exported.has('_initialize'), usesWasi: facts.usesWasi };
  } catch (e) {
    const reason = e instanceof Refused ? e.message : `cannot read the module: ${(e as Error).message}`;
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${plugin}": ${reason}`, { plugin });
  }
}
