/* Context, HTTP and LLM types, results, and the hook runners. */
#include "sandgate.h"

/* ---- the ABI marker (ABI.md §2): every plugin built with this kit exports it */

SG_EXPORT("sandgate_abi_v1") int32_t sandgate_abi_v1(void) { return 1; }

/* ---- context */

static bool reserved(const char *key) {
  const char *p = "sandgate.";
  while (*p && *key == *p) p++, key++;
  return *p == 0;
}

const sg_value *sg_ctx_get(const sg_ctx *ctx, const char *key) {
  const sg_value *v = sg_map_get(ctx->patch, key);
  if (v) return sg_is_nil(v) ? 0 : v;
  v = sg_map_get(ctx->all, key);
  return sg_is_nil(v) ? 0 : v;
}

const char *sg_ctx_get_str(const sg_ctx *ctx, const char *key) { return sg_as_str(sg_ctx_get(ctx, key)); }
int64_t sg_ctx_get_int(const sg_ctx *ctx, const char *key, int64_t def) { return sg_as_int(sg_ctx_get(ctx, key), def); }
bool sg_ctx_get_bool(const sg_ctx *ctx, const char *key, bool def) { return sg_as_bool(sg_ctx_get(ctx, key), def); }

void sg_ctx_set(sg_ctx *ctx, const char *key, sg_value *v) {
  if (reserved(key)) {
    sg_buf b = { 0 };
    sg_buf_str(&b, "context key ");
    sg_buf_str(&b, key);
    sg_buf_str(&b, " is reserved for the host; not set");
    sg_warn((const char *)b.data);
    return;
  }
  sg_map_set(ctx->patch, key, v ? v : sg_nil());
}

void sg_ctx_set_str(sg_ctx *ctx, const char *key, const char *s) { sg_ctx_set(ctx, key, sg_str(s)); }
void sg_ctx_delete(sg_ctx *ctx, const char *key) { sg_ctx_set(ctx, key, sg_nil()); }

const char *sg_ctx_request_id(const sg_ctx *ctx) {
  const char *s = sg_ctx_get_str(ctx, "sandgate.request_id");
  return s ? s : "";
}
int64_t sg_ctx_fallback_index(const sg_ctx *ctx) { return sg_ctx_get_int(ctx, "sandgate.fallback_index", 0); }
bool sg_ctx_stream_end(const sg_ctx *ctx) { return sg_ctx_get_bool(ctx, "sandgate.stream_end", false); }

/* ---- string maps with a patch */

static int strmap_find(const sg_value *map, const char *name, bool fold) {
  if (!map || map->type != SG_MAP) return -1;
  for (uint32_t i = 0; i < map->as.m.len; i++) {
    const char *k = sg_as_str(map->as.m.keys[i]);
    if (k && (fold ? sg_strieq(k, name) : sg_streq(k, name))) return (int)i;
  }
  return -1;
}

const char *sg_strmap_get(const sg_strmap *m, const char *name) {
  int i = strmap_find(m->patch, name, m->fold_case);
  if (i >= 0) return sg_as_str(m->patch->as.m.vals[i]);
  i = strmap_find(m->base, name, m->fold_case);
  return i >= 0 ? sg_as_str(m->base->as.m.vals[i]) : 0;
}

static const char *lowered(const char *s, bool fold) {
  if (!fold) return s;
  char *c = sg_strdup(s);
  for (char *p = c; *p; p++) if (*p >= 'A' && *p <= 'Z') *p = (char)(*p + 32);
  return c;
}

static void strmap_put(sg_strmap *m, const char *name, sg_value *v) {
  if (!m->patch) m->patch = sg_map();
  sg_map_set(m->patch, lowered(name, m->fold_case), v);
}

void sg_strmap_set(sg_strmap *m, const char *name, const char *value) { strmap_put(m, name, sg_str(value)); }
void sg_strmap_remove(sg_strmap *m, const char *name) { strmap_put(m, name, sg_nil()); }

void sg_strmap_each(const sg_strmap *m, void (*fn)(const char *, const char *, void *), void *arg) {
  if (m->base && m->base->type == SG_MAP)
    for (uint32_t i = 0; i < m->base->as.m.len; i++) {
      const char *k = sg_as_str(m->base->as.m.keys[i]);
      if (!k || strmap_find(m->patch, k, m->fold_case) >= 0) continue;
      const char *v = sg_as_str(m->base->as.m.vals[i]);
      if (v) fn(k, v, arg);
    }
  if (m->patch)
    for (uint32_t i = 0; i < m->patch->as.m.len; i++) {
      const char *v = sg_as_str(m->patch->as.m.vals[i]);
      if (v) fn(sg_as_str(m->patch->as.m.keys[i]), v, arg);
    }
}

