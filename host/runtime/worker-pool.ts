import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { OUTPUT_PARSERS } from '../abi/outputs.js';
import { DEFAULTS } from '../config/schema.js';
import type { HookName, InitOutput } from '../abi/types.js';
import { CHANNEL_BYTES, Channel, HOOK_INDEX, INPUT_CAP, INPUT_OFF, OUTPUT_OFF, RID_CAP, RID_OFF, W } from './channel.js';
import { PluginFailure } from './failure.js';
import { setThreadNice, threadCpuNs } from './worker/os-thread.js';
import type { FromWorker, PluginSpec, ToWorker, WorkerInit } from './messages.js';

type Request = Extract<ToWorker, { t: 'load' | 'unload' }>;
type Reply = Extract<FromWorker, { t: 'loaded' | 'done' }>;
/** A request before the pool gives it a sequence number (a distributive Omit keeps the union). */
type Unsequenced<T> = T extends unknown ? Omit<T, 'seq'> : never;

interface Job {
  /** A control request (load, unload), or null for a hook call. */
  msg: Unsequenced<Request> | null;
  plugin: string;
  hook: string;
  timeoutMs: number;
  /** Hook calls only. */
  pid: string;
  /** Counted in the plugin's bulkhead from dispatch until it settles. */
  occupying?: boolean;
  /**
   * Hook calls only: the worker is first creating the plugin's instance (it had
   * none, or the last one failed), under init_timeout_ms. The hook's own
   * deadline, timeout_ms, starts once the instance is there.
   */
  creating?: boolean;
  /** Hook calls waiting in the queue: sheds the call if no worker takes it within queue_timeout_ms. */
  shedTimer?: NodeJS.Timeout;
  input: Uint8Array | null;
  rid: string;
  /** performance.now() by which the worker must answer (set at dispatch, and again when an instance creation ends). */
  deadline: number;
  seq: number;
  /** Only this worker may run the job (loading a plugin into a given worker). */
  target?: PluginWorker;
  /** Hook calls resolve with the validated output, control requests with the reply. */
  resolve: (r: unknown) => void;
  reject: (e: Error) => void;
  /**
   * Hook calls only: rejects the caller's promise but keeps the job's
   * bulkhead place, while its worker may still be stopping the call (its
   * deadline passed); released when the worker reports back or is terminated.
   */
  answerOnly?: (e: Error) => void;
}

export interface PoolEvents {
  /** A plugin's log line; `plugin` is its name. */
  onLog(level: number, plugin: string, rid: string, msg: string): void;
  /** A call's log text over max_log_bytes_per_call was dropped. */
  onLogDropped(plugin: string, bytes: number): void;
  /** A worker was terminated and another took its place: the pre-started spare (`spare` true), or a thread started now. */
  onWorkerRestart(reason: string, spare: boolean): void;
  /** A plugin's instance was created again in a worker (its last one there failed, or the worker is a replacement). */
  onInstanceCreated(plugin: string): void;
  /** The workers' lower priority (workerNice) could not be set: said once per pool, the threads run at normal priority. */
  onThreadPriorityRefused?(reason: string): void;
}

export interface PoolOptions {
  /** Plugin threads; each holds one instance of every loaded plugin. */
  size?: number;
  /**
   * Bulkhead: how many workers one plugin's calls may occupy at once (default:
   * all but one), so a plugin that loops or crawls cannot starve the others.
   */
  maxWorkersPerPlugin?: number;
  /**
   * Longest a hook call may wait for a worker before it is shed (rejected as
   * `overloaded`). Its own deadline only starts once a worker takes it.
   */
  queueTimeoutMs?: number;
  /**
   * Lowest plugin log level (ABI.md §4.2: 0 debug .. 3 error) worth sending to
   * the main thread. Filtering in the worker saves a message per dropped line.
   */
  minLogLevel?: number;
  /**
   * The deepest nesting of a value in a hook's output (limits.max_json_depth);
   * deeper is plugin_bad_output. Undefined: only the codec's own bound.
   */
  maxValueDepth?: number;
  /**
   * Niceness of the plugin threads (runtime.worker_nice, 0 to 19; 0 leaves
   * them at the main thread's priority): plugin code burning CPU then yields
   * the core to the main thread, which answers deadlines and serves HTTP.
   */
  workerNice?: number;
  /**
   * Niceness a plugin thread drops to while its call runs longer than
   * LONG_CALL_MS (runtime.long_call_nice), back to workerNice when the call
   * ends: a plugin spinning toward its deadline then yields the core to the
   * short calls of the other workers. Not above workerNice: off.
   */
  longCallNice?: number;
}

