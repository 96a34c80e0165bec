import { ErrorCode, GatewayError } from '../errors/codes.js';

/** The ABI version this host speaks (plugin-pdk/ABI.md). */
export const ABI_VERSION = 1;

/** Namespace of the fast-path host functions (ABI.md §4.2). */
export const HOST_MODULE = `sandgate:host/v${ABI_VERSION}`;

const MARKER = /^sandgate_abi_v(\d+)$/;

/**
 * Checks the ABI marker export before anything is instantiated, so a module
 * built for another version is refused with a message that says what to
 * rebuild instead of failing later with a confusing decode error.
 */
export function checkAbiVersion(module: WebAssembly.Module, plugin: string, file: string): void {
  const versions = WebAssembly.Module.exports(module)
    .map((e) => MARKER.exec(e.name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  if (versions.includes(ABI_VERSION)) return;
  const hint = `rebuild it with a Sandgate PDK for ABI v${ABI_VERSION} (see plugin-pdk/ABI.md)`;
  const message = versions.length
    ? `plugin "${plugin}" (${file}) was built for Sandgate ABI v${versions.join(', v')}, but this gateway speaks ABI v${ABI_VERSION}: ${hint}, or run a gateway that speaks v${versions[0]}`
    : `plugin "${plugin}" (${file}) does not declare a Sandgate ABI version (no "sandgate_abi_v${ABI_VERSION}" export): it was not built with a Sandgate PDK; ${hint}`;
  throw new GatewayError(ErrorCode.pluginAbiMismatch, message, { plugin, detail: { file, found: versions } });
}
