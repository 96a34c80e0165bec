/*
 * Sandgate C PDK: write Sandgate plugins (ABI v1, plugin-pdk/ABI.md) in C.
 *
 * Freestanding: no libc. Build a plugin with
 *   clang --target=wasm32-unknown-unknown -O2 -nostdlib -mbulk-memory \
 *     -fuse-ld=lld -Wl,--no-entry -Wl,--stack-first -Wl,-z,stack-size=262144 -Wl,--strip-all \
 *     -I plugin-pdk/c/include -o plugin.wasm plugin.c plugin-pdk/c/src/[a-z]*.c
 *
 * Memory: everything the PDK hands you, and everything you sg_alloc, lives in
 * one bump arena. What is allocated during init (and before it) lives as long
 * as the instance; what a hook allocates is released when the hook returns.
 * Keep per-request state in the context (sg_ctx_set), not in globals: the
 * chunks of one stream may run on different instances.
 *
 * Failures: C has no panics. sg_fail() logs its message through the host log
 * (level error) and traps, so the gateway reports a plugin_trap with a reason
 * next to it. Malformed input, nesting past 256 levels and running out of
 * memory all end there.
 */
#ifndef SANDGATE_H
#define SANDGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- exports ---------------------------------------------------------- */

#if defined(__wasm__)
#define SG_EXPORT(name) __attribute__((export_name(name), visibility("default")))
#else
#define SG_EXPORT(name)
#endif

/* ---- memory and strings ----------------------------------------------- */

/** Memory from the arena (8-byte aligned, zeroed). Never fails: out of memory traps through sg_fail. */
void *sg_alloc(size_t n);
/** A NUL-terminated copy of `len` bytes. */
char *sg_strndup(const char *s, size_t len);
char *sg_strdup(const char *s);
size_t sg_strlen(const char *s);
bool sg_streq(const char *a, const char *b);
/** Byte equality of two ranges of `n` bytes (no libc memcmp in a freestanding build). */
bool sg_memeq(const void *a, const void *b, size_t n);
/** ASCII case-insensitive equality (header names). */
bool sg_strieq(const char *a, const char *b);

/** A growable byte buffer in the arena; `data` is NUL-terminated after every append. */
typedef struct sg_buf {
  uint8_t *data;
  size_t len, cap;
} sg_buf;
void sg_buf_bytes(sg_buf *b, const void *p, size_t n);
void sg_buf_str(sg_buf *b, const char *s);
void sg_buf_char(sg_buf *b, char c);
void sg_buf_int(sg_buf *b, int64_t v);
/** Appends `s` as a JSON string literal, quotes included. */
void sg_buf_json_str(sg_buf *b, const char *s, size_t len);

/* ---- logging and failing ---------------------------------------------- */

typedef enum sg_level { SG_LOG_DEBUG = 0, SG_LOG_INFO = 1, SG_LOG_WARN = 2, SG_LOG_ERROR = 3 } sg_level;
void sg_log(sg_level level, const char *text);
void sg_log_n(sg_level level, const char *text, size_t len);
#define sg_debug(t) sg_log(SG_LOG_DEBUG, (t))
#define sg_info(t) sg_log(SG_LOG_INFO, (t))
#define sg_warn(t) sg_log(SG_LOG_WARN, (t))
#define sg_error(t) sg_log(SG_LOG_ERROR, (t))
/** Logs "plugin failed: <message>" at level error and traps. The call fails as plugin_trap. */
_Noreturn void sg_fail(const char *message);
/** sg_fail with "<a><b>" (no printf in a freestanding build). */
_Noreturn void sg_fail2(const char *a, const char *b);

/* ---- values: a MessagePack tree that keeps key order and every key ----- */

typedef enum sg_type {
  SG_NIL, SG_BOOL, SG_INT, SG_UINT, SG_FLOAT, SG_STR, SG_BIN, SG_ARRAY, SG_MAP
} sg_type;

