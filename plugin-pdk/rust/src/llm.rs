//! LLM envelopes (ABI.md §5.1, §5.4): OpenAI-shaped request, response and
//! error. Fields the kit does not model (`tool_calls`, `system_fingerprint`,
//! `logprobs`, ...) are kept in `extra` and written back in order. A key that
//! arrived absent is written back absent (a streamed delta without `role`
//! stays without one), so a decode + encode changes nothing.

use crate::msgpack::{DecodeResult, MapBuilder, Reader, Writer};
use crate::patch::PatchMap;
use crate::value::{read_value, write_value, Value};

fn write_extra(w: &mut Writer, extra: &[(String, Value)]) {
    for (k, v) in extra {
        w.str(k);
        write_value(w, v);
    }
}

fn opt_str(r: &mut Reader) -> DecodeResult<Option<String>> {
    r.read_opt_str()
}

/// One chat message. `content` is the text; other content (an array of parts) is in `content_value`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmMessage {
    /// Empty means absent (a streamed delta after the first).
    pub role: String,
    pub content: Option<String>,
    /// Non-text content (e.g. an array of parts), kept as received.
    pub content_value: Option<Value>,
    pub name: Option<String>,
    /// Every other key (`tool_calls`, `tool_call_id`, ...).
    pub extra: Vec<(String, Value)>,
    content_key: bool,
}

impl LlmMessage {
    /// ```
    /// let m = sandgate_pdk::LlmMessage::new("user", "Hello!");
    /// assert_eq!(m.content.as_deref(), Some("Hello!"));
    /// ```
    pub fn new(role: &str, content: &str) -> Self {
        LlmMessage { role: role.to_string(), content: Some(content.to_string()), content_key: true, ..Default::default() }
    }

    pub fn get_extra(&self, key: &str) -> Option<&Value> {
        self.extra.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn set_extra(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.extra.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.extra.push((key.to_string(), value)),
        }
    }

    pub fn remove_extra(&mut self, key: &str) {
        self.extra.retain(|(k, _)| k != key)
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<LlmMessage> {
        let mut m = LlmMessage::default();
        for _ in 0..r.read_map_len()? {
            let key = r.read_str()?;
            match key.as_str() {
                "role" => m.role = r.read_opt_str()?.unwrap_or_default(),
                "content" => {
                    m.content_key = true;
                    match read_value(r)? {
                        Value::Str(s) => m.content = Some(s),
                        Value::Nil => {}
                        other => m.content_value = Some(other),
                    }
                }
                "name" => m.name = opt_str(r)?,
                _ => m.extra.push((key, read_value(r)?)),
            }
        }
        Ok(m)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let has_content = self.content_key || self.content.is_some() || self.content_value.is_some();
        let n = (!self.role.is_empty()) as usize + has_content as usize + self.name.is_some() as usize + self.extra.len();
        w.map_len(n);
        if !self.role.is_empty() {
            w.str("role");
            w.str(&self.role);
        }
        if has_content {
            w.str("content");
            match (&self.content, &self.content_value) {
                (Some(s), _) => w.str(s),
                (None, Some(v)) => write_value(w, v),
                (None, None) => w.nil(),
            }
        }
        if let Some(name) = &self.name {
            w.str("name");
            w.str(name);
        }
        write_extra(w, &self.extra);
    }
}

fn read_messages(r: &mut Reader) -> DecodeResult<Vec<LlmMessage>> {
    let n = r.read_array_len()?;
    let mut out = Vec::with_capacity(n.min(r.remaining()));
    for _ in 0..n {
        out.push(LlmMessage::decode(r)?);
    }
    Ok(out)
}

fn write_messages(w: &mut Writer, messages: &[LlmMessage]) {
    w.array_len(messages.len());
    for m in messages {
        m.write(w);
    }
}

/// The chat request of `pre_llm_hook`. Assign `provider`, `model`, edit
/// `messages` in place; change params through the setters (merged).
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub provider: String,
    pub model: String,
    pub stream: bool,
    pub messages: Vec<LlmMessage>,
    params: PatchMap<Value>,
    received: (String, String, Vec<u8>),
}

impl Default for LlmRequest {
    fn default() -> Self {
        LlmRequest {
            provider: String::new(),
            model: String::new(),
            stream: false,
            messages: Vec::new(),
            params: PatchMap::new(false),
            received: (String::new(), String::new(), vec![0x90]),
        }
    }
}

