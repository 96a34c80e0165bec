//! `PatchMap`: a map received in full and sent back as a merge patch (ABI.md
//! §5: headers, query, context and LLM params are merged; nil removes a key).
//! Reads see the changes made so far; only the changes are written back.

use crate::msgpack::{DecodeResult, Reader, Writer};

/// A received map plus the changes a hook made to it.
#[derive(Debug, Clone, Default)]
pub struct PatchMap<V> {
    entries: Vec<(String, V)>,
    patch: Vec<(String, Option<V>)>,
    /// Header names: compared ASCII-case-insensitively and written lower-cased.
    fold_case: bool,
}

impl<V: Clone> PatchMap<V> {
    pub fn new(fold_case: bool) -> Self {
        PatchMap { entries: Vec::new(), patch: Vec::new(), fold_case }
    }

    pub fn from_entries(entries: Vec<(String, V)>, fold_case: bool) -> Self {
        PatchMap { entries, patch: Vec::new(), fold_case }
    }

    fn same(&self, a: &str, b: &str) -> bool {
        if self.fold_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }

    /// The current value of `key` (this call's changes included).
    pub fn get(&self, key: &str) -> Option<&V> {
        if let Some((_, v)) = self.patch.iter().find(|(k, _)| self.same(k, key)) {
            return v.as_ref();
        }
        self.entries.iter().find(|(k, _)| self.same(k, key)).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn set(&mut self, key: &str, value: V) {
        self.change(key, Some(value))
    }

    pub fn remove(&mut self, key: &str) {
        self.change(key, None)
    }

    fn change(&mut self, key: &str, value: Option<V>) {
        let key = if self.fold_case { key.to_ascii_lowercase() } else { key.to_string() };
        match self.patch.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.patch.push((key, value)),
        }
    }

    /// Every current entry, received ones first (in their order), then new keys.
    pub fn entries(&self) -> Vec<(&str, &V)> {
        let mut out: Vec<(&str, &V)> = Vec::new();
        for (k, v) in &self.entries {
            match self.patch.iter().find(|(p, _)| self.same(p, k)) {
                Some((_, Some(nv))) => out.push((k, nv)),
                Some((_, None)) => {}
                None => out.push((k, v)),
            }
        }
        for (k, v) in &self.patch {
            if let Some(v) = v {
                if !self.entries.iter().any(|(e, _)| self.same(e, k)) {
                    out.push((k, v));
                }
            }
        }
        out
    }

    pub fn keys(&self) -> Vec<&str> {
        self.entries().into_iter().map(|(k, _)| k).collect()
    }

    /// True if a hook set or removed anything.
    pub fn changed(&self) -> bool {
        !self.patch.is_empty()
    }

    /// Writes the changes as a merge patch (`nil` for removed keys).
    pub fn write_patch(&self, w: &mut Writer, write: impl Fn(&mut Writer, &V)) {
        w.map_len(self.patch.len());
        for (k, v) in &self.patch {
            w.str(k);
            match v {
                Some(v) => write(w, v),
                None => w.nil(),
            }
        }
    }

    /// Writes every current entry (a full map, e.g. a short-circuit response's headers).
    pub fn write_full(&self, w: &mut Writer, write: impl Fn(&mut Writer, &V)) {
        let all = self.entries();
        w.map_len(all.len());
        for (k, v) in all {
            w.str(k);
            write(w, v);
        }
    }

    pub(crate) fn read(r: &mut Reader, fold_case: bool, read: impl Fn(&mut Reader) -> DecodeResult<V>) -> DecodeResult<Self> {
        let n = r.read_map_len()?;
        let mut entries = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            let k = r.read_str()?;
            entries.push((k, read(r)?));
        }
        Ok(PatchMap::from_entries(entries, fold_case))
    }
}
