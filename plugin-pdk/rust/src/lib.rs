//! # Sandgate Rust PDK
//!
//! Write Sandgate gateway plugins in Rust. The kit implements
//! [ABI v1](../ABI.md): it reads each hook's MessagePack envelope through the
//! `sandgate:host/v1` fast path, hands the handler typed values, and sends back
//! only what changed. No dependencies: it builds offline with any Rust 1.63+
//! that has the `wasm32-unknown-unknown` target.
//!
//! ```ignore
//! use sandgate_pdk::*;
//!
//! #[no_mangle]
//! pub extern "C" fn http_transport_pre_hook() -> i32 {
//!     run_transport_pre(|ctx, req| {
//!         if req.header("authorization").is_none() {
//!             return PreResult::error("missing credentials", 401, Some("unauthorized"));
//!         }
//!         req.set_header("x-custom-header", "custom-value");
//!         ctx.set("my-plugin.seen", true);
//!         PreResult::Continue
//!     })
//! }
//! ```
//!
//! Linking this crate exports the ABI marker `sandgate_abi_v1` (ABI.md §2).

pub mod context;
pub mod hooks;
pub mod host;
pub mod http;
pub mod llm;
pub mod msgpack;
pub mod patch;
pub mod results;
pub mod value;

pub use context::Context;
pub use hooks::*;
pub use host::{log, log_debug, log_error, log_info, log_warn, LogLevel};
pub use http::{HookError, HttpRequest, HttpResponse};
pub use llm::{LlmChoice, LlmError, LlmMessage, LlmRequest, LlmResponse, LlmUsage};
pub use results::*;
pub use value::Value;

/// The ABI version marker (ABI.md §2). Exported from every plugin that links
/// the kit: the gateway refuses modules without it.
#[no_mangle]
pub extern "C" fn sandgate_abi_v1() -> i32 {
    1
}
