import { OUTPUT_PARSERS, parseInitOutput, type HookOutputs } from '../../abi/outputs.js';
import type { HookName } from '../../abi/types.js';
import { HOST_MODULE } from '../../abi/version.js';
import { GatewayError } from '../../errors/codes.js';
import { PluginFailure } from '../failure.js';
import type { PluginSpec } from '../messages.js';
import { START_EXPORT } from '../module/deadline-watch.js';
import { growRefusedFlag } from '../module/grow-watch.js';
import { GUEST_INITIALIZE } from '../module/sandbox-module.js';
import { classifyFailure } from '../sandbox/classify-failure.js';
import { DeadlineClock, DeadlineExceeded } from '../sandbox/deadline-clock.js';
import { sandgateHostFunctions } from '../sandbox/host-functions.js';
import { CallLogBudget, LogRates } from '../sandbox/log-budget.js';

// One plugin version's instance on the gateway's main thread. A call here is
// a plain synchronous WebAssembly call (no thread crossing, no Extism), which
// is what makes a hook cost microseconds. It is safe only because the guest
// checks the clock from inside (module/deadline-watch.ts): every call runs
// under a small budget, and a guest that runs past it is stopped there, its
// instance dropped, and the call handed back to be run on a plugin worker.
// Only modules whose every import is a Sandgate host function and whose every
// path takes fuel come here (compile.ts's inThreadBlockers).

/** What a plugin's in-thread instance reports to the gateway. */
export interface InThreadEvents {
  /** A plugin's log line; `plugin` is its name. */
  onLog(level: number, plugin: string, rid: string, msg: string): void;
  /** A call's log text over its budget was dropped. */
  onLogDropped(plugin: string, bytes: number): void;
  /** The plugin's instance was created again (the last one failed). */
  onInstanceCreated(plugin: string): void;
}

export interface InThreadOptions {
  /** Longest one hook call may run here (ms) before it is stopped and handed to a worker. */
  budgetMs: number;
  /** Longest creating an instance here (start function, _initialize, init) may take (ms). */
  initBudgetMs: number;
  /** Lowest plugin log level worth keeping (0 debug .. 3 error). */
  minLogLevel: number;
  /** The deepest nesting of a value in a hook's output (limits.max_json_depth). */
  maxValueDepth?: number;
}

/** The call ran past the in-thread budget, before its own deadline: run it on a worker instead. */
export const OVER_BUDGET = Symbol('over the in-thread budget');

interface Instance {
  exports: WebAssembly.Exports;
  memory: WebAssembly.Memory | null;
  growRefused: WebAssembly.Global | null;
  clock: DeadlineClock;
}

/** The call in progress (one at a time: calls here are synchronous). */
interface Call {
  input: Uint8Array;
  output: Uint8Array | null;
  /** Log lines held until the call ends: a call handed to a worker runs again there and logs again. */
  lines: [number, string][];
  /** Made at the call's first log line: most calls log nothing the gateway keeps. */
  log: CallLogBudget | null;
}

const NO_INPUT = new Uint8Array(0);

/**
 * A plugin version's instance on the main thread.
 *
 * @example
 * const p = new InThreadPlugin(spec, { budgetMs: 2, initBudgetMs: 50, minLogLevel: 1 }, events);
 * p.start(); // throws if init fails or overruns: then the plugin runs on workers only
 * const out = p.call('http_transport_pre_hook', encode(envelope), rid, 1000); // or OVER_BUDGET
 */
export class InThreadPlugin {
  private instance: Instance | null = null;
  private current: Call | null = null;
  private readonly rates = new LogRates();

  constructor(
    readonly spec: PluginSpec,
    private readonly opts: InThreadOptions,
    private readonly events: InThreadEvents,
  ) {}

  /** Creates the instance now: its start function, `_initialize` and `init` run within initBudgetMs. Throws if any fails. */
  start(): void {
    this.instance = this.create();
  }

  /**
   * Runs one hook call to its validated output. Throws PluginFailure when the
   * plugin fails (a deadline shorter than the budget included); returns
   * OVER_BUDGET when it was stopped at the budget with time left on its deadline.
   */
  call<H extends HookName>(hook: H, input: Uint8Array, rid: string, timeoutMs: number): HookOutputs[H] | typeof OVER_BUDGET {
    const budgetIsDeadline = timeoutMs <= this.opts.budgetMs;
    let inst = this.instance;
    if (!inst) {
      try {
        inst = this.instance = this.create();
        this.events.onInstanceCreated(this.spec.name);
      } catch (e) {
        if (e instanceof DeadlineExceeded) return OVER_BUDGET;
        throw new PluginFailure(classifyFailure(e, undefined).kind, this.spec.name, hook, `could not create a new instance: ${(e as Error).message}`);
      }
    }
    const call = this.begin(input);
    try {
      const output = this.run(inst, hook, performance.now() + Math.min(timeoutMs, this.opts.budgetMs));
      const value = OUTPUT_PARSERS[hook](output, this.opts.maxValueDepth);
      this.end(call, rid);
      return value;
    } catch (e) {
      // Never reuse an instance after a failure: its globals and heap may be inconsistent.
      this.instance = null;
      if (e instanceof DeadlineExceeded && !budgetIsDeadline) {
        this.current = null;
        return OVER_BUDGET;
      }
      this.end(call, rid);
      if (e instanceof GatewayError) throw PluginFailure.from(e, this.spec.name, hook); // an output the parsers refused
      const failure = classifyFailure(e, { growRefused: inst.growRefused, memory: inst.memory, memoryPages: this.spec.memoryPages });
      const message = failure.kind === 'timeout' ? `${hook} did not return within its ${timeoutMs} ms deadline (${failure.message})` : failure.message;
      throw new PluginFailure(failure.kind, this.spec.name, hook, message);
    }
  }

