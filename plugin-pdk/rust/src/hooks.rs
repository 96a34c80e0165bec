//! Hook runners: each reads the call's input envelope, calls the handler,
//! writes back only what changed (nothing at all for "continue, nothing
//! changed", ABI.md §3). A plugin exports the hook under its ABI name:
//!
//! ```ignore
//! #[no_mangle]
//! pub extern "C" fn http_transport_pre_hook() -> i32 {
//!     run_transport_pre(|ctx, req| { req.set_header("x-a", "1"); PreResult::Continue })
//! }
//! ```
//!
//! Input the kit cannot read, or a panic in a handler, logs the reason at
//! level error and traps: the gateway counts a plugin failure and applies
//! the plugin's `on_error`.

use crate::context::Context;
use crate::host::{install_panic_hook, read_input, write_output};
use crate::http::{HookError, HttpRequest, HttpResponse};
use crate::llm::{LlmError, LlmRequest, LlmResponse};
use crate::msgpack::{DecodeResult, MapBuilder, Reader, Writer};
use crate::results::*;
use crate::value::{read_value, write_value, Value};

/// Reads the input envelope's top-level map, handing each key to `field`.
fn read_envelope<'a>(hook: &str, input: &'a [u8], mut field: impl FnMut(&[u8], &mut Reader<'a>) -> DecodeResult<()>) {
    let mut r = Reader::new(input);
    let result: DecodeResult<()> = (|| {
        if r.remaining() == 0 {
            return Ok(());
        }
        for _ in 0..r.read_map_len()? {
            let key = r.read_str_bytes()?;
            field(key, &mut r)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        panic!("sandgate-pdk: cannot read the {} input envelope: {}", hook, e);
    }
}

/// Sends the output map, or nothing when it is empty (continue, nothing changed).
fn finish(out: MapBuilder) -> i32 {
    if !out.is_empty() {
        let mut w = Writer::new();
        out.write(&mut w);
        write_output(&w.buf);
    }
    0
}

fn with_ctx(out: &mut MapBuilder, ctx: &Context) {
    if ctx.changed() {
        out.field("ctx", |w| ctx.write_patch(w));
    }
}

fn error_field(out: &mut MapBuilder, e: &HookError) {
    out.field("error", |w| e.write(w));
}

/// Adds `key` with `encoded` unless it equals the bytes received (an edit in place that changed nothing).
fn if_changed(out: &mut MapBuilder, key: &'static str, encoded: Vec<u8>, received: &[u8]) {
    if encoded != received {
        out.field(key, |w| w.raw(&encoded));
    }
}

// ---- init / get_name / cleanup

/// `init`: `handler(config, name)` with the plugin's `config` from config.json.
pub fn run_init(handler: impl FnOnce(&Value, &str) -> InitResult) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut config = Value::Nil;
    let mut name = String::new();
    read_envelope("init", &input, |key, r| {
        match key {
            b"config" => config = read_value(r)?,
            b"name" => name = r.read_opt_str()?.unwrap_or_default(),
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&config, &name);
    let mut out = MapBuilder::new();
    if let Some(e) = &res.error {
        out.field("error", |w| w.str(e));
    }
    if let Some(b) = res.request_body {
        out.field("request_body", |w| w.bool(b));
    }
    if let Some(b) = res.response_body {
        out.field("response_body", |w| w.bool(b));
    }
    if let Some(b) = res.stream_deltas {
        out.field("stream_deltas", |w| w.bool(b));
    }
    finish(out)
}

/// `get_name`: answers `name` as a MessagePack str.
pub fn run_get_name(name: &str) -> i32 {
    let mut w = Writer::new();
    w.str(name);
    write_output(&w.buf);
    0
}

/// `cleanup`: runs `handler` (best effort: never called for a failed instance, ABI.md §3.1).
pub fn run_cleanup(handler: impl FnOnce()) -> i32 {
    install_panic_hook();
    handler();
    0
}

// ---- transport hooks

pub fn run_transport_pre(handler: impl FnOnce(&mut Context, &mut HttpRequest) -> PreResult) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut ctx = Context::new();
    let mut req = HttpRequest::default();
    read_envelope("http_transport_pre_hook", &input, |key, r| {
        match key {
            b"ctx" => ctx = Context::decode(r)?,
            b"req" => req = HttpRequest::decode(r)?,
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&mut ctx, &mut req);
    let mut out = MapBuilder::new();
    with_ctx(&mut out, &ctx);
    match res {
        PreResult::Continue => {
            if let Some(patch) = req.patch() {
                out.field("req", |w| w.raw(&patch));
            }
        }
        PreResult::Respond(resp) => out.field("response", |w| resp.write_full(w)),
        PreResult::Error(e) => error_field(&mut out, &e),
    }
    finish(out)
}

/// `handler(ctx, req, resp)`: change `resp` (status, headers, body) or fail.
pub fn run_transport_post(handler: impl FnOnce(&mut Context, &HttpRequest, &mut HttpResponse) -> PostResult) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut ctx = Context::new();
    let mut req = HttpRequest::default();
    let mut resp = HttpResponse::new(200);
    read_envelope("http_transport_post_hook", &input, |key, r| {
        match key {
            b"ctx" => ctx = Context::decode(r)?,
            b"req" => req = HttpRequest::decode(r)?,
            b"resp" => resp = HttpResponse::decode(r)?,
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&mut ctx, &req, &mut resp);
    let mut out = MapBuilder::new();
    with_ctx(&mut out, &ctx);
    match res {
        PostResult::Continue => {
            if let Some(patch) = resp.patch() {
                out.field("resp", |w| w.raw(&patch));
            }
        }
        PostResult::Error(e) => error_field(&mut out, &e),
    }
    finish(out)
}

/// `handler(ctx, chunk)`: one `chat.completion.chunk` as a map.
pub fn run_stream_chunk(handler: impl FnOnce(&mut Context, &mut Value) -> ChunkResult) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut ctx = Context::new();
    let mut chunk = Value::map();
    let mut received: &[u8] = &[0x80];
    read_envelope("http_transport_stream_chunk_hook", &input, |key, r| {
        match key {
            b"ctx" => ctx = Context::decode(r)?,
            b"chunk" => {
                let at = r.pos();
                chunk = read_value(r)?;
                received = r.since(at);
            }
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&mut ctx, &mut chunk);
    let mut out = MapBuilder::new();
    with_ctx(&mut out, &ctx);
    match res {
        ChunkResult::Pass => if_changed(&mut out, "chunk", chunk.encode(), received),
        ChunkResult::Replace(v) => out.field("chunk", |w| write_value(w, &v)),
        ChunkResult::Drop => out.field("drop", |w| w.bool(true)),
        ChunkResult::Error(e) => error_field(&mut out, &e),
    }
    finish(out)
}

// ---- LLM hooks (also the legacy pre_hook / post_hook: same envelopes)

pub fn run_pre_llm(handler: impl FnOnce(&mut Context, &mut LlmRequest) -> LlmPreResult) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut ctx = Context::new();
    let mut req = LlmRequest::default();
    read_envelope("pre_llm_hook", &input, |key, r| {
        match key {
            b"ctx" => ctx = Context::decode(r)?,
            b"req" => req = LlmRequest::decode(r)?,
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&mut ctx, &mut req);
    let mut out = MapBuilder::new();
    with_ctx(&mut out, &ctx);
    match res {
        LlmPreResult::Continue => {
            if let Some(patch) = req.patch() {
                out.field("req", |w| w.raw(&patch));
            }
        }
        LlmPreResult::Respond(resp) => out.field("response", |w| resp.write(w)),
        LlmPreResult::Error(e) => out.field("error", |w| e.write(w)),
    }
    finish(out)
}

/// `handler(ctx, response, error)`: exactly one of the two is Some (ABI.md §5.4).
pub fn run_post_llm(
    handler: impl FnOnce(&mut Context, Option<&mut LlmResponse>, Option<&mut LlmError>) -> LlmPostResult,
) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut ctx = Context::new();
    let mut resp: Option<(LlmResponse, &[u8])> = None;
    let mut err: Option<(LlmError, &[u8])> = None;
    read_envelope("post_llm_hook", &input, |key, r| {
        match key {
            b"ctx" => ctx = Context::decode(r)?,
            b"response" if !r.try_nil()? => {
                let at = r.pos();
                let v = LlmResponse::decode(r)?;
                resp = Some((v, r.since(at)));
            }
            b"error" if !r.try_nil()? => {
                let at = r.pos();
                let v = LlmError::decode(r)?;
                err = Some((v, r.since(at)));
            }
            b"response" | b"error" => {}
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&mut ctx, resp.as_mut().map(|(v, _)| v), err.as_mut().map(|(v, _)| v));
    let mut out = MapBuilder::new();
    with_ctx(&mut out, &ctx);
    match res {
        LlmPostResult::Continue => {
            if let Some((v, received)) = &resp {
                if_changed(&mut out, "response", v.encode(), received);
            } else if let Some((v, received)) = &err {
                if_changed(&mut out, "error", v.encode(), received);
            }
        }
        LlmPostResult::Respond(v) => out.field("response", |w| v.write(w)),
        LlmPostResult::Error(e) => out.field("error", |w| e.write(w)),
    }
    finish(out)
}

// ---- legacy transport_interceptor (ABI.md §5.6)

/// What the legacy `transport_interceptor` receives. Edit `headers` and
/// `body` in place: a changed `headers` replaces all headers, a changed
/// `body` (a map) replaces the JSON body.
#[derive(Debug, Clone, Default)]
pub struct InterceptorRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The JSON body parsed (a map), or nil.
    pub body: Value,
}

impl InterceptorRequest {
    /// A header's value, whatever the case of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Sets a header (lower-cased name), replacing any of that name.
    pub fn set_header(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.headers.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&name)) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.headers.push((name, value.to_string())),
        }
    }
}

fn write_headers(w: &mut Writer, headers: &[(String, String)]) {
    w.map_len(headers.len());
    for (k, v) in headers {
        w.str(k);
        w.str(v);
    }
}

pub fn run_transport_interceptor(
    handler: impl FnOnce(&mut Context, &mut InterceptorRequest) -> InterceptorResult,
) -> i32 {
    install_panic_hook();
    let input = read_input();
    let mut ctx = Context::new();
    let mut req = InterceptorRequest::default();
    let mut headers_in: &[u8] = &[0x80];
    let mut body_in: &[u8] = &[0xc0];
    read_envelope("transport_interceptor", &input, |key, r| {
        match key {
            b"ctx" => ctx = Context::decode(r)?,
            b"url" => req.url = r.read_opt_str()?.unwrap_or_default(),
            b"headers" => {
                let at = r.pos();
                for _ in 0..r.read_map_len()? {
                    let k = r.read_str()?;
                    req.headers.push((k, r.read_str()?));
                }
                headers_in = r.since(at);
            }
            b"body" => {
                let at = r.pos();
                req.body = read_value(r)?;
                body_in = r.since(at);
            }
            _ => r.skip()?,
        }
        Ok(())
    });
    let res = handler(&mut ctx, &mut req);
    let mut out = MapBuilder::new();
    with_ctx(&mut out, &ctx);
    match res {
        InterceptorResult::Continue => {
            let mut w = Writer::new();
            write_headers(&mut w, &req.headers);
            if_changed(&mut out, "headers", w.buf, headers_in);
            // InterceptorOutput.body must be a map: nil cannot be sent back.
            if matches!(req.body, Value::Map(_)) {
                if_changed(&mut out, "body", req.body.encode(), body_in);
            }
        }
        InterceptorResult::Error(e) => error_field(&mut out, &e),
    }
    finish(out)
}
