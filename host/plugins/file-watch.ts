import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

// Watches plugin files for replacement. A write in place and a rename over the
// file both count: the directory is watched, not the file, because a rename
// replaces the file's inode and a watch on the old one would go quiet. Events
// are debounced, and a file that is not valid WebAssembly yet is taken as
// still being written: it is looked at again until `settleMs` has passed,
// then reported as it is (the registry refuses it). One write often raises
// several events: content just reported is not reported again. (The first
// report of a file always goes out: the owner compares it with what it runs.)

export interface FileWatchOptions {
  /** Quiet time after the last event before the file is read. */
  debounceMs: number;
  /** How long a file that is not complete yet (see isComplete) may take to become complete. */
  settleMs: number;
  /** Whether the file's bytes are whole; WebAssembly validation by default (the config file watch checks JSON). */
  isComplete?: (bytes: Buffer) => boolean;
}

/**
 * Calls `onChange(file)` once a watched file has changed and settled.
 *
 * @example
 * const w = new PluginFileWatcher({ debounceMs: 200, settleMs: 2000 }, (file) => registry.reloadFile(file));
 * w.watch('/plugins/auth.wasm');
 */
export class PluginFileWatcher {
  private readonly dirs = new Map<string, FSWatcher>();
  private readonly files = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly firstSeen = new Map<string, number>();
  /** sha256 of each file's content when it was last reported. */
  private readonly reported = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly opts: FileWatchOptions,
    private readonly onChange: (file: string) => void,
    private readonly onError: (dir: string, err: Error) => void = () => {},
  ) {}

  /** Starts watching a file (its directory, once). Watching a file twice is harmless. */
  watch(file: string): void {
    const abs = path.resolve(file);
    this.files.add(abs);
    const dir = path.dirname(abs);
    if (this.dirs.has(dir) || this.closed) return;
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null) {
          for (const f of this.files) if (path.dirname(f) === dir) this.touched(f);
          return;
        }
        const f = path.join(dir, name.toString());
        if (this.files.has(f)) this.touched(f);
      });
      w.on('error', (e) => this.onError(dir, e));
      this.dirs.set(dir, w);
    } catch (e) {
      this.onError(dir, e as Error);
    }
  }

  /** Stops watching a file; its directory's watch ends with its last file. */
  unwatch(file: string): void {
    const abs = path.resolve(file);
    this.files.delete(abs);
    this.reported.delete(abs);
    this.clearTimer(abs);
    const dir = path.dirname(abs);
    if ([...this.files].some((f) => path.dirname(f) === dir)) return;
    this.dirs.get(dir)?.close();
    this.dirs.delete(dir);
  }

  close(): void {
    this.closed = true;
    for (const w of this.dirs.values()) w.close();
    this.dirs.clear();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.files.clear();
  }

  private touched(file: string): void {
    if (!this.firstSeen.has(file)) this.firstSeen.set(file, Date.now());
    this.schedule(file);
  }

  private schedule(file: string): void {
    this.clearTimer(file);
    const t = setTimeout(() => void this.settle(file), this.opts.debounceMs);
    t.unref();
    this.timers.set(file, t);
  }

  private clearTimer(file: string): void {
    const t = this.timers.get(file);
    if (t) clearTimeout(t);
    this.timers.delete(file);
  }

  /** Reports the file if it is complete WebAssembly (or gone, or given up on); else looks again later. */
  private async settle(file: string): Promise<void> {
    this.timers.delete(file);
    if (this.closed || !this.files.has(file)) return;
    let complete = true;
    let content = '';
    try {
      const bytes = await readFile(file);
      content = digest(bytes);
      complete = this.opts.isComplete ? this.opts.isComplete(bytes) : WebAssembly.validate(bytes);
    } catch {
      // Missing or unreadable (mid-rename): let the registry say so if it stays that way.
      complete = false;
    }
    const waited = Date.now() - (this.firstSeen.get(file) ?? Date.now());
    if (!complete && waited < this.opts.settleMs) {
      this.schedule(file);
      return;
    }
    this.firstSeen.delete(file);
    if (content && this.reported.get(file) === content) return;
    if (content) this.reported.set(file, content);
    this.onChange(file);
  }
}

function digest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
