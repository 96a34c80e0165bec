import { performance } from 'node:perf_hooks';

// The WASI (preview 1) a guest gets: the gateway's own, never Node's. Node's
// WASI does what a guest asks of the host process: proc_raise sends real
// signals to the gateway, poll_oneoff sleeps in C++ where no deadline can stop
// it, and each instance holds file descriptors. Here every function either does
// something safe and bounded, or answers an error code (ABI.md §7):
// - clocks, random_get and sched_yield work;
// - fd_write on stdout and stderr goes to the gateway log through `sink`, which
//   bounds it; stdin reads as empty; there are no other descriptors (no
//   preopened directories, so no file system), no arguments, no environment;
// - poll_oneoff sleeps on clocks with Atomics.wait, which a deadline's
//   worker.terminate() interrupts;
// - proc_exit ends the current call (GuestExit): the call fails, the host lives;
// - proc_raise, sockets and every file or path operation answer an error code.

/** WASI errno values (wasi_snapshot_preview1 `errno`). */
const E = { SUCCESS: 0, BADF: 8, INVAL: 28, NOSYS: 52, NOTSUP: 58, SPIPE: 70, NOTCAPABLE: 76 } as const;
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const isStdio = (fd: number) => fd >= STDIN && fd <= STDERR;

/** A guest called proc_exit: the call it was in fails with this. */
export class GuestExit extends Error {
  constructor(readonly code: number) {
    super(`the guest exited with code ${code} (proc_exit)`);
    this.name = 'GuestExit';
  }
}

