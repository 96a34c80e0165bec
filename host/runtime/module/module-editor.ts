// Appending to a module without renumbering anything: the load-time rewriters
// (grow-watch.ts, deadline-watch.ts) add a type, a global, a table, functions
// and exports at the END of their index spaces, so every index the module
// already uses keeps its meaning, and its own code can never name what was
// added (those indices did not exist when the original module was validated).

import { ErrorCode, GatewayError } from '../../errors/codes.js';
import { UnknownOpcode, VALUE_TYPES } from './instructions.js';
import { concat, encodeName, insertSection, leb, Reader, readSections, SECTION, writeSections, type Section } from './wasm-binary.js';

const FUNC_TYPE = 0x60;

/** One function body of the code section: its locals and code, without the size prefix. */
export interface FunctionBody {
  /** Index in the function index space (imports first). */
  index: number;
  bytes: Uint8Array;
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.skipLeb();
  if (flags & 0x01) r.skipLeb();
}

const countOf = (section: Section | undefined): number => (section ? new Reader(section.body).u32() : 0);

/**
 * A module being extended. Read it, append what you need, then `write` with
 * the (possibly rewritten) bodies of its own functions.
 *
 * @example
 * const edit = new ModuleEditor(wasm);
 * const flag = edit.addGlobal([I32, 1, OP.i32Const, 0, OP.end]);
 * edit.addExport('my:flag', EXTERN_KIND.global, flag);
 * const out = edit.write(edit.bodies().map((b) => b.bytes));
 */
export class ModuleEditor {
  private readonly sections: Section[];
  private readonly appended: Uint8Array[] = [];
  readonly importedFunctions: number;
  readonly importedTables: number;
  readonly importedGlobals: number;
  /** Memories, imported and defined. */
  readonly memories: number;

