import initWabt from 'wabt';
import { encode } from '../../host/abi/codec.js';

// Builds small plugins that stamp what they touch with a version letter, so a
// test can tell which version of a plugin served a request:
// - http_transport_post_hook sets the response header `x-stamp: <stamp>`;
// - http_transport_stream_chunk_hook logs `chunk <stamp>` (info) for every streamed chunk;
// - cleanup logs `cleanup <stamp>`.
// Options make a version slow or broken in a given way.

const wabt = await initWabt();

/** A WAT string literal for bytes. */
function watBytes(bytes: Uint8Array): string {
  return [...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
}

export interface StampOptions {
  /** init busy-waits this long on the WASI clock (0: no wait). */
  initDelayMs?: number;
  /** init traps. */
  initTraps?: boolean;
  /** Declares this ABI version instead of 1. */
  abi?: number;
}

/**
 * A plugin module stamping with `stamp` (1 to 16 ASCII characters).
 *
 * @example
 * writeFileSync(file, stampPlugin('a'));
 */
export function stampPlugin(stamp: string, opts: StampOptions = {}): Uint8Array {
  const post = encode({ resp: { headers: { 'x-stamp': stamp } } });
  const chunkLog = Buffer.from(`chunk ${stamp}`);
  const cleanupLog = Buffer.from(`cleanup ${stamp}`);
  const initBody = [
    opts.initTraps ? 'unreachable' : '',
    opts.initDelayMs
      ? `(local.set $until (i64.add (call $now) (i64.const ${opts.initDelayMs * 1_000_000})))
         (loop $wait (br_if $wait (i64.lt_u (call $now) (local.get $until))))`
      : '',
  ].join('\n');
  const wat = `(module
    (import "sandgate:host/v1" "output_write" (func $out (param i32 i32)))
    (import "sandgate:host/v1" "log" (func $log (param i32 i32 i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 64) "${watBytes(post)}")
    (data (i32.const 256) "${watBytes(chunkLog)}")
    (data (i32.const 320) "${watBytes(cleanupLog)}")
    (func $now (result i64) (drop (call $clock (i32.const 1) (i64.const 1000) (i32.const 0))) (i64.load (i32.const 0)))
    (func (export "sandgate_abi_v${opts.abi ?? 1}") (result i32) (i32.const 1))
    (func (export "init") (result i32) (local $until i64) ${initBody} (i32.const 0))
    (func (export "http_transport_post_hook") (result i32) (call $out (i32.const 64) (i32.const ${post.length})) (i32.const 0))
    (func (export "http_transport_stream_chunk_hook") (result i32) (call $log (i32.const 1) (i32.const 256) (i32.const ${chunkLog.length})) (i32.const 0))
    (func (export "cleanup") (result i32) (call $log (i32.const 1) (i32.const 320) (i32.const ${cleanupLog.length})) (i32.const 0)))`;
  const mod = wabt.parseWat(`stamp-${stamp}.wat`, wat);
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}
