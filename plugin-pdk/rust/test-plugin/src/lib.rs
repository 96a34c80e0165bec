//! Test plugin for test/kit-rust.test.ts: panics on demand, otherwise edits
//! the request so the test sees the kit's output reach the provider.

use sandgate_pdk::*;

#[no_mangle]
pub extern "C" fn pre_llm_hook() -> i32 {
    run_pre_llm(|ctx, req| {
        let text = req.last_message("user").and_then(|m| m.content.clone()).unwrap_or_default();
        if text == "panic" {
            panic!("kit test plugin panicked on purpose (model {})", req.model);
        }
        // Visible in the echo: the kit wrote a changed message back.
        if let Some(m) = req.messages.iter_mut().rev().find(|m| m.role == "user") {
            m.content = Some(format!("{} [seen by rust, attempt {}]", text, ctx.fallback_index()));
        }
        LlmPreResult::Continue
    })
}

#[no_mangle]
pub extern "C" fn post_llm_hook() -> i32 {
    run_post_llm(|ctx, response, _error| {
        if let Some(r) = response {
            if let Some(u) = r.usage.as_mut() {
                ctx.set("kit-test.total_tokens", u.total_tokens);
            }
            let text = r.text().unwrap_or("").to_uppercase();
            r.set_text(&text);
        }
        LlmPostResult::Continue
    })
}
