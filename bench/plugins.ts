// Which WebAssembly plugins the benchmarks load.

import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import wabtInit from 'wabt';

export interface BenchPlugin {
  /** Absolute path of the .wasm file. */
  path: string;
  /** How the report names it. */
  label: string;
  /** False when the sample plugin was not built and a test fixture stands in for it. */
  isHelloWorld: boolean;
}

/** The sample plugin, or (if it has not been built) the set-header test fixture, which has only the transport pre-hook. */
export function samplePlugin(root: string): BenchPlugin {
  const hello = path.join(root, 'sample-plugins/hello-world/build/hello-world.wasm');
  if (existsSync(hello)) return { path: hello, label: 'hello-world', isHelloWorld: true };
  const fixture = path.join(root, 'test/fixtures/build/set-header.wasm');
  if (existsSync(fixture)) return { path: fixture, label: 'set-header (fixture; hello-world not built)', isHelloWorld: false };
  throw new Error(`neither ${hello} nor ${fixture} exists: run "npm run build" first`);
}

/** A hook that copies its input into guest memory (fast path), optionally logs twice, and returns no output. */
const hook = (name: string, logs: boolean) => `
  (func (export "${name}") (result i32)
    (call $read_input)${logs ? '\n    (call $log (i32.const 1) (i32.const 16) (i32.const 27))\n    (call $log (i32.const 0) (i32.const 16) (i32.const 27))' : ''}
    (i32.const 0))`;

const PER_REQUEST_HOOKS = ['http_transport_pre_hook', 'pre_llm_hook', 'post_llm_hook', 'http_transport_post_hook'];

/** InitOutput {request_body: false, response_body: false} in MessagePack: no bodies in the transport hooks' envelopes. */
const NO_BODIES = '\\82\\acrequest_body\\c2\\adresponse_body\\c2';
const NO_BODIES_LENGTH = 30;

const wat = (logs: boolean, hooks: readonly string[], noBodies: boolean) => `
(module
  (import "sandgate:host/v1" "input_length" (func $input_length (result i32)))
  (import "sandgate:host/v1" "input_read" (func $input_read (param i32)))
  (import "sandgate:host/v1" "output_write" (func $output_write (param i32 i32)))
  (import "sandgate:host/v1" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "HTTPTransportPreHook called")
  (data (i32.const 64) "${NO_BODIES}")
  (func $read_input
    ;; inputs up to 120 KiB fit after offset 1024 in two pages; larger ones are not read
    (if (i32.le_u (call $input_length) (i32.const 122880))
      (then (call $input_read (i32.const 1024)))))
  (func (export "sandgate_abi_v1") (result i32) (i32.const 1))${
    noBodies
      ? `
  (func (export "init") (result i32)
    (call $output_write (i32.const 64) (i32.const ${NO_BODIES_LENGTH}))
    (i32.const 0))`
      : ''
  }
  ${hooks.map((h) => hook(h, logs)).join('')})
`;

async function writeWat(dir: string, name: string, text: string): Promise<string> {
  const wabt = await wabtInit();
  const mod = wabt.parseWat(`${name}.wat`, text);
  try {
    mod.validate();
    const file = path.join(dir, `${name}.wasm`);
    await writeFile(file, mod.toBinary({}).buffer);
    return file;
  } finally {
    mod.destroy();
  }
}

/**
 * The minimal plugin: the four per-request hooks copy their input envelope
 * into guest memory and return no output ("continue"). Calling it costs the
 * host side of a hook call and nothing else. With `logs`, every hook also logs
 * two short messages (info and debug), as hello-world does.
 */
export async function minimalPlugin(dir: string, logs = false): Promise<string> {
  return writeWat(dir, logs ? 'bench-minimal-logging' : 'bench-minimal', wat(logs, PER_REQUEST_HOOKS, false));
}

/**
 * One headers-only hook: the minimal plugin's http_transport_pre_hook and no
 * other hook, with an init that asks for no bodies (ABI.md §5.2), so a request
 * costs exactly one hook call on a headers-only envelope.
 * @example
 * const file = await oneHookPlugin(ctx.tmpDir); // plugins: [{ name: 'one-hook-1', path: file }]
 */
export async function oneHookPlugin(dir: string): Promise<string> {
  return writeWat(dir, 'bench-one-hook', wat(false, ['http_transport_pre_hook'], true));
}
