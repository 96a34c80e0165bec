// Reading and writing a guest's linear memory from a host function.

/**
 * The `len` bytes of guest memory at `ptr`, as a view (valid until the guest
 * next runs: growth replaces the buffer). WebAssembly passes pointers and
 * lengths as i32, which JavaScript receives signed: both are read as the
 * unsigned 32-bit values the guest meant, so memory above 2 GiB is reachable
 * and a "negative" length is a huge one. A range that does not lie inside the
 * memory throws, naming the host function: the call then fails as plugin_trap,
 * as an out-of-bounds access in the guest itself would.
 *
 * @example guestBytes(memory, 'output_write', src, len) // Uint8Array view, or throws
 */
export function guestBytes(memory: WebAssembly.Memory, fn: string, ptr: number, len: number): Uint8Array {
  const at = ptr >>> 0;
  const n = len >>> 0;
  const size = memory.buffer.byteLength;
  if (at + n > size) throw new Error(`${fn}: bytes ${at}..${at + n} are outside the guest's memory (${size} bytes)`);
  return new Uint8Array(memory.buffer, at, n);
}