static bool strmap_changed(const sg_strmap *m) { return m->patch && m->patch->as.m.len > 0; }

/* ---- HTTP */

const char *sg_req_header(const sg_http_request *r, const char *n) { return sg_strmap_get(&r->headers, n); }
void sg_req_set_header(sg_http_request *r, const char *n, const char *v) { sg_strmap_set(&r->headers, n, v); }
void sg_req_remove_header(sg_http_request *r, const char *n) { sg_strmap_remove(&r->headers, n); }
const char *sg_req_query(const sg_http_request *r, const char *n) { return sg_strmap_get(&r->query, n); }
void sg_req_set_query(sg_http_request *r, const char *n, const char *v) { sg_strmap_set(&r->query, n, v); }
void sg_req_remove_query(sg_http_request *r, const char *n) { sg_strmap_remove(&r->query, n); }

void sg_req_set_body(sg_http_request *r, const void *p, size_t len) {
  r->body = (const uint8_t *)sg_strndup(p, len);
  r->body_len = len;
}

sg_http_response *sg_response_new(int32_t status) {
  sg_http_response *r = sg_alloc(sizeof *r);
  r->status = status;
  r->headers.base = sg_map();
  r->headers.fold_case = true;
  return r;
}

sg_http_response *sg_response_text(int32_t status, const char *text) {
  sg_http_response *r = sg_response_new(status);
  sg_resp_set_header(r, "content-type", "text/plain; charset=utf-8");
  sg_resp_set_body(r, text, sg_strlen(text));
  return r;
}

sg_http_response *sg_response_json(int32_t status, const char *json) {
  sg_http_response *r = sg_response_new(status);
  sg_resp_set_header(r, "content-type", "application/json");
  sg_resp_set_body(r, json, sg_strlen(json));
  return r;
}

const char *sg_resp_header(const sg_http_response *r, const char *n) { return sg_strmap_get(&r->headers, n); }
void sg_resp_set_header(sg_http_response *r, const char *n, const char *v) { sg_strmap_set(&r->headers, n, v); }
void sg_resp_remove_header(sg_http_response *r, const char *n) { sg_strmap_remove(&r->headers, n); }

void sg_resp_set_body(sg_http_response *r, const void *p, size_t len) {
  r->body = (const uint8_t *)sg_strndup(p, len);
  r->body_len = len;
}

static sg_strmap strmap_of(sg_value *v, bool fold) {
  sg_strmap m = { v && v->type == SG_MAP ? v : sg_map(), 0, fold };
  return m;
}

static void read_request(sg_http_request *r, const sg_value *v) {
  const char *method = sg_as_str(sg_map_get(v, "method"));
  const char *path = sg_as_str(sg_map_get(v, "path"));
  r->method = r->in_method = method ? method : "";
  r->path = r->in_path = path ? path : "";
  r->query = strmap_of(sg_map_get(v, "query"), false);
  r->headers = strmap_of(sg_map_get(v, "headers"), true);
  const sg_value *body = sg_map_get(v, "body");
  if (body && (body->type == SG_BIN || body->type == SG_STR)) {
    r->body = r->in_body = (const uint8_t *)body->as.s.ptr;
    r->body_len = body->as.s.len;
  }
}

static void read_response(sg_http_response *r, const sg_value *v) {
  r->status = r->in_status = (int32_t)sg_as_int(sg_map_get(v, "status"), 0);
  r->headers = strmap_of(sg_map_get(v, "headers"), true);
  const sg_value *body = sg_map_get(v, "body");
  if (body && (body->type == SG_BIN || body->type == SG_STR)) {
    r->body = r->in_body = (const uint8_t *)body->as.s.ptr;
    r->body_len = body->as.s.len;
  }
}

/* ---- LLM */

const char *sg_message_role(const sg_value *msg) { return sg_as_str(sg_map_get(msg, "role")); }
const char *sg_message_content(const sg_value *msg) { return sg_as_str(sg_map_get(msg, "content")); }

