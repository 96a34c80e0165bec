import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run from dist/test/, two levels below it). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const fixture = (name: string): string => path.join(ROOT, 'test/fixtures/build', `${name}.wasm`);
export const samplePlugin = (name: string): string => path.join(ROOT, 'sample-plugins', name, 'build', `${name}.wasm`);
export const testPlugin = (name: string): string => path.join(ROOT, 'test/plugins', name, 'build', `${name}.wasm`);
export const CLI = path.join(ROOT, 'dist/host/main/cli.js');
