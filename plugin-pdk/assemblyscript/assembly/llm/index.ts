// LLM request/response/error as the LLM hooks see them (ABI.md §5.1, §5.4).
//
// A post hook's response/error is re-encoded after the handler and compared
// with the bytes received, so edit them in place freely: an untouched one is
// usually not sent back. That only keeps outputs small: the host decides by
// value whether a response changed (ABI.md §5.5).

export { Extensible } from "./extensible";
export { LlmMessage, readMessages, writeMessages } from "./message";
export { LlmRequest } from "./request";
export { LlmChoice, LlmUsage, LlmResponse } from "./response";
export { LlmError, Tri } from "./error";
