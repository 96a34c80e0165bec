import initWabt from 'wabt';

// WebAssembly text to binary for tests, by wabt, with every feature Node 20 runs.

export const wabt = await initWabt();

export const WAT_FEATURES = {
  mutable_globals: true, sat_float_to_int: true, sign_extension: true, multi_value: true, bulk_memory: true,
  reference_types: true, simd: true, exceptions: true, tail_call: true, threads: true,
};

/**
 * Assembles and validates a module.
 *
 * @example
 * const bytes = wat('(module (func (export "f")))');
 */
export function wat(source: string): Uint8Array<ArrayBuffer> {
  const mod = wabt.parseWat('test.wat', source, WAT_FEATURES);
  try {
    mod.resolveNames();
    mod.validate();
    return new Uint8Array(mod.toBinary({ log: false }).buffer);
  } finally {
    mod.destroy();
  }
}
