import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { checkAbiVersion } from '../abi/version.js';
import { HOOKS, type HookName } from '../abi/types.js';
import { ErrorCode, GatewayError } from '../errors/codes.js';
import { limitMemory } from './memory-limit.js';
import { watchMemoryGrow } from './module/grow-watch.js';

export interface CompiledPlugin {
  module: WebAssembly.Module;
  /** Hooks the module exports; the pipeline never calls the others. */
  hooks: ReadonlySet<HookName>;
  useWasi: boolean;
  usesExtismInput: boolean;
  sha256: string;
  bytes: number;
}

const PAGE = 64 * 1024;

/**
 * Reads, caps and compiles one plugin version. Compiled once per version: every
 * instance in every worker is created from this Module (about 0.1 ms each).
 */
export async function compilePlugin(name: string, file: string, memoryLimitMb: number): Promise<CompiledPlugin> {
  let raw: Uint8Array<ArrayBuffer>;
  try {
    raw = await readFile(file);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found (build it, or fix "path")' : (e as Error).message;
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${name}": cannot read ${file}: ${reason}`, { plugin: name });
  }
  if (!WebAssembly.validate(raw)) {
    throw new GatewayError(ErrorCode.pluginLoadFailed, `plugin "${name}": ${file} is not a valid WebAssembly module (corrupt or truncated? rebuild it)`, { plugin: name });
  }
  const capped = limitMemory(raw, Math.floor((memoryLimitMb * 1024 * 1024) / PAGE), name);
  // Lets a failure be called plugin_memory only when a grow was refused (once per version, at load).
  const module = await WebAssembly.compile(watchMemoryGrow(capped, name));
  checkAbiVersion(module, name, file);

  const exported = new Set(WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => e.name));
  const imports = WebAssembly.Module.imports(module);
  return {
    module,
    hooks: new Set(HOOKS.filter((h) => exported.has(h))),
    useWasi: imports.some((i) => i.module === 'wasi_snapshot_preview1'),
    usesExtismInput: imports.some((i) => i.module === 'extism:host/env' && i.name.startsWith('input_')),
    sha256: createHash('sha256').update(raw).digest('hex'),
    bytes: raw.length,
  };
}
