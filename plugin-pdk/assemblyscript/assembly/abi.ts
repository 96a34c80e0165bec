// The ABI version marker (ABI.md §2). Kept in its own file so that a plugin
// re-exporting it does not also turn the rest of the PDK into wasm exports.

/** Present in every Sandgate plugin: re-export it from your entry file. */
export function sandgate_abi_v1(): i32 {
  return 1;
}
