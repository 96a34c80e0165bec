/* logging: one structured (JSON) line per request and one per response,
 * through the gateway's logger, with the values of sensitive headers replaced.
 *
 * config (all optional):
 *   redact_headers  header names whose values are never logged
 *                   (default: authorization, proxy-authorization, cookie, set-cookie, x-api-key)
 *   redaction       what is logged instead (default "[REDACTED]")
 *   level           "debug" | "info" | "warn" | "error" (default "info")
 *
 * It asks for no bodies (init), so it costs the same whatever their size.
 * Streams skip http_transport_post_hook: their response line is logged from
 * the chunk hook, on the chunk that ends the stream (once per request, marked
 * in the context under "<plugin name>.response_logged"). */
#include "sandgate.h"

static const char *default_redacted[] = { "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key" };

/* Set by init; init's allocations live as long as the instance. */
static const char **redacted;
static uint32_t redacted_count;
static const char *redaction = "[REDACTED]";
static sg_level level = SG_LOG_INFO;

/* "<name>.response_logged": per plugin name, since the context is shared by
 * every plugin (the same module may run twice under two names). */
static const char *logged_key = "logging.response_logged";

static sg_init_result config_error(const char *what) {
  sg_buf b = { 0 };
  sg_buf_str(&b, "logging: config ");
  sg_buf_str(&b, what);
  return sg_init_error((const char *)b.data);
}

static sg_init_result on_init(const sg_value *config, const char *name) {
  if (name && *name) {
    sg_buf key = { 0 };
    sg_buf_str(&key, name);
    sg_buf_str(&key, ".response_logged");
    logged_key = (const char *)key.data;
  }
  if (!sg_is_nil(config) && config->type != SG_MAP) return config_error("must be an object");

  const sg_value *list = sg_map_get(config, "redact_headers");
  if (sg_is_nil(list)) {
    redacted = default_redacted;
    redacted_count = sizeof default_redacted / sizeof *default_redacted;
  } else {
    if (list->type != SG_ARRAY) return config_error("redact_headers must be an array of header names");
    const char **names = sg_alloc(list->as.a.len * sizeof *names + 1);
    for (uint32_t i = 0; i < list->as.a.len; i++) {
      const char *n = sg_as_str(list->as.a.items[i]);
      if (!n || !*n) return config_error("redact_headers must hold non-empty strings (header names)");
      names[i] = n;
    }
    redacted = names;
    redacted_count = list->as.a.len;
  }

  const sg_value *r = sg_map_get(config, "redaction");
  if (!sg_is_nil(r)) {
    if (!sg_as_str(r)) return config_error("redaction must be a string");
    redaction = sg_as_str(r);
  }

  const sg_value *lv = sg_map_get(config, "level");
  if (!sg_is_nil(lv)) {
    const char *l = sg_as_str(lv);
    static const char *names[] = { "debug", "info", "warn", "error" };
    int found = -1;
    for (int i = 0; l && i < 4; i++) if (sg_streq(l, names[i])) found = i;
    if (found < 0) return config_error("level must be one of \"debug\", \"info\", \"warn\", \"error\"");
    level = (sg_level)found;
  }

  sg_init_result res = sg_init_ok();
  res.request_body = 0; /* headers only */
  res.response_body = 0;
  return res;
}
SG_INIT(on_init)

SG_GET_NAME("logging")

static bool is_redacted(const char *header) {
  for (uint32_t i = 0; i < redacted_count; i++)
    if (sg_strieq(header, redacted[i])) return true;
  return false;
}

/* ---- a JSON object written field by field */

typedef struct line {
  sg_buf b;
  bool first;
} line;

static void line_start(line *l, const char *event, const sg_ctx *ctx) {
  sg_buf_str(&l->b, "{\"event\":");
  sg_buf_json_str(&l->b, event, sg_strlen(event));
  sg_buf_str(&l->b, ",\"request_id\":");
  const char *rid = sg_ctx_request_id(ctx);
  sg_buf_json_str(&l->b, rid, sg_strlen(rid));
}

static void field_str(line *l, const char *key, const char *value) {
  sg_buf_char(&l->b, ',');
  sg_buf_json_str(&l->b, key, sg_strlen(key));
  sg_buf_char(&l->b, ':');
  sg_buf_json_str(&l->b, value, sg_strlen(value));
}

static void field_int(line *l, const char *key, int64_t value) {
  sg_buf_char(&l->b, ',');
  sg_buf_json_str(&l->b, key, sg_strlen(key));
  sg_buf_char(&l->b, ':');
  sg_buf_int(&l->b, value);
}

typedef struct map_writer {
  line *l;
  bool redact;
} map_writer;

static void write_entry(const char *name, const char *value, void *arg) {
  map_writer *w = arg;
  if (!w->l->first) sg_buf_char(&w->l->b, ',');
  w->l->first = false;
  sg_buf_json_str(&w->l->b, name, sg_strlen(name));
  sg_buf_char(&w->l->b, ':');
  const char *shown = w->redact && is_redacted(name) ? redaction : value;
  sg_buf_json_str(&w->l->b, shown, sg_strlen(shown));
}

static void field_map(line *l, const char *key, const sg_strmap *m, bool redact) {
  sg_buf_char(&l->b, ',');
  sg_buf_json_str(&l->b, key, sg_strlen(key));
  sg_buf_str(&l->b, ":{");
  l->first = true;
  map_writer w = { l, redact };
  sg_strmap_each(m, write_entry, &w);
  sg_buf_char(&l->b, '}');
}

static void line_end(line *l) {
  sg_buf_char(&l->b, '}');
  sg_log_n(level, (const char *)l->b.data, l->b.len);
}

/* ---- hooks */

static sg_pre_result on_request(sg_ctx *ctx, sg_http_request *req) {
  line l = { 0 };
  line_start(&l, "request", ctx);
  field_str(&l, "method", req->method);
  field_str(&l, "path", req->path);
  field_map(&l, "query", &req->query, false);
  field_map(&l, "headers", &req->headers, true);
  line_end(&l);
  return sg_pre_continue();
}
SG_TRANSPORT_PRE_HOOK(on_request)

static sg_post_result on_response(sg_ctx *ctx, sg_http_request *req, sg_http_response *resp) {
  line l = { 0 };
  line_start(&l, "response", ctx);
  field_str(&l, "method", req->method);
  field_str(&l, "path", req->path);
  field_int(&l, "status", resp->status);
  field_map(&l, "headers", &resp->headers, true);
  line_end(&l);
  return sg_post_continue();
}
SG_TRANSPORT_POST_HOOK(on_response)

static sg_chunk_result on_chunk(sg_ctx *ctx, sg_value *chunk) {
  if (!sg_ctx_stream_end(ctx) || sg_ctx_get_bool(ctx, logged_key, false)) return sg_chunk_pass();
  line l = { 0 };
  line_start(&l, "response", ctx);
  field_int(&l, "status", 200);
  sg_buf_str(&l.b, ",\"stream\":true");
  const char *model = sg_as_str(sg_map_get(chunk, "model"));
  if (model) field_str(&l, "model", model);
  line_end(&l);
  sg_ctx_set(ctx, logged_key, sg_bool(true));
  return sg_chunk_pass();
}
SG_STREAM_CHUNK_HOOK(on_chunk)
