import { CLOCK_TABLE_EXPORT, FUEL_EXPORT } from '../module/deadline-watch.js';
import { concat, encodeName, leb } from '../module/wasm-binary.js';

// The host side of module/deadline-watch.ts: the clock check a guest calls
// when it runs out of fuel. Armed with a deadline, the check throws
// DeadlineExceeded once the deadline has passed; the error unwinds the guest's
// stack like a trap, so the call ends and its instance must be discarded.
// Disarmed, it only refills the fuel.

/** Fuel given at each check: how much work runs between two reads of the clock. */
const FUEL_PER_CHECK = 4096;

/** A guest ran past the deadline its clock was armed with. */
export class DeadlineExceeded extends Error {
  constructor(readonly overrunMs: number) {
    super(`still running ${overrunMs.toFixed(1)} ms after its deadline`);
    this.name = 'DeadlineExceeded';
  }
}

/**
 * A funcref table holds only WebAssembly functions. This module imports a JS
 * function and exports it again, which makes it one: (import "h" "check") (export "check").
 */
const TRAMPOLINE = new WebAssembly.Module(
  concat([
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    [0x01, 0x04, 0x01, 0x60, 0x00, 0x00], // type 0: () -> ()
    section(0x02, [0x01, ...encodeName('h'), ...encodeName('check'), 0x00, 0x00]), // import func of type 0
    section(0x07, [0x01, ...encodeName('check'), 0x00, 0x00]), // export it as function 0
  ]),
);

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

/**
 * The clock of one guest instance.
 *
 * @example
 * const clock = DeadlineClock.attach(instance.exports); // null: the module was not instrumented
 * clock?.arm(performance.now() + timeoutMs);
 * try { instance.exports.hook(); } finally { clock?.disarm(); }
 */
export class DeadlineClock {
  private deadline = Infinity;

  private constructor(private readonly fuel: WebAssembly.Global) {}

  /** Fills the guest's clock slot with this clock's check; null if the module has no deadline checks. */
  static attach(exports: WebAssembly.Exports): DeadlineClock | null {
    const fuel = exports[FUEL_EXPORT];
    const table = exports[CLOCK_TABLE_EXPORT];
    if (!(fuel instanceof WebAssembly.Global) || !(table instanceof WebAssembly.Table)) return null;
    const clock = new DeadlineClock(fuel);
    const check = new WebAssembly.Instance(TRAMPOLINE, { h: { check: () => clock.check() } }).exports.check;
    table.set(0, check);
    fuel.value = FUEL_PER_CHECK;
    return clock;
  }

  /** From now on the guest stops at `deadline` (a performance.now() of this thread). */
  arm(deadline: number): void {
    this.deadline = deadline;
    this.fuel.value = FUEL_PER_CHECK;
  }

  disarm(): void {
    this.deadline = Infinity;
  }

  /** Milliseconds until the deadline (negative once past it; Infinity when disarmed): how long a host call may block. */
  remainingMs(): number {
    return this.deadline - performance.now();
  }

  /** Throws DeadlineExceeded if the deadline has passed, else gives the guest more fuel. Host functions may call it too. */
  check(): void {
    const now = performance.now();
    if (now > this.deadline) {
      // No fuel: should the guest go on anyway (it cannot catch this error, but be sure), it comes straight back here.
      this.fuel.value = 0;
      throw new DeadlineExceeded(now - this.deadline);
    }
    this.fuel.value = FUEL_PER_CHECK;
  }
}
