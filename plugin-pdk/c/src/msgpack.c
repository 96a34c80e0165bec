/* MessagePack values: a tree that keeps key order and unknown keys, a
 * bounds-checked reader, and a writer of the smallest encoding (ABI.md §6). */
#include "sandgate.h"

/* ABI.md §7.4: the host bounds nesting; past this the input is not the host's. */
#define MAX_DEPTH 256

/* ---- constructors */

static sg_value *new_value(sg_type t) {
  sg_value *v = sg_alloc(sizeof *v);
  v->type = t;
  return v;
}

sg_value *sg_nil(void) { return new_value(SG_NIL); }
sg_value *sg_bool(bool b) { sg_value *v = new_value(SG_BOOL); v->as.b = b; return v; }
sg_value *sg_int(int64_t i) { sg_value *v = new_value(SG_INT); v->as.i = i; return v; }
sg_value *sg_float(double f) { sg_value *v = new_value(SG_FLOAT); v->as.f = f; return v; }
sg_value *sg_strn(const char *s, size_t len) {
  sg_value *v = new_value(SG_STR);
  v->as.s.ptr = sg_strndup(s, len);
  v->as.s.len = (uint32_t)len;
  return v;
}
sg_value *sg_str(const char *s) { return sg_strn(s, sg_strlen(s)); }
sg_value *sg_bin(const void *p, size_t len) {
  sg_value *v = new_value(SG_BIN);
  v->as.s.ptr = sg_strndup(p, len);
  v->as.s.len = (uint32_t)len;
  return v;
}
sg_value *sg_array(void) { return new_value(SG_ARRAY); }
sg_value *sg_map(void) { return new_value(SG_MAP); }

static sg_value **grow_slots(sg_value **old, uint32_t len, uint32_t cap) {
  sg_value **slots = sg_alloc(cap * sizeof *slots);
  if (len) __builtin_memcpy(slots, old, len * sizeof *slots);
  return slots;
}

void sg_array_push(sg_value *arr, sg_value *v) {
  if (arr->type != SG_ARRAY) sg_fail("sg_array_push: not an array");
  if (arr->as.a.len == arr->as.a.cap) {
    arr->as.a.cap = arr->as.a.cap ? arr->as.a.cap * 2 : 4;
    arr->as.a.items = grow_slots(arr->as.a.items, arr->as.a.len, arr->as.a.cap);
  }
  arr->as.a.items[arr->as.a.len++] = v;
}

static void map_append(sg_value *map, sg_value *k, sg_value *v) {
  if (map->as.m.len == map->as.m.cap) {
    map->as.m.cap = map->as.m.cap ? map->as.m.cap * 2 : 4;
    map->as.m.keys = grow_slots(map->as.m.keys, map->as.m.len, map->as.m.cap);
    map->as.m.vals = grow_slots(map->as.m.vals, map->as.m.len, map->as.m.cap);
  }
  map->as.m.keys[map->as.m.len] = k;
  map->as.m.vals[map->as.m.len++] = v;
}

static int map_index(const sg_value *map, const char *key) {
  if (!map || map->type != SG_MAP) return -1;
  for (uint32_t i = 0; i < map->as.m.len; i++) {
    const sg_value *k = map->as.m.keys[i];
    if (k->type == SG_STR && sg_streq(k->as.s.ptr, key)) return (int)i;
  }
  return -1;
}

sg_value *sg_map_get(const sg_value *map, const char *key) {
  int i = map_index(map, key);
  return i < 0 ? 0 : map->as.m.vals[i];
}

void sg_map_set(sg_value *map, const char *key, sg_value *v) {
  if (map->type != SG_MAP) sg_fail2("sg_map_set: not a map, setting ", key);
  int i = map_index(map, key);
  if (i >= 0) map->as.m.vals[i] = v ? v : sg_nil();
  else map_append(map, sg_str(key), v ? v : sg_nil());
}