/** Atomics.waitAsync (V8 ships it in Node 20; the project's TypeScript lib predates its typing). */
const waitAsync = (Atomics as unknown as {
  waitAsync(ta: Int32Array, index: number, value: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}).waitAsync;

const WORKER_URL = new URL('./worker/boot.js', import.meta.url);

/**
 * A hook call (or instance creation) still running after this long is
 * watched, every LONG_CALL_MS: once its thread has used half of that in CPU
 * time since, it is spinning, and its call is a long call. A healthy hook
 * needs tens of microseconds of CPU. CPU time, not wall time: on a busy
 * machine a short call may wait for a core longer than that, and lowering its
 * priority then would only make it wait more.
 */
const LONG_CALL_MS = 5;

/**
 * How long a worker whose call was answered at its deadline has to report
 * that it stopped the guest (the guest checks the clock every few thousand
 * instructions, and a host call's sleep ends at the deadline); then it is
 * terminated and the spare takes its place. It delays no answer: the call
 * was answered at the deadline.
 */
const STOP_GRACE_MS = 250;

/** One thread and its state as seen from the main thread. */
class PluginWorker {
  readonly thread: Worker;
  readonly channel = new Channel(new SharedArrayBuffer(CHANNEL_BYTES));
  /** Takes hook calls: at once for the first workers (their plugins load before any call), once its thread runs for a replacement. */
  ready = false;
  /** Its thread has started (said 'ready'): a job sent before would count the thread's start-up against its deadline. */
  running = false;
  /** Busy from dispatch until the reply. */
  busy = false;
  job: Job | null = null;
  seq = 0;
  /**
   * Plugins with a working instance in this worker: added when an instance is
   * created, removed when a call fails (the worker discards that instance). A
   * call of a plugin not in here has its instance created first.
   */
  readonly live = new Set<string>();
  /**
   * The deadline watchdog: one timer per worker, re-armed (refresh()) at each
   * dispatch rather than created and cleared per call. It may fire after the
   * job it was armed for has ended; it then checks the current job's deadline.
   */
  watchdog: NodeJS.Timeout | null = null;
  watchdogMs = -1;
  dead = false;
  /** The OS thread's id (from its 'ready'), to change its priority; null until then or where unknown. */
  tid: number | null = null;
  /** Its current call ran past LONG_CALL_MS: the thread runs at longCallNice until the call ends. */
  lowered = false;
  /** The thread's CPU time (ns) when its current call was first looked at, LONG_CALL_MS in; -1: not yet. */
  cpuMark = -1;
  /**
   * A hook call answered at its deadline (a timeout) that this worker has not
   * reported back on yet: it is stopping the guest itself (worker/entry.ts).
   * The worker stays busy until it reports, or is terminated after STOP_GRACE_MS.
   */
  overdue: Job | null = null;

  constructor(minLogLevel: number, nice: number, plugins: WorkerInit['plugins']) {
    const workerData: WorkerInit = { minLogLevel, nice, channel: this.channel.sab, plugins };
    // The Extism SDK loads node:wasi, which prints an experimental warning per thread.
    // Only that flag: the process's own execArgv is not passed on, because Node refuses
    // per-process flags in a worker (--max-old-space-size, --expose-gc, --inspect:
    // ERR_WORKER_INVALID_EXEC_ARGV), and none of them is meant for plugin threads.
    this.thread = new Worker(WORKER_URL, {
      name: 'sandgate-plugin',
      execArgv: ['--disable-warning=ExperimentalWarning'],
      workerData,
    });
  }

  /** Posts a control message and wakes the worker, which sleeps on the channel's doorbell between calls. */
  send(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.thread.postMessage(msg, transfer);
    this.channel.ring();
  }
}

/**
 * Runs plugin calls on a small pool of worker threads, each call under a
 * deadline watched from this (main) thread. A worker whose call overruns is
 * terminated and replaced; its queued work goes to the other workers.
 *
 * The replacement is a spare: one more thread, started in the background once
 * plugins are loaded, that knows every plugin but takes no call until it
 * takes a terminated worker's place. The call's answer never waits for a
 * thread to start, and the next spare starts in the background once no
 * other thread is starting. Terminations are rare: the guest stops itself at
 * its deadline (worker/entry.ts); only a call that cannot be stopped from
 * inside (an init that loops) costs a thread.
 *
 * An instance that failed is discarded at once and the worker takes the next
 * call; the plugin's next call in that worker creates a new instance first,
 * as part of that call, under the plugin's init_timeout_ms. A replacement
 * worker likewise starts with no instances. So an init that loops or traps
 * when run again is a failure of one call of its own plugin (counted by its
 * circuit breaker, bounded by the bulkhead), never a worker held up for the
 * others.
 */
export class WorkerPool {
  private readonly workers: PluginWorker[] = [];
  /** The pre-started replacement (not in `workers`, takes no call until promoted); null until plugins are loaded. */
  private spare: PluginWorker | null = null;
  /** A spawn is scheduled (setImmediate): starting a thread is kept off the path of the call that caused it. */
  private spawnScheduled = false;
  private readonly queue: Job[] = [];
  /** Every loaded plugin, so that a replacement worker knows them all (and creates their instances when called). */
  private readonly specs = new Map<string, { spec: PluginSpec; slot: number; initTimeoutMs: number }>();
  /** The number by which channel calls name each plugin (given at load, the same in every worker). */
  private readonly slots = new Map<string, number>();
  /** Plugin names by id, for messages that name only the id; kept until an unload has ended. */
  private readonly names = new Map<string, string>();
  private nextSlot = 1;
  private closed = false;
  /** The first plugin load started the pool's threads. */
  private started = false;
  readonly size: number;
  readonly maxWorkersPerPlugin: number;
  /** Workers each plugin's calls occupy now (the bulkhead's count). */
  private readonly occupied = new Map<string, number>();
  private readonly minLogLevel: number;
  private readonly maxValueDepth: number | undefined;
  readonly queueTimeoutMs: number;
  readonly workerNice: number;
  /** Niceness of a thread whose call runs long; no lowering when not above workerNice. */
  readonly longCallNice: number;
  /** Off when longCallNice is not above workerNice, or once the system refused a priority change. */
  private lowersLongCalls: boolean;
  /** onThreadPriorityRefused was called (once is enough: every thread would say the same). */
  private priorityRefusalReported = false;

  constructor(
    private readonly events: PoolEvents,
    opts: PoolOptions = {},
  ) {
    this.size = opts.size ?? Math.max(2, Math.min(4, availableParallelism()));
    this.maxWorkersPerPlugin = Math.max(1, Math.min(this.size, opts.maxWorkersPerPlugin ?? this.size - 1));
    this.minLogLevel = opts.minLogLevel ?? 0;
    this.maxValueDepth = opts.maxValueDepth;
    this.queueTimeoutMs = opts.queueTimeoutMs ?? DEFAULTS.queueTimeoutMs;
    this.workerNice = opts.workerNice ?? DEFAULTS.workerNice;
    this.longCallNice = opts.longCallNice ?? DEFAULTS.longCallNice;
    this.lowersLongCalls = this.longCallNice > this.workerNice;
    // No threads yet: a gateway without plugins never needs them (each costs ~17 MiB idle).
    // The first load() starts them, whether at start-up or through a later config reload.
  }

  /** Starts the pool's threads if it has none yet (before the first plugin loads). */
  private ensureWorkers(): void {
    if (this.started || this.closed) return;
    this.started = true;
    for (let i = 0; i < this.size; i++) this.spawn(true);
  }

  /** Creates an instance of the plugin in every worker (running init in each); resolves with the first worker's answer. */
  async load(spec: PluginSpec, initTimeoutMs: number): Promise<{ init: InitOutput; name: string | undefined }> {
    this.ensureWorkers();
    const slot = this.nextSlot++;
    this.slots.set(spec.id, slot);
    this.names.set(spec.id, spec.name);
    const targets = [...this.workers];
    const replies = await Promise.allSettled(
      targets.map((w, i) => this.submit({ t: 'load', spec, slot, wantName: i === 0 }, spec.name, 'init', initTimeoutMs, w)),
    );
    const failed = replies.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await this.unload(spec.id).catch(() => {});
      throw failed.reason;
    }
    this.specs.set(spec.id, { spec, slot, initTimeoutMs });
    // Threads started during the load (the spare, a replacement) may not know this plugin: they learn
    // it now (no instance: each creates one when the plugin is first called there).
    for (const w of this.spare ? [...this.workers, this.spare] : this.workers) if (!targets.includes(w)) w.send({ t: 'register', spec, slot });
    this.scheduleSpawn();
    const first = (replies[0] as PromiseFulfilledResult<Reply>).value;
    return first.t === 'loaded' ? { init: first.init, name: first.name } : { init: {}, name: undefined };
  }

  /** Runs one hook call; resolves with its validated output, rejects with a PluginFailure if the plugin misbehaves. */
  call(pid: string, plugin: string, hook: string, input: Uint8Array, rid: string, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new PluginFailure('unavailable', plugin, hook, 'the gateway is shutting down'));
    return new Promise<unknown>((resolve, reject) => {
      const job: Job = {
        msg: null, plugin, hook, timeoutMs, pid, input, rid, deadline: 0, seq: 0,
        resolve: (v) => {
          this.release(job);
          resolve(v);
        },
        reject: (e) => {
          this.release(job);
          reject(e);
        },
        answerOnly: reject,
      };
      // Fast path: an idle worker takes the call at once, without going through the queue.
      if (this.queue.length === 0 && this.admits(job)) {
        for (const w of this.workers) {
          if (!w.busy && !w.dead && w.ready) {
            this.dispatch(w, job);
            return;
          }
        }
      }
      this.queue.push(job);
      job.shedTimer = setTimeout(() => this.shed(job), this.queueTimeoutMs);
      job.shedTimer.unref();
      this.pump();
    });
  }

  /** A hook call no worker took in time: rejected, so that a backlog costs a quick 503 (or a skip) rather than ever longer waits. */
  private shed(job: Job): void {
    job.shedTimer = undefined;
    const i = this.queue.indexOf(job);
    if (i === -1) return; // taken by a worker meanwhile
    this.queue.splice(i, 1);
    job.reject(new PluginFailure('overloaded', job.plugin, job.hook, `plugin "${job.plugin}" is overloaded: its ${job.hook} call waited ${this.queueTimeoutMs} ms for a free worker (runtime.queue_timeout_ms)`));
  }

  /** Drops the plugin from every worker, calling its cleanup after its in-flight call ends. */
  async unload(pid: string, timeoutMs = 5000): Promise<void> {
    const entry = this.specs.get(pid);
    this.specs.delete(pid);
    const name = entry?.spec.name ?? pid;
    // The spare holds no instance: it forgets the plugin, no cleanup to wait for.
    if (this.spare) this.spare.send({ t: 'forget', pid });
    await Promise.allSettled([...this.workers].map((w) => this.submit({ t: 'unload', pid }, name, 'cleanup', timeoutMs, w)));
    if (!this.specs.has(pid)) {
      this.slots.delete(pid);
      this.names.delete(pid);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) {
      clearTimeout(job.shedTimer);
      job.reject(new PluginFailure('unavailable', job.plugin, job.hook, 'the gateway is shutting down'));
    }
    // kill() removes each worker from this.workers, so iterate over a copy.
    const threads = this.spare ? [...this.workers, this.spare] : [...this.workers];
    await Promise.all(threads.map((w) => this.kill(w, 'shutdown', false)));
  }

  /** The pool's state (0 workers until the first plugin loads); per plugin, its hook calls holding a worker (its bulkhead share) and those waiting for one. */
  stats(): { workers: number; ready: number; busy: number; queued: number; spare: 'none' | 'starting' | 'ready'; plugins: Record<string, { running: number; waiting: number }> } {
    const plugins: Record<string, { running: number; waiting: number }> = {};
    const of = (plugin: string) => (plugins[plugin] ??= { running: 0, waiting: 0 });
    for (const [plugin, n] of this.occupied) if (n > 0) of(plugin).running = n;
    for (const job of this.queue) if (job.msg === null) of(job.plugin).waiting++;
    return {
      workers: this.workers.length,
      ready: this.workers.filter((w) => w.ready).length,
      busy: this.workers.filter((w) => w.busy).length,
      queued: this.queue.length,
      spare: this.spare ? (this.spare.ready ? 'ready' : 'starting') : 'none',
      plugins,
    };
  }

  private submit(msg: Unsequenced<Request>, plugin: string, hook: string, timeoutMs: number, target?: PluginWorker): Promise<Reply> {
    if (this.closed) return Promise.reject(new PluginFailure('unavailable', plugin, hook, 'the gateway is shutting down'));
    return new Promise<Reply>((resolve, reject) => {
      this.queue.push({ msg, plugin, hook, timeoutMs, pid: '', input: null, rid: '', deadline: 0, seq: 0, target, resolve: resolve as (r: unknown) => void, reject });
      this.pump();
    });
  }

  /**
   * Hands queued jobs to idle workers. Targeted jobs (loads) may go to a worker
   * that is not yet ready, once its thread runs: a load's init_timeout_ms must
   * not include the thread's start-up (slow on a busy machine).
   */
  private pump(): void {
    if (this.queue.length === 0) return;
    for (const w of this.workers) {
      if (w.busy || w.dead) continue;
      const i = this.queue.findIndex((j) => (j.target ? j.target === w && w.running : w.ready && this.admits(j)));
      if (i === -1) continue;
      const job = i === 0 ? this.queue.shift()! : this.queue.splice(i, 1)[0];
      this.dispatch(w, job);
      if (this.queue.length === 0) return;
    }
  }

  /** Whether the bulkhead lets this job take a worker now (control requests always may). */
  private admits(job: Job): boolean {
    return job.msg !== null || (this.occupied.get(job.plugin) ?? 0) < this.maxWorkersPerPlugin;
  }

  private release(job: Job): void {
    if (!job.occupying) return;
    job.occupying = false;
    this.occupied.set(job.plugin, (this.occupied.get(job.plugin) ?? 1) - 1);
    // A queued call of the same plugin may now go ahead.
    if (this.queue.length) queueMicrotask(() => this.pump());
  }

  private dispatch(w: PluginWorker, job: Job): void {
    clearTimeout(job.shedTimer);
    job.shedTimer = undefined;
    if (job.msg === null) {
      job.occupying = true;
      this.occupied.set(job.plugin, (this.occupied.get(job.plugin) ?? 0) + 1);
      job.creating = !w.live.has(job.pid);
    }
    w.busy = true;
    w.job = job;
    job.seq = ++w.seq;
    this.sendStep(w, job);
  }

  /**
   * Sends the job's current step under that step's own deadline: a control
   * request, the creation of the plugin's instance (init_timeout_ms), or the
   * hook call itself (timeout_ms).
   */
  private sendStep(w: PluginWorker, job: Job): void {
    const ms = job.creating ? this.initTimeoutOf(job.pid) : job.timeoutMs;
    // Set before sending: a fast worker's answer can be handled before this returns.
    job.deadline = performance.now() + ms;
    w.cpuMark = -1;
    try {
      if (job.msg) w.send({ ...job.msg, seq: job.seq } as ToWorker);
      else if (job.creating) w.send({ t: 'create', seq: job.seq, pid: job.pid });
      else this.sendCall(w, job, job.seq);
    } catch (e) {
      w.job = null;
      this.free(w);
      job.reject(new PluginFailure('unavailable', job.plugin, job.hook, `could not send the call to a plugin worker: ${(e as Error).message}`));
      queueMicrotask(() => this.pump());
      return;
    }
    this.armWatchdog(w, job, ms);
  }

  /** The worker created the plugin's instance for this call: now the hook itself runs, under its own deadline. */
  private onCreated(w: PluginWorker, job: Job): void {
    job.creating = false;
    w.live.add(job.pid);
    this.events.onInstanceCreated(this.names.get(job.pid) ?? job.pid);
    this.sendStep(w, job);
  }

  private initTimeoutOf(pid: string): number {
    return this.specs.get(pid)?.initTimeoutMs ?? DEFAULTS.initTimeoutMs;
  }

  /** Writes a hook call into the worker's channel (or posts it if it does not fit) and waits for the answer there. */
  private sendCall(w: PluginWorker, job: Job, seq: number): void {
    const input = job.input!;
    job.input = null;
    const ch = w.channel;
    const slot = this.slots.get(job.pid);
    const hook = HOOK_INDEX.get(job.hook);
    const done = Atomics.load(ch.i32, W.DONE_SEQ);
    if (slot !== undefined && hook !== undefined && input.length <= INPUT_CAP && job.rid.length * 3 <= RID_CAP) {
      ch.u8.set(input, INPUT_OFF);
      const ridLen = ch.buf.write(job.rid, RID_OFF, RID_CAP, 'utf8');
      const i32 = ch.i32;
      i32[W.CALL_SLOT] = slot;
      i32[W.CALL_HOOK] = hook;
      i32[W.CALL_LEN] = input.length;
      i32[W.RID_LEN] = ridLen;
      i32[W.CALL_TIMEOUT] = job.timeoutMs;
      // The seq store publishes the fields above (Atomics are sequentially consistent).
      Atomics.store(i32, W.CALL_SEQ, seq);
      ch.ring();
    } else {
      // Copy into a buffer of its own before transferring: msgpackr hands out views of a shared
      // pool (and Buffer#slice is a view too), so transferring those would detach the pool.
      const copy = new Uint8Array(input);
      w.send({ t: 'call', seq, pid: job.pid, hook: job.hook, input: copy, rid: job.rid, timeoutMs: job.timeoutMs }, [copy.buffer as ArrayBuffer]);
    }
    this.await(w, job, done);
  }

  /** Waits (without blocking this thread) for the worker to publish the answer to `job` in the channel. */
  private await(w: PluginWorker, job: Job, seen: number): void {
    const r = waitAsync(w.channel.i32, W.DONE_SEQ, seen);
    if (r.async) void r.value.then(() => this.onChannel(w, job));
    else this.onChannel(w, job);
  }

  private onChannel(w: PluginWorker, job: Job): void {
    const i32 = w.channel.i32;
    if (w.overdue === job && !w.dead) {
      // Answered at its deadline, but the guest finished after all: the worker is free, its instance fine.
      const done = Atomics.load(i32, W.DONE_SEQ);
      if (done === job.seq) this.onStopped(w, job, true);
      else this.await(w, job, done);
      return;
    }
    if (w.job !== job) return; // already answered by message, given up on, or the worker is gone
    const done = Atomics.load(i32, W.DONE_SEQ);
    if (done !== job.seq) {
      this.await(w, job, done);
      return;
    }
    const len = Atomics.load(i32, W.DONE_LEN);
    // A copy of its own: the decoder may hand out views of its input (bin values), and the channel is reused.
    this.finishCall(w, job, len < 0 ? null : w.channel.u8.slice(OUTPUT_OFF, OUTPUT_OFF + len));
  }

  /** Decodes and validates a hook call's output; a refused output discards the instance like a trap does. */
  private finishCall(w: PluginWorker, job: Job, bytes: Uint8Array | null): void {
    w.job = null;
    this.emitLogs(w, job);
    if (performance.now() > job.deadline) {
      // Answered, but after its deadline: a busy main thread can see the answer before its timer
      // fires. timeout_ms bounds the call, so it is still a timeout; the worker itself is fine.
      this.free(w);
      job.reject(new PluginFailure('timeout', job.plugin, job.hook, `${job.hook} answered after its ${job.timeoutMs} ms deadline`));
      this.pump();
      return;
    }
    let value: unknown;
    try {
      value = OUTPUT_PARSERS[job.hook as HookName](bytes, this.maxValueDepth);
    } catch (e) {
      // Never reuse an instance whose output was refused: the worker frees it, and the
      // plugin's next call there creates a new one (that 'create' comes after this message).
      w.live.delete(job.pid);
      w.send({ t: 'discard', pid: job.pid });
      this.free(w);
      job.reject(PluginFailure.from(e, job.plugin, job.hook));
      this.pump();
      return;
    }
    this.free(w);
    job.resolve(value);
    this.pump();
  }

  /** The call's log lines, written into the channel by the worker while it ran. */
  private emitLogs(w: PluginWorker, job: Job): void {
    if (job.msg) return;
    w.channel.takeLogs((level, msg) => this.events.onLog(level, job.plugin, job.rid, msg));
  }

  private armWatchdog(w: PluginWorker, job: Job, stepMs: number): void {
    if (w.job !== job) return; // already answered
    // First wake-up: when the call becomes a long call (its thread then yields to short ones), or its deadline.
    const ms = this.lowersLongCalls && w.tid !== null && stepMs > LONG_CALL_MS ? LONG_CALL_MS : stepMs;
    if (w.watchdog && w.watchdogMs === ms) {
      w.watchdog.refresh();
      return;
    }
    this.setWatchdog(w, ms);
  }

  private setWatchdog(w: PluginWorker, ms: number): void {
    if (w.watchdog) clearTimeout(w.watchdog);
    w.watchdogMs = ms;
    w.watchdog = setTimeout(() => this.onWatchdog(w), ms);
    // The workers keep the process alive while the pool is open; an idle watchdog must not.
    w.watchdog.unref();
  }

  private onWatchdog(w: PluginWorker): void {
    if (w.dead) return;
    if (w.overdue && !w.job) {
      const job = w.overdue;
      void this.kill(w, `plugin "${job.plugin}" overran its ${job.timeoutMs} ms deadline in ${job.hook} and did not stop within ${STOP_GRACE_MS} ms`, true);
      return;
    }
    const job = w.job;
    if (!job) return;
    const left = job.deadline - performance.now();
    if (left > 0.5) {
      if (!w.lowered && this.lowersLongCalls && w.tid !== null) {
        const cpu = threadCpuNs(w.tid);
        if (cpu !== null && w.cpuMark >= 0 && cpu - w.cpuMark >= (LONG_CALL_MS * 1e6) / 2) this.lower(w);
        else if (cpu !== null) {
          // Not (yet) seen spinning: look again after another window (the mark stays where it was first taken).
          if (w.cpuMark < 0) w.cpuMark = cpu;
          this.setWatchdog(w, Math.min(LONG_CALL_MS, Math.ceil(left)));
          return;
        }
      }
      this.setWatchdog(w, Math.ceil(left));
    } else this.onDeadline(w, job);
  }

  /** A call runs long: its thread drops to longCallNice, so that the short calls of other workers go first. */
  private lower(w: PluginWorker): void {
    if (w.tid === null) return;
    const refused = setThreadNice(w.tid, this.longCallNice);
    if (refused) {
      this.lowersLongCalls = false;
      this.reportPriorityRefused(refused);
      return;
    }
    w.lowered = true;
  }

  /** The worker's call ended (it stays): it takes calls again, at its normal priority. */
  private free(w: PluginWorker): void {
    w.busy = false;
    w.cpuMark = -1;
    this.restorePriority(w);
  }

  private restorePriority(w: PluginWorker): void {
    if (!w.lowered || w.tid === null || w.dead) return;
    w.lowered = false;
    const refused = setThreadNice(w.tid, this.workerNice);
    if (refused) {
      // Raising a priority again needs CAP_SYS_NICE: without it, long calls keep their priority from
      // now on, and this thread (stuck lower than the others) is replaced.
      this.lowersLongCalls = false;
      this.reportPriorityRefused(`${refused} (raising a thread's priority again needs CAP_SYS_NICE; long calls now keep their priority)`);
      void this.kill(w, 'its thread could not get its priority back after a long call', true);
    }
  }

  private reportPriorityRefused(reason: string): void {
    if (this.priorityRefusalReported) return;
    this.priorityRefusalReported = true;
    this.events.onThreadPriorityRefused?.(reason);
  }

  private onDeadline(w: PluginWorker, job: Job): void {
    if (w.job !== job) return;
    w.job = null;
    this.emitLogs(w, job);
    if (job.creating) {
      const ms = this.initTimeoutOf(job.pid);
      job.reject(new PluginFailure('timeout', job.plugin, job.hook, `creating a new instance for ${job.hook}: init did not return within ${ms} ms (init_timeout_ms)`));
      void this.kill(w, `plugin "${job.plugin}" did not create a new instance within its ${ms} ms init deadline`, true);
      return;
    }
    if (job.msg || !job.answerOnly) {
      // A control request (load, unload: init or cleanup, not under the guest's clock): only termination stops it.
      job.reject(new PluginFailure('timeout', job.plugin, job.hook, `${job.hook} did not return within ${job.timeoutMs} ms`));
      void this.kill(w, `plugin "${job.plugin}" overran its ${job.timeoutMs} ms deadline in ${job.hook}`, true);
      return;
    }
    // Answered now; the worker stops the guest itself (its own clock) and reports back, or is terminated
    // after STOP_GRACE_MS. Until then it takes no call, and the call keeps its bulkhead place.
    w.overdue = job;
    // Its normal priority back, so that it reaches its next clock check at once even on a busy core.
    this.restorePriority(w);
    job.answerOnly!(new PluginFailure('timeout', job.plugin, job.hook, `${job.hook} did not return within ${job.timeoutMs} ms`));
    if (!w.dead) this.setWatchdog(w, STOP_GRACE_MS);
  }

  /** The worker reported back on a call answered at its deadline: it takes calls again. */
  private onStopped(w: PluginWorker, job: Job, instanceKept: boolean): void {
    w.overdue = null;
    this.emitLogs(w, job);
    if (!instanceKept) w.live.delete(job.pid);
    this.release(job);
    this.free(w);
    this.pump();
  }

  private onMessage(w: PluginWorker, msg: FromWorker): void {
    if (msg.t === 'log') {
      this.events.onLog(msg.level, this.names.get(msg.pid) ?? msg.pid, msg.rid, msg.msg);
      return;
    }
    if (msg.t === 'log_dropped') {
      this.events.onLogDropped(this.names.get(msg.pid) ?? msg.pid, msg.bytes);
      return;
    }
    if (msg.t === 'ready') {
      w.tid = msg.tid;
      w.running = true;
      if (msg.priorityRefused) this.reportPriorityRefused(msg.priorityRefused);
      // A replacement's thread runs: it may take calls (it creates each plugin's instance when first called).
      w.ready = true;
      // The thread in flight is up: the pool may start the next one it lacks.
      this.scheduleSpawn();
      if (w !== this.spare) this.pump();
      return;
    }
    if (w.overdue && msg.seq === w.overdue.seq) {
      // The call answered at its deadline has ended in the worker: stopped by its clock ('failed', the
      // instance discarded there), or it finished just then (its output is dropped, the instance is fine).
      if (msg.t !== 'created') this.onStopped(w, w.overdue, msg.t !== 'failed');
      return;
    }
    const job = w.job;
    if (!job || msg.seq !== job.seq) return; // a late answer to a call already given up on
    if (msg.t === 'created') {
      if (job.creating) this.onCreated(w, job);
      return;
    }
    if (msg.t === 'done' && !job.msg) {
      this.finishCall(w, job, msg.bytes);
      return;
    }
    w.job = null;
    this.emitLogs(w, job);
    if (msg.t === 'failed') {
      // A hook call's instance (or the one it was creating) is gone: the plugin's next call here creates another.
      if (!job.msg) w.live.delete(job.pid);
      job.reject(new PluginFailure(msg.kind, job.plugin, job.hook, msg.message));
    } else {
      if (msg.t === 'loaded' && job.msg?.t === 'load') w.live.add(job.msg.spec.id);
      if (job.msg?.t === 'unload') w.live.delete(job.msg.pid);
      job.resolve(msg);
    }
    this.free(w);
    this.pump();
  }

  /** Starts a pool worker: an initial one (ready at once: its plugins load by targeted requests), or a replacement. */
  private spawn(initial: boolean): PluginWorker {
    const w = this.startThread(initial);
    this.workers.push(w);
    return w;
  }

  private startThread(initial: boolean): PluginWorker {
    // A replacement (or spare) knows every loaded plugin but creates no instance up front: an init that
    // loops must not keep it from taking the other plugins' calls.
    const plugins = initial ? [] : [...this.specs.values()].map(({ spec, slot }) => ({ spec, slot }));
    const w = new PluginWorker(this.minLogLevel, this.workerNice, plugins);
    w.thread.on('message', (m: FromWorker) => this.onMessage(w, m));
    w.thread.on('error', (e) => void this.kill(w, `worker crashed: ${e.message}`, true));
    w.thread.on('exit', () => {
      if (!w.dead) void this.kill(w, 'worker exited unexpectedly', true);
    });
    // The first workers get their plugins by targeted loads before any call; a replacement waits for its thread
    // to start ('ready'), so that its start-up is not counted against the first call's deadlines.
    w.ready = initial;
    return w;
  }

  /** Schedules maintain() unless it is already due. */
  private scheduleSpawn(): void {
    if (this.spawnScheduled || this.closed) return;
    this.spawnScheduled = true;
    setImmediate(() => {
      this.spawnScheduled = false;
      this.maintain();
    });
  }

  /**
   * Makes up the pool's size at once (the spare first), and starts a new
   * spare once plugins are loaded and no thread is starting: the spare is
   * the only thread started ahead of need, so churn never starts two at once for it.
   */
  private maintain(): void {
    if (this.closed || !this.started) return;
    this.promoteSpare();
    while (this.workers.length < this.size) this.spawn(false);
    const starting = this.workers.some((w) => !w.ready) || this.spare !== null;
    if (!starting && this.specs.size > 0) this.spare = this.startThread(false);
  }

  /** Fills the pool's empty places with the spare (ready: it takes queued calls at once; starting: once it is up). */
  private promoteSpare(): boolean {
    const s = this.spare;
    if (!s || this.workers.length >= this.size) return false;
    this.spare = null;
    this.workers.push(s);
    if (s.ready) this.pump();
    return true;
  }

  private async kill(w: PluginWorker, reason: string, replace: boolean): Promise<void> {
    if (w.dead) return;
    w.dead = true;
    if (w === this.spare) {
      // A spare that died (it never took a call) is not started again at once: a thread that cannot
      // start would loop here. The next replacement starts one.
      this.spare = null;
      await w.thread.terminate();
      return;
    }
    w.ready = false;
    if (w.watchdog) clearTimeout(w.watchdog);
    w.watchdog = null;
    if (w.overdue) {
      this.release(w.overdue);
      w.overdue = null;
    }
    const job = w.job;
    w.job = null;
    if (job) {
      this.emitLogs(w, job);
      job.reject(new PluginFailure('unavailable', job.plugin, job.hook, `plugin worker stopped: ${reason}`));
    }
    // Release this thread's own waitAsync on the channel (it finds its job gone and stops).
    Atomics.notify(w.channel.i32, W.DONE_SEQ);
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
      // The spare takes the place now; any thread still missing starts in the background, one at a time.
      this.events.onWorkerRestart(reason, this.promoteSpare());
      this.scheduleSpawn();
    }
    // Queued calls go to the other workers now, not once the thread is gone.
    this.pump();
    await w.thread.terminate();
  }
}
