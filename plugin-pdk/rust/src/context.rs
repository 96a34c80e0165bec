//! `Context`: the per-request key/value map shared by every hook (ABI.md §5.1).

use crate::host::log_warn;
use crate::msgpack::{DecodeResult, Reader, Writer};
use crate::patch::PatchMap;
use crate::value::{read_value, write_value, Value};

/// The request context. Reads include this call's changes; `set`/`delete`
/// are sent back as a patch. `sandgate.*` keys belong to the host: they are
/// readable, and setting one is refused with a warning (the host would ignore it).
#[derive(Debug, Clone)]
pub struct Context {
    map: PatchMap<Value>,
}

impl Default for Context {
    fn default() -> Self {
        Context { map: PatchMap::new(false) }
    }
}

fn reserved(key: &str) -> bool {
    key.starts_with("sandgate.")
}

impl Context {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_nil())
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// An integer in any encoding (the host writes big ones as float64).
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_int()
    }

    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn keys(&self) -> Vec<&str> {
        self.map.entries().into_iter().filter(|(_, v)| !v.is_nil()).map(|(k, _)| k).collect()
    }

    /// Sets `key` for every later hook of this request (any plugin).
    ///
    /// ```
    /// let mut ctx = sandgate_pdk::Context::new();
    /// ctx.set("my-plugin.seen", true);
    /// assert_eq!(ctx.get_bool("my-plugin.seen"), Some(true));
    /// ```
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        if reserved(key) {
            log_warn(&format!("context key \"{}\" is reserved for the gateway: not set", key));
            return;
        }
        self.map.set(key, value.into())
    }

    pub fn delete(&mut self, key: &str) {
        if reserved(key) {
            log_warn(&format!("context key \"{}\" is reserved for the gateway: not deleted", key));
            return;
        }
        self.map.remove(key)
    }

    /// `sandgate.request_id`.
    pub fn request_id(&self) -> &str {
        self.get_str("sandgate.request_id").unwrap_or("")
    }

    /// `sandgate.fallback_index`: 0 for the primary attempt, 1.. for fallbacks.
    pub fn fallback_index(&self) -> i64 {
        self.get_int("sandgate.fallback_index").unwrap_or(0)
    }

    /// `sandgate.stream_end`: streaming only, true on the last chunk.
    pub fn stream_end(&self) -> bool {
        self.get_bool("sandgate.stream_end").unwrap_or(false)
    }

    pub fn changed(&self) -> bool {
        self.map.changed()
    }

    pub(crate) fn decode(r: &mut Reader) -> DecodeResult<Context> {
        Ok(Context { map: PatchMap::read(r, false, read_value)? })
    }

    pub(crate) fn write_patch(&self, w: &mut Writer) {
        self.map.write_patch(w, write_value)
    }
}