impl LlmRequest {
    /// Any other field of the chat body (`temperature`, `max_tokens`, ...).
    pub fn param(&self, key: &str) -> Option<&Value> {
        self.params.get(key).filter(|v| !v.is_nil())
    }

    pub fn set_param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.set(key, value.into())
    }

    pub fn remove_param(&mut self, key: &str) {
        self.params.remove(key)
    }

    pub fn params(&self) -> Vec<(&str, &Value)> {
        self.params.entries()
    }

    /// The last message with `role`.
    pub fn last_message(&self, role: &str) -> Option<&LlmMessage> {
        self.messages.iter().rev().find(|m| m.role == role)
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<LlmRequest> {
        let mut q = LlmRequest::default();
        for _ in 0..r.read_map_len()? {
            match r.read_str_bytes()? {
                b"provider" => q.provider = r.read_str()?,
                b"model" => q.model = r.read_str()?,
                b"stream" => q.stream = !r.try_nil()? && r.read_bool()?,
                b"messages" => {
                    let at = r.pos();
                    q.messages = read_messages(r)?;
                    q.received.2 = r.since(at).to_vec();
                }
                b"params" => q.params = PatchMap::read(r, false, read_value)?,
                _ => r.skip()?,
            }
        }
        q.received.0 = q.provider.clone();
        q.received.1 = q.model.clone();
        Ok(q)
    }

    /// `LlmPreOutput.req`: only what changed; messages if their encoding differs from what came in.
    pub(crate) fn patch(&self) -> Option<Vec<u8>> {
        let mut m = MapBuilder::new();
        if self.provider != self.received.0 {
            m.field("provider", |w| w.str(&self.provider));
        }
        if self.model != self.received.1 {
            m.field("model", |w| w.str(&self.model));
        }
        let mut w = Writer::new();
        write_messages(&mut w, &self.messages);
        if w.buf != self.received.2 {
            m.field("messages", |out| out.raw(&w.buf));
        }
        if self.params.changed() {
            m.field("params", |w| self.params.write_patch(w, write_value));
        }
        if m.is_empty() {
            return None;
        }
        let mut w = Writer::new();
        m.write(&mut w);
        Some(w.into_bytes())
    }
}

/// One choice of a completion: `message` in a completion, `delta` in a streamed chunk.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmChoice {
    pub index: i64,
    pub message: Option<LlmMessage>,
    pub delta: Option<LlmMessage>,
    pub finish_reason: Option<String>,
    pub extra: Vec<(String, Value)>,
    index_key: bool,
    finish_reason_key: bool,
}

impl LlmChoice {
    pub fn new(index: i64, message: LlmMessage, finish_reason: Option<&str>) -> Self {
        LlmChoice {
            index,
            message: Some(message),
            finish_reason: finish_reason.map(|s| s.to_string()),
            index_key: true,
            finish_reason_key: true,
            ..Default::default()
        }
    }

    fn decode(r: &mut Reader) -> DecodeResult<LlmChoice> {
        let mut c = LlmChoice::default();
        for _ in 0..r.read_map_len()? {
            let key = r.read_str()?;
            match key.as_str() {
                "index" => {
                    c.index_key = true;
                    c.index = if r.try_nil()? { 0 } else { r.read_int()? };
                }
                "message" => c.message = if r.try_nil()? { None } else { Some(LlmMessage::decode(r)?) },
                "delta" => c.delta = if r.try_nil()? { None } else { Some(LlmMessage::decode(r)?) },
                "finish_reason" => {
                    c.finish_reason_key = true;
                    c.finish_reason = r.read_opt_str()?;
                }
                _ => c.extra.push((key, read_value(r)?)),
            }
        }
        Ok(c)
    }

    fn write(&self, w: &mut Writer) {
        let has_finish = self.finish_reason_key || self.finish_reason.is_some();
        let n = self.index_key as usize
            + self.message.is_some() as usize
            + self.delta.is_some() as usize
            + has_finish as usize
            + self.extra.len();
        w.map_len(n);
        if self.index_key {
            w.str("index");
            w.int(self.index);
        }
        if let Some(m) = &self.message {
            w.str("message");
            m.write(w);
        }
        if let Some(d) = &self.delta {
            w.str("delta");
            d.write(w);
        }
        if has_finish {
            w.str("finish_reason");
            w.opt_str(&self.finish_reason);
        }
        write_extra(w, &self.extra);
    }
}