sg_value *sg_message_new(const char *role, const char *content) {
  sg_value *m = sg_map();
  sg_map_set(m, "role", sg_str(role));
  sg_map_set(m, "content", content ? sg_str(content) : sg_nil());
  return m;
}

const sg_value *sg_llm_param(const sg_llm_request *r, const char *key) {
  const sg_value *v = sg_map_get(r->params_patch, key);
  if (v) return sg_is_nil(v) ? 0 : v;
  v = sg_map_get(r->params, key);
  return sg_is_nil(v) ? 0 : v;
}
void sg_llm_set_param(sg_llm_request *r, const char *key, sg_value *v) { sg_map_set(r->params_patch, key, v ? v : sg_nil()); }
void sg_llm_remove_param(sg_llm_request *r, const char *key) { sg_map_set(r->params_patch, key, sg_nil()); }

sg_llm_response *sg_llm_response_from(sg_value *v) {
  if (!v || v->type != SG_MAP) sg_fail("an LlmResponse must be a map");
  sg_normalize_int(sg_map_get(v, "created"));
  sg_value *choices = sg_map_get(v, "choices");
  if (choices && choices->type == SG_ARRAY)
    for (uint32_t i = 0; i < choices->as.a.len; i++) sg_normalize_int(sg_map_get(choices->as.a.items[i], "index"));
  sg_value *usage = sg_map_get(v, "usage");
  if (usage && usage->type == SG_MAP)
    for (uint32_t i = 0; i < usage->as.m.len; i++) sg_normalize_int(usage->as.m.vals[i]);
  sg_llm_response *r = sg_alloc(sizeof *r);
  r->v = v;
  return r;
}

sg_llm_response *sg_llm_response_new(const char *model, const char *content) {
  sg_value *v = sg_map();
  sg_map_set(v, "id", sg_str("chatcmpl-plugin"));
  sg_map_set(v, "object", sg_str("chat.completion"));
  sg_map_set(v, "model", sg_str(model ? model : ""));
  sg_value *choice = sg_map();
  sg_map_set(choice, "index", sg_int(0));
  sg_map_set(choice, "message", sg_message_new("assistant", content));
  sg_map_set(choice, "finish_reason", sg_str("stop"));
  sg_value *choices = sg_array();
  sg_array_push(choices, choice);
  sg_map_set(v, "choices", choices);
  return sg_llm_response_from(v);
}

const char *sg_llm_response_id(const sg_llm_response *r) { return sg_as_str(sg_map_get(r->v, "id")); }
const char *sg_llm_response_model(const sg_llm_response *r) { return sg_as_str(sg_map_get(r->v, "model")); }
int64_t sg_llm_response_created(const sg_llm_response *r) { return sg_as_int(sg_map_get(r->v, "created"), 0); }
bool sg_llm_response_is_chunk(const sg_llm_response *r) {
  const char *o = sg_as_str(sg_map_get(r->v, "object"));
  return o && sg_streq(o, "chat.completion.chunk");
}

static sg_value *choice_at(const sg_llm_response *r, uint32_t i) {
  sg_value *choices = sg_map_get(r->v, "choices");
  if (!choices || choices->type != SG_ARRAY || i >= choices->as.a.len) return 0;
  return choices->as.a.items[i];
}

uint32_t sg_llm_response_choice_count(const sg_llm_response *r) {
  sg_value *choices = sg_map_get(r->v, "choices");
  return choices && choices->type == SG_ARRAY ? choices->as.a.len : 0;
}

sg_value *sg_llm_response_message(const sg_llm_response *r, uint32_t i) {
  sg_value *c = choice_at(r, i);
  sg_value *m = sg_map_get(c, "message");
  if (!m || m->type != SG_MAP) m = sg_map_get(c, "delta");
  return m && m->type == SG_MAP ? m : 0;
}

const char *sg_llm_response_content(const sg_llm_response *r, uint32_t i) {
  return sg_message_content(sg_llm_response_message(r, i));
}

void sg_llm_response_set_content(sg_llm_response *r, uint32_t i, const char *content) {
  sg_value *m = sg_llm_response_message(r, i);
  if (!m) sg_fail("sg_llm_response_set_content: no such choice");
  sg_map_set(m, "content", content ? sg_str(content) : sg_nil());
}

const char *sg_llm_response_finish_reason(const sg_llm_response *r, uint32_t i) {
  return sg_as_str(sg_map_get(choice_at(r, i), "finish_reason"));
}

