//! Test support: reads plugin-pdk/conformance/vectors.json (a small JSON
//! reader: the kit has no dependencies, its tests neither).

#![allow(dead_code)]

use sandgate_pdk::Value;

pub struct Vector {
    pub name: String,
    pub bytes: Vec<u8>,
    /// The decoded value as JSON, bin as {"$bin": "<hex>"}.
    pub value: Value,
    pub canonical: Option<String>,
}

pub fn vectors() -> Vec<Vector> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/vectors.json");
    let text = std::fs::read_to_string(path).expect("read conformance/vectors.json");
    let json = Json { s: text.as_bytes(), pos: 0 }.parse();
    json.as_array()
        .expect("vectors.json is an array")
        .iter()
        .map(|v| Vector {
            name: v.get_str("name").unwrap().to_string(),
            bytes: unhex(v.get_str("hex").unwrap()),
            value: v.get("value").unwrap().clone(),
            canonical: v.get_str("canonical").map(|s| s.to_string()),
        })
        .collect()
}

pub fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no vector {}", name))
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

/// True if the decoded `v` is the JSON `j` of a vector: same keys in the same
/// order, numbers by value, bin as {"$bin": hex}. Otherwise the path where they differ.
pub fn matches_json(v: &Value, j: &Value, path: &str) -> Result<(), String> {
    if let Value::Map(m) = j {
        if m.len() == 1 && m[0].0 == "$bin" {
            let want = unhex(m[0].1.as_str().unwrap());
            return match v {
                Value::Bin(b) if *b == want => Ok(()),
                _ => Err(format!("{}: expected bin {}, got {:?}", path, hex(&want), v)),
            };
        }
    }
    match (v, j) {
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            if v.same_as(j) {
                Ok(())
            } else {
                Err(format!("{}: expected {:?}, got {:?}", path, j, v))
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                matches_json(x, y, &format!("{}[{}]", path, i))?;
            }
            Ok(())
        }
        (Value::Map(a), Value::Map(b)) if a.len() == b.len() => {
            for ((ka, x), (kb, y)) in a.iter().zip(b) {
                if ka != kb {
                    return Err(format!("{}: key {:?} where {:?} was expected", path, ka, kb));
                }
                matches_json(x, y, &format!("{}.{}", path, ka))?;
            }
            Ok(())
        }
        _ if v == j => Ok(()),
        _ => Err(format!("{}: expected {:?}, got {:?}", path, j, v)),
    }
}

struct Json<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Json<'a> {
    fn ws(&mut self) {
        while self.pos < self.s.len() && (self.s[self.pos] as char).is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.pos..].starts_with(lit.as_bytes()) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn parse(&mut self) -> Value {
        self.ws();
        let c = self.s[self.pos];
        let v = match c {
            b'n' if self.eat("null") => Value::Nil,
            b't' if self.eat("true") => Value::Bool(true),
            b'f' if self.eat("false") => Value::Bool(false),
            b'"' => Value::Str(self.string()),
            b'[' => {
                self.pos += 1;
                let mut a = Vec::new();
                self.ws();
                if !self.eat("]") {
                    loop {
                        a.push(self.parse());
                        self.ws();
                        if self.eat("]") {
                            break;
                        }
                        assert!(self.eat(","), "JSON: expected , at {}", self.pos);
                    }
                }
                Value::Array(a)
            }
            b'{' => {
                self.pos += 1;
                let mut m = Vec::new();
                self.ws();
                if !self.eat("}") {
                    loop {
                        self.ws();
                        let k = self.string();
                        self.ws();
                        assert!(self.eat(":"), "JSON: expected : at {}", self.pos);
                        m.push((k, self.parse()));
                        self.ws();
                        if self.eat("}") {
                            break;
                        }
                        assert!(self.eat(","), "JSON: expected , at {}", self.pos);
                    }
                }
                Value::Map(m)
            }
            _ => {
                let start = self.pos;
                while self.pos < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.pos]) {
                    self.pos += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.pos]).unwrap();
                match t.parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(t.parse::<f64>().unwrap_or_else(|_| panic!("JSON: bad number {:?}", t))),
                }
            }
        };
        v
    }

    fn hex4(&mut self) -> u32 {
        let t = std::str::from_utf8(&self.s[self.pos..self.pos + 4]).unwrap();
        self.pos += 4;
        u32::from_str_radix(t, 16).unwrap()
    }

    fn string(&mut self) -> String {
        assert!(self.eat("\""), "JSON: expected a string at {}", self.pos);
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.s[self.pos];
            self.pos += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.s[self.pos];
                    self.pos += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let mut cp = self.hex4();
                            if (0xd800..0xdc00).contains(&cp) && self.eat("\\u") {
                                let lo = self.hex4();
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                            }
                            char::from_u32(cp).unwrap()
                        }
                        other => other as char,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).unwrap()
    }
}
