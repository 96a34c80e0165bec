/* The C kit's own tests, compiled natively (cc, no wasm):
 *   1. every vector of plugin-pdk/conformance/vectors.json decodes to its
 *      `value` (same keys in the same order, same types) and re-encodes to its
 *      exact bytes; a vector with `canonical` re-encodes, read as its typed
 *      envelope, to the canonical vector's bytes;
 *   2. the hook runners, fed the input vectors through a native stand-in for
 *      the host, write exactly the output vectors (and nothing for "continue").
 * Usage: conformance <vectors.json>. Prints one line per check, "ok N" at the end;
 * exits 1 on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandgate.h"

/* ---- a native stand-in for the host (ABI.md §4.2) */

static const uint8_t *host_input;
static size_t host_input_len;
static sg_buf host_output;
static int host_output_calls;

int32_t sg_host_input_length(void) { return (int32_t)host_input_len; }
void sg_host_input_read(uint8_t *dst) { memcpy(dst, host_input, host_input_len); }
void sg_host_output_write(const uint8_t *src, int32_t len) {
  /* the output outlives the call's arena: keep it in malloc'd memory */
  free(host_output.data);
  host_output.data = malloc((size_t)len + 1);
  memcpy(host_output.data, src, (size_t)len);
  host_output.len = (size_t)len;
  host_output_calls++;
}
void sg_host_log(int32_t level, const char *src, int32_t len) {
  fprintf(stderr, "  [plugin log %d] %.*s\n", level, (int)len, src);
}

/* The runners release the arena when a hook returns: the input lives in malloc'd memory. */
static void call_with_input(const sg_buf *input) {
  static uint8_t *copy;
  free(copy);
  copy = malloc(input->len + 1);
  memcpy(copy, input->data, input->len);
  host_input = copy;
  host_input_len = input->len;
  free(host_output.data);
  host_output.data = 0;
  host_output.len = 0;
  host_output_calls = 0;
}

/* ---- a small JSON reader, for the vectors file ({"$bin": hex} is bin) */

static const char *js;

static void ws(void) { while (*js == ' ' || *js == '\n' || *js == '\r' || *js == '\t') js++; }

static void json_fail(const char *what) {
  fprintf(stderr, "vectors.json: %s near \"%.20s\"\n", what, js);
  exit(2);
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  json_fail("bad hex digit");
  return 0;
}

static sg_buf unhex(const char *s) {
  sg_buf b = { 0 };
  size_t n = strlen(s);
  for (size_t i = 0; i + 1 < n; i += 2) sg_buf_char(&b, (char)(hexval(s[i]) * 16 + hexval(s[i + 1])));
  if (!b.data) sg_buf_bytes(&b, "", 0);
  return b;
}

static void utf8(sg_buf *b, unsigned cp) {
  if (cp < 0x80) sg_buf_char(b, (char)cp);
  else if (cp < 0x800) { sg_buf_char(b, (char)(0xc0 | cp >> 6)); sg_buf_char(b, (char)(0x80 | (cp & 63))); }
  else if (cp < 0x10000) {
    sg_buf_char(b, (char)(0xe0 | cp >> 12)); sg_buf_char(b, (char)(0x80 | ((cp >> 6) & 63)));
    sg_buf_char(b, (char)(0x80 | (cp & 63)));
  } else {
    sg_buf_char(b, (char)(0xf0 | cp >> 18)); sg_buf_char(b, (char)(0x80 | ((cp >> 12) & 63)));
    sg_buf_char(b, (char)(0x80 | ((cp >> 6) & 63))); sg_buf_char(b, (char)(0x80 | (cp & 63)));
  }
}

static unsigned hex4(void) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) v = v * 16 + (unsigned)hexval(*js++);
  return v;
}

static sg_value *json_string(void) {
  sg_buf b = { 0 };
  sg_buf_bytes(&b, "", 0);
  js++; /* " */
  while (*js != '"') {
    if (!*js) json_fail("unterminated string");
    if (*js != '\\') { sg_buf_char(&b, *js++); continue; }
    js++;
    char e = *js++;
    if (e == 'n') sg_buf_char(&b, '\n');
    else if (e == 't') sg_buf_char(&b, '\t');
    else if (e == 'r') sg_buf_char(&b, '\r');
    else if (e == 'b') sg_buf_char(&b, '\b');
    else if (e == 'f') sg_buf_char(&b, '\f');
    else if (e == 'u') {
      unsigned cp = hex4();
      if (cp >= 0xd800 && cp < 0xdc00 && js[0] == '\\' && js[1] == 'u') {
        js += 2;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4() - 0xdc00);
      }
      utf8(&b, cp);
    } else sg_buf_char(&b, e);
  }
  js++;
  return sg_strn((const char *)b.data, b.len);
}

