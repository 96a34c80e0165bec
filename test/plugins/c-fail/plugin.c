/* c-fail: the C PDK's sg_fail through the gateway. pre_llm_hook fails with a
 * message naming the user's text when that text starts with "fail"; otherwise
 * it answers by itself (a short-circuit with the text upper-cased), so a test
 * sees both the failure path and a typed response built in C. */
#include "sandgate.h"

static sg_llm_result on_pre_llm(sg_ctx *ctx, sg_llm_request *req) {
  (void)ctx;
  uint32_t n = req->messages->as.a.len;
  const char *text = n ? sg_message_content(req->messages->as.a.items[n - 1]) : 0;
  if (!text) text = "";
  if (text[0] == 'f' && text[1] == 'a' && text[2] == 'i' && text[3] == 'l') sg_fail2("deliberate failure: ", text);
  char *upper = sg_strdup(text);
  for (char *p = upper; *p; p++) if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
  return sg_llm_respond(sg_llm_response_new(req->model, upper));
}
SG_PRE_LLM_HOOK(on_pre_llm)
