// `--use abort=plugin-pdk/assemblyscript/assembly/abort/sandgateAbort`
//
// Extism gives the guest an empty `env` module, so AssemblyScript's default
// `env.abort` import would make the module fail to instantiate. Ours logs
// where the plugin failed (the host only sees a bare "unreachable" trap) and
// then traps, which the host counts as a plugin failure.

import { LogLevel, log } from "./host";

// Guards against recursion: building the message allocates, and an abort
// raised while aborting must not loop. @lazy: abort may run before the
// module's globals are initialized (during the start function).
// @ts-ignore: decorator
@lazy let aborting = false;

export function sandgateAbort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  if (aborting) unreachable();
  aborting = true;
  let text = "plugin aborted: " + (message !== null ? message : "(no message)");
  if (fileName !== null) text += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  log(LogLevel.Error, text);
  aborting = false;
  unreachable();
}