static sg_value *json_value(void) {
  ws();
  if (*js == '{') {
    js++;
    sg_value *m = sg_map();
    ws();
    if (*js == '}') { js++; return m; }
    for (;;) {
      ws();
      sg_value *k = json_string();
      ws();
      if (*js++ != ':') json_fail("expected :");
      sg_value *v = json_value();
      sg_map_set(m, k->as.s.ptr, v);
      ws();
      if (*js == ',') { js++; continue; }
      if (*js++ != '}') json_fail("expected }");
      break;
    }
    /* {"$bin": "<hex>"} is a bin value (generate.mjs) */
    if (m->as.m.len == 1 && sg_as_str(sg_map_get(m, "$bin"))) {
      sg_buf b = unhex(sg_as_str(sg_map_get(m, "$bin")));
      return sg_bin(b.data, b.len);
    }
    return m;
  }
  if (*js == '[') {
    js++;
    sg_value *a = sg_array();
    ws();
    if (*js == ']') { js++; return a; }
    for (;;) {
      sg_array_push(a, json_value());
      ws();
      if (*js == ',') { js++; continue; }
      if (*js++ != ']') json_fail("expected ]");
      return a;
    }
  }
  if (*js == '"') return json_string();
  if (!strncmp(js, "null", 4)) { js += 4; return sg_nil(); }
  if (!strncmp(js, "true", 4)) { js += 4; return sg_bool(true); }
  if (!strncmp(js, "false", 5)) { js += 5; return sg_bool(false); }
  const char *start = js;
  int is_float = 0;
  while (strchr("+-0123456789.eE", *js) && *js) { if (strchr(".eE", *js)) is_float = 1; js++; }
  if (js == start) json_fail("unexpected character");
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.*s", (int)(js - start), start);
  if (is_float) return sg_float(strtod(tmp, 0));
  if (tmp[0] != '-' && strtoull(tmp, 0, 10) > (unsigned long long)INT64_MAX) {
    sg_buf b = { 0 };
    sg_write_uint(&b, strtoull(tmp, 0, 10));
    return sg_decode(b.data, b.len);
  }
  return sg_int(strtoll(tmp, 0, 10));
}

/* ---- checks */

/* strcmp that treats NULL as "absent" instead of crashing */
static int is(const char *a, const char *b) { return a && b && !strcmp(a, b); }

static int failures, checks;

static void check(int ok, const char *vector, const char *what) {
  checks++;
  if (!ok) failures++;
  printf("%s %s: %s\n", ok ? "ok  " : "FAIL", vector, what);
}

/* Same keys in the same order and the same types; numbers compare by value
 * only between the same kind (an integer is never a float here). */
static int strict_equal(const sg_value *a, const sg_value *b) {
  if (a->type != b->type) return 0;
  switch (a->type) {
    case SG_MAP:
      if (a->as.m.len != b->as.m.len) return 0;
      for (uint32_t i = 0; i < a->as.m.len; i++)
        if (!strict_equal(a->as.m.keys[i], b->as.m.keys[i]) || !strict_equal(a->as.m.vals[i], b->as.m.vals[i])) return 0;
      return 1;
    case SG_ARRAY:
      if (a->as.a.len != b->as.a.len) return 0;
      for (uint32_t i = 0; i < a->as.a.len; i++)
        if (!strict_equal(a->as.a.items[i], b->as.a.items[i])) return 0;
      return 1;
    default:
      return sg_value_equal(a, b);
  }
}

