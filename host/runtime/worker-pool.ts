import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PluginFailure } from './failure.js';
import type { InitOutput } from '../abi/types.js';
import type { FromWorker, PluginSpec, ToWorker } from './messages.js';

type Request = Extract<ToWorker, { t: 'load' | 'call' | 'unload' }>;
type Reply = Extract<FromWorker, { t: 'loaded' | 'done' }>;
/** A request before the pool gives it a sequence number (a distributive Omit keeps the union). */
type Unsequenced<T> = T extends unknown ? Omit<T, 'seq'> : never;

interface Job {
  msg: Unsequenced<Request>;
  plugin: string;
  hook: string;
  timeoutMs: number;
  /** Only this worker may run the job (loading a plugin into a given worker). */
  target?: PluginWorker;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
}

export interface PoolEvents {
  onLog(level: number, pid: string, rid: string, msg: string): void;
  onWorkerRestart(reason: string): void;
}

export interface PoolOptions {
  /** Plugin threads; each holds one instance of every loaded plugin. */
  size?: number;
  /**
   * Lowest plugin log level (ABI.md §4.2: 0 debug .. 3 error) worth sending to
   * the main thread. Filtering in the worker saves a message per dropped line.
   */
  minLogLevel?: number;
}

const WORKER_URL = new URL('./worker/entry.js', import.meta.url);

/** One thread and its state as seen from the main thread. */
class PluginWorker {
  readonly thread: Worker;
  /** Accepts untargeted calls only once every loaded plugin has an instance in it. */
  ready = false;
  /** Busy from dispatch until the reply, and after a failure until the instance is re-created. */
  busy = false;
  job: Job | null = null;
  seq = 0;
  timer: NodeJS.Timeout | null = null;
  dead = false;

  constructor(minLogLevel: number) {
    // The Extism SDK loads node:wasi, which prints an experimental warning per thread.
    this.thread = new Worker(WORKER_URL, {
      name: 'sandgate-plugin',
      execArgv: [...process.execArgv, '--disable-warning=ExperimentalWarning'],
      workerData: { minLogLevel },
    });
  }
}

/**
 * Runs plugin calls on a small pool of worker threads, each call under a
 * deadline watched from this (main) thread. A worker whose call overruns is
 * terminated and replaced; its queued work goes to the other workers.
 */
export class WorkerPool {
  private readonly workers: PluginWorker[] = [];
  private readonly queue: Job[] = [];
  /** Every loaded plugin, so that a replacement worker can recreate them all. */
  private readonly specs = new Map<string, { spec: PluginSpec; initTimeoutMs: number }>();
  private closed = false;
  readonly size: number;
  private readonly minLogLevel: number;

  constructor(
    private readonly events: PoolEvents,
    opts: PoolOptions = {},
  ) {
    this.size = opts.size ?? Math.max(2, Math.min(4, availableParallelism()));
    this.minLogLevel = opts.minLogLevel ?? 0;
    for (let i = 0; i < this.size; i++) this.spawn(true);
  }

