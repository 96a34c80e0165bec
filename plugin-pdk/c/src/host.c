/* The only door to the host: Sandgate's fast path (ABI.md §4.2). Native
 * builds (the kit's tests) link their own definitions of these four. */
#include "sandgate.h"

#if defined(__wasm__)
#define SG_IMPORT(name) __attribute__((import_module("sandgate:host/v1"), import_name(name)))

SG_IMPORT("input_length") int32_t sandgate_input_length(void);
SG_IMPORT("input_read") void sandgate_input_read(uint8_t *dst);
SG_IMPORT("output_write") void sandgate_output_write(const uint8_t *src, int32_t len);
SG_IMPORT("log") void sandgate_log(int32_t level, const char *src, int32_t len);

int32_t sg_host_input_length(void) { return sandgate_input_length(); }
void sg_host_input_read(uint8_t *dst) { sandgate_input_read(dst); }
void sg_host_output_write(const uint8_t *src, int32_t len) { sandgate_output_write(src, len); }
void sg_host_log(int32_t level, const char *src, int32_t len) { sandgate_log(level, src, len); }
#endif