typedef struct sg_value sg_value;
struct sg_value {
  sg_type type;
  bool f32;          /* SG_FLOAT read as float32: written back as float32 */
  union {
    bool b;
    int64_t i;       /* SG_INT */
    uint64_t u;      /* SG_UINT: only for values above INT64_MAX */
    double f;
    struct { const char *ptr; uint32_t len; } s;      /* SG_STR (NUL-terminated), SG_BIN */
    struct { sg_value **items; uint32_t len, cap; } a; /* SG_ARRAY */
    struct { sg_value **keys, **vals; uint32_t len, cap; } m; /* SG_MAP, in order */
  } as;
};

sg_value *sg_nil(void);
sg_value *sg_bool(bool b);
sg_value *sg_int(int64_t i);
sg_value *sg_float(double f);
sg_value *sg_str(const char *s);
sg_value *sg_strn(const char *s, size_t len);
sg_value *sg_bin(const void *p, size_t len);
sg_value *sg_array(void);
sg_value *sg_map(void);

void sg_array_push(sg_value *arr, sg_value *v);
/** The value under `key` (string keys), or NULL. */
sg_value *sg_map_get(const sg_value *map, const char *key);
/** Sets `key`, keeping its place if present, appending otherwise. */
void sg_map_set(sg_value *map, const char *key, sg_value *v);
/** Removes `key` (keeps the order of the others); true if it was there. */
bool sg_map_remove(sg_value *map, const char *key);

bool sg_is_nil(const sg_value *v); /* NULL or nil */
/** The string, or NULL when `v` is not a str. */
const char *sg_as_str(const sg_value *v);
/** An integer in any encoding (int, uint, integral float); `def` otherwise. */
int64_t sg_as_int(const sg_value *v, int64_t def);
bool sg_as_bool(const sg_value *v, bool def);
double sg_as_float(const sg_value *v, double def);
/** Turns an integral float or a uint that fits into SG_INT, in place (typed integer fields). */
void sg_normalize_int(sg_value *v);
/** Equality by value: key order ignored, 1 == 1.0 across encodings. */
bool sg_value_equal(const sg_value *a, const sg_value *b);
sg_value *sg_value_clone(const sg_value *v);

/* ---- MessagePack ------------------------------------------------------ */

/** Decodes exactly one value from `len` bytes; anything malformed fails (sg_fail). */
sg_value *sg_decode(const uint8_t *p, size_t len);
/** Like sg_decode, but returns NULL and sets *error instead of failing. */
sg_value *sg_try_decode(const uint8_t *p, size_t len, const char **error);
/** Encodes in the smallest form (fixmap, fixstr, smallest int; > 32 bits as int64). */
void sg_encode(sg_buf *out, const sg_value *v);

/* writer primitives, for building envelopes by hand */
void sg_write_nil(sg_buf *b);
void sg_write_bool(sg_buf *b, bool v);
void sg_write_int(sg_buf *b, int64_t v);
void sg_write_uint(sg_buf *b, uint64_t v);
void sg_write_float(sg_buf *b, double v);
void sg_write_str(sg_buf *b, const char *s, size_t len);
void sg_write_cstr(sg_buf *b, const char *s);
void sg_write_bin(sg_buf *b, const void *p, size_t len);
void sg_write_array_header(sg_buf *b, uint32_t n);
void sg_write_map_header(sg_buf *b, uint32_t n);

/* ---- context ---------------------------------------------------------- */

/** The request context: reads see this call's changes; only changes are sent back. */
typedef struct sg_ctx {
  sg_value *all;   /* the context as received */
  sg_value *patch; /* keys set (value) or deleted (nil) by this call */
} sg_ctx;

const sg_value *sg_ctx_get(const sg_ctx *ctx, const char *key);
const char *sg_ctx_get_str(const sg_ctx *ctx, const char *key);
int64_t sg_ctx_get_int(const sg_ctx *ctx, const char *key, int64_t def);
bool sg_ctx_get_bool(const sg_ctx *ctx, const char *key, bool def);
/** Refused with a warning for reserved `sandgate.*` keys. */
void sg_ctx_set(sg_ctx *ctx, const char *key, sg_value *v);
void sg_ctx_set_str(sg_ctx *ctx, const char *key, const char *s);
void sg_ctx_delete(sg_ctx *ctx, const char *key);
const char *sg_ctx_request_id(const sg_ctx *ctx); /* "" if absent */
int64_t sg_ctx_fallback_index(const sg_ctx *ctx);
bool sg_ctx_stream_end(const sg_ctx *ctx);

