import initWabt from 'wabt';
import { encode } from '../../host/abi/codec.js';

// Builds small plugins that stamp what they touch with a version letter, so a
// test can tell which version of a plugin served a request:
// - http_transport_post_hook sets the response header `x-stamp: <stamp>`;
// - http_transport_stream_chunk_hook logs `chunk <stamp>` (info) for every streamed chunk,
//   or, with `stampChunks`, replaces every chunk with one carrying `"stamp": "<stamp>"`
//   (and the stamp as its content), so the client itself sees which version sent each chunk;
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
  /** Pages (64 KiB) of linear memory, every 4 KiB of it written by init so it is resident, as a real plugin's heap would be (default 1, untouched). */
  memoryPages?: number;
  /** The chunk hook replaces each streamed chunk with a stamped one (ABI.md §5.5 `chunk`) instead of logging. */
  stampChunks?: boolean;
}

/** The chunk a `stampChunks` plugin sends in place of each streamed chunk. */
export function stampedChunk(stamp: string): Record<string, unknown> {
  return { object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: stamp }, finish_reason: null }], stamp };
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
  const chunkOut = encode({ chunk: stampedChunk(stamp) });
  const cleanupLog = Buffer.from(`cleanup ${stamp}`);
  const pages = opts.memoryPages ?? 1;
  const initBody = [
    opts.initTraps ? 'unreachable' : '',
    pages > 1
      ? `(local.set $at (i32.const 4095))
         (loop $touch
           (i32.store8 (local.get $at) (i32.const 1))
           (local.set $at (i32.add (local.get $at) (i32.const 4096)))
           (br_if $touch (i32.lt_u (local.get $at) (i32.const ${pages * 65536}))))`
      : '',
    opts.initDelayMs
      ? `(local.set $until (i64.add (call $now) (i64.const ${opts.initDelayMs * 1_000_000})))
         (loop $wait (br_if $wait (i64.lt_u (call $now) (local.get $until))))`
      : '',
  ].join('\n');
  const wat = `(module
    (import "sandgate:host/v1" "output_write" (func $out (param i32 i32)))
    (import "sandgate:host/v1" "log" (func $log (param i32 i32 i32)))
    (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
    (memory (export "memory") ${pages})
    (data (i32.const 64) "${watBytes(post)}")
    (data (i32.const 256) "${watBytes(chunkLog)}")
    (data (i32.const 320) "${watBytes(cleanupLog)}")
    (data (i32.const 512) "${watBytes(chunkOut)}")
    (func $now (result i64) (drop (call $clock (i32.const 1) (i64.const 1000) (i32.const 0))) (i64.load (i32.const 0)))
    (func (export "sandgate_abi_v${opts.abi ?? 1}") (result i32) (i32.const 1))
    (func (export "init") (result i32) (local $until i64) (local $at i32) ${initBody} (i32.const 0))
    (func (export "http_transport_post_hook") (result i32) (call $out (i32.const 64) (i32.const ${post.length})) (i32.const 0))
    (func (export "http_transport_stream_chunk_hook") (result i32)
      ${opts.stampChunks ? `(call $out (i32.const 512) (i32.const ${chunkOut.length}))` : `(call $log (i32.const 1) (i32.const 256) (i32.const ${chunkLog.length}))`}
      (i32.const 0))
    (func (export "cleanup") (result i32) (call $log (i32.const 1) (i32.const 320) (i32.const ${cleanupLog.length})) (i32.const 0)))`;
  const mod = wabt.parseWat(`stamp-${stamp}.wat`, wat);
  try {
    mod.validate();
    return mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
}