int64_t sg_llm_response_usage(const sg_llm_response *r, const char *which) {
  return sg_as_int(sg_map_get(sg_map_get(r->v, "usage"), which), -1);
}

static const char *known_error_keys[] = { "message", "type", "code", "status", "allow_fallbacks", "provider", "model" };

sg_llm_error *sg_llm_error_new(const char *message) {
  sg_llm_error *e = sg_alloc(sizeof *e);
  e->message = message;
  e->allow_fallbacks = -1;
  e->extra = sg_map();
  return e;
}

sg_llm_error *sg_llm_error_from(const sg_value *v) {
  const char *msg = sg_as_str(sg_map_get(v, "message"));
  sg_llm_error *e = sg_llm_error_new(msg ? msg : "");
  e->type = sg_as_str(sg_map_get(v, "type"));
  e->code = sg_as_str(sg_map_get(v, "code"));
  e->status = (int32_t)sg_as_int(sg_map_get(v, "status"), 0);
  const sg_value *af = sg_map_get(v, "allow_fallbacks");
  e->allow_fallbacks = af && af->type == SG_BOOL ? af->as.b : -1;
  e->provider = sg_as_str(sg_map_get(v, "provider"));
  e->model = sg_as_str(sg_map_get(v, "model"));
  if (v && v->type == SG_MAP)
    for (uint32_t i = 0; i < v->as.m.len; i++) {
      const char *k = sg_as_str(v->as.m.keys[i]);
      bool known = false;
      for (size_t j = 0; k && j < sizeof known_error_keys / sizeof *known_error_keys; j++)
        if (sg_streq(k, known_error_keys[j])) known = true;
      if (k && !known) sg_map_set(e->extra, k, v->as.m.vals[i]);
    }
  return e;
}

sg_value *sg_llm_error_to_value(const sg_llm_error *e) {
  sg_value *v = sg_map();
  sg_map_set(v, "message", sg_str(e->message ? e->message : ""));
  if (e->type) sg_map_set(v, "type", sg_str(e->type));
  if (e->code) sg_map_set(v, "code", sg_str(e->code));
  if (e->status) sg_map_set(v, "status", sg_int(e->status));
  if (e->allow_fallbacks >= 0) sg_map_set(v, "allow_fallbacks", sg_bool(e->allow_fallbacks));
  if (e->provider) sg_map_set(v, "provider", sg_str(e->provider));
  if (e->model) sg_map_set(v, "model", sg_str(e->model));
  if (e->extra)
    for (uint32_t i = 0; i < e->extra->as.m.len; i++)
      sg_map_set(v, sg_as_str(e->extra->as.m.keys[i]), e->extra->as.m.vals[i]);
  return v;
}

/* ---- results */

sg_init_result sg_init_ok(void) { sg_init_result r = { 0, -1, -1, -1 }; return r; }
sg_init_result sg_init_error(const char *reason) { sg_init_result r = { reason, -1, -1, -1 }; return r; }

static sg_hook_error hook_error(const char *message, int32_t status, const char *code) {
  sg_hook_error e = { message ? message : "", status, code };
  return e;
}

sg_pre_result sg_pre_continue(void) { sg_pre_result r = { SG_CONTINUE, 0, { 0 } }; return r; }
sg_pre_result sg_pre_respond(sg_http_response *resp) { sg_pre_result r = { SG_RESPOND, resp, { 0 } }; return r; }
sg_pre_result sg_pre_error(const char *m, int32_t s, const char *c) { sg_pre_result r = { SG_ERROR, 0, hook_error(m, s, c) }; return r; }
sg_post_result sg_post_continue(void) { sg_post_result r = { SG_CONTINUE, { 0 } }; return r; }
sg_post_result sg_post_error(const char *m, int32_t s, const char *c) { sg_post_result r = { SG_ERROR, hook_error(m, s, c) }; return r; }
sg_chunk_result sg_chunk_pass(void) { sg_chunk_result r = { SG_CONTINUE, 0, { 0 } }; return r; }
sg_chunk_result sg_chunk_replace(sg_value *c) { sg_chunk_result r = { SG_REPLACE, c, { 0 } }; return r; }
sg_chunk_result sg_chunk_drop(void) { sg_chunk_result r = { SG_DROP, 0, { 0 } }; return r; }
sg_chunk_result sg_chunk_error(const char *m, int32_t s, const char *c) { sg_chunk_result r = { SG_ERROR, 0, hook_error(m, s, c) }; return r; }
sg_llm_result sg_llm_continue(void) { sg_llm_result r = { SG_CONTINUE, 0, 0 }; return r; }
sg_llm_result sg_llm_respond(sg_llm_response *resp) { sg_llm_result r = { SG_RESPOND, resp, 0 }; return r; }
sg_llm_result sg_llm_fail(sg_llm_error *e) { sg_llm_result r = { SG_ERROR, 0, e }; return r; }