bool sg_map_remove(sg_value *map, const char *key) {
  int i = map_index(map, key);
  if (i < 0) return false;
  for (uint32_t j = (uint32_t)i; j + 1 < map->as.m.len; j++) {
    map->as.m.keys[j] = map->as.m.keys[j + 1];
    map->as.m.vals[j] = map->as.m.vals[j + 1];
  }
  map->as.m.len--;
  return true;
}

/* ---- readers of one value */

bool sg_is_nil(const sg_value *v) { return !v || v->type == SG_NIL; }

const char *sg_as_str(const sg_value *v) { return v && v->type == SG_STR ? v->as.s.ptr : 0; }

static bool integral(double f) {
  return f >= -9223372036854775808.0 && f < 9223372036854775808.0 && (double)(int64_t)f == f;
}

int64_t sg_as_int(const sg_value *v, int64_t def) {
  if (!v) return def;
  if (v->type == SG_INT) return v->as.i;
  if (v->type == SG_FLOAT && integral(v->as.f)) return (int64_t)v->as.f;
  return def;
}

bool sg_as_bool(const sg_value *v, bool def) { return v && v->type == SG_BOOL ? v->as.b : def; }

double sg_as_float(const sg_value *v, double def) {
  if (!v) return def;
  if (v->type == SG_FLOAT) return v->as.f;
  if (v->type == SG_INT) return (double)v->as.i;
  if (v->type == SG_UINT) return (double)v->as.u;
  return def;
}

void sg_normalize_int(sg_value *v) {
  if (v && v->type == SG_FLOAT && integral(v->as.f)) {
    v->as.i = (int64_t)v->as.f;
    v->type = SG_INT;
    v->f32 = false;
  }
}

static bool is_number(const sg_value *v) {
  return v->type == SG_INT || v->type == SG_UINT || v->type == SG_FLOAT;
}

bool sg_value_equal(const sg_value *a, const sg_value *b) {
  if (sg_is_nil(a) || sg_is_nil(b)) return sg_is_nil(a) && sg_is_nil(b);
  if (is_number(a) && is_number(b)) {
    if (a->type == SG_UINT || b->type == SG_UINT)
      return a->type == b->type && a->as.u == b->as.u;
    if (a->type == SG_INT && b->type == SG_INT) return a->as.i == b->as.i;
    return sg_as_float(a, 0) == sg_as_float(b, 0);
  }
  if (a->type != b->type) return false;
  switch (a->type) {
    case SG_BOOL: return a->as.b == b->as.b;
    case SG_STR:
    case SG_BIN:
      return a->as.s.len == b->as.s.len &&
             (a->as.s.len == 0 || sg_memeq(a->as.s.ptr, b->as.s.ptr, a->as.s.len));
    case SG_ARRAY:
      if (a->as.a.len != b->as.a.len) return false;
      for (uint32_t i = 0; i < a->as.a.len; i++)
        if (!sg_value_equal(a->as.a.items[i], b->as.a.items[i])) return false;
      return true;
    case SG_MAP: {
      /* nil-for-absent: a key holding nil equals a missing key */
      for (int pass = 0; pass < 2; pass++) {
        const sg_value *x = pass ? b : a, *y = pass ? a : b;
        for (uint32_t i = 0; i < x->as.m.len; i++) {
          const char *k = sg_as_str(x->as.m.keys[i]);
          if (!k) return false;
          if (!sg_value_equal(x->as.m.vals[i], sg_map_get(y, k))) return false;
        }
      }
      return true;
    }
    default: return false;
  }
}