/* ---- HTTP ------------------------------------------------------------- */

/** A string map with a patch: header names compare case-insensitively. */
typedef struct sg_strmap {
  sg_value *base;   /* as received */
  sg_value *patch;  /* set (str) or removed (nil) */
  bool fold_case;   /* headers */
} sg_strmap;

const char *sg_strmap_get(const sg_strmap *m, const char *name);
void sg_strmap_set(sg_strmap *m, const char *name, const char *value);
void sg_strmap_remove(sg_strmap *m, const char *name);
/** Calls `fn` for every entry as it now stands (patch applied), in order. */
void sg_strmap_each(const sg_strmap *m, void (*fn)(const char *name, const char *value, void *arg), void *arg);

typedef struct sg_http_request {
  const char *method;  /* assign to change */
  const char *path;    /* assign to change */
  sg_strmap query;
  sg_strmap headers;
  const uint8_t *body; /* NULL when absent (e.g. the plugin opted out) */
  size_t body_len;
  /* private */
  const char *in_method, *in_path;
  const uint8_t *in_body;
} sg_http_request;

const char *sg_req_header(const sg_http_request *r, const char *name);
void sg_req_set_header(sg_http_request *r, const char *name, const char *value);
void sg_req_remove_header(sg_http_request *r, const char *name);
const char *sg_req_query(const sg_http_request *r, const char *name);
void sg_req_set_query(sg_http_request *r, const char *name, const char *value);
void sg_req_remove_query(sg_http_request *r, const char *name);
void sg_req_set_body(sg_http_request *r, const void *p, size_t len);

typedef struct sg_http_response {
  int32_t status;      /* assign to change */
  sg_strmap headers;
  const uint8_t *body; /* NULL when absent */
  size_t body_len;
  /* private */
  int32_t in_status;
  const uint8_t *in_body;
} sg_http_response;

/** A new response for a short-circuit. */
sg_http_response *sg_response_new(int32_t status);
sg_http_response *sg_response_text(int32_t status, const char *text);
sg_http_response *sg_response_json(int32_t status, const char *json);
const char *sg_resp_header(const sg_http_response *r, const char *name);
void sg_resp_set_header(sg_http_response *r, const char *name, const char *value);
void sg_resp_remove_header(sg_http_response *r, const char *name);
void sg_resp_set_body(sg_http_response *r, const void *p, size_t len);

/** A deliberate error from a transport or chunk hook; status 0 = the host's 500, code NULL = plugin_rejected. */
typedef struct sg_hook_error {
  const char *message;
  int32_t status;
  const char *code;
} sg_hook_error;

/* ---- LLM -------------------------------------------------------------- */

/** Messages are maps { role, content, name?, ... }; these read and build them. */
const char *sg_message_role(const sg_value *msg);
/** The content if it is a str, else NULL (nil, or an array of parts). */
const char *sg_message_content(const sg_value *msg);
sg_value *sg_message_new(const char *role, const char *content);

typedef struct sg_llm_request {
  const char *provider; /* assign to change */
  const char *model;    /* assign to change */
  bool stream;
  sg_value *messages;   /* array of message maps: edit in place; sent back if changed */
  /* private */
  sg_value *params, *params_patch;
  const char *in_provider, *in_model;
  sg_buf in_messages;
} sg_llm_request;

const sg_value *sg_llm_param(const sg_llm_request *r, const char *key);
void sg_llm_set_param(sg_llm_request *r, const char *key, sg_value *v);
void sg_llm_remove_param(sg_llm_request *r, const char *key);

/** An OpenAI chat.completion (or .chunk): the map as received, typed accessors over it. */
typedef struct sg_llm_response {
  sg_value *v;
} sg_llm_response;

