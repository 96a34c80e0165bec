// The plugin worker's own operating-system thread: its name and its CPU
// scheduling priority. Plugin code that spins until its deadline must not
// take the CPU from the main thread, which answers that deadline and serves
// every other connection (README "Why can long plugin calls run at a lower priority, and why not by default?").
// On Linux, setpriority(PRIO_PROCESS, tid) applies to that one thread, and a
// thread can find its own id through /proc/thread-self.

import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** What `top -H` and /proc/<pid>/task/<tid>/comm show for a plugin thread (at most 15 bytes). */
export const PLUGIN_THREAD_NAME = 'sandgate-plugin';

/** This thread's id (Linux), and why its priority could not be set (null: set, or not asked for). */
export interface PluginThread {
  tid: number | null;
  refused: string | null;
}

/**
 * Names this thread and lowers its priority to `nice` (0: left as it is), once
 * per thread: later calls return the first call's result. Never throws: a plugin thread at normal priority still works. The id lets
 * the main thread lower this thread's priority further while a call runs long
 * (worker-pool.ts).
 *
 * @example
 * const { tid, refused } = setUpPluginThread(10);
 * post({ t: 'ready', tid, priorityRefused: refused ?? undefined });
 */
export function setUpPluginThread(nice: number): PluginThread {
  setUp ??= setUpOnce(nice);
  return setUp;
}

let setUp: PluginThread | undefined;

function setUpOnce(nice: number): PluginThread {
  let tid: number;
  try {
    // "<pid>/task/<tid>": this thread's own entry.
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return { tid: null, refused: nice === 0 ? null : 'this system has no /proc/thread-self (thread priorities are set on Linux only)' };
  }
  try {
    writeFileSync('/proc/thread-self/comm', PLUGIN_THREAD_NAME);
  } catch {
    // Only a convenience for operators (top -H): nothing depends on it.
  }
  return { tid, refused: nice === 0 ? null : setThreadNice(tid, nice) };
}

/**
 * CPU time one thread of this process has run, in nanoseconds (first field of
 * /proc/self/task/<tid>/schedstat), or null where it cannot be read. Wall time
 * says nothing about whether a call spins: on a busy machine a short call can
 * wait for the CPU for longer than it runs.
 *
 * @example
 * const before = threadCpuNs(tid); // ... later: threadCpuNs(tid)! - before! ns of CPU meanwhile
 */
export function threadCpuNs(tid: number): number | null {
  try {
    const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'latin1').split(' ', 1)[0]);
    return Number.isFinite(ns) ? ns : null;
  } catch {
    return null;
  }
}

/**
 * Sets one thread's niceness (any thread of this process, by id). Returns why
 * it failed, or null. Raising a thread's priority again (a lower niceness)
 * needs CAP_SYS_NICE (or RLIMIT_NICE) on Linux; lowering it never does.
 *
 * @example
 * const refused = setThreadNice(tid, 19); // null: done
 */
export function setThreadNice(tid: number, nice: number): string | null {
  try {
    setPriority(tid, nice);
    return null;
  } catch (e) {
    return `setpriority(${tid}, ${nice}) failed: ${(e as Error).message}`;
  }
}
