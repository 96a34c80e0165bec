// Finds why a guest died in what it wrote to stderr. Toolchains print a panic
// differently, and the reason is not always the last line:
// - Go (wasip1): `panic: <reason>` (or `fatal error: <reason>`), a blank line,
//   then the goroutine trace, whose last line is a file and offset;
// - Rust (std): `thread '<name>' panicked at <file>:<line>:<col>:` with the
//   reason on the next line (Rust 1.73 and later), or `panicked at '<reason>',
//   <file>:<line>:<col>` on one line (before), then often a
//   `note: run with RUST_BACKTRACE=1` line;
// - C, AssemblyScript and others: the last line is the best guess.

const MAX_CHARS = 300;
const GO_PANIC = /^(panic|fatal error): /;
const RUST_PANIC = / panicked at /;

/**
 * The line (or two) of a guest's stderr that says why it failed, or undefined
 * if it wrote nothing.
 *
 * @example
 * panicMessage('panic: boom\n\ngoroutine 1 [running]:\nmain.f()\n\t/src/main.go:9 +0xd\n') // 'panic: boom'
 */
export function panicMessage(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length === 0) return undefined;
  let found: string | undefined;
  for (let i = lines.length - 1; i >= 0 && found === undefined; i--) {
    if (GO_PANIC.test(lines[i])) found = lines[i];
    else if (RUST_PANIC.test(lines[i])) found = lines[i].endsWith(':') && lines[i + 1] !== undefined ? `${lines[i]} ${lines[i + 1]}` : lines[i];
  }
  const message = found ?? lines[lines.length - 1];
  return message.length > MAX_CHARS ? `${message.slice(0, MAX_CHARS)}…` : message;
}