static int same_bytes(const sg_buf *a, const sg_buf *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void print_hex(const char *label, const sg_buf *b) {
  printf("     %s ", label);
  for (size_t i = 0; i < b->len; i++) printf("%02x", b->data[i]);
  printf("\n");
}

static sg_value *vectors;

static sg_value *vector(const char *name) {
  for (uint32_t i = 0; i < vectors->as.a.len; i++)
    if (is(sg_as_str(sg_map_get(vectors->as.a.items[i], "name")), name)) return vectors->as.a.items[i];
  fprintf(stderr, "no vector named %s\n", name);
  exit(2);
}

static sg_buf vector_bytes(const char *name) { return unhex(sg_as_str(sg_map_get(vector(name), "hex"))); }

static void check_vector(sg_value *vec) {
  const char *name = sg_as_str(sg_map_get(vec, "name"));
  sg_buf bytes = unhex(sg_as_str(sg_map_get(vec, "hex")));
  const char *error = 0;
  sg_value *decoded = sg_try_decode(bytes.data, bytes.len, &error);
  check(decoded != 0, name, error ? error : "decodes");
  if (!decoded) return;
  check(strict_equal(decoded, sg_map_get(vec, "value")) || sg_map_get(vec, "canonical"), name,
        "decodes to its value (keys in order, types kept)");
  /* a wider integer encoding decodes to the same value */
  check(sg_value_equal(decoded, sg_map_get(vec, "value")), name, "decodes to its value (by value)");
  const char *canonical = sg_as_str(sg_map_get(vec, "canonical"));
  sg_buf out = { 0 };
  if (!canonical) {
    sg_encode(&out, decoded);
    check(same_bytes(&out, &bytes), name, "re-encodes to the same bytes");
    if (!same_bytes(&out, &bytes)) { print_hex("want", &bytes); print_hex("got ", &out); }
    return;
  }
  /* canonical vectors are LlmPostInput: read the response as its typed envelope */
  sg_llm_response_from(sg_map_get(decoded, "response"));
  sg_encode(&out, decoded);
  sg_buf want = vector_bytes(canonical);
  check(same_bytes(&out, &want), name, "typed re-encode writes the canonical vector's bytes");
  if (!same_bytes(&out, &want)) { print_hex("want", &want); print_hex("got ", &out); }
}

/* ---- runner checks: input vector in, output vector out */

static void check_output(const char *test, const char *want_vector) {
  sg_buf want = want_vector ? vector_bytes(want_vector) : (sg_buf){ 0 };
  int ok = want_vector ? same_bytes(&host_output, &want) : host_output.len == 0;
  check(ok, test, want_vector ? want_vector : "no output (continue)");
  if (!ok) { print_hex("want", &want); print_hex("got ", &host_output); }
}

static sg_init_result init_headers_only(const sg_value *config, const char *name) {
  int ok = is(name, "hello-world") && is(sg_as_str(sg_map_get(config, "greeting")), "hi") &&
           sg_as_float(sg_map_get(sg_map_get(config, "limits"), "burst"), 0) == 1.5;
  check(ok, "init", "handler gets name and config");
  sg_init_result r = sg_init_ok();
  r.request_body = 0;
  r.response_body = 0;
  r.stream_deltas = 0;
  return r;
}

static sg_pre_result pre_sets_header(sg_ctx *ctx, sg_http_request *req) {
  check(is(sg_req_header(req, "X-A"), "1"), "transport-pre", "header read case-insensitively");
  check(is(sg_ctx_request_id(ctx), "r1") && is(req->method, "POST") && !req->body,
        "transport-pre", "request id, method, no body");
  sg_ctx_set_str(ctx, "greeting", "hi");
  sg_ctx_set_str(ctx, "sandgate.request_id", "forged"); /* refused with a warning */
  sg_req_set_header(req, "X-Custom-Header", "custom-value");
  return sg_pre_continue();
}

static sg_pre_result pre_continues(sg_ctx *ctx, sg_http_request *req) { (void)ctx; (void)req; return sg_pre_continue(); }

static sg_pre_result pre_short_circuits(sg_ctx *ctx, sg_http_request *req) {
  (void)req;
  sg_ctx_set(ctx, "auth.denied", sg_bool(true));
  return sg_pre_respond(sg_response_text(403, "forbidden \xe2\x9b\x94"));
}

static sg_post_result post_errors(sg_ctx *ctx, sg_http_request *req, sg_http_response *resp) {
  (void)ctx;
  check(is(req->path, "/v1/chat/completions") && resp->status == 200 && resp->body != 0,
        "transport-post", "request and response read");
  return sg_post_error("upstream said no", 502, "bad_gateway");
}

static sg_llm_result pre_llm_patches(sg_ctx *ctx, sg_llm_request *req) {
  check(req->messages->as.a.len == 3 && is(sg_message_content(req->messages->as.a.items[1]), "Hello!") &&
        sg_as_int(sg_llm_param(req, "max_tokens"), 0) == 256,
        "llm-pre", "messages and params read");
  sg_ctx_set(ctx, "guard.checked", sg_bool(true));
  req->model = "gpt-4o";
  sg_llm_set_param(req, "temperature", sg_float(0.2));
  sg_llm_remove_param(req, "max_tokens");
  return sg_llm_continue();
}

static sg_llm_result pre_llm_denies(sg_ctx *ctx, sg_llm_request *req) {
  (void)req;
  sg_ctx_set_str(ctx, "guard.verdict", "deny");
  sg_llm_error *e = sg_llm_error_new("blocked by policy");
  e->type = "policy_error";
  e->code = "content_blocked";
  e->status = 403;
  e->allow_fallbacks = 0;
  return sg_llm_fail(e);
}

static sg_llm_result post_llm_reads(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error) {
  (void)ctx;
  check(response && !error && sg_llm_response_created(response) == 1732240000 &&
        sg_llm_response_usage(response, "total_tokens") > 0 && sg_llm_response_content(response, 0),
        "llm-post", "typed response read (created, usage, content) in any integer encoding");
  return sg_llm_continue();
}

static sg_llm_result post_llm_error_reads(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error) {
  (void)ctx;
  check(!response && error && is(error->message, "upstream timeout") && error->allow_fallbacks == -1,
        "llm-post-error", "typed error read, allow_fallbacks nil");
  return sg_llm_continue();
}

static sg_chunk_result chunk_edits(sg_ctx *ctx, sg_value *chunk) {
  check(!sg_ctx_stream_end(ctx), "chunk", "stream_end read");
  sg_llm_response *r = sg_llm_response_from(chunk);
  sg_llm_response_set_content(r, 0, "changed");
  return sg_chunk_pass();
}

static sg_chunk_result chunk_passes(sg_ctx *ctx, sg_value *chunk) { (void)ctx; (void)chunk; return sg_chunk_pass(); }

/* sg_arena_keep() before each run: the test reuses input buffers across runs, which reset the arena. */
static void run_hooks(void) {
  sg_buf in;
  in = vector_bytes("init-input"); call_with_input(&in); sg_arena_keep(); sg_run_init(init_headers_only);
  check_output("init", "init-output");

  in = vector_bytes("transport-pre-input"); call_with_input(&in); sg_arena_keep(); sg_run_transport_pre(pre_sets_header);
  check_output("transport-pre sets a header and ctx", "transport-pre-output");
  call_with_input(&in); sg_arena_keep(); sg_run_transport_pre(pre_continues);
  check_output("transport-pre continue", 0);
  call_with_input(&in); sg_arena_keep(); sg_run_transport_pre(pre_short_circuits);
  check_output("transport-pre short-circuit", "transport-pre-output-short-circuit");

  in = vector_bytes("transport-post-input-body-utf8"); call_with_input(&in); sg_arena_keep(); sg_run_transport_post(post_errors);
  check_output("transport-post error", "transport-post-output-error");

  in = vector_bytes("llm-pre-input"); call_with_input(&in); sg_arena_keep(); sg_run_pre_llm(pre_llm_patches);
  check_output("llm-pre patch", "llm-pre-output-patch");
  call_with_input(&in); sg_arena_keep(); sg_run_pre_llm(pre_llm_denies);
  check_output("llm-pre error", "llm-pre-output-error-no-fallbacks");

  const char *posts[] = { "llm-post-input-response", "llm-post-input-response-uint64",
                          "llm-post-input-response-int64", "llm-post-input-response-float64" };
  for (int i = 0; i < 4; i++) {
    in = vector_bytes(posts[i]); call_with_input(&in); sg_arena_keep(); sg_run_post_llm(post_llm_reads);
    check_output(posts[i], 0);
  }
  in = vector_bytes("llm-post-input-error-nil-fallbacks"); call_with_input(&in); sg_arena_keep(); sg_run_post_llm(post_llm_error_reads);
  check_output("llm-post error continue", 0);

  in = vector_bytes("chunk-input"); call_with_input(&in); sg_arena_keep(); sg_run_stream_chunk(chunk_passes);
  check_output("chunk pass", 0);
  call_with_input(&in); sg_arena_keep(); sg_run_stream_chunk(chunk_edits);
  const char *error = 0;
  sg_value *out = host_output.len ? sg_try_decode(host_output.data, host_output.len, &error) : 0;
  sg_llm_response *edited = out ? sg_llm_response_from(sg_map_get(out, "chunk")) : 0;
  check(edited && is(sg_llm_response_content(edited, 0), "changed"), "chunk edited in place", "sent back as chunk");

  /* malformed input is refused, not misread */
  const uint8_t truncated[] = { 0x82, 0xa3, 'c', 't', 'x' };
  error = 0;
  sg_value *bad = sg_try_decode(truncated, sizeof truncated, &error);
  check(!bad && error && strstr(error, "truncated"), "malformed", "a short map is refused as truncated");
  uint8_t deep[300];
  memset(deep, 0x91, sizeof deep);
  deep[sizeof deep - 1] = 0xc0;
  error = 0;
  bad = sg_try_decode(deep, sizeof deep, &error);
  check(!bad && error && strstr(error, "256"), "nesting", "300 levels are refused, naming the bound");
}

/* The output, decoded, equals this JSON (keys in order; {"$bin": hex} for bin). */
static void check_output_json(const char *test, const char *json) {
  js = json;
  sg_value *want = json_value();
  const char *error = 0;
  sg_value *got = host_output.len ? sg_try_decode(host_output.data, host_output.len, &error) : 0;
  int ok = got && strict_equal(got, want);
  check(ok, test, json);
  if (!ok) print_hex("got ", &host_output);
}

static sg_buf packed(const char *json) {
  js = json;
  sg_buf b = { 0 };
  sg_encode(&b, json_value());
  return b;
}

static sg_pre_result pre_rewrites(sg_ctx *ctx, sg_http_request *req) {
  (void)ctx;
  req->method = "PUT";
  req->path = "/v2/x";
  sg_req_set_query(req, "a", "1");
  sg_req_remove_query(req, "b");
  sg_req_remove_header(req, "X-A");
  sg_req_set_body(req, "hi", 2);
  return sg_pre_continue();
}

static sg_post_result post_rewrites(sg_ctx *ctx, sg_http_request *req, sg_http_response *resp) {
  (void)ctx; (void)req;
  check(is(sg_resp_header(resp, "Content-Type"), "application/json"), "transport-post patch", "response header read");
  resp->status = 201;
  sg_resp_set_header(resp, "X-Out", "yes");
  sg_resp_set_body(resp, "ok", 2);
  return sg_post_continue();
}

static sg_init_result init_refuses(const sg_value *config, const char *name) {
  (void)config; (void)name;
  return sg_init_error("bad config: x must be a number");
}

static sg_llm_result post_llm_replaces(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error) {
  (void)ctx; (void)error;
  sg_llm_response_set_content(response, 0, "replaced");
  return sg_llm_continue(); /* edited in place: sent back */
}

static sg_llm_result post_llm_recovers(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error) {
  (void)ctx; (void)response; (void)error;
  return sg_llm_respond(sg_llm_response_new("m", "recovered"));
}

static sg_llm_result post_llm_turns_into_error(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error) {
  (void)ctx; (void)response; (void)error;
  sg_llm_error *e = sg_llm_error_new("no");
  e->allow_fallbacks = 0;
  return sg_llm_fail(e);
}

static sg_chunk_result chunk_drops(sg_ctx *ctx, sg_value *chunk) { (void)ctx; (void)chunk; return sg_chunk_drop(); }
static sg_chunk_result chunk_errors(sg_ctx *ctx, sg_value *chunk) { (void)ctx; (void)chunk; return sg_chunk_error("stop", 0, 0); }

static sg_interceptor_result intercepts(sg_ctx *ctx, sg_interceptor_request *req) {
  check(is(req->url, "/v1/chat/completions") && is(sg_as_str(sg_map_get(req->headers, "x-a")), "1"), "interceptor", "url and headers read");
  sg_ctx_set_str(ctx, "legacy.url", req->url);
  sg_map_set(req->headers, "x-legacy", sg_str("yes"));
  sg_map_set(req->body, "extra", sg_int(1));
  return sg_interceptor_continue();
}

static sg_interceptor_result intercept_refuses(sg_ctx *ctx, sg_interceptor_request *req) {
  (void)ctx; (void)req;
  return sg_interceptor_error("no key", 401, "unauthorized");
}

static void run_more_hooks(void) {
  sg_buf in = vector_bytes("transport-pre-input");
  call_with_input(&in); sg_arena_keep(); sg_run_transport_pre(pre_rewrites);
  check_output_json("transport-pre patch", "{\"req\":{\"method\":\"PUT\",\"path\":\"/v2/x\",\"headers\":{\"x-a\":null},\"query\":{\"a\":\"1\",\"b\":null},\"body\":{\"$bin\":\"6869\"}}}");

  in = packed("{\"ctx\":{},\"req\":{\"method\":\"GET\",\"path\":\"/\",\"query\":{},\"headers\":{}},\"resp\":{\"status\":200,\"headers\":{\"content-type\":\"application/json\"}}}");
  call_with_input(&in); sg_arena_keep(); sg_run_transport_post(post_rewrites);
  check_output_json("transport-post patch", "{\"resp\":{\"status\":201,\"headers\":{\"x-out\":\"yes\"},\"body\":{\"$bin\":\"6f6b\"}}}");

  in = vector_bytes("init-input");
  call_with_input(&in); sg_arena_keep(); sg_run_init(init_refuses);
  check_output_json("init refuses", "{\"error\":\"bad config: x must be a number\"}");

  in = packed("{}");
  call_with_input(&in); sg_arena_keep(); sg_run_get_name("my-plugin");
  check_output_json("get_name", "\"my-plugin\"");

  in = vector_bytes("llm-post-input-response");
  call_with_input(&in); sg_arena_keep(); sg_run_post_llm(post_llm_replaces);
  const char *error = 0;
  sg_value *out = host_output.len ? sg_try_decode(host_output.data, host_output.len, &error) : 0;
  sg_value *resp = sg_map_get(out, "response");
  check(resp && is(sg_llm_response_content(sg_llm_response_from(resp), 0), "replaced") &&
        is(sg_as_str(sg_map_get(resp, "id")), "chatcmpl-123") && sg_map_get(resp, "usage"),
        "llm-post edit in place", "the whole response sent back, untouched keys kept");
  call_with_input(&in); sg_arena_keep(); sg_run_post_llm(post_llm_turns_into_error);
  check_output_json("llm-post to error", "{\"error\":{\"message\":\"no\",\"allow_fallbacks\":false}}");

  in = vector_bytes("llm-post-input-error-nil-fallbacks");
  call_with_input(&in); sg_arena_keep(); sg_run_post_llm(post_llm_recovers);
  check_output_json("llm-post recovers", "{\"response\":{\"id\":\"chatcmpl-plugin\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"recovered\"},\"finish_reason\":\"stop\"}]}}");

  in = vector_bytes("chunk-input");
  call_with_input(&in); sg_arena_keep(); sg_run_stream_chunk(chunk_drops);
  check_output_json("chunk drop", "{\"drop\":true}");
  call_with_input(&in); sg_arena_keep(); sg_run_stream_chunk(chunk_errors);
  check_output_json("chunk error", "{\"error\":{\"message\":\"stop\"}}");

  in = packed("{\"ctx\":{},\"url\":\"/v1/chat/completions\",\"headers\":{\"x-a\":\"1\"},\"body\":{\"model\":\"m\"}}");
  call_with_input(&in); sg_arena_keep(); sg_run_transport_interceptor(intercepts);
  check_output_json("interceptor", "{\"ctx\":{\"legacy.url\":\"/v1/chat/completions\"},\"headers\":{\"x-a\":\"1\",\"x-legacy\":\"yes\"},\"body\":{\"model\":\"m\",\"extra\":1}}");
  call_with_input(&in); sg_arena_keep(); sg_run_transport_interceptor(intercept_refuses);
  check_output_json("interceptor error", "{\"error\":{\"message\":\"no key\",\"status\":401,\"code\":\"unauthorized\"}}");
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: conformance <vectors.json>\n"); return 2; }
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  static char text[4 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  js = text;
  vectors = json_value();
  sg_arena_keep(); /* the runners reset the arena after each hook; keep the vectors */
  if (vectors->type != SG_ARRAY || vectors->as.a.len == 0) { fprintf(stderr, "no vectors\n"); return 2; }
  for (uint32_t i = 0; i < vectors->as.a.len; i++) check_vector(vectors->as.a.items[i]);
  sg_arena_keep();
  run_hooks();
  sg_arena_keep();
  run_more_hooks();
  printf("%s %d checks, %d failed, %u vectors\n", failures ? "FAILED" : "ok", checks, failures, vectors->as.a.len);
  return failures ? 1 : 0;
}
