//! The MessagePack subset the ABI uses (ABI.md §5): nil, bool, integers, floats,
//! str, bin, array, map. Ext types are refused. The writer always picks the
//! smallest encoding (beyond 32 bits: int64 `d3`; floats: float64 `cb`), so a
//! decode + encode reproduces the conformance vectors byte for byte (ABI.md §6).

use std::fmt;

/// Why bytes could not be read, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub message: String,
    pub offset: usize,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "msgpack: {} at byte {}", self.message, self.offset)
    }
}

pub type DecodeResult<T> = Result<T, DecodeError>;

/// Reads MessagePack from a byte slice, front to back.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    /// The bytes between `start` and the current position (the value just read).
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.data[start..self.pos]
    }

    pub(crate) fn fail<T>(&self, message: impl Into<String>) -> DecodeResult<T> {
        Err(DecodeError { message: message.into(), offset: self.pos })
    }

    pub fn peek(&self) -> DecodeResult<u8> {
        match self.data.get(self.pos) {
            Some(b) => Ok(*b),
            None => self.fail("the data ends where a value should start"),
        }
    }

    fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if self.remaining() < n {
            return self.fail(format!("the data ends inside a value ({} more byte(s) announced)", n));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> DecodeResult<u64> {
        let mut v = 0u64;
        for b in self.take(n)? {
            v = (v << 8) | *b as u64;
        }
        Ok(v)
    }

    /// True (and consumes it) if the next value is nil.
    pub fn try_nil(&mut self) -> DecodeResult<bool> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// A map header: the number of entries. nil reads as an empty map (`T?` in the ABI).
    pub fn read_map_len(&mut self) -> DecodeResult<usize> {
        let b = self.peek()?;
        let n = match b {
            0x80..=0x8f => {
                self.pos += 1;
                (b & 0x0f) as u64
            }
            0xde => {
                self.pos += 1;
                self.be(2)?
            }
            0xdf => {
                self.pos += 1;
                self.be(4)?
            }
            0xc0 => {
                self.pos += 1;
                0
            }
            _ => return self.fail(format!("expected a map, got {}", kind_name(b))),
        };
        Ok(n as usize)
    }

    /// An array header: the number of items. nil reads as an empty array.
    pub fn read_array_len(&mut self) -> DecodeResult<usize> {
        let b = self.peek()?;
        let n = match b {
            0x90..=0x9f => {
                self.pos += 1;
                (b & 0x0f) as u64
            }
            0xdc => {
                self.pos += 1;
                self.be(2)?
            }
            0xdd => {
                self.pos += 1;
                self.be(4)?
            }
            0xc0 => {
                self.pos += 1;
                0
            }
            _ => return self.fail(format!("expected an array, got {}", kind_name(b))),
        };
        Ok(n as usize)
    }

    /// The raw bytes of a str.
    pub fn read_str_bytes(&mut self) -> DecodeResult<&'a [u8]> {
        let b = self.peek()?;
        let n = match b {
            0xa0..=0xbf => {
                self.pos += 1;
                (b & 0x1f) as usize
            }
            0xd9 => {
                self.pos += 1;
                self.be(1)? as usize
            }
            0xda => {
                self.pos += 1;
                self.be(2)? as usize
            }
            0xdb => {
                self.pos += 1;
                self.be(4)? as usize
            }
            _ => return self.fail(format!("expected a str, got {}", kind_name(b))),
        };
        self.take(n)
    }

    /// A str (invalid UTF-8 becomes U+FFFD, as the host's log does).
    pub fn read_str(&mut self) -> DecodeResult<String> {
        Ok(String::from_utf8_lossy(self.read_str_bytes()?).into_owned())
    }

    /// A str or nil.
    pub fn read_opt_str(&mut self) -> DecodeResult<Option<String>> {
        if self.try_nil()? {
            return Ok(None);
        }
        self.read_str().map(Some)
    }

    pub fn read_bool(&mut self) -> DecodeResult<bool> {
        match self.peek()? {
            0xc2 => {
                self.pos += 1;
                Ok(false)
            }
            0xc3 => {
                self.pos += 1;
                Ok(true)
            }
            b => self.fail(format!("expected a bool, got {}", kind_name(b))),
        }
    }

    /// A bin (a str is accepted too: its UTF-8 bytes).
    pub fn read_bin(&mut self) -> DecodeResult<Vec<u8>> {
        let b = self.peek()?;
        let n = match b {
            0xc4 => {
                self.pos += 1;
                self.be(1)? as usize
            }
            0xc5 => {
                self.pos += 1;
                self.be(2)? as usize
            }
            0xc6 => {
                self.pos += 1;
                self.be(4)? as usize
            }
            0xa0..=0xbf | 0xd9..=0xdb => return Ok(self.read_str_bytes()?.to_vec()),
            _ => return self.fail(format!("expected bin, got {}", kind_name(b))),
        };
        Ok(self.take(n)?.to_vec())
    }

    /// An integer in any encoding the ABI allows (ABI.md §5): fixint, `cc`-`cf`,
    /// `d0`-`d3`, or a float with an integral value. A uint64 above i64::MAX saturates.
    pub fn read_int(&mut self) -> DecodeResult<i64> {
        let at = self.pos;
        match self.read_number()? {
            Number::Int(i) => Ok(i),
            Number::Float(f) if f.fract() == 0.0 && f.is_finite() => Ok(f as i64),
            Number::Float(f) => {
                self.pos = at;
                self.fail(format!("expected an integer, got the float {}", f))
            }
        }
    }

    fn read_number(&mut self) -> DecodeResult<Number> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(match b {
            0x00..=0x7f => Number::Int(b as i64),
            0xe0..=0xff => Number::Int(b as i8 as i64),
            0xcc => Number::Int(self.be(1)? as i64),
            0xcd => Number::Int(self.be(2)? as i64),
            0xce => Number::Int(self.be(4)? as i64),
            0xcf => {
                let v = self.be(8)?;
                if v > i64::MAX as u64 {
                    Number::Float(v as f64)
                } else {
                    Number::Int(v as i64)
                }
            }
            0xd0 => Number::Int(self.be(1)? as u8 as i8 as i64),
            0xd1 => Number::Int(self.be(2)? as u16 as i16 as i64),
            0xd2 => Number::Int(self.be(4)? as u32 as i32 as i64),
            0xd3 => Number::Int(self.be(8)? as i64),
            0xca => Number::Float(f32::from_bits(self.be(4)? as u32) as f64),
            0xcb => Number::Float(f64::from_bits(self.be(8)?)),
            _ => {
                self.pos -= 1;
                return self.fail(format!("expected a number, got {}", kind_name(b)));
            }
        })
    }

    /// Reads a number as a Value (Int, or Float for float encodings and huge uint64).
    pub(crate) fn read_number_value(&mut self) -> DecodeResult<crate::Value> {
        Ok(match self.read_number()? {
            Number::Int(i) => crate::Value::Int(i),
            Number::Float(f) => crate::Value::Float(f),
        })
    }

    /// Skips one value of any kind.
    pub fn skip(&mut self) -> DecodeResult<()> {
        crate::value::read_value(self).map(|_| ())
    }
}

