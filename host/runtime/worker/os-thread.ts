// The plugin worker's own operating-system thread: its name and its CPU
// scheduling priority. Plugin code that spins until its deadline must not
// take the CPU from the main thread, which answers that deadline and serves
// every other connection (README "Why plugin threads at a lower priority?").
// On Linux, setpriority(PRIO_PROCESS, tid) applies to that one thread, and a
// thread can find its own id through /proc/thread-self.

import { readlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** What `top -H` and /proc/<pid>/task/<tid>/comm show for a plugin thread (at most 15 bytes). */
export const PLUGIN_THREAD_NAME = 'sandgate-plugin';

/**
 * Names this thread and lowers its priority to `nice` (0: left as it is).
 * Returns why the priority could not be set (no /proc/thread-self: not Linux;
 * refused by the system), or null when it is set or not asked for.
 * Never throws: a plugin thread at normal priority still works.
 *
 * @example
 * const refused = setUpPluginThread(10);
 * if (refused) post({ t: 'ready', priorityRefused: refused });
 */
export function setUpPluginThread(nice: number): string | null {
  let tid: number;
  try {
    // "<pid>/task/<tid>": this thread's own entry.
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return nice === 0 ? null : 'this system has no /proc/thread-self (thread priorities are set on Linux only)';
  }
  try {
    writeFileSync('/proc/thread-self/comm', PLUGIN_THREAD_NAME);
  } catch {
    // Only a convenience for operators (top -H): nothing depends on it.
  }
  if (nice === 0) return null;
  try {
    setPriority(tid, nice);
    return null;
  } catch (e) {
    return `setpriority(${tid}, ${nice}) failed: ${(e as Error).message}`;
  }
}
