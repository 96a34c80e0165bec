// Sandgate AssemblyScript PDK. Import everything from here:
//
//   import { Context, HttpRequest, PreResult, runTransportPre, Value } from "<path>/plugin-pdk/assemblyscript/assembly";
//   export { sandgate_abi_v1 } from "<path>/plugin-pdk/assemblyscript/assembly";
//
// Build with `--runtime minimal --use abort=plugin-pdk/assemblyscript/assembly/abort/sandgateAbort`
// (see ../README.md, or just run `node scripts/build-plugins.mjs`).

export { sandgate_abi_v1 } from "./abi";
export { sandgateAbort } from "./abort";
export { LogLevel, log, logDebug, logInfo, logWarn, logError, readInput, outputWriter, writeOutput, writeOutputBytes } from "./host";
export { Reader, MsgType, asciiLower } from "./msgpack/reader";
export { MapView } from "./msgpack/mapview";
export { PatchMap } from "./patchmap";
export { Writer } from "./msgpack/writer";
export { Value, ValueKind, readValue, writeValue, readValueMap, writeValueMap } from "./value";
export { Context, RESERVED_PREFIX } from "./context";
export { HttpRequest, HttpResponse, HookError, lookupHeader, bodyText, utf8, readStringMap, writeStringMap } from "./http";
export { LlmMessage, LlmRequest, LlmChoice, LlmUsage, LlmResponse, LlmError, Tri, Extensible, readMessages, writeMessages } from "./llm";
export { Outcome, PreResult, PostResult, ChunkResult, LlmPreResult, LlmPostResult, InterceptorResult, InitResult } from "./results";
export {
  InitHandler, CleanupHandler, TransportPreHandler, TransportPostHandler, ChunkHandler, LlmPreHandler, LlmPostHandler,
  InterceptorHandler, InterceptorRequest,
  runInit, runGetName, runCleanup, runTransportPre, runTransportPost, runStreamChunk, runPreLlm, runPostLlm,
  runTransportInterceptor,
} from "./hooks";