/* ---- runner plumbing */

static sg_value *read_input(void) {
  int32_t n = sg_host_input_length();
  if (n <= 0) return sg_map();
  uint8_t *buf = sg_alloc((size_t)n);
  sg_host_input_read(buf);
  sg_value *v = sg_decode(buf, (size_t)n);
  if (v->type != SG_MAP) sg_fail("the input envelope is not a map");
  return v;
}

/* An output map under construction: entries are written as added, the count at the end. */
typedef struct out_map {
  sg_value *map;
} out_map;

static out_map out_new(void) { out_map o = { sg_map() }; return o; }
static void out_put(out_map *o, const char *key, sg_value *v) { sg_map_set(o->map, key, v); }

/* Ends a hook: writes the output if it has entries (none = continue), releases the call's memory. */
static int32_t finish(out_map *o) {
  if (o->map->as.m.len > 0) {
    sg_buf b = { 0 };
    sg_encode(&b, o->map);
    sg_host_output_write(b.data, (int32_t)b.len);
  }
  sg_arena_reset();
  return 0;
}

static sg_ctx read_ctx(const sg_value *in) {
  sg_value *all = sg_map_get(in, "ctx");
  sg_ctx c = { all && all->type == SG_MAP ? all : sg_map(), sg_map() };
  return c;
}

static void put_ctx(out_map *o, const sg_ctx *ctx) {
  if (ctx->patch->as.m.len > 0) out_put(o, "ctx", ctx->patch);
}

static sg_value *hook_error_value(const sg_hook_error *e) {
  sg_value *v = sg_map();
  sg_map_set(v, "message", sg_str(e->message));
  if (e->status) sg_map_set(v, "status", sg_int(e->status));
  if (e->code) sg_map_set(v, "code", sg_str(e->code));
  return v;
}

static sg_value *strmap_full(const sg_strmap *m) {
  sg_value *v = sg_map();
  if (m->base)
    for (uint32_t i = 0; i < m->base->as.m.len; i++) {
      const char *k = sg_as_str(m->base->as.m.keys[i]);
      if (k && strmap_find(m->patch, k, m->fold_case) < 0) sg_map_set(v, k, m->base->as.m.vals[i]);
    }
  if (m->patch)
    for (uint32_t i = 0; i < m->patch->as.m.len; i++)
      if (!sg_is_nil(m->patch->as.m.vals[i]))
        sg_map_set(v, sg_as_str(m->patch->as.m.keys[i]), m->patch->as.m.vals[i]);
  return v;
}

static sg_value *response_value(const sg_http_response *r) {
  sg_value *v = sg_map();
  sg_map_set(v, "status", sg_int(r->status));
  sg_map_set(v, "headers", strmap_full(&r->headers));
  if (r->body) sg_map_set(v, "body", sg_bin(r->body, r->body_len));
  return v;
}

static bool bytes_equal(const sg_buf *a, const sg_buf *b) {
  return a->len == b->len && (a->len == 0 || sg_memeq(a->data, b->data, a->len));
}

static sg_buf encoded(const sg_value *v) {
  sg_buf b = { 0 };
  sg_encode(&b, v);
  return b;
}

/* ---- runners */

int32_t sg_run_init(sg_init_fn fn) {
  sg_value *in = read_input();
  const char *name = sg_as_str(sg_map_get(in, "name"));
  sg_value *config = sg_map_get(in, "config");
  sg_init_result r = fn(config ? config : sg_nil(), name ? name : "");
  out_map o = out_new();
  if (r.error) out_put(&o, "error", sg_str(r.error));
  if (r.request_body >= 0) out_put(&o, "request_body", sg_bool(r.request_body));
  if (r.response_body >= 0) out_put(&o, "response_body", sg_bool(r.response_body));
  if (r.stream_deltas >= 0) out_put(&o, "stream_deltas", sg_bool(r.stream_deltas));
  if (o.map->as.m.len > 0) {
    sg_buf b = encoded(o.map);
    sg_host_output_write(b.data, (int32_t)b.len);
  }
  /* What init allocated (the config, what the plugin derived from it) lives on. */
  sg_arena_keep();
  return 0;
}

