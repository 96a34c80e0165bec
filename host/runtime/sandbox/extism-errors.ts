// The one place that knows how @extism/extism reports an error a guest set
// with `error_set` (ABI.md §4.1): its foreground Plugin.call throws a plain
// Error whose message is 'Plugin-originated error: ' and the guest's text, with
// no class or code of its own. test/extism-errors.test.ts runs a real plugin
// through the real library and fails if that ever changes.

const PREFIX = 'Plugin-originated error: ';

/** A guest reported an error through Extism's error_set: plugin_hook_error, with the guest's own text. */
export class GuestReportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestReportedError';
  }
}

/**
 * What Extism threw, as GuestReportedError when it carries a guest's error_set
 * text; anything else unchanged.
 *
 * @example fromExtismError(new Error('Plugin-originated error: database unavailable')) // GuestReportedError('database unavailable')
 */
export function fromExtismError(e: unknown): unknown {
  if (e instanceof Error && e.message.startsWith(PREFIX)) return new GuestReportedError(e.message.slice(PREFIX.length));
  return e;
}
