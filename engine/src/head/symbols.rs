//! Interned label strings of the head.
//!
//! Owns the mapping between label strings and the ids that [`super::series::SeriesCell`] stores (as a
//! varint-encoded id list, ~3.5 bytes per label instead of 8 for two `u32`s: label names get the small ids,
//! and the list is a large share of a series' memory), so every distinct name or value lives once in memory
//! no matter how many series carry it. It does not know which
//! series use a symbol; strings are never removed while the head lives (churned values stay until restart,
//! as in Prometheus' head symbol table before compaction).

use std::collections::HashMap;
use std::sync::Arc;

use ember_index::{Label, Labels};
use parking_lot::RwLock;

/// The head's string interner. Reads (resolving ids to strings, looking strings up) take a shared lock; only
/// a string never seen before takes the exclusive lock.
#[derive(Default)]
pub(crate) struct Symbols {
    inner: RwLock<Table>,
}

#[derive(Default)]
struct Table {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Symbols {
    /// Interns every name and value of `labels`, returning `[name0, value0, name1, value1, …]` as varints.
    pub(crate) fn intern_labels(&self, labels: &Labels) -> Box<[u8]> {
        encode_ids(&self.intern_ids(labels))
    }

    fn intern_ids(&self, labels: &Labels) -> Vec<u32> {
        let mut out = Vec::with_capacity(labels.len() * 2);
        let mut missing = false;
        {
            let t = self.inner.read();
            for l in labels.iter() {
                for s in [l.name.as_str(), l.value.as_str()] {
                    match t.ids.get(s) {
                        Some(&id) => out.push(id),
                        None => {
                            missing = true;
                            break;
                        }
                    }
                }
                if missing {
                    break;
                }
            }
        }
        if !missing {
            return out;
        }
        out.clear();
        let mut t = self.inner.write();
        for l in labels.iter() {
            for s in [l.name.as_str(), l.value.as_str()] {
                out.push(t.intern(s));
            }
        }
        out
    }

    /// Rebuilds the label set of interned ids.
    pub(crate) fn resolve(&self, ids: &[u8]) -> Labels {
        let t = self.inner.read();
        let mut it = Ids(ids);
        let mut labels = Vec::with_capacity(ids.len() / 3);
        while let (Some(n), Some(v)) = (it.next(), it.next()) {
            labels.push(Label {
                // `String::from(&str)`, not `to_string()`: on an `Arc<str>` that goes through the
                // formatting machinery, which was a tenth of a small query's time.
                name: String::from(&*t.strings[n as usize]),
                value: String::from(&*t.strings[v as usize]),
            });
        }
        // The ids were interned from a validated, sorted label set, so nothing can fail here.
        Labels::new(labels).expect("interned labels were validated when the series was created")
    }

    /// Whether the interned ids spell exactly `labels`.
    pub(crate) fn equals(&self, ids: &[u8], labels: &Labels) -> bool {
        let t = self.inner.read();
        let mut it = Ids(ids);
        for l in labels.iter() {
            match (it.next(), it.next()) {
                (Some(n), Some(v))
                    if *t.strings[n as usize] == *l.name && *t.strings[v as usize] == *l.value => {}
                _ => return false,
            }
        }
        it.next().is_none()
    }

    /// Whether the interned ids spell exactly the set of these raw pairs, which must be in name order;
    /// pairs with an empty value are skipped, as [`Labels::new`] drops them. Equal bytes are the stored
    /// strings, so a match needs no UTF-8 check.
    pub(crate) fn equals_bytes(&self, ids: &[u8], pairs: &[(&[u8], &[u8])]) -> bool {
        let t = self.inner.read();
        let mut it = Ids(ids);
        for &(name, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            match (it.next(), it.next()) {
                (Some(n), Some(v))
                    if t.strings[n as usize].as_bytes() == name
                        && t.strings[v as usize].as_bytes() == value => {}
                _ => return false,
            }
        }
        it.next().is_none()
    }

    /// Approximate heap bytes held by the table.
    pub(crate) fn memory_bytes(&self) -> usize {
        let t = self.inner.read();
        let strings: usize = t.strings.iter().map(|s| s.len() + 16).sum();
        // hashbrown: one control byte plus the entry per bucket, at most 7/8 full.
        let map = t.ids.capacity() * (std::mem::size_of::<(Arc<str>, u32)>() + 1);
        strings + map + t.strings.capacity() * std::mem::size_of::<Arc<str>>()
    }
}

/// LEB128 varints, as the WAL and index formats use.
fn encode_ids(ids: &[u32]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(ids.len() * 3);
    for &id in ids {
        let mut x = id;
        while x >= 0x80 {
            out.push((x as u8) | 0x80);
            x >>= 7;
        }
        out.push(x as u8);
    }
    out.into_boxed_slice()
}

/// Decodes the ids written by [`encode_ids`] (always well-formed: the head wrote them).
struct Ids<'a>(&'a [u8]);

impl Iterator for Ids<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        let mut x = 0u32;
        let mut shift = 0;
        loop {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            x |= u32::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(x);
            }
            shift += 7;
        }
    }
}

impl Table {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id =
            u32::try_from(self.strings.len()).expect("more than 4 billion distinct label strings");
        let s: Arc<str> = Arc::from(s);
        self.strings.push(s.clone());
        self.ids.insert(s, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_labels_resolve_to_the_same_set() {
        let syms = Symbols::default();
        let a = Labels::from_pairs([("__name__", "up"), ("job", "node")]).unwrap();
        let b = Labels::from_pairs([("__name__", "up"), ("job", "api")]).unwrap();
        let ia = syms.intern_labels(&a);
        let ib = syms.intern_labels(&b);
        assert_eq!(syms.resolve(&ia), a);
        assert_eq!(syms.resolve(&ib), b);
        assert!(syms.equals(&ia, &a));
        assert!(!syms.equals(&ia, &b));
        let raw: [(&[u8], &[u8]); 3] =
            [(b"__name__", b"up"), (b"instance", b""), (b"job", b"node")];
        assert!(syms.equals_bytes(&ia, &raw));
        assert!(!syms.equals_bytes(&ia, &raw[..2]));
        assert!(!syms.equals_bytes(&ib, &raw));
        // "__name__", "up", "job", "node", "api": shared strings are stored once.
        assert_eq!(syms.inner.read().strings.len(), 5);
    }
}
