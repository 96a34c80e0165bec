//! What a hook handler returns. Each hook has its own result type, so only the
//! outcomes its envelope allows (ABI.md §5) can be expressed.

use crate::http::{HookError, HttpResponse};
use crate::llm::{LlmError, LlmResponse};
use crate::value::Value;

/// `http_transport_pre_hook`: continue (with the request changes), answer, or fail.
#[derive(Debug)]
pub enum PreResult {
    Continue,
    /// Short-circuit: the client gets this response; the provider and later pre hooks are skipped.
    Respond(HttpResponse),
    /// Short-circuit with an error response (`status`, an OpenAI-shaped body).
    Error(HookError),
}

impl PreResult {
    pub fn error(message: &str, status: i32, code: Option<&str>) -> Self {
        PreResult::Error(HookError::new(message, status, code))
    }
}

/// `http_transport_post_hook`: continue (with the response changes) or fail (remaining post hooks skipped).
#[derive(Debug)]
pub enum PostResult {
    Continue,
    Error(HookError),
}

impl PostResult {
    pub fn error(message: &str, status: i32, code: Option<&str>) -> Self {
        PostResult::Error(HookError::new(message, status, code))
    }
}

/// `http_transport_stream_chunk_hook`.
#[derive(Debug)]
pub enum ChunkResult {
    /// Pass the chunk on (edits made in place are sent back).
    Pass,
    Replace(Value),
    /// The chunk is not sent to the client.
    Drop,
    /// An error event is sent and the stream ends.
    Error(HookError),
}

impl ChunkResult {
    pub fn error(message: &str, status: i32, code: Option<&str>) -> Self {
        ChunkResult::Error(HookError::new(message, status, code))
    }
}

/// `pre_llm_hook` (and legacy `pre_hook`).
#[derive(Debug)]
pub enum LlmPreResult {
    /// Continue, with the request changes.
    Continue,
    /// Short-circuit: the provider is not called.
    Respond(LlmResponse),
    /// Short-circuit with an error; `allow_fallbacks: Some(false)` stops the fallback chain.
    Error(LlmError),
}

/// `post_llm_hook` (and legacy `post_hook`).
#[derive(Debug)]
pub enum LlmPostResult {
    /// Continue (edits made in place to the response or error are sent back).
    Continue,
    /// The result becomes this response (also recovers an error).
    Respond(LlmResponse),
    /// The result becomes this error (also turns a response into an error).
    Error(LlmError),
}

/// Legacy `transport_interceptor`: continue (edits in place are sent back) or fail.
#[derive(Debug)]
pub enum InterceptorResult {
    Continue,
    Error(HookError),
}

impl InterceptorResult {
    pub fn error(message: &str, status: i32, code: Option<&str>) -> Self {
        InterceptorResult::Error(HookError::new(message, status, code))
    }
}

/// `init`: load (optionally without bodies, or without streamed deltas) or refuse to load.
///
/// ```
/// let r = sandgate_pdk::InitResult::ok().request_body(false);
/// assert_eq!(r.request_body, Some(false));
/// ```
#[derive(Debug, Default, Clone, PartialEq)]
pub struct InitResult {
    /// The plugin does not load; the gateway reports this reason.
    pub error: Option<String>,
    /// None: the host's default (true).
    pub request_body: Option<bool>,
    pub response_body: Option<bool>,
    /// None: the host's default (true): `post_llm_hook` sees every streamed delta.
    pub stream_deltas: Option<bool>,
}

impl InitResult {
    pub fn ok() -> Self {
        Self::default()
    }

    pub fn error(reason: &str) -> Self {
        InitResult { error: Some(reason.to_string()), ..Self::default() }
    }

    /// false: transport hooks never get `HttpRequest::body` (header-only plugins stay fast).
    pub fn request_body(mut self, want: bool) -> Self {
        self.request_body = Some(want);
        self
    }

    /// false: transport hooks never get `HttpResponse::body`.
    pub fn response_body(mut self, want: bool) -> Self {
        self.response_body = Some(want);
        self
    }

    /// false: `post_llm_hook` is never called with a streamed delta, so a stream costs
    /// the plugin nothing per chunk; it still gets full responses and errors (ABI.md §5.2).
    ///
    /// ```
    /// let r = sandgate_pdk::InitResult::ok().stream_deltas(false);
    /// assert_eq!(r.stream_deltas, Some(false));
    /// ```
    pub fn stream_deltas(mut self, want: bool) -> Self {
        self.stream_deltas = Some(want);
        self
    }
}