  constructor(private readonly wasm: Uint8Array) {
    this.sections = readSections(wasm);
    const counts = { f: 0, t: 0, m: 0, g: 0 };
    const imports = this.find(SECTION.import);
    if (imports) {
      const r = new Reader(imports.body);
      for (let n = r.u32(); n > 0; n--) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) {
          counts.f++;
          r.u32();
        } else if (kind === 1) {
          counts.t++;
          r.byte();
          skipLimits(r);
        } else if (kind === 2) {
          counts.m++;
          skipLimits(r);
        } else if (kind === 3) {
          counts.g++;
          r.skip(2);
        } else if (kind === 4) {
          r.byte();
          r.u32();
        } else throw new Error(`unknown import kind ${kind}`);
      }
    }
    this.importedFunctions = counts.f;
    this.importedTables = counts.t;
    this.importedGlobals = counts.g;
    this.memories = counts.m + countOf(this.find(SECTION.memory));
  }

  find(id: number): Section | undefined {
    return this.sections.find((s) => s.id === id);
  }

  /** Takes a known section out of the module; returns it (undefined if there was none). */
  removeSection(id: number): Section | undefined {
    const at = this.sections.findIndex((s) => s.id === id);
    return at < 0 ? undefined : this.sections.splice(at, 1)[0];
  }

  /** Names the module exports. */
  exportNames(): string[] {
    const section = this.find(SECTION.export);
    if (!section) return [];
    const r = new Reader(section.body);
    const names: string[] = [];
    for (let n = r.u32(); n > 0; n--) {
      names.push(r.name());
      r.byte();
      r.u32();
    }
    return names;
  }

  /** Import module and name of each imported function, in order. */
  functionImports(): { module: string; name: string }[] {
    const section = this.find(SECTION.import);
    if (!section) return [];
    const r = new Reader(section.body);
    const out: { module: string; name: string }[] = [];
    for (let n = r.u32(); n > 0; n--) {
      const module = r.name();
      const name = r.name();
      const kind = r.byte();
      if (kind === 0) {
        r.u32();
        out.push({ module, name });
      } else if (kind === 1) {
        r.byte();
        skipLimits(r);
      } else if (kind === 2) skipLimits(r);
      else if (kind === 3) r.skip(2);
      else {
        r.byte();
        r.u32();
      }
    }
    return out;
  }

  /** The index of the function type (params) -> (results), appended if the module has none. */
  typeIndex(params: readonly number[], results: readonly number[]): number {
    const section = this.find(SECTION.type);
    let count = 0;
    if (section) {
      const r = new Reader(section.body);
      count = r.u32();
      for (let i = 0; i < count; i++) {
        const form = r.byte();
        if (form !== FUNC_TYPE) throw new UnknownOpcode(`type form 0x${form.toString(16)} in type ${i}`);
        const p: number[] = [];
        for (let n = r.u32(); n > 0; n--) p.push(r.byte());
        const q: number[] = [];
        for (let n = r.u32(); n > 0; n--) q.push(r.byte());
        if (same(p, params) && same(q, results)) return i;
      }
    }
    this.append(SECTION.type, [FUNC_TYPE, ...leb(params.length), ...params, ...leb(results.length), ...results]);
    return count;
  }

  /** Appends a global (`entry`: value type, mutability, init expression) and returns its index. */
  addGlobal(entry: readonly number[]): number {
    return this.importedGlobals + this.append(SECTION.global, entry);
  }

  /** Appends a table (`entry`: reference type, limits) and returns its index. */
  addTable(entry: readonly number[]): number {
    return this.importedTables + this.append(SECTION.table, entry);
  }

  /** Appends a function of type `typeIndex` whose body is `body` (locals + code + end) and returns its index. */
  addFunction(typeIndex: number, body: readonly number[]): number {
    const at = this.importedFunctions + this.append(SECTION.function, leb(typeIndex));
    this.appended.push(Uint8Array.from(body));
    return at;
  }

  addExport(name: string, kind: number, index: number): void {
    this.append(SECTION.export, [...encodeName(name), kind, ...leb(index)]);
  }

  /** The module's own function bodies (not the appended ones), in order. */
  bodies(): FunctionBody[] {
    const code = this.find(SECTION.code);
    if (!code || code.offset === undefined) return [];
    const r = new Reader(this.wasm, code.offset);
    const out: FunctionBody[] = [];
    for (let i = 0, n = r.u32(); i < n; i++) {
      const size = r.u32();
      out.push({ index: this.importedFunctions + i, bytes: this.wasm.subarray(r.pos, r.pos + size) });
      r.skip(size);
    }
    return out;
  }

  /** The module with everything appended, and `bodies` (the module's own functions, rewritten or not) as its code. */
  write(bodies: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
    const all = [...bodies, ...this.appended];
    if (all.length > 0) this.replace({ id: SECTION.code, body: concat([leb(all.length), ...all.flatMap((b) => [leb(b.length), b])]) });
    return writeSections(this.sections);
  }

  /** Appends one entry to a vector section (creating it if needed); returns the entry's index in that section. */
  private append(id: number, entry: ArrayLike<number>): number {
    const section = this.find(id);
    if (!section) {
      this.replace({ id, body: concat([[1], entry]) });
      return 0;
    }
    const r = new Reader(section.body);
    const count = r.u32();
    this.replace({ id, body: concat([leb(count + 1), section.body.subarray(r.pos), entry]) });
    return count;
  }

  private replace(next: Section): void {
    const at = this.sections.findIndex((s) => s.id === next.id);
    if (at >= 0) this.sections[at] = next;
    else insertSection(this.sections, next);
  }
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The locals declaration at the start of a body; returns where its code starts. Throws on a local type it does not know. */
export function skipLocals(body: Uint8Array): number {
  const r = new Reader(body);
  for (let groups = r.u32(); groups > 0; groups--) {
    r.u32();
    const t = r.byte();
    if (!VALUE_TYPES.has(t)) throw new UnknownOpcode(`local type 0x${t.toString(16)} at byte ${r.pos - 1}`);
  }
  return r.pos;
}

/**
 * Runs `read` over one function body; a failure says which function.
 *
 * @example const grows = inFunction(body.index, () => findGrows(body));
 */
export function inFunction<T>(index: number, read: () => T): T {
  try {
    return read();
  } catch (e) {
    const where = `function ${index}`;
    if (e instanceof UnknownOpcode) throw new UnknownOpcode(`${where} uses ${e.message}`);
    throw new Error(`${where}: ${(e as Error).message}`);
  }
}

/**
 * A rewrite that failed, as the load error the operator reads: what could not
 * be done to the plugin, and why (an instruction too new for the reader says
 * how to rebuild).
 *
 * @example throw rewriteFailed(e, 'my-plugin', 'cannot add deadline checks to its code');
 */
export function rewriteFailed(e: unknown, plugin: string, what: string): GatewayError {
  const reason =
    e instanceof UnknownOpcode
      ? `${e.message}, which Sandgate's instruction reader does not know (a WebAssembly feature newer than Node 20's): build the plugin without it`
      : (e as Error).message;
  return new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${plugin}": ${what}: ${reason}`, { plugin });
}