/// Token counts (may exceed 2^32; any integer encoding is read).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmUsage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub extra: Vec<(String, Value)>,
}

impl LlmUsage {
    pub fn new(prompt_tokens: i64, completion_tokens: i64) -> Self {
        LlmUsage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens, extra: Vec::new() }
    }

    fn decode(r: &mut Reader) -> DecodeResult<LlmUsage> {
        let mut u = LlmUsage::default();
        for _ in 0..r.read_map_len()? {
            let key = r.read_str()?;
            match key.as_str() {
                "prompt_tokens" => u.prompt_tokens = r.read_int()?,
                "completion_tokens" => u.completion_tokens = r.read_int()?,
                "total_tokens" => u.total_tokens = r.read_int()?,
                _ => u.extra.push((key, read_value(r)?)),
            }
        }
        Ok(u)
    }

    fn write(&self, w: &mut Writer) {
        w.map_len(3 + self.extra.len());
        w.str("prompt_tokens");
        w.int(self.prompt_tokens);
        w.str("completion_tokens");
        w.int(self.completion_tokens);
        w.str("total_tokens");
        w.int(self.total_tokens);
        write_extra(w, &self.extra);
    }
}

/// An OpenAI `chat.completion` (or, streamed, a `chat.completion.chunk`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmResponse {
    pub id: String,
    pub object: String,
    /// Unix seconds; 0 and never received: the host fills in the current time.
    pub created: i64,
    pub model: String,
    pub choices: Vec<LlmChoice>,
    pub usage: Option<LlmUsage>,
    pub extra: Vec<(String, Value)>,
    created_key: bool,
}

impl Default for LlmResponse {
    fn default() -> Self {
        LlmResponse {
            id: "chatcmpl-sandgate".to_string(),
            object: "chat.completion".to_string(),
            created: 0,
            model: String::new(),
            choices: Vec::new(),
            usage: None,
            extra: Vec::new(),
            created_key: false,
        }
    }
}

impl LlmResponse {
    /// A completion with one assistant message (finish_reason `stop`).
    ///
    /// ```
    /// let r = sandgate_pdk::LlmResponse::assistant("cache", "Hi!");
    /// assert_eq!(r.text(), Some("Hi!"));
    /// ```
    pub fn assistant(model: &str, content: &str) -> Self {
        LlmResponse {
            model: model.to_string(),
            choices: vec![LlmChoice::new(0, LlmMessage::new("assistant", content), Some("stop"))],
            ..Default::default()
        }
    }

    fn first_message_mut(&mut self) -> Option<&mut LlmMessage> {
        let c = self.choices.first_mut()?;
        if c.message.is_some() {
            c.message.as_mut()
        } else {
            c.delta.as_mut()
        }
    }

    /// The first choice's text (its `message`, or `delta` in a chunk).
    pub fn text(&self) -> Option<&str> {
        let c = self.choices.first()?;
        c.message.as_ref().or(c.delta.as_ref())?.content.as_deref()
    }

    /// Replaces the first choice's text.
    pub fn set_text(&mut self, text: &str) {
        if let Some(m) = self.first_message_mut() {
            m.content = Some(text.to_string());
            m.content_value = None;
        }
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<LlmResponse> {
        let mut s = LlmResponse { id: String::new(), object: String::new(), ..Default::default() };
        for _ in 0..r.read_map_len()? {
            let key = r.read_str()?;
            match key.as_str() {
                "id" => s.id = r.read_opt_str()?.unwrap_or_default(),
                "object" => s.object = r.read_opt_str()?.unwrap_or_default(),
                "created" => {
                    s.created_key = true;
                    s.created = if r.try_nil()? { 0 } else { r.read_int()? };
                }
                "model" => s.model = r.read_opt_str()?.unwrap_or_default(),
                "choices" => {
                    let n = r.read_array_len()?;
                    for _ in 0..n {
                        s.choices.push(LlmChoice::decode(r)?);
                    }
                }
                "usage" => s.usage = if r.try_nil()? { None } else { Some(LlmUsage::decode(r)?) },
                _ => s.extra.push((key, read_value(r)?)),
            }
        }
        Ok(s)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let with_created = self.created_key || self.created != 0;
        w.map_len(4 + with_created as usize + self.usage.is_some() as usize + self.extra.len());
        w.str("id");
        w.str(&self.id);
        w.str("object");
        w.str(&self.object);
        if with_created {
            w.str("created");
            w.int(self.created);
        }
        w.str("model");
        w.str(&self.model);
        w.str("choices");
        w.array_len(self.choices.len());
        for c in &self.choices {
            c.write(w);
        }
        if let Some(u) = &self.usage {
            w.str("usage");
            u.write(w);
        }
        write_extra(w, &self.extra);
    }

    /// The MessagePack of this response (e.g. to compare or store it).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_bytes()
    }
}