/** A completion with one choice { index 0, message { role: assistant, content }, finish_reason: stop }. */
sg_llm_response *sg_llm_response_new(const char *model, const char *content);
const char *sg_llm_response_id(const sg_llm_response *r);
const char *sg_llm_response_model(const sg_llm_response *r);
int64_t sg_llm_response_created(const sg_llm_response *r);
bool sg_llm_response_is_chunk(const sg_llm_response *r);
uint32_t sg_llm_response_choice_count(const sg_llm_response *r);
/** choice i's message (or delta, in a stream), or NULL. */
sg_value *sg_llm_response_message(const sg_llm_response *r, uint32_t i);
const char *sg_llm_response_content(const sg_llm_response *r, uint32_t i);
void sg_llm_response_set_content(sg_llm_response *r, uint32_t i, const char *content);
const char *sg_llm_response_finish_reason(const sg_llm_response *r, uint32_t i);
/** usage counts; -1 when absent. */
int64_t sg_llm_response_usage(const sg_llm_response *r, const char *which);
/** Reads `v` as an LlmResponse: integer fields (created, index, usage) become SG_INT in any encoding. */
sg_llm_response *sg_llm_response_from(sg_value *v);

typedef struct sg_llm_error {
  const char *message;
  const char *type;       /* NULL: absent */
  const char *code;       /* NULL: absent */
  int32_t status;         /* 0: absent */
  int allow_fallbacks;    /* -1: absent/nil (fallbacks allowed), 0: false, 1: true */
  const char *provider;   /* NULL: absent */
  const char *model;      /* NULL: absent */
  sg_value *extra;        /* keys the PDK does not know, kept */
} sg_llm_error;

sg_llm_error *sg_llm_error_new(const char *message);
sg_llm_error *sg_llm_error_from(const sg_value *v);
sg_value *sg_llm_error_to_value(const sg_llm_error *e);

/* ---- results ---------------------------------------------------------- */

typedef enum sg_outcome { SG_CONTINUE, SG_RESPOND, SG_ERROR, SG_REPLACE, SG_DROP } sg_outcome;

typedef struct sg_init_result {
  const char *error;      /* refuse to load, with this reason */
  int request_body;       /* -1 default (true), 0, 1 */
  int response_body;
  int stream_deltas;      /* -1 default (true); 0: post_llm_hook never sees a streamed delta (ABI.md 5.2) */
} sg_init_result;
sg_init_result sg_init_ok(void);
sg_init_result sg_init_error(const char *reason);

typedef struct sg_pre_result {
  sg_outcome outcome;
  sg_http_response *response;
  sg_hook_error error;
} sg_pre_result;
sg_pre_result sg_pre_continue(void);
sg_pre_result sg_pre_respond(sg_http_response *resp);
sg_pre_result sg_pre_error(const char *message, int32_t status, const char *code);

typedef struct sg_post_result {
  sg_outcome outcome;
  sg_hook_error error;
} sg_post_result;
sg_post_result sg_post_continue(void);
sg_post_result sg_post_error(const char *message, int32_t status, const char *code);

typedef struct sg_chunk_result {
  sg_outcome outcome;
  sg_value *chunk;
  sg_hook_error error;
} sg_chunk_result;
sg_chunk_result sg_chunk_pass(void);
sg_chunk_result sg_chunk_replace(sg_value *chunk);
sg_chunk_result sg_chunk_drop(void);
sg_chunk_result sg_chunk_error(const char *message, int32_t status, const char *code);

typedef struct sg_llm_result {
  sg_outcome outcome;
  sg_llm_response *response;
  sg_llm_error *error;
} sg_llm_result;
sg_llm_result sg_llm_continue(void);
/** pre: short-circuit with a response; post: replace the result (also recovers an error). */
sg_llm_result sg_llm_respond(sg_llm_response *response);
/** pre: short-circuit with an error; post: turn the result into this error. */
sg_llm_result sg_llm_fail(sg_llm_error *error);

/** The legacy interceptor's request: headers and body are replaced whole when changed. */
typedef struct sg_interceptor_request {
  const char *url;
  sg_value *headers; /* map<str,str>: edit in place */
  sg_value *body;    /* the parsed JSON body (a map) or nil: edit in place */
} sg_interceptor_request;

