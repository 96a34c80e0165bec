/* hello-world-c: the C twin of the AssemblyScript hello-world (and of the
 * reference Go plugin). It logs every hook, adds a request header, stores a
 * context value in the pre-hook and reads it back in the post-hook (as the
 * x-hello-context response header, so tests can see the value crossed hooks).
 * The ABI marker (sandgate_abi_v1) comes from the kit. */
#include "sandgate.h"

#define CONTEXT_KEY "hello-world.greeting"

/* init runs once per instance with the plugin's `config` from config.json. */
static sg_init_result on_init(const sg_value *config, const char *name) {
  (void)config;
  (void)name;
  sg_info("Init called");
  /* This plugin only looks at headers: never send it bodies, whatever their size. */
  sg_init_result r = sg_init_ok();
  r.request_body = 0;
  r.response_body = 0;
  /* Its post_llm_hook does nothing with streamed deltas: no call per chunk. */
  r.stream_deltas = 0;
  return r;
}
SG_INIT(on_init)

SG_GET_NAME("hello-world")

static sg_pre_result on_transport_pre(sg_ctx *ctx, sg_http_request *req) {
  sg_info("HTTPTransportPreHook called");
  const char *content_type = sg_req_header(req, "Content-Type"); /* case-insensitive */
  sg_buf line = { 0 };
  sg_buf_str(&line, "Content-Type: ");
  sg_buf_str(&line, content_type ? content_type : "(none)");
  sg_debug((const char *)line.data);
  sg_req_set_header(req, "x-custom-header", "custom-value");
  sg_ctx_set_str(ctx, CONTEXT_KEY, "pre-hook-value");
  return sg_pre_continue();
}
SG_TRANSPORT_PRE_HOOK(on_transport_pre)

static sg_post_result on_transport_post(sg_ctx *ctx, sg_http_request *req, sg_http_response *resp) {
  (void)req;
  sg_info("HTTPTransportPostHook called");
  sg_resp_set_header(resp, "x-processed-by", "hello-world");
  const char *greeting = sg_ctx_get_str(ctx, CONTEXT_KEY);
  if (greeting) {
    sg_buf line = { 0 };
    sg_buf_str(&line, "Context value: ");
    sg_buf_str(&line, greeting);
    sg_debug((const char *)line.data);
    sg_resp_set_header(resp, "x-hello-context", greeting);
  }
  return sg_post_continue();
}
SG_TRANSPORT_POST_HOOK(on_transport_post)

static sg_llm_result on_pre_llm(sg_ctx *ctx, sg_llm_request *req) {
  (void)ctx;
  (void)req;
  sg_info("PreLLMHook called");
  return sg_llm_continue();
}
SG_PRE_LLM_HOOK(on_pre_llm)

static sg_llm_result on_post_llm(sg_ctx *ctx, sg_llm_response *response, sg_llm_error *error) {
  (void)ctx;
  (void)response;
  (void)error;
  sg_info("PostLLMHook called");
  return sg_llm_continue();
}
SG_POST_LLM_HOOK(on_post_llm)

static void on_cleanup(void) { sg_info("Cleanup called"); }
SG_CLEANUP(on_cleanup)