  /** Runs `cleanup` (if exported) and drops the instance. Failures are logged, never thrown. */
  close(): void {
    const inst = this.instance;
    this.instance = null;
    if (!inst || !this.spec.hasCleanup) return;
    const call = this.begin(NO_INPUT);
    try {
      this.run(inst, 'cleanup', performance.now() + this.opts.initBudgetMs);
    } catch (e) {
      call.lines.push([2, `cleanup failed: ${(e as Error).message}`]);
    }
    this.end(call, '');
  }

  /** A new instance: instantiated, its clock attached, then start, _initialize and init under initBudgetMs. */
  private create(): Instance {
    const box: { clock: DeadlineClock | null; memory: WebAssembly.Memory | null } = { clock: null, memory: null };
    const fns = sandgateHostFunctions(
      () => {
        if (!box.memory) throw new Error('the module exports no "memory"');
        return box.memory;
      },
      {
        input: () => this.current?.input ?? NO_INPUT,
        maxOutputBytes: this.spec.maxOutputBytes,
        // A copy: the view is valid only until the guest runs again.
        output: (bytes) => {
          if (this.current) this.current.output = bytes.slice();
        },
        log: (level, bytes) => this.log(level, bytes),
      },
    );
    // Each host function reads the clock too, so a guest looping on host calls stops as surely as one looping on its own.
    const host = Object.fromEntries(
      Object.entries(fns).map(([name, fn]) => [
        name,
        (...args: number[]) => {
          box.clock?.check();
          return (fn as (cc: unknown, ...a: number[]) => unknown)(undefined, ...args);
        },
      ]),
    );
    const instance = new WebAssembly.Instance(this.spec.module, { [HOST_MODULE]: host });
    const clock = DeadlineClock.attach(instance.exports);
    if (!clock) throw new Error('the module has no deadline checks (compile.ts adds them)');
    box.clock = clock;
    box.memory = instance.exports.memory instanceof WebAssembly.Memory ? instance.exports.memory : null;
    const inst: Instance = { exports: instance.exports, memory: box.memory, growRefused: growRefusedFlag(instance.exports), clock };
    const call = this.begin(this.spec.initInput);
    const deadline = performance.now() + this.opts.initBudgetMs;
    try {
      if (typeof inst.exports[START_EXPORT] === 'function') this.run(inst, START_EXPORT, deadline);
      if (this.spec.hasInitialize) this.run(inst, GUEST_INITIALIZE, deadline);
      if (this.spec.hasInit) {
        const init = parseInitOutput(this.run(inst, 'init', deadline));
        if (init.error !== undefined) throw new Error(`init refused to start: ${init.error}`);
      }
    } finally {
      this.end(call, '');
    }
    return inst;
  }

  /** Calls an export, stopped at `deadline` (performance.now()); returns what the guest wrote with output_write (null: nothing). */
  private run(inst: Instance, name: string, deadline: number): Uint8Array | null {
    const call = this.current!;
    call.output = null;
    if (inst.growRefused) inst.growRefused.value = 0;
    inst.clock.arm(deadline);
    try {
      (inst.exports[name] as () => unknown)();
    } finally {
      inst.clock.disarm();
    }
    return call.output;
  }

  private begin(input: Uint8Array): Call {
    const call: Call = { input, output: null, lines: [], log: null };
    this.current = call;
    return call;
  }

  /** Ends a call's logging: its lines, then the budget's report lines and dropped bytes. */
  private end(call: Call, rid: string): void {
    this.current = null;
    if (call.log) {
      const { reports, droppedBytes } = call.log.end();
      for (const report of reports) call.lines.push([2, report]);
      if (droppedBytes > 0) this.events.onLogDropped(this.spec.name, droppedBytes);
    }
    for (const [level, msg] of call.lines) if (level >= this.opts.minLogLevel) this.events.onLog(level, this.spec.name, rid, msg);
  }

  private log(level: 0 | 1 | 2 | 3, bytes: Uint8Array): void {
    const call = this.current;
    if (!call || level < this.opts.minLogLevel) return;
    call.log ??= new CallLogBudget(this.spec, this.rates);
    const taken = call.log.allow(bytes.length);
    if (taken > 0) call.lines.push([level, Buffer.from(bytes.buffer, bytes.byteOffset, taken).toString('utf8')]);
  }
}
