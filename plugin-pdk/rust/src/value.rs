//! `Value`: any MessagePack value (the ABI's `any`): context values, params,
//! the plugin's config, stream chunks, fields the typed structs do not model.

use crate::msgpack::{kind_name, DecodeResult, Reader, Writer};

/// Deepest nesting of maps and arrays decoded per value. The gateway sends
/// nothing deeper than `limits.max_json_depth` (default 64, at most 512 plus
/// the envelope's two levels); past this the call fails with a message naming
/// the bound instead of overflowing the stack.
pub const MAX_DEPTH: usize = 600;

/// A MessagePack value. Maps keep their keys in order (decode + encode gives
/// the same bytes) and have string keys, as every ABI map does.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    /// Any integer encoding; a uint64 above i64::MAX decodes as Float.
    Int(i64),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Default for Value {
    fn default() -> Self {
        Value::Nil
    }
}

impl Value {
    /// An empty map.
    pub fn map() -> Value {
        Value::Map(Vec::new())
    }

    /// Decodes one value that must fill `bytes` exactly.
    ///
    /// ```
    /// use sandgate_pdk::Value;
    /// let v = Value::decode(&[0x81, 0xa1, b'a', 0x01]).unwrap();
    /// assert_eq!(v.get("a").and_then(|x| x.as_int()), Some(1));
    /// ```
    pub fn decode(bytes: &[u8]) -> DecodeResult<Value> {
        let mut r = Reader::new(bytes);
        let v = read_value(&mut r)?;
        if r.remaining() > 0 {
            return r.fail(format!("one value ends here but {} more byte(s) follow", r.remaining()));
        }
        Ok(v)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        write_value(&mut w, self);
        w.into_bytes()
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An Int, or a Float with an integral value (the host writes big integers as float64).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            _ => None,
        }
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bin(&self) -> Option<&[u8]> {
        match self {
            Value::Bin(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Vec<(String, Value)>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// A map's entry (None for a missing key or a non-map).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self {
            Value::Map(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A map's string entry.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// Sets a map entry in place (keeps its position if the key exists). A non-map becomes a map.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        if !matches!(self, Value::Map(_)) {
            *self = Value::map();
        }
        if let Value::Map(m) = self {
            let value = value.into();
            match m.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => m.push((key.to_string(), value)),
            }
        }
    }

    /// Removes a map entry; returns it.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        match self {
            Value::Map(m) => {
                let i = m.iter().position(|(k, _)| k == key)?;
                Some(m.remove(i).1)
            }
            _ => None,
        }
    }

    /// Array item.
    pub fn at(&self, i: usize) -> Option<&Value> {
        self.as_array()?.get(i)
    }

    /// Same value, whatever the integer encoding: Int(5) equals Float(5.0).
    /// Maps compare by entries, whatever their order (as the host compares chunks, ABI.md §5.5).
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                match (self, other) {
                    (Value::Int(a), Value::Int(b)) => a == b,
                    _ => self.as_float() == other.as_float(),
                }
            }
            (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y)),
            (Value::Map(a), Value::Map(b)) => {
                let present = |m: &Vec<(String, Value)>| m.iter().filter(|(_, v)| !v.is_nil()).count();
                present(a) == present(b)
                    && a.iter().filter(|(_, v)| !v.is_nil()).all(|(k, v)| other.get(k).map_or(false, |w| v.same_as(w)))
            }
            _ => self == other,
        }
    }

    /// JSON text (bin as `{"$bin": "<hex>"}`, as conformance/vectors.json writes it), for logs and tests.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        json_into(&mut s, self);
        s
    }
}

fn json_into(out: &mut String, v: &Value) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) if f.is_finite() => out.push_str(&format!("{:?}", f)),
        Value::Float(_) => out.push_str("null"),
        Value::Str(s) => json_str(out, s),
        Value::Bin(b) => {
            out.push_str("{\"$bin\":\"");
            for byte in b {
                out.push_str(&format!("{:02x}", byte));
            }
            out.push_str("\"}");
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_into(out, x);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, k);
                out.push(':');
                json_into(out, x);
            }
            out.push('}');
        }
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

macro_rules! from_int {
    ($($t:ty),*) => { $(impl From<$t> for Value { fn from(v: $t) -> Value { Value::Int(v as i64) } })* };
}
from_int!(i8, i16, i32, i64, u8, u16, u32, usize);

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Str(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Str(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bin(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Nil, Into::into)
    }
}

/// Reads one value of any kind.
pub fn read_value(r: &mut Reader) -> DecodeResult<Value> {
    read_at_depth(r, 0)
}

fn read_at_depth(r: &mut Reader, depth: usize) -> DecodeResult<Value> {
    let b = r.peek()?;
    match b {
        0xc0 => {
            r.try_nil()?;
            Ok(Value::Nil)
        }
        0xc2 | 0xc3 => Ok(Value::Bool(r.read_bool()?)),
        0xa0..=0xbf | 0xd9..=0xdb => Ok(Value::Str(r.read_str()?)),
        0xc4..=0xc6 => Ok(Value::Bin(r.read_bin()?)),
        0x80..=0x8f | 0xde | 0xdf | 0x90..=0x9f | 0xdc | 0xdd => {
            if depth >= MAX_DEPTH {
                return r.fail(format!(
                    "a value nests deeper than {} levels of maps and arrays (MAX_DEPTH)",
                    MAX_DEPTH
                ));
            }
            if matches!(b, 0x90..=0x9f | 0xdc | 0xdd) {
                let n = r.read_array_len()?;
                let mut a = Vec::with_capacity(n.min(r.remaining()));
                for _ in 0..n {
                    a.push(read_at_depth(r, depth + 1)?);
                }
                Ok(Value::Array(a))
            } else {
                let n = r.read_map_len()?;
                let mut m = Vec::with_capacity(n.min(r.remaining()));
                for _ in 0..n {
                    let k = match r.peek()? {
                        0xa0..=0xbf | 0xd9..=0xdb => r.read_str()?,
                        other => return r.fail(format!("a map key must be a str, got {}", kind_name(other))),
                    };
                    m.push((k, read_at_depth(r, depth + 1)?));
                }
                Ok(Value::Map(m))
            }
        }
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 | 0xca | 0xcb => r.read_number_value(),
        _ => r.fail(format!("unsupported value: {}", kind_name(b))),
    }
}

/// Writes a value in the smallest encoding.
pub fn write_value(w: &mut Writer, v: &Value) {
    match v {
        Value::Nil => w.nil(),
        Value::Bool(b) => w.bool(*b),
        Value::Int(i) => w.int(*i),
        Value::Float(f) => w.float(*f),
        Value::Str(s) => w.str(s),
        Value::Bin(b) => w.bin(b),
        Value::Array(a) => {
            w.array_len(a.len());
            for x in a {
                write_value(w, x);
            }
        }
        Value::Map(m) => {
            w.map_len(m.len());
            for (k, x) in m {
                w.str(k);
                write_value(w, x);
            }
        }
    }
}
