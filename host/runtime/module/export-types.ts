import { ErrorCode, GatewayError } from '../../errors/codes.js';
import { EXTERN_KIND, Reader, readSections, SECTION } from './wasm-binary.js';

// The types of a module's exports, read from its binary: WebAssembly.Module.exports
// gives names and kinds but no types. The host calls every hook and reads the
// ABI marker as `() -> i32` (ABI.md §2, §3); an export of another type would
// run with its arguments made up and its result ignored, so it is refused at load.

interface FuncType {
  params: number[];
  results: number[];
}

const VALTYPE_NAMES: Record<number, string> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' };

/** A function type as WAT-like text: `(i32, i32) -> ()`. */
export function typeText(t: FuncType): string {
  const list = (v: number[]) => `(${v.map((b) => VALTYPE_NAMES[b] ?? `0x${b.toString(16)}`).join(', ')})`;
  return `${t.params.length ? list(t.params) : '()'} -> ${t.results.length === 1 ? list(t.results).slice(1, -1) : list(t.results)}`;
}

function readTypes(r: Reader): FuncType[] {
  const types: FuncType[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    const form = r.byte();
    if (form !== 0x60) throw new Error(`type ${i} is not a function type (form 0x${form.toString(16)})`);
    const vec = () => Array.from({ length: r.u32() }, () => r.byte());
    types.push({ params: vec(), results: vec() });
  }
  return types;
}

/** The type index of each imported function, in order (imports come first in the function index space). */
function readImportedFunctions(r: Reader): number[] {
  const funcs: number[] = [];
  for (let n = r.u32(), i = 0; i < n; i++) {
    r.name();
    r.name();
    const kind = r.byte();
    if (kind === EXTERN_KIND.function) funcs.push(r.u32());
    else if (kind === EXTERN_KIND.table) (r.byte(), r.limits());
    else if (kind === EXTERN_KIND.memory) r.limits();
    else if (kind === EXTERN_KIND.global) (r.byte(), r.byte());
    else if (kind === EXTERN_KIND.tag) (r.byte(), r.u32());
    else throw new Error(`import ${i} has an unknown kind ${kind}`);
  }
  return funcs;
}

/**
 * The type of every exported function, by export name; other exports map to
 * their kind ('memory', 'global', ...).
 *
 * @example exportTypes(bytes).get('post_llm_hook') // { params: [], results: [0x7f] }
 */
export function exportTypes(wasm: Uint8Array): Map<string, FuncType | string> {
  let types: FuncType[] = [];
  const funcs: number[] = [];
  const exports: { name: string; kind: number; index: number }[] = [];
  for (const s of readSections(wasm)) {
    const r = new Reader(s.body);
    if (s.id === SECTION.type) types = readTypes(r);
    else if (s.id === SECTION.import) funcs.push(...readImportedFunctions(r));
    else if (s.id === SECTION.function) for (let n = r.u32(), i = 0; i < n; i++) funcs.push(r.u32());
    else if (s.id === SECTION.export) for (let n = r.u32(), i = 0; i < n; i++) exports.push({ name: r.name(), kind: r.byte(), index: r.u32() });
  }
  const kinds = ['function', 'table', 'memory', 'global', 'tag'];
  const out = new Map<string, FuncType | string>();
  for (const e of exports) {
    const type = e.kind === EXTERN_KIND.function ? types[funcs[e.index]] : undefined;
    out.set(e.name, type ?? kinds[e.kind] ?? `kind ${e.kind}`);
  }
  return out;
}

/**
 * Refuses (plugin_load_failed) a module that exports one of `names` with a
 * type other than `() -> i32`, naming the export and the type it has.
 */
export function checkExportTypes(wasm: Uint8Array, names: readonly string[], plugin: string): void {
  let found: Map<string, FuncType | string>;
  try {
    found = exportTypes(wasm);
  } catch (e) {
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${plugin}": cannot read the module's exports: ${(e as Error).message}`, { plugin });
  }
  for (const name of names) {
    const t = found.get(name);
    if (t === undefined) continue;
    const ok = typeof t !== 'string' && t.params.length === 0 && t.results.length === 1 && t.results[0] === 0x7f;
    if (ok) continue;
    const has = typeof t === 'string' ? `is a ${t}, not a function` : `has type ${typeText(t)}`;
    throw new GatewayError(
      ErrorCode.pluginLoadFailed,
      `plugin "${plugin}": export "${name}" ${has}, but the host calls it as () -> i32 (ABI.md §3): declare it returning an i32 (0) and taking no parameters`,
      { plugin },
    );
  }
}
