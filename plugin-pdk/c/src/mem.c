/* The arena, strings, buffers, logging and sg_fail. */
#include "sandgate.h"

/* ---- arena: one bump pointer; init's allocations are kept, a hook's are not */

#if defined(__wasm__)
extern unsigned char __heap_base;
static uintptr_t arena_top;  /* next free byte */
static uintptr_t arena_mark; /* where sg_arena_reset goes back to */
static uintptr_t arena_end;  /* end of linear memory */

static void arena_start(void) {
  if (arena_top == 0) {
    arena_top = arena_mark = (uintptr_t)&__heap_base;
    arena_end = __builtin_wasm_memory_size(0) * 65536u;
  }
}

static void arena_grow(size_t need) {
  size_t pages = (need - (arena_end - arena_top) + 65535u) / 65536u;
  /* grow at least 1 MiB at a time: memory.grow is a host round-trip */
  if (pages < 16) pages = 16;
  if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) {
    /* Past memory_limit_mb: this trap is reported as plugin_memory (ABI.md §7.1). */
    sg_fail("out of memory (the plugin's memory_limit_mb)");
  }
  arena_end += pages * 65536u;
}
#else
/* Native builds (the kit's own tests): a fixed block. */
static unsigned char native_heap[256u << 20];
static uintptr_t arena_top, arena_mark, arena_end;

static void arena_start(void) {
  if (arena_top == 0) {
    arena_top = arena_mark = (uintptr_t)native_heap;
    arena_end = arena_top + sizeof native_heap;
  }
}

static void arena_grow(size_t need) {
  (void)need;
  sg_fail("out of memory (native test arena)");
}
#endif

void *sg_alloc(size_t n) {
  arena_start();
  arena_top = (arena_top + 7u) & ~(uintptr_t)7u;
  if (n > arena_end - arena_top) arena_grow(n);
  void *p = (void *)arena_top;
  arena_top += n;
  __builtin_memset(p, 0, n);
  return p;
}

void sg_arena_keep(void) {
  arena_start();
  arena_mark = arena_top;
}

void sg_arena_reset(void) {
  arena_start();
  arena_top = arena_mark;
}

/* ---- strings */

size_t sg_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

char *sg_strndup(const char *s, size_t len) {
  char *p = sg_alloc(len + 1);
  if (len) __builtin_memcpy(p, s, len);
  return p;
}

char *sg_strdup(const char *s) { return sg_strndup(s, sg_strlen(s)); }

bool sg_streq(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return *a == *b;
}

bool sg_memeq(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return false;
  return true;
}

static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

bool sg_strieq(const char *a, const char *b) {
  while (*a && lower(*a) == lower(*b)) a++, b++;
  return lower(*a) == lower(*b);
}

/* ---- buffers */

static void buf_reserve(sg_buf *b, size_t more) {
  if (b->len + more + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap * 2 : 256;
  while (cap < b->len + more + 1) cap *= 2;
  uint8_t *d = sg_alloc(cap);
  if (b->len) __builtin_memcpy(d, b->data, b->len);
  b->data = d;
  b->cap = cap;
}

void sg_buf_bytes(sg_buf *b, const void *p, size_t n) {
  buf_reserve(b, n);
  if (n) __builtin_memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = 0;
}

void sg_buf_str(sg_buf *b, const char *s) { sg_buf_bytes(b, s, sg_strlen(s)); }
void sg_buf_char(sg_buf *b, char c) { sg_buf_bytes(b, &c, 1); }

void sg_buf_int(sg_buf *b, int64_t v) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) tmp[n++] = '-';
  while (n) sg_buf_char(b, tmp[--n]);
}

void sg_buf_json_str(sg_buf *b, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  sg_buf_char(b, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') { sg_buf_char(b, '\\'); sg_buf_char(b, (char)c); }
    else if (c == '\n') sg_buf_str(b, "\\n");
    else if (c == '\r') sg_buf_str(b, "\\r");
    else if (c == '\t') sg_buf_str(b, "\\t");
    else if (c < 0x20 || c == 0x7f) {
      char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
      sg_buf_bytes(b, e, 6);
    } else sg_buf_char(b, (char)c);
  }
  sg_buf_char(b, '"');
}

/* ---- logging and failing */

void sg_log_n(sg_level level, const char *text, size_t len) {
  sg_host_log((int32_t)level, text, (int32_t)len);
}

void sg_log(sg_level level, const char *text) { sg_log_n(level, text, sg_strlen(text)); }

_Noreturn void sg_fail(const char *message) { sg_fail2(message, ""); }

_Noreturn void sg_fail2(const char *a, const char *b) {
  /* No arena here: sg_fail may be called because the arena is exhausted. */
  static char line[1024];
  static const char prefix[] = "plugin failed: ";
  size_t n = 0;
  for (const char *p = prefix; *p && n < sizeof line; p++) line[n++] = *p;
  for (const char *p = a; *p && n < sizeof line; p++) line[n++] = *p;
  for (const char *p = b; *p && n < sizeof line; p++) line[n++] = *p;
  sg_host_log(SG_LOG_ERROR, line, (int32_t)n);
  __builtin_trap();
}
