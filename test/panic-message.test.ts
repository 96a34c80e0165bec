import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { panicMessage } from '../host/runtime/sandbox/panic-message.js';

// Stderr of panicking guests as their runtimes print it (Go 1.26 wasip1; Rust std before and since 1.73).
const GO = 'panic: input too long for this demo\n\ngoroutine 1 [running]:\nmain.preLLM()\n\t/tmp/goplug/main.go:35 +0xd\n';
const GO_FATAL = 'fatal error: out of memory\n\nruntime stack:\nruntime.throw({0x1b2, 0xd})\n\t/usr/local/go/src/runtime/panic.go:1094 +0x4\n';
const RUST_OLD = "thread 'main' panicked at 'index out of bounds: the len is 3 but the index is 7', src/lib.rs:12:9\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
const RUST = "thread '<unnamed>' panicked at src/lib.rs:12:9:\nindex out of bounds: the len is 3 but the index is 7\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";

describe('panicMessage: why a guest died, from its stderr', () => {
  it('Go: the panic line above the goroutine trace', () => {
    assert.equal(panicMessage(GO), 'panic: input too long for this demo');
    assert.equal(panicMessage(GO_FATAL), 'fatal error: out of memory');
  });

  it("Rust: the 'panicked at' line and the reason under it, not the backtrace note", () => {
    assert.equal(panicMessage(RUST), "thread '<unnamed>' panicked at src/lib.rs:12:9: index out of bounds: the len is 3 but the index is 7");
    assert.equal(panicMessage(RUST_OLD), "thread 'main' panicked at 'index out of bounds: the len is 3 but the index is 7', src/lib.rs:12:9");
  });

  it('anything else: the last line; nothing for an empty stderr', () => {
    assert.equal(panicMessage('starting\nassertion failed: n > 0\n'), 'assertion failed: n > 0');
    assert.equal(panicMessage('\n\n'), undefined);
    assert.equal(panicMessage('x'.repeat(1000))!.length, 301);
  });
});