sg_value *sg_value_clone(const sg_value *v) {
  if (!v) return 0;
  sg_value *c = new_value(v->type);
  *c = *v;
  switch (v->type) {
    case SG_STR: return sg_strn(v->as.s.ptr, v->as.s.len);
    case SG_BIN: return sg_bin(v->as.s.ptr, v->as.s.len);
    case SG_ARRAY:
      c->as.a.items = 0; c->as.a.len = c->as.a.cap = 0;
      for (uint32_t i = 0; i < v->as.a.len; i++) sg_array_push(c, sg_value_clone(v->as.a.items[i]));
      return c;
    case SG_MAP:
      c->as.m.keys = c->as.m.vals = 0; c->as.m.len = c->as.m.cap = 0;
      for (uint32_t i = 0; i < v->as.m.len; i++)
        map_append(c, sg_value_clone(v->as.m.keys[i]), sg_value_clone(v->as.m.vals[i]));
      return c;
    default: return c;
  }
}

/* ---- reader */

typedef struct reader {
  const uint8_t *p;
  size_t len, pos;
  const char *error; /* set on the first fault; decoding stops */
} reader;

static bool need(reader *r, size_t n) {
  if (r->error) return false;
  if (n > r->len - r->pos) {
    r->error = "the data ends inside a value (truncated MessagePack)";
    return false;
  }
  return true;
}

static uint64_t be(reader *r, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | r->p[r->pos + i];
  r->pos += n;
  return v;
}

static sg_value *read_value(reader *r, int depth);

static sg_value *read_bytes(reader *r, sg_type t, size_t n) {
  if (!need(r, n)) return 0;
  sg_value *v = t == SG_STR ? sg_strn((const char *)r->p + r->pos, n) : sg_bin(r->p + r->pos, n);
  r->pos += n;
  return v;
}

static sg_value *read_array(reader *r, size_t n, int depth) {
  /* every element takes at least one byte: refuse counts the data cannot hold before allocating */
  if (!need(r, n)) return 0;
  sg_value *a = sg_array();
  a->as.a.cap = (uint32_t)n;
  a->as.a.items = n ? sg_alloc(n * sizeof(sg_value *)) : 0;
  for (size_t i = 0; i < n; i++) {
    sg_value *e = read_value(r, depth + 1);
    if (!e) return 0;
    a->as.a.items[a->as.a.len++] = e;
  }
  return a;
}

static sg_value *read_map(reader *r, size_t n, int depth) {
  if (n > (r->len - r->pos) / 2) { need(r, r->len - r->pos + 1); return 0; }
  sg_value *m = sg_map();
  m->as.m.cap = (uint32_t)n;
  if (n) {
    m->as.m.keys = sg_alloc(n * sizeof(sg_value *));
    m->as.m.vals = sg_alloc(n * sizeof(sg_value *));
  }
  for (size_t i = 0; i < n; i++) {
    sg_value *k = read_value(r, depth + 1);
    if (!k) return 0;
    sg_value *v = read_value(r, depth + 1);
    if (!v) return 0;
    m->as.m.keys[m->as.m.len] = k;
    m->as.m.vals[m->as.m.len++] = v;
  }
  return m;
}

static sg_value *read_uint(uint64_t u) {
  if (u <= (uint64_t)INT64_MAX) return sg_int((int64_t)u);
  sg_value *v = new_value(SG_UINT);
  v->as.u = u;
  return v;
}

