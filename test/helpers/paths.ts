import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/, two levels below it). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const fixture = (name: string): string => path.join(ROOT, 'test/fixtures/build', `${name}.wasm`);
export const samplePlugin = (name: string): string => path.join(ROOT, 'sample-plugins', name, 'build', `${name}.wasm`);
export const testPlugin = (name: string): string => path.join(ROOT, 'test/plugins', name, 'build', `${name}.wasm`);
export const CLI = path.join(ROOT, 'dist/host/main/cli.js');

/** Every plugin and fixture the repo builds (npm run build:plugins), as paths. */
export function builtModules(): string[] {
  const files: string[] = [];
  for (const dir of ['sample-plugins', 'test/plugins']) {
    for (const name of readdirSync(path.join(ROOT, dir))) {
      const file = path.join(ROOT, dir, name, 'build', `${name}.wasm`);
      if (existsSync(file)) files.push(file);
    }
  }
  for (const dir of ['test/fixtures/build', 'plugin-pdk/assemblyscript/build']) {
    for (const f of readdirSync(path.join(ROOT, dir))) if (f.endsWith('.wasm')) files.push(path.join(ROOT, dir, f));
  }
  return files;
}