  /** Creates an instance of the plugin in every worker (running init in each); resolves with the first worker's answer. */
  async load(spec: PluginSpec, initTimeoutMs: number): Promise<{ init: InitOutput; name: string | undefined }> {
    const replies = await Promise.allSettled(
      this.workers.map((w, i) => this.submit({ t: 'load', spec, wantName: i === 0 }, spec.name, 'init', initTimeoutMs, w)),
    );
    const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.unload(spec.id).catch(() => {});
      throw failed.reason;
    }
    this.specs.set(spec.id, { spec, initTimeoutMs });
    const first = (replies[0] as PromiseFulfilledResult<Reply>).value;
    return first.t === 'loaded' ? { init: first.init, name: first.name } : { init: {}, name: undefined };
  }

  /** Runs one hook call; resolves with its validated output, rejects with a PluginFailure if the plugin misbehaves. */
  async call(pid: string, plugin: string, hook: string, input: Uint8Array, rid: string, timeoutMs: number): Promise<unknown> {
    const reply = await this.submit({ t: 'call', pid, hook, input, rid }, plugin, hook, timeoutMs);
    return reply.t === 'done' ? reply.value : undefined;
  }

  /** Drops the plugin from every worker, calling its cleanup after its in-flight call ends. */
  async unload(pid: string, timeoutMs = 5000): Promise<void> {
    const entry = this.specs.get(pid);
    this.specs.delete(pid);
    const name = entry?.spec.name ?? pid;
    await Promise.allSettled([...this.workers].map((w) => this.submit({ t: 'unload', pid }, name, 'cleanup', timeoutMs, w)));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new PluginFailure('unavailable', job.plugin, job.hook, 'the gateway is shutting down'));
    // kill() removes each worker from this.workers, so iterate over a copy.
    await Promise.all([...this.workers].map((w) => this.kill(w, 'shutdown', false)));
  }

  stats(): { workers: number; ready: number; busy: number; queued: number } {
    return {
      workers: this.workers.length,
      ready: this.workers.filter((w) => w.ready).length,
      busy: this.workers.filter((w) => w.busy).length,
      queued: this.queue.length,
    };
  }

  private submit(msg: Unsequenced<Request>, plugin: string, hook: string, timeoutMs: number, target?: PluginWorker): Promise<Reply> {
    if (this.closed) return Promise.reject(new PluginFailure('unavailable', plugin, hook, 'the gateway is shutting down'));
    return new Promise<Reply>((resolve, reject) => {
      this.queue.push({ msg, plugin, hook, timeoutMs, target, resolve, reject });
      this.pump();
    });
  }

  /** Hands queued jobs to idle workers. Targeted jobs (loads) may go to a worker that is not yet ready. */
  private pump(): void {
    for (const w of this.workers) {
      if (w.busy || w.dead) continue;
      const i = this.queue.findIndex((j) => (j.target ? j.target === w : w.ready));
      if (i === -1) continue;
      const [job] = this.queue.splice(i, 1);
      this.dispatch(w, job);
    }
  }

  private dispatch(w: PluginWorker, job: Job): void {
    w.busy = true;
    w.job = job;
    const seq = ++w.seq;
    const msg = { ...job.msg, seq } as ToWorker;
    const transfer: ArrayBuffer[] = [];
    if (msg.t === 'call') {
      // Copy into a buffer of its own before transferring: msgpackr hands out views of a shared
      // pool (and Buffer#slice is a view too), so transferring those would detach the pool.
      msg.input = new Uint8Array(msg.input);
      transfer.push(msg.input.buffer as ArrayBuffer);
    }
    try {
      w.thread.postMessage(msg, transfer);
    } catch (e) {
      w.busy = false;
      w.job = null;
      job.reject(new PluginFailure('unavailable', job.plugin, job.hook, `could not send the call to a plugin worker: ${(e as Error).message}`));
      queueMicrotask(() => this.pump());
      return;
    }
    w.timer = setTimeout(() => this.onDeadline(w, job), job.timeoutMs);
  }

  private onDeadline(w: PluginWorker, job: Job): void {
    if (w.job !== job) return;
    w.job = null;
    job.reject(new PluginFailure('timeout', job.plugin, job.hook, `${job.hook} did not return within ${job.timeoutMs} ms`));
    void this.kill(w, `plugin "${job.plugin}" overran its ${job.timeoutMs} ms deadline in ${job.hook}`, true);
  }

  private onMessage(w: PluginWorker, msg: FromWorker): void {
    if (msg.t === 'log') {
      this.events.onLog(msg.level, msg.pid, msg.rid, msg.msg);
      return;
    }
    if (msg.t === 'ready') {
      // The instance that failed has been re-created: the worker may take work again.
      this.clearTimer(w);
      w.busy = false;
      this.pump();
      return;
    }
    const job = w.job;
    if (!job || msg.seq !== w.seq) return; // a late answer to a call already given up on
    w.job = null;
    this.clearTimer(w);
    if (msg.t === 'failed') {
      job.reject(new PluginFailure(msg.kind, job.plugin, job.hook, msg.message));
      if (msg.recycling) {
        // Bound the re-creation (its init may loop as well).
        const initTimeoutMs = this.specs.get((job.msg as { pid?: string }).pid ?? '')?.initTimeoutMs ?? 10_000;
        w.timer = setTimeout(() => void this.kill(w, `plugin "${job.plugin}" did not re-initialise within ${initTimeoutMs} ms`, true), initTimeoutMs);
        return;
      }
    } else {
      job.resolve(msg);
    }
    w.busy = false;
    this.pump();
  }

  private clearTimer(w: PluginWorker): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
  }

  private spawn(initial: boolean): PluginWorker {
    const w = new PluginWorker(this.minLogLevel);
    this.workers.push(w);
    w.thread.on('message', (m: FromWorker) => this.onMessage(w, m));
    w.thread.on('error', (e) => void this.kill(w, `worker crashed: ${e.message}`, true));
    w.thread.on('exit', () => {
      if (!w.dead) void this.kill(w, 'worker exited unexpectedly', true);
    });
    if (initial) {
      w.ready = true;
      return w;
    }
    // A replacement gets every loaded plugin before it takes general traffic.
    const loads = [...this.specs.values()].map(({ spec, initTimeoutMs }) =>
      this.submit({ t: 'load', spec, wantName: false }, spec.name, 'init', initTimeoutMs, w).catch((e: Error) => {
        this.events.onLog(3, spec.id, '', `replacement worker could not load the plugin: ${e.message}`);
      }),
    );
    void Promise.all(loads).then(() => {
      w.ready = true;
      this.pump();
    });
    return w;
  }

  private async kill(w: PluginWorker, reason: string, replace: boolean): Promise<void> {
    if (w.dead) return;
    w.dead = true;
    w.ready = false;
    this.clearTimer(w);
    const job = w.job;
    w.job = null;
    job?.reject(new PluginFailure('unavailable', job.plugin, job.hook, `plugin worker stopped: ${reason}`));
    // Jobs that only this worker could run have nowhere else to go.
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const j = this.queue[i];
      if (j.target === w) {
        this.queue.splice(i, 1);
        j.reject(new PluginFailure('unavailable', j.plugin, j.hook, `plugin worker stopped: ${reason}`));
      }
    }
    this.workers.splice(this.workers.indexOf(w), 1);
    if (replace && !this.closed) {
      this.events.onWorkerRestart(reason);
      this.spawn(false);
    }
    await w.thread.terminate();
    this.pump();
  }
}
