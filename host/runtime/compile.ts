import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ABI_VERSION, checkAbiVersion } from '../abi/version.js';
import { HOOKS, type HookName } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
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
  // Lets a failure be called plugin_memory only when a grow was refused (once per version, at load).
  const module = await WebAssembly.compile(watchMemoryGrow(sandboxed.bytes, name));
  checkAbiVersion(module, name, file);
  checkExportTypes(raw, [`sandgate_abi_v${ABI_VERSION}`, ...HOOKS], name);

  const exported = new Set(WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name));
  const imports = WebAssembly.Module.imports(module);
  return {
    module,
    hooks: new Set(HOOKS.filter((h) => exported.has(h))),
    hasInitialize: sandboxed.hasInitialize,
    usesExtismInput: imports.some((i) => i.module === 'extism:host/env' && i.name.startsWith('input_')),
    sha256,
    bytes: raw.length,
  };
}
