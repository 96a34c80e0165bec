// Child processes of a benchmark run, and their CPU time.
//
// Every child is registered here; killAll() runs in run.ts's finally block and
// again (synchronously, SIGKILL) from process 'exit', so no gateway outlives the
// benchmark even if it crashes or is interrupted.

import { type ChildProcess, execFileSync, spawn, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

export class Children {
  private readonly live = new Set<ChildProcess>();

  spawn(command: string, args: string[], opts: SpawnOptions): ChildProcess {
    const child = spawn(command, args, opts);
    this.live.add(child);
    child.once('exit', () => this.live.delete(child));
    child.once('error', () => this.live.delete(child));
    return child;
  }

  /** SIGTERM, then SIGKILL if it has not exited within graceMs. */
  async stop(child: ChildProcess, graceMs = 3000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
    const late = await Promise.race([exited.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      child.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
    }
    this.live.delete(child);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live].map((c) => this.stop(c)));
  }

  /** Last resort from process 'exit': synchronous, no waiting. */
  killAllNow(): void {
    for (const c of this.live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    this.live.clear();
  }
}

let clkTck: number | undefined;

/** Clock ticks per second for /proc/<pid>/stat times. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/**
 * CPU time (user + system, microseconds) of a whole process, every thread
 * included (the process-level /proc/<pid>/stat sums its threads).
 */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14
  const stime = Number(fields[12]); // field 15
  return ((utime + stime) * 1e6) / clockTicks();
}

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pins every thread of this process (and threads it creates later) to the given CPU list. */
export function pinSelf(cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The CPU list this process may run on, as taskset prints it (e.g. "0-1"). */
export function selfAffinity(): string {
  try {
    const out = execFileSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' });
    return out.slice(out.lastIndexOf(':') + 1).trim();
  } catch {
    return 'unknown';
  }
}