export interface GuestIo {
  /** The guest's linear memory (read on every call: growth replaces its buffer). */
  memory(): WebAssembly.Memory;
  /** Bytes the guest wrote to stdout (1) or stderr (2). The view is only valid during the call: copy what you keep. */
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /**
   * The call's deadline clock (sandbox/deadline-clock.ts), if it has one: a
   * sleep ends at the deadline, and the call stops there (check() throws).
   */
  clock?(): { remainingMs(): number; check(): void } | null;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Sleeps without leaving the JS engine, so that worker.terminate() can interrupt it. */
function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

/** Nanoseconds on clock `id` (realtime 0, monotonic 1, process and thread CPU time 2 and 3 read as monotonic), or null. */
function now(id: number): bigint | null {
  if (id === 0) return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  if (id >= 1 && id <= 3) return process.hrtime.bigint();
  return null;
}

/** Subscription and event layouts (wasi_snapshot_preview1 `subscription`, `event`). */
const SUB_SIZE = 48;
const EVENT_SIZE = 32;
const EVENTTYPE = { CLOCK: 0, FD_READ: 1, FD_WRITE: 2 } as const;
const SUBCLOCK_ABSTIME = 1;

/**
 * The import object for GUEST_WASI_MODULE. Every function of preview 1 is
 * present, so a guest never fails to link; the names are also the list
 * sandbox-module.ts accepts.
 *
 * @example
 * const wasi = guestWasi({ memory: () => inst.memory, write: (fd, b) => log(fd, b) });
 * createPlugin(module, { functions: { [GUEST_WASI_MODULE]: withContextArg(wasi) } });
 */
export function guestWasi(io: GuestIo): Record<string, (...args: never[]) => number> {
  const view = () => new DataView(io.memory().buffer);
  const bytes = (ptr: number, len: number) => new Uint8Array(io.memory().buffer, ptr, len);
  const notStdio = (fd: number) => (isStdio(fd) ? E.NOTSUP : E.BADF);
  const noDescriptor = () => E.BADF;
  const noPath = () => E.NOTCAPABLE;
  const writeZeroPair = (a: number, b: number) => {
    const v = view();
    v.setUint32(a, 0, true);
    v.setUint32(b, 0, true);
    return E.SUCCESS;
  };

  return {
    args_get: () => E.SUCCESS,
    args_sizes_get: writeZeroPair,
    environ_get: () => E.SUCCESS,
    environ_sizes_get: writeZeroPair,

    clock_res_get: (id: number, resPtr: number) => {
      if (now(id) === null) return E.INVAL;
      view().setBigUint64(resPtr, 1000n, true);
      return E.SUCCESS;
    },
    clock_time_get: (id: number, _precision: bigint, timePtr: number) => {
      const t = now(id);
      if (t === null) return E.INVAL;
      view().setBigUint64(timePtr, t, true);
      return E.SUCCESS;
    },
    random_get: (ptr: number, len: number) => {
      // getRandomValues fills at most 64 KiB at a time.
      for (let off = 0; off < len; off += 65536) crypto.getRandomValues(bytes(ptr + off, Math.min(65536, len - off)));
      return E.SUCCESS;
    },
    sched_yield: () => E.SUCCESS,

    fd_write: (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number) => {
      if (fd !== STDOUT && fd !== STDERR) return E.BADF;
      const v = view();
      let total = 0;
      for (let i = 0; i < iovsLen; i++) {
        const ptr = v.getUint32(iovs + i * 8, true);
        const len = v.getUint32(iovs + i * 8 + 4, true);
        if (len) io.write(fd, bytes(ptr, len));
        total += len;
      }
      // Everything counts as written, even past the log budget: a guest must not retry forever.
      v.setUint32(nwrittenPtr, total, true);
      return E.SUCCESS;
    },
    fd_read: (fd: number, _iovs: number, _iovsLen: number, nreadPtr: number) => {
      if (fd !== STDIN) return E.BADF;
      view().setUint32(nreadPtr, 0, true); // end of file
      return E.SUCCESS;
    },
    fd_fdstat_get: (fd: number, ptr: number) => {
      if (!isStdio(fd)) return E.BADF;
      const v = view();
      // fdstat: filetype u8 (2 = character device), flags u16, rights_base u64, rights_inheriting u64.
      for (let i = 0; i < 24; i++) v.setUint8(ptr + i, 0);
      v.setUint8(ptr, 2);
      const RIGHT_FD_READ = 1n << 1n;
      const RIGHT_FD_WRITE = 1n << 6n;
      const RIGHT_POLL = 1n << 27n;
      v.setBigUint64(ptr + 8, (fd === STDIN ? RIGHT_FD_READ : RIGHT_FD_WRITE) | RIGHT_POLL, true);
      return E.SUCCESS;
    },
    fd_filestat_get: (fd: number, ptr: number) => {
      if (!isStdio(fd)) return E.BADF;
      // filestat: 64 bytes, all zero but the filetype (character device) at offset 16.
      const v = view();
      for (let i = 0; i < 64; i++) v.setUint8(ptr + i, 0);
      v.setUint8(ptr + 16, 2);
      return E.SUCCESS;
    },
    // Closing stdio is accepted and changes nothing: the descriptors are the gateway's, not the guest's.
    fd_close: (fd: number) => (isStdio(fd) ? E.SUCCESS : E.BADF),
    fd_seek: (fd: number) => (isStdio(fd) ? E.SPIPE : E.BADF),
    fd_tell: (fd: number) => (isStdio(fd) ? E.SPIPE : E.BADF),
    fd_pread: (fd: number) => (isStdio(fd) ? E.SPIPE : E.BADF),
    fd_pwrite: (fd: number) => (isStdio(fd) ? E.SPIPE : E.BADF),
    fd_sync: (fd: number) => (isStdio(fd) ? E.SUCCESS : E.BADF),
    fd_datasync: (fd: number) => (isStdio(fd) ? E.SUCCESS : E.BADF),
    fd_advise: notStdio,
    fd_allocate: notStdio,
    fd_fdstat_set_flags: notStdio,
    fd_fdstat_set_rights: notStdio,
    fd_filestat_set_size: notStdio,
    fd_filestat_set_times: notStdio,
    fd_readdir: notStdio,
    fd_renumber: noDescriptor,
    // No preopened directories: wasi-libc's scan for them ends at the first EBADF.
    fd_prestat_get: noDescriptor,
    fd_prestat_dir_name: noDescriptor,

    path_create_directory: noPath,
    path_filestat_get: noPath,
    path_filestat_set_times: noPath,
    path_link: noPath,
    path_open: noPath,
    path_readlink: noPath,
    path_remove_directory: noPath,
    path_rename: noPath,
    path_symlink: noPath,
    path_unlink_file: noPath,

    poll_oneoff: (inPtr: number, outPtr: number, nsubs: number, neventsPtr: number) => {
      if (nsubs === 0) return E.INVAL;
      const v = view();
      const events: { userdata: bigint; type: number; error: number }[] = [];
      let wakeAt: bigint | null = null; // monotonic ns of the earliest clock subscription
      const clocks: { userdata: bigint; at: bigint }[] = [];
      for (let i = 0; i < nsubs; i++) {
        const s = inPtr + i * SUB_SIZE;
        const userdata = v.getBigUint64(s, true);
        const tag = v.getUint8(s + 8);
        if (tag === EVENTTYPE.CLOCK) {
          const id = v.getUint32(s + 16, true);
          const timeout = v.getBigUint64(s + 24, true);
          const abs = (v.getUint16(s + 40, true) & SUBCLOCK_ABSTIME) !== 0;
          const clockNow = now(id);
          if (clockNow === null) {
            events.push({ userdata, type: tag, error: E.INVAL });
            continue;
          }
          const at = process.hrtime.bigint() + (abs ? timeout - clockNow : timeout);
          clocks.push({ userdata, at });
          if (wakeAt === null || at < wakeAt) wakeAt = at;
        } else if (tag === EVENTTYPE.FD_READ || tag === EVENTTYPE.FD_WRITE) {
          const fd = v.getUint32(s + 16, true);
          const ready = tag === EVENTTYPE.FD_READ ? fd === STDIN : fd === STDOUT || fd === STDERR;
          events.push({ userdata, type: tag, error: ready ? E.SUCCESS : E.BADF });
        } else {
          events.push({ userdata, type: tag, error: E.INVAL });
        }
      }
      // Descriptor events are ready at once; only with none does the guest sleep, until its first clock.
      if (events.length === 0 && wakeAt !== null) {
        const ms = Math.ceil(Number(wakeAt - process.hrtime.bigint()) / 1e6);
        const clock = io.clock?.();
        const left = clock ? clock.remainingMs() : Infinity;
        if (clock && ms > left) {
          // The call's deadline comes first: sleep until just past it and stop there, so that a guest
          // asleep in here cannot hold its worker beyond the deadline (check() throws DeadlineExceeded).
          sleepMs(Math.ceil(Math.max(0, left)) + 1);
          clock.check();
        }
        sleepMs(Math.ceil(Number(wakeAt - process.hrtime.bigint()) / 1e6));
        const t = process.hrtime.bigint();
        for (const c of clocks) if (c.at <= t || c.at === wakeAt) events.push({ userdata: c.userdata, type: EVENTTYPE.CLOCK, error: E.SUCCESS });
      }
      const out = view();
      events.forEach((e, i) => {
        const p = outPtr + i * EVENT_SIZE;
        for (let b = 0; b < EVENT_SIZE; b++) out.setUint8(p + b, 0);
        out.setBigUint64(p, e.userdata, true);
        out.setUint16(p + 8, e.error, true);
        out.setUint8(p + 10, e.type);
      });
      out.setUint32(neventsPtr, events.length, true);
      return E.SUCCESS;
    },

    proc_exit: (code: number) => {
      throw new GuestExit(code);
    },
    // A guest may not signal the process it runs in.
    proc_raise: () => E.NOSYS,

    sock_accept: noDescriptor,
    sock_recv: noDescriptor,
    sock_send: noDescriptor,
    sock_shutdown: noDescriptor,
  };
}

/** Every WASI function a guest may import (module/sandbox-module.ts refuses any other). */
export const WASI_FUNCTIONS: ReadonlySet<string> = new Set(Object.keys(guestWasi({ memory: () => new WebAssembly.Memory({ initial: 0 }), write: () => {} })));