int32_t sg_run_get_name(const char *name) {
  sg_buf b = { 0 };
  sg_write_cstr(&b, name);
  sg_host_output_write(b.data, (int32_t)b.len);
  sg_arena_reset();
  return 0;
}

int32_t sg_run_cleanup(sg_cleanup_fn fn) {
  fn();
  sg_arena_reset();
  return 0;
}

int32_t sg_run_transport_pre(sg_transport_pre_fn fn) {
  sg_value *in = read_input();
  sg_ctx ctx = read_ctx(in);
  sg_http_request req = { 0 };
  read_request(&req, sg_map_get(in, "req"));
  sg_pre_result r = fn(&ctx, &req);
  out_map o = out_new();
  put_ctx(&o, &ctx);
  if (r.outcome == SG_RESPOND) {
    if (!r.response) sg_fail("sg_pre_respond: no response");
    out_put(&o, "response", response_value(r.response));
  } else if (r.outcome == SG_ERROR) {
    out_put(&o, "error", hook_error_value(&r.error));
  } else {
    sg_value *patch = sg_map();
    if (!sg_streq(req.method, req.in_method)) sg_map_set(patch, "method", sg_str(req.method));
    if (!sg_streq(req.path, req.in_path)) sg_map_set(patch, "path", sg_str(req.path));
    if (strmap_changed(&req.headers)) sg_map_set(patch, "headers", req.headers.patch);
    if (strmap_changed(&req.query)) sg_map_set(patch, "query", req.query.patch);
    if (req.body != req.in_body && req.body) sg_map_set(patch, "body", sg_bin(req.body, req.body_len));
    if (patch->as.m.len) out_put(&o, "req", patch);
  }
  return finish(&o);
}

int32_t sg_run_transport_post(sg_transport_post_fn fn) {
  sg_value *in = read_input();
  sg_ctx ctx = read_ctx(in);
  sg_http_request req = { 0 };
  read_request(&req, sg_map_get(in, "req"));
  sg_http_response resp = { 0 };
  read_response(&resp, sg_map_get(in, "resp"));
  sg_post_result r = fn(&ctx, &req, &resp);
  out_map o = out_new();
  put_ctx(&o, &ctx);
  if (r.outcome == SG_ERROR) {
    out_put(&o, "error", hook_error_value(&r.error));
  } else {
    sg_value *patch = sg_map();
    if (resp.status != resp.in_status) sg_map_set(patch, "status", sg_int(resp.status));
    if (strmap_changed(&resp.headers)) sg_map_set(patch, "headers", resp.headers.patch);
    if (resp.body != resp.in_body && resp.body) sg_map_set(patch, "body", sg_bin(resp.body, resp.body_len));
    if (patch->as.m.len) out_put(&o, "resp", patch);
  }
  return finish(&o);
}

int32_t sg_run_stream_chunk(sg_chunk_fn fn) {
  sg_value *in = read_input();
  sg_ctx ctx = read_ctx(in);
  sg_value *chunk = sg_map_get(in, "chunk");
  if (!chunk) chunk = sg_map();
  sg_buf before = encoded(chunk);
  sg_chunk_result r = fn(&ctx, chunk);
  out_map o = out_new();
  put_ctx(&o, &ctx);
  if (r.outcome == SG_ERROR) out_put(&o, "error", hook_error_value(&r.error));
  else if (r.outcome == SG_DROP) out_put(&o, "drop", sg_bool(true));
  else {
    /* pass: the chunk may still have been edited in place */
    sg_value *now = r.outcome == SG_REPLACE && r.chunk ? r.chunk : chunk;
    sg_buf after = encoded(now);
    if (!bytes_equal(&before, &after)) out_put(&o, "chunk", now);
  }
  return finish(&o);
}