static sg_value *read_value(reader *r, int depth) {
  if (depth > MAX_DEPTH) {
    if (!r->error) r->error = "a value nests deeper than 256 levels (the PDK's bound, ABI.md §7.4)";
    return 0;
  }
  if (!need(r, 1)) return 0;
  uint8_t t = r->p[r->pos++];
  if (t <= 0x7f) return sg_int(t);
  if (t >= 0xe0) return sg_int((int8_t)t);
  if ((t & 0xf0) == 0x80) return read_map(r, t & 0x0f, depth);
  if ((t & 0xf0) == 0x90) return read_array(r, t & 0x0f, depth);
  if ((t & 0xe0) == 0xa0) return read_bytes(r, SG_STR, t & 0x1f);
  switch (t) {
    case 0xc0: return sg_nil();
    case 0xc2: return sg_bool(false);
    case 0xc3: return sg_bool(true);
    case 0xc4: if (!need(r, 1)) return 0; return read_bytes(r, SG_BIN, be(r, 1));
    case 0xc5: if (!need(r, 2)) return 0; return read_bytes(r, SG_BIN, be(r, 2));
    case 0xc6: if (!need(r, 4)) return 0; return read_bytes(r, SG_BIN, be(r, 4));
    case 0xca: {
      if (!need(r, 4)) return 0;
      uint32_t bits = (uint32_t)be(r, 4);
      float f;
      __builtin_memcpy(&f, &bits, 4);
      sg_value *v = sg_float(f);
      v->f32 = true;
      return v;
    }
    case 0xcb: {
      if (!need(r, 8)) return 0;
      uint64_t bits = be(r, 8);
      double d;
      __builtin_memcpy(&d, &bits, 8);
      return sg_float(d);
    }
    case 0xcc: if (!need(r, 1)) return 0; return read_uint(be(r, 1));
    case 0xcd: if (!need(r, 2)) return 0; return read_uint(be(r, 2));
    case 0xce: if (!need(r, 4)) return 0; return read_uint(be(r, 4));
    case 0xcf: if (!need(r, 8)) return 0; return read_uint(be(r, 8));
    case 0xd0: if (!need(r, 1)) return 0; return sg_int((int8_t)be(r, 1));
    case 0xd1: if (!need(r, 2)) return 0; return sg_int((int16_t)be(r, 2));
    case 0xd2: if (!need(r, 4)) return 0; return sg_int((int32_t)be(r, 4));
    case 0xd3: if (!need(r, 8)) return 0; return sg_int((int64_t)be(r, 8));
    case 0xd9: if (!need(r, 1)) return 0; return read_bytes(r, SG_STR, be(r, 1));
    case 0xda: if (!need(r, 2)) return 0; return read_bytes(r, SG_STR, be(r, 2));
    case 0xdb: if (!need(r, 4)) return 0; return read_bytes(r, SG_STR, be(r, 4));
    case 0xdc: if (!need(r, 2)) return 0; return read_array(r, be(r, 2), depth);
    case 0xdd: if (!need(r, 4)) return 0; return read_array(r, be(r, 4), depth);
    case 0xde: if (!need(r, 2)) return 0; return read_map(r, be(r, 2), depth);
    case 0xdf: if (!need(r, 4)) return 0; return read_map(r, be(r, 4), depth);
    default:
      /* extension types (c7-c9, d4-d8) and c1 never appear in an envelope */
      r->error = "an extension type or the unused byte c1 (not part of ABI v1)";
      return 0;
  }
}

sg_value *sg_try_decode(const uint8_t *p, size_t len, const char **error) {
  reader r = { p, len, 0, 0 };
  sg_value *v = read_value(&r, 0);
  if (v && r.pos != len) r.error = "more bytes follow the value (not one MessagePack value)";
  if (r.error) {
    if (error) *error = r.error;
    return 0;
  }
  return v;
}

sg_value *sg_decode(const uint8_t *p, size_t len) {
  const char *error = 0;
  sg_value *v = sg_try_decode(p, len, &error);
  if (!v) sg_fail2("malformed input envelope: ", error);
  return v;
}

/* ---- writer */

