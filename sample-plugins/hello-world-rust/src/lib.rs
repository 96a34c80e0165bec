//! hello-world: the Rust twin of the AssemblyScript hello-world (and of the
//! reference Go plugin). It logs every hook, adds a request header, stores a
//! context value in the pre hook and reads it back in the post hook (as the
//! `x-hello-context` response header, so a client sees the value crossed hooks).
//! The ABI marker `sandgate_abi_v1` comes with the kit.

use sandgate_pdk::*;

const CONTEXT_KEY: &str = "hello-world.greeting";

/// Runs once per instance with the plugin's `config` from config.json.
#[no_mangle]
pub extern "C" fn init() -> i32 {
    run_init(|_config, _name| {
        log_info("Init called");
        // This plugin only looks at headers: never send it bodies, whatever their size.
        // Its post_llm_hook does nothing with streamed deltas: no call per chunk.
        InitResult::ok().request_body(false).response_body(false).stream_deltas(false)
    })
}

#[no_mangle]
pub extern "C" fn get_name() -> i32 {
    run_get_name("hello-world")
}

#[no_mangle]
pub extern "C" fn http_transport_pre_hook() -> i32 {
    run_transport_pre(|ctx, req| {
        log_info("HTTPTransportPreHook called");
        let content_type = req.header("Content-Type").unwrap_or("(none)"); // case-insensitive
        log_debug(&format!("Content-Type: {}", content_type));
        req.set_header("x-custom-header", "custom-value");
        ctx.set(CONTEXT_KEY, "pre-hook-value");
        PreResult::Continue
    })
}

#[no_mangle]
pub extern "C" fn http_transport_post_hook() -> i32 {
    run_transport_post(|ctx, _req, resp| {
        log_info("HTTPTransportPostHook called");
        resp.set_header("x-processed-by", "hello-world");
        if let Some(greeting) = ctx.get_str(CONTEXT_KEY) {
            log_debug(&format!("Context value: {}", greeting));
            resp.set_header("x-hello-context", greeting);
        }
        PostResult::Continue
    })
}

#[no_mangle]
pub extern "C" fn pre_llm_hook() -> i32 {
    run_pre_llm(|_ctx, _req| {
        log_info("PreLLMHook called");
        LlmPreResult::Continue
    })
}

#[no_mangle]
pub extern "C" fn post_llm_hook() -> i32 {
    run_post_llm(|_ctx, _response, _error| {
        log_info("PostLLMHook called");
        LlmPostResult::Continue
    })
}

#[no_mangle]
pub extern "C" fn cleanup() -> i32 {
    run_cleanup(|| log_info("Cleanup called"))
}
