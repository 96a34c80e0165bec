import { renameSync, writeFileSync } from 'node:fs';

// Replaces a watched plugin file the two ways an operator (or a build tool)
// does, and times how long the gateway takes to serve the new bytes. Shared by
// the soak (test/soak) and the hot-swap benchmark part (bench/parts/hot-swap.ts).

/** How a new build lands on the configured path. */
export type SwapHow = 'write' | 'rename';

/**
 * Puts `bytes` at `file`: written in place (truncate, then write: the watcher
 * sees a short file first), or written next to it and renamed over it (the
 * file's inode changes).
 *
 * @example
 * replaceFile('/plugins/auth.wasm', build, 'rename');
 */
export function replaceFile(file: string, bytes: Uint8Array, how: SwapHow): void {
  if (how === 'write') {
    writeFileSync(file, bytes);
    return;
  }
  const next = `${file}.next`;
  writeFileSync(next, bytes);
  renameSync(next, file);
}

/**
 * Replaces the file, then polls `isServing` every `pollMs` until it says the
 * new version took. Resolves with the milliseconds from the write to that;
 * rejects after `timeoutMs`.
 */
export async function swapAndWait(file: string, bytes: Uint8Array, how: SwapHow, isServing: () => Promise<boolean>, opts: { pollMs?: number; timeoutMs?: number } = {}): Promise<number> {
  const pollMs = opts.pollMs ?? 2;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const started = performance.now();
  replaceFile(file, bytes, how);
  for (;;) {
    if (await isServing()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`the new version of ${file} was not serving ${timeoutMs} ms after it was written (${how})`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
