import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ABI_VERSION, checkAbiVersion, HOST_MODULE } from '../abi/version.js';
import { HOOKS, type HookName } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import { watchDeadlines } from './module/deadline-watch.js';
import { checkExportTypes } from './module/export-types.js';
import { watchMemoryGrow } from './module/grow-watch.js';
import { sandboxModule } from './module/sandbox-module.js';
import { WASI_FUNCTIONS } from './sandbox/guest-wasi.js';

export interface CompiledPlugin {
  module: WebAssembly.Module;
  /** Hooks the module exports; the pipeline never calls the others. */
  hooks: ReadonlySet<HookName>;
  /** A WASI reactor: its `_initialize` runs once per instance (sandbox/guest.ts). */
  hasInitialize: boolean;
  usesExtismInput: boolean;
  /**
   * Why this plugin may not run on the gateway's main thread (runtime/in-thread):
   * empty when it may. Only a guest whose every path takes fuel and whose every
   * import is a Sandgate host function can be stopped there.
   */
  inThreadBlockers: string[];
  sha256: string;
  bytes: number;
}

const PAGE = 64 * 1024;

/** Refuses bytes it does not trust by throwing (plugins/integrity.ts); given the file's bytes and their sha256 (hex). */
export type VerifyBytes = (bytes: Uint8Array, sha256: string) => Promise<void>;

/**
 * Reads, sandboxes (module/sandbox-module.ts, module/grow-watch.ts) and compiles one plugin version. Compiled once per version: every
 * instance in every worker is created from this Module (about 0.1 ms each). The file is read once: `verify` sees the very bytes that
 * get compiled, before anything parses them.
 */
export async function compilePlugin(name: string, file: string, memoryLimitMb: number, verify?: VerifyBytes): Promise<CompiledPlugin> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = await readFile(file);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found (build it, or fix "path")' : (e as Error).message;
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${name}": cannot read ${file}: ${reason}`, { plugin: name });
  }
  const sha256 = createHash('sha256').update(raw).digest('hex');
  await verify?.(raw, sha256);
  if (!WebAssembly.validate(raw)) {
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${name}": ${file} is not a valid WebAssembly module (corrupt or truncated? rebuild it)`, { plugin: name });
  }
  const sandboxed = sandboxModule(raw, { memoryPages: Math.floor((memoryLimitMb * 1024 * 1024) / PAGE), wasiFunctions: WASI_FUNCTIONS }, name);
  // Lets a failure be called plugin_memory only when a grow was refused, and a call be stopped
  // at its deadline from inside (once per version, at load).
  const watched = watchDeadlines(watchMemoryGrow(sandboxed.bytes, name), name);
  const module = await WebAssembly.compile(watched.bytes);
  checkAbiVersion(module, name, file);
  checkExportTypes(raw, [`sandgate_abi_v${ABI_VERSION}`, ...HOOKS], name);

  const exported = new Set(WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name));
  const imports = WebAssembly.Module.imports(module);
  const foreign = [...new Set(imports.filter((i) => i.module !== HOST_MODULE).map((i) => i.module))];
  return {
    module,
    hooks: new Set(HOOKS.filter((h) => exported.has(h))),
    hasInitialize: sandboxed.hasInitialize,
    usesExtismInput: imports.some((i) => i.module === 'extism:host/env' && i.name.startsWith('input_')),
    inThreadBlockers: [...watched.unbounded.map((u) => `uses ${u}`), ...foreign.map((m) => `imports from "${m}"`)],
    sha256,
    bytes: raw.length,
  };
}