enum Number {
    Int(i64),
    Float(f64),
}

/// What a leading byte announces, for error messages.
pub(crate) fn kind_name(b: u8) -> &'static str {
    match b {
        0x00..=0x7f | 0xe0..=0xff | 0xcc..=0xd3 => "an integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "an array",
        0xa0..=0xbf | 0xd9..=0xdb => "a str",
        0xc0 => "nil",
        0xc2 | 0xc3 => "a bool",
        0xc4..=0xc6 => "bin",
        0xca | 0xcb => "a float",
        0xc7..=0xc9 | 0xd4..=0xd8 => "an ext type (the ABI uses none)",
        _ => "the never-used byte 0xc1",
    }
}

/// Writes MessagePack into a growing buffer, always in the smallest encoding.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, tag: u8, n: u64, bytes: usize) {
        self.buf.push(tag);
        for i in (0..bytes).rev() {
            self.buf.push((n >> (8 * i)) as u8);
        }
    }

    pub fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    pub fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xc3 } else { 0xc2 });
    }

    /// Smallest encoding: fixint, `cc`-`ce` / `d0`-`d2`, beyond 32 bits int64 `d3`.
    pub fn int(&mut self, v: i64) {
        if v >= 0 {
            if v < 0x80 {
                self.buf.push(v as u8);
            } else if v <= 0xff {
                self.head(0xcc, v as u64, 1);
            } else if v <= 0xffff {
                self.head(0xcd, v as u64, 2);
            } else if v <= 0xffff_ffff {
                self.head(0xce, v as u64, 4);
            } else {
                self.head(0xd3, v as u64, 8);
            }
        } else if v >= -32 {
            self.buf.push(v as i8 as u8);
        } else if v >= -128 {
            self.head(0xd0, v as u8 as u64, 1);
        } else if v >= -32768 {
            self.head(0xd1, v as u16 as u64, 2);
        } else if v >= -(1 << 31) {
            self.head(0xd2, v as u32 as u64, 4);
        } else {
            self.head(0xd3, v as u64, 8);
        }
    }

    /// Always float64 `cb`.
    pub fn float(&mut self, f: f64) {
        self.head(0xcb, f.to_bits(), 8);
    }

    pub fn str(&mut self, s: &str) {
        let n = s.len() as u64;
        if n < 32 {
            self.buf.push(0xa0 | n as u8);
        } else if n <= 0xff {
            self.head(0xd9, n, 1);
        } else if n <= 0xffff {
            self.head(0xda, n, 2);
        } else {
            self.head(0xdb, n, 4);
        }
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn opt_str(&mut self, s: &Option<String>) {
        match s {
            Some(s) => self.str(s),
            None => self.nil(),
        }
    }

    pub fn bin(&mut self, b: &[u8]) {
        let n = b.len() as u64;
        if n <= 0xff {
            self.head(0xc4, n, 1);
        } else if n <= 0xffff {
            self.head(0xc5, n, 2);
        } else {
            self.head(0xc6, n, 4);
        }
        self.buf.extend_from_slice(b);
    }

    pub fn array_len(&mut self, n: usize) {
        if n < 16 {
            self.buf.push(0x90 | n as u8);
        } else if n <= 0xffff {
            self.head(0xdc, n as u64, 2);
        } else {
            self.head(0xdd, n as u64, 4);
        }
    }

    pub fn map_len(&mut self, n: usize) {
        if n < 16 {
            self.buf.push(0x80 | n as u8);
        } else if n <= 0xffff {
            self.head(0xde, n as u64, 2);
        } else {
            self.head(0xdf, n as u64, 4);
        }
    }

    /// Appends bytes that already are one encoded value.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// A map whose entries are counted as they are written (a map header needs
/// the count first): collect `key -> encoded value`, then `finish`.
#[derive(Default)]
pub struct MapBuilder {
    entries: Vec<(String, Vec<u8>)>,
}

impl MapBuilder {
    pub fn new() -> Self {
        MapBuilder { entries: Vec::new() }
    }

    /// Adds `key` with the value `write` encodes.
    pub fn field(&mut self, key: impl Into<String>, write: impl FnOnce(&mut Writer)) {
        let mut w = Writer::new();
        write(&mut w);
        self.entries.push((key.into(), w.buf));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn write(self, w: &mut Writer) {
        w.map_len(self.entries.len());
        for (k, v) in self.entries {
            w.str(&k);
            w.raw(&v);
        }
    }
}
