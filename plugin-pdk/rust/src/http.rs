//! HTTP envelopes of the transport hooks (ABI.md §5.1, §5.3).

use crate::msgpack::{DecodeResult, MapBuilder, Reader, Writer};
use crate::patch::PatchMap;

fn write_string(w: &mut Writer, s: &String) {
    w.str(s)
}

fn read_string(r: &mut Reader) -> DecodeResult<String> {
    r.read_str()
}

/// The client's request as the transport hooks see it. Change `method`,
/// `path` and `body` by assignment; headers and query through the setters
/// (they are sent back as merge patches).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// None when the plugin's `init` asked for no request bodies.
    pub body: Option<Vec<u8>>,
    headers: PatchMap<String>,
    query: PatchMap<String>,
    received: (String, String, Option<Vec<u8>>),
}

impl Default for HttpRequest {
    fn default() -> Self {
        HttpRequest {
            method: String::new(),
            path: String::new(),
            body: None,
            headers: PatchMap::new(true),
            query: PatchMap::new(false),
            received: (String::new(), String::new(), None),
        }
    }
}

impl HttpRequest {
    /// A header's value, whatever the case of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|s| s.as_str())
    }

    /// Sets a header (the name is lower-cased) on the request sent upstream.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.set(name, value.to_string())
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.remove(name)
    }

    /// Every header, lower-case names, this call's changes included.
    pub fn headers(&self) -> Vec<(&str, &str)> {
        self.headers.entries().into_iter().map(|(k, v)| (k, v.as_str())).collect()
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(|s| s.as_str())
    }

    pub fn set_query(&mut self, name: &str, value: &str) {
        self.query.set(name, value.to_string())
    }

    pub fn remove_query(&mut self, name: &str) {
        self.query.remove(name)
    }

    pub fn query(&self) -> Vec<(&str, &str)> {
        self.query.entries().into_iter().map(|(k, v)| (k, v.as_str())).collect()
    }

    /// The body as UTF-8 text (None if absent or not UTF-8).
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(self.body.as_deref()?).ok()
    }

    pub fn set_body_text(&mut self, text: &str) {
        self.body = Some(text.as_bytes().to_vec())
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<HttpRequest> {
        let mut q = HttpRequest::default();
        for _ in 0..r.read_map_len()? {
            match r.read_str_bytes()? {
                b"method" => q.method = r.read_str()?,
                b"path" => q.path = r.read_str()?,
                b"headers" => q.headers = PatchMap::read(r, true, read_string)?,
                b"query" => q.query = PatchMap::read(r, false, read_string)?,
                b"body" => q.body = if r.try_nil()? { None } else { Some(r.read_bin()?) },
                _ => r.skip()?,
            }
        }
        q.received = (q.method.clone(), q.path.clone(), q.body.clone());
        Ok(q)
    }

    /// The request patch of `TransportPreOutput.req`: only what changed. None if nothing did.
    pub(crate) fn patch(&self) -> Option<Vec<u8>> {
        let mut m = MapBuilder::new();
        if self.method != self.received.0 {
            m.field("method", |w| w.str(&self.method));
        }
        if self.path != self.received.1 {
            m.field("path", |w| w.str(&self.path));
        }
        if self.headers.changed() {
            m.field("headers", |w| self.headers.write_patch(w, write_string));
        }
        if self.query.changed() {
            m.field("query", |w| self.query.write_patch(w, write_string));
        }
        if let Some(body) = &self.body {
            if self.received.2.as_ref() != Some(body) {
                m.field("body", |w| w.bin(body));
            }
        }
        finish(m)
    }
}

fn finish(m: MapBuilder) -> Option<Vec<u8>> {
    if m.is_empty() {
        return None;
    }
    let mut w = Writer::new();
    m.write(&mut w);
    Some(w.into_bytes())
}

/// An HTTP response: the upstream's (post hook), or a plugin's own (short-circuit).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: i32,
    /// None when the plugin's `init` asked for no response bodies.
    pub body: Option<Vec<u8>>,
    headers: PatchMap<String>,
    received: (i32, Option<Vec<u8>>),
}

impl HttpResponse {
    /// A response with `status`, no headers, no body.
    pub fn new(status: i32) -> Self {
        HttpResponse { status, body: None, headers: PatchMap::new(true), received: (status, None) }
    }

    /// A JSON response (`content-type: application/json`).
    ///
    /// ```
    /// let r = sandgate_pdk::HttpResponse::json(403, r#"{"error":"no"}"#);
    /// assert_eq!(r.header("Content-Type"), Some("application/json"));
    /// ```
    pub fn json(status: i32, json: &str) -> Self {
        let mut r = HttpResponse::new(status);
        r.set_header("content-type", "application/json");
        r.set_body_text(json);
        r
    }

    /// A plain-text response (`content-type: text/plain; charset=utf-8`).
    pub fn text(status: i32, text: &str) -> Self {
        let mut r = HttpResponse::new(status);
        r.set_header("content-type", "text/plain; charset=utf-8");
        r.set_body_text(text);
        r
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|s| s.as_str())
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.set(name, value.to_string())
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.remove(name)
    }

    pub fn headers(&self) -> Vec<(&str, &str)> {
        self.headers.entries().into_iter().map(|(k, v)| (k, v.as_str())).collect()
    }

    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(self.body.as_deref()?).ok()
    }

    pub fn set_body_text(&mut self, text: &str) {
        self.body = Some(text.as_bytes().to_vec())
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<HttpResponse> {
        let mut s = HttpResponse::new(200);
        for _ in 0..r.read_map_len()? {
            match r.read_str_bytes()? {
                b"status" => s.status = r.read_int()? as i32,
                b"headers" => s.headers = PatchMap::read(r, true, read_string)?,
                b"body" => s.body = if r.try_nil()? { None } else { Some(r.read_bin()?) },
                _ => r.skip()?,
            }
        }
        s.received = (s.status, s.body.clone());
        Ok(s)
    }

    /// The whole response (a short-circuit's `response`).
    pub(crate) fn write_full(&self, w: &mut Writer) {
        w.map_len(if self.body.is_some() { 3 } else { 2 });
        w.str("status");
        w.int(self.status as i64);
        w.str("headers");
        self.headers.write_full(w, write_string);
        if let Some(body) = &self.body {
            w.str("body");
            w.bin(body);
        }
    }

    /// `TransportPostOutput.resp`: only what changed. None if nothing did.
    pub(crate) fn patch(&self) -> Option<Vec<u8>> {
        let mut m = MapBuilder::new();
        if self.status != self.received.0 {
            m.field("status", |w| w.int(self.status as i64));
        }
        if self.headers.changed() {
            m.field("headers", |w| self.headers.write_patch(w, write_string));
        }
        if let Some(body) = &self.body {
            if self.received.1.as_ref() != Some(body) {
                m.field("body", |w| w.bin(body));
            }
        }
        finish(m)
    }
}

/// A deliberate error from a transport hook: the client gets `status` with an
/// OpenAI-shaped error body (`code` defaults to `plugin_rejected` at the host).
#[derive(Debug, Clone, PartialEq)]
pub struct HookError {
    pub message: String,
    pub status: i32,
    pub code: Option<String>,
}

impl HookError {
    pub fn new(message: &str, status: i32, code: Option<&str>) -> Self {
        HookError { message: message.to_string(), status, code: code.map(|c| c.to_string()) }
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        w.map_len(if self.code.is_some() { 3 } else { 2 });
        w.str("message");
        w.str(&self.message);
        w.str("status");
        w.int(self.status as i64);
        if let Some(code) = &self.code {
            w.str("code");
            w.str(code);
        }
    }
}