/// An LLM error: a pre hook's short-circuit, a post hook's replacement, or the
/// upstream's error a post hook sees. Absent fields get the host's defaults
/// (status 502, type and code `upstream_error`, fallbacks allowed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlmError {
    pub message: String,
    pub error_type: Option<String>,
    pub code: Option<String>,
    pub status: Option<i32>,
    /// None (absent or nil) and Some(true) allow the next fallback; Some(false) stops here.
    pub allow_fallbacks: Option<bool>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub extra: Vec<(String, Value)>,
    allow_fallbacks_key: bool,
}

impl LlmError {
    pub fn new(message: &str) -> Self {
        LlmError { message: message.to_string(), ..Default::default() }
    }

    /// An error that stops the fallback chain (`allow_fallbacks: false`).
    ///
    /// ```
    /// let e = sandgate_pdk::LlmError::no_fallbacks("blocked", 403);
    /// assert_eq!(e.allow_fallbacks, Some(false));
    /// ```
    pub fn no_fallbacks(message: &str, status: i32) -> Self {
        LlmError { message: message.to_string(), status: Some(status), allow_fallbacks: Some(false), ..Default::default() }
    }

    pub fn with_status(mut self, status: i32) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_type(mut self, error_type: &str) -> Self {
        self.error_type = Some(error_type.to_string());
        self
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<LlmError> {
        let mut e = LlmError::default();
        for _ in 0..r.read_map_len()? {
            let key = r.read_str()?;
            match key.as_str() {
                "message" => e.message = r.read_opt_str()?.unwrap_or_default(),
                "type" => e.error_type = opt_str(r)?,
                "code" => e.code = opt_str(r)?,
                "status" => e.status = if r.try_nil()? { None } else { Some(r.read_int()? as i32) },
                "allow_fallbacks" => {
                    e.allow_fallbacks_key = true;
                    e.allow_fallbacks = if r.try_nil()? { None } else { Some(r.read_bool()?) };
                }
                "provider" => e.provider = opt_str(r)?,
                "model" => e.model = opt_str(r)?,
                _ => e.extra.push((key, read_value(r)?)),
            }
        }
        Ok(e)
    }

    pub(crate) fn write(&self, w: &mut Writer) {
        let with_fallbacks = self.allow_fallbacks_key || self.allow_fallbacks.is_some();
        let n = 1
            + self.error_type.is_some() as usize
            + self.code.is_some() as usize
            + self.status.is_some() as usize
            + with_fallbacks as usize
            + self.provider.is_some() as usize
            + self.model.is_some() as usize
            + self.extra.len();
        w.map_len(n);
        w.str("message");
        w.str(&self.message);
        let strs: [(&str, &Option<String>); 2] = [("type", &self.error_type), ("code", &self.code)];
        for (k, v) in strs {
            if let Some(v) = v {
                w.str(k);
                w.str(v);
            }
        }
        if let Some(s) = self.status {
            w.str("status");
            w.int(s as i64);
        }
        if with_fallbacks {
            w.str("allow_fallbacks");
            match self.allow_fallbacks {
                Some(b) => w.bool(b),
                None => w.nil(),
            }
        }
        let strs: [(&str, &Option<String>); 2] = [("provider", &self.provider), ("model", &self.model)];
        for (k, v) in strs {
            if let Some(v) = v {
                w.str(k);
                w.str(v);
            }
        }
        write_extra(w, &self.extra);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_bytes()
    }
}