static void put(sg_buf *b, uint8_t tag, uint64_t v, int n) {
  uint8_t tmp[9];
  tmp[0] = tag;
  for (int i = 0; i < n; i++) tmp[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  sg_buf_bytes(b, tmp, (size_t)n + 1);
}

void sg_write_nil(sg_buf *b) { uint8_t c = 0xc0; sg_buf_bytes(b, &c, 1); }
void sg_write_bool(sg_buf *b, bool v) { uint8_t c = v ? 0xc3 : 0xc2; sg_buf_bytes(b, &c, 1); }

void sg_write_int(sg_buf *b, int64_t v) {
  if (v >= 0) {
    if (v <= 0x7f) { uint8_t c = (uint8_t)v; sg_buf_bytes(b, &c, 1); }
    else if (v <= 0xff) put(b, 0xcc, (uint64_t)v, 1);
    else if (v <= 0xffff) put(b, 0xcd, (uint64_t)v, 2);
    else if (v <= 0xffffffffLL) put(b, 0xce, (uint64_t)v, 4);
    else put(b, 0xd3, (uint64_t)v, 8); /* beyond 32 bits: int64 (ABI.md §6) */
  } else {
    if (v >= -32) { uint8_t c = (uint8_t)(int8_t)v; sg_buf_bytes(b, &c, 1); }
    else if (v >= -128) put(b, 0xd0, (uint64_t)v & 0xff, 1);
    else if (v >= -32768) put(b, 0xd1, (uint64_t)v & 0xffff, 2);
    else if (v >= -2147483648LL) put(b, 0xd2, (uint64_t)v & 0xffffffffu, 4);
    else put(b, 0xd3, (uint64_t)v, 8);
  }
}

void sg_write_uint(sg_buf *b, uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) sg_write_int(b, (int64_t)v);
  else put(b, 0xcf, v, 8);
}

void sg_write_float(sg_buf *b, double v) {
  uint64_t bits;
  __builtin_memcpy(&bits, &v, 8);
  put(b, 0xcb, bits, 8);
}

static void write_float32(sg_buf *b, float v) {
  uint32_t bits;
  __builtin_memcpy(&bits, &v, 4);
  put(b, 0xca, bits, 4);
}

static void write_len(sg_buf *b, size_t n, uint8_t fix, size_t fixmax, uint8_t t8, uint8_t t16, uint8_t t32) {
  if (fix && n <= fixmax) { uint8_t c = (uint8_t)(fix | n); sg_buf_bytes(b, &c, 1); }
  else if (t8 && n <= 0xff) put(b, t8, n, 1);
  else if (n <= 0xffff) put(b, t16, n, 2);
  else put(b, t32, n, 4);
}

void sg_write_str(sg_buf *b, const char *s, size_t len) {
  write_len(b, len, 0xa0, 31, 0xd9, 0xda, 0xdb);
  sg_buf_bytes(b, s, len);
}
void sg_write_cstr(sg_buf *b, const char *s) { sg_write_str(b, s, sg_strlen(s)); }
void sg_write_bin(sg_buf *b, const void *p, size_t len) {
  write_len(b, len, 0, 0, 0xc4, 0xc5, 0xc6);
  sg_buf_bytes(b, p, len);
}
void sg_write_array_header(sg_buf *b, uint32_t n) { write_len(b, n, 0x90, 15, 0, 0xdc, 0xdd); }
void sg_write_map_header(sg_buf *b, uint32_t n) { write_len(b, n, 0x80, 15, 0, 0xde, 0xdf); }

void sg_encode(sg_buf *out, const sg_value *v) {
  if (!v) { sg_write_nil(out); return; }
  switch (v->type) {
    case SG_NIL: sg_write_nil(out); break;
    case SG_BOOL: sg_write_bool(out, v->as.b); break;
    case SG_INT: sg_write_int(out, v->as.i); break;
    case SG_UINT: sg_write_uint(out, v->as.u); break;
    case SG_FLOAT:
      if (v->f32) write_float32(out, (float)v->as.f);
      else sg_write_float(out, v->as.f);
      break;
    case SG_STR: sg_write_str(out, v->as.s.ptr, v->as.s.len); break;
    case SG_BIN: sg_write_bin(out, v->as.s.ptr, v->as.s.len); break;
    case SG_ARRAY:
      sg_write_array_header(out, v->as.a.len);
      for (uint32_t i = 0; i < v->as.a.len; i++) sg_encode(out, v->as.a.items[i]);
      break;
    case SG_MAP:
      sg_write_map_header(out, v->as.m.len);
      for (uint32_t i = 0; i < v->as.m.len; i++) {
        sg_encode(out, v->as.m.keys[i]);
        sg_encode(out, v->as.m.vals[i]);
      }
      break;
  }
}