int32_t sg_run_pre_llm(sg_llm_pre_fn fn) {
  sg_value *in = read_input();
  sg_ctx ctx = read_ctx(in);
  sg_value *rv = sg_map_get(in, "req");
  sg_llm_request req = { 0 };
  const char *provider = sg_as_str(sg_map_get(rv, "provider"));
  const char *model = sg_as_str(sg_map_get(rv, "model"));
  req.provider = req.in_provider = provider ? provider : "";
  req.model = req.in_model = model ? model : "";
  req.stream = sg_as_bool(sg_map_get(rv, "stream"), false);
  req.messages = sg_map_get(rv, "messages");
  if (!req.messages || req.messages->type != SG_ARRAY) req.messages = sg_array();
  req.in_messages = encoded(req.messages);
  req.params = sg_map_get(rv, "params");
  if (!req.params || req.params->type != SG_MAP) req.params = sg_map();
  req.params_patch = sg_map();
  sg_llm_result r = fn(&ctx, &req);
  out_map o = out_new();
  put_ctx(&o, &ctx);
  if (r.outcome == SG_RESPOND) {
    if (!r.response) sg_fail("sg_llm_respond: no response");
    out_put(&o, "response", r.response->v);
  } else if (r.outcome == SG_ERROR) {
    if (!r.error) sg_fail("sg_llm_fail: no error");
    out_put(&o, "error", sg_llm_error_to_value(r.error));
  } else {
    sg_value *patch = sg_map();
    if (!sg_streq(req.provider, req.in_provider)) sg_map_set(patch, "provider", sg_str(req.provider));
    if (!sg_streq(req.model, req.in_model)) sg_map_set(patch, "model", sg_str(req.model));
    sg_buf msgs = encoded(req.messages);
    if (!bytes_equal(&msgs, &req.in_messages)) sg_map_set(patch, "messages", req.messages);
    if (req.params_patch->as.m.len) sg_map_set(patch, "params", req.params_patch);
    if (patch->as.m.len) out_put(&o, "req", patch);
  }
  return finish(&o);
}

int32_t sg_run_post_llm(sg_llm_post_fn fn) {
  sg_value *in = read_input();
  sg_ctx ctx = read_ctx(in);
  sg_value *rv = sg_map_get(in, "response");
  sg_value *ev = sg_map_get(in, "error");
  sg_llm_response *response = sg_is_nil(rv) ? 0 : sg_llm_response_from(rv);
  sg_llm_error *error = (response || sg_is_nil(ev)) ? 0 : sg_llm_error_from(ev);
  if (!response && !error) sg_fail("post_llm_hook input has neither response nor error");
  sg_buf before = response ? encoded(response->v) : encoded(sg_llm_error_to_value(error));
  sg_llm_result r = fn(&ctx, response, error);
  out_map o = out_new();
  put_ctx(&o, &ctx);
  if (r.outcome == SG_RESPOND) {
    if (!r.response) sg_fail("sg_llm_respond: no response");
    out_put(&o, "response", r.response->v);
  } else if (r.outcome == SG_ERROR) {
    if (!r.error) sg_fail("sg_llm_fail: no error");
    out_put(&o, "error", sg_llm_error_to_value(r.error));
  } else {
    /* continue: what the handler edited in place is sent back when it differs */
    sg_value *now = response ? response->v : sg_llm_error_to_value(error);
    sg_buf after = encoded(now);
    if (!bytes_equal(&before, &after)) out_put(&o, response ? "response" : "error", now);
  }
  return finish(&o);
}

int32_t sg_run_transport_interceptor(sg_interceptor_fn fn) {
  sg_value *in = read_input();
  sg_ctx ctx = read_ctx(in);
  sg_interceptor_request req = { 0 };
  const char *url = sg_as_str(sg_map_get(in, "url"));
  req.url = url ? url : "";
  req.headers = sg_map_get(in, "headers");
  if (!req.headers || req.headers->type != SG_MAP) req.headers = sg_map();
  req.body = sg_map_get(in, "body");
  if (!req.body) req.body = sg_nil();
  sg_buf headers_before = encoded(req.headers), body_before = encoded(req.body);
  sg_interceptor_result r = fn(&ctx, &req);
  out_map o = out_new();
  put_ctx(&o, &ctx);
  if (r.outcome == SG_ERROR) {
    out_put(&o, "error", hook_error_value(&r.error));
  } else {
    sg_buf h = encoded(req.headers), b = encoded(req.body);
    if (!bytes_equal(&h, &headers_before)) out_put(&o, "headers", req.headers);
    if (!bytes_equal(&b, &body_before) && req.body->type == SG_MAP) out_put(&o, "body", req.body);
  }
  return finish(&o);
}