typedef sg_post_result sg_interceptor_result;
#define sg_interceptor_continue sg_post_continue
#define sg_interceptor_error sg_post_error

/* ---- runners: read the envelope, call you, write only what changed ----- */

typedef sg_init_result (*sg_init_fn)(const sg_value *config, const char *name);
typedef void (*sg_cleanup_fn)(void);
typedef sg_pre_result (*sg_transport_pre_fn)(sg_ctx *ctx, sg_http_request *req);
typedef sg_post_result (*sg_transport_post_fn)(sg_ctx *ctx, sg_http_request *req, sg_http_response *resp);
typedef sg_chunk_result (*sg_chunk_fn)(sg_ctx *ctx, sg_value *chunk);
typedef sg_llm_result (*sg_llm_pre_fn)(sg_ctx *ctx, sg_llm_request *req);
/** Exactly one of response and error is non-NULL. */
typedef sg_llm_result (*sg_llm_post_fn)(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error);
typedef sg_interceptor_result (*sg_interceptor_fn)(sg_ctx *ctx, sg_interceptor_request *req);

int32_t sg_run_init(sg_init_fn fn);
int32_t sg_run_get_name(const char *name);
int32_t sg_run_cleanup(sg_cleanup_fn fn);
int32_t sg_run_transport_pre(sg_transport_pre_fn fn);
int32_t sg_run_transport_post(sg_transport_post_fn fn);
int32_t sg_run_stream_chunk(sg_chunk_fn fn);
int32_t sg_run_pre_llm(sg_llm_pre_fn fn);
int32_t sg_run_post_llm(sg_llm_post_fn fn);
int32_t sg_run_transport_interceptor(sg_interceptor_fn fn);

/* One line per hook: SG_PRE_LLM_HOOK(on_pre_llm); defines the export. */
#define SG_DEFINE_HOOK(export, runner, fn) \
  SG_EXPORT(export) int32_t sg_hook_##fn##_##runner(void) { return runner(fn); }
#define SG_INIT(fn) SG_DEFINE_HOOK("init", sg_run_init, fn)
#define SG_CLEANUP(fn) SG_DEFINE_HOOK("cleanup", sg_run_cleanup, fn)
#define SG_GET_NAME(name) \
  SG_EXPORT("get_name") int32_t sg_hook_get_name(void) { return sg_run_get_name(name); }
#define SG_TRANSPORT_PRE_HOOK(fn) SG_DEFINE_HOOK("http_transport_pre_hook", sg_run_transport_pre, fn)
#define SG_TRANSPORT_POST_HOOK(fn) SG_DEFINE_HOOK("http_transport_post_hook", sg_run_transport_post, fn)
#define SG_STREAM_CHUNK_HOOK(fn) SG_DEFINE_HOOK("http_transport_stream_chunk_hook", sg_run_stream_chunk, fn)
#define SG_PRE_LLM_HOOK(fn) SG_DEFINE_HOOK("pre_llm_hook", sg_run_pre_llm, fn)
#define SG_POST_LLM_HOOK(fn) SG_DEFINE_HOOK("post_llm_hook", sg_run_post_llm, fn)
/* legacy names (ABI.md §3): used by the host only when the new ones are absent */
#define SG_LEGACY_PRE_HOOK(fn) SG_DEFINE_HOOK("pre_hook", sg_run_pre_llm, fn)
#define SG_LEGACY_POST_HOOK(fn) SG_DEFINE_HOOK("post_hook", sg_run_post_llm, fn)
#define SG_TRANSPORT_INTERCEPTOR(fn) SG_DEFINE_HOOK("transport_interceptor", sg_run_transport_interceptor, fn)

/* ---- host (ABI.md §4.2), native builds supply their own for tests ----- */

int32_t sg_host_input_length(void);
void sg_host_input_read(uint8_t *dst);
void sg_host_output_write(const uint8_t *src, int32_t len);
void sg_host_log(int32_t level, const char *src, int32_t len);
/** Where the arena restarts after each hook call: everything allocated so far is kept. */
void sg_arena_keep(void);
void sg_arena_reset(void);

#ifdef __cplusplus
}
#endif
#endif
