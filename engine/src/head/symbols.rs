//! Interned label strings of the head.
//!
//! Owns the mapping between label strings and the `u32` ids that [`super::series::SeriesCell`] stores, so every
//! distinct name or value lives once in memory no matter how many series carry it. It does not know which
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
    /// Interns every name and value of `labels`, returning `[name0, value0, name1, value1, …]`.
    pub(crate) fn intern_labels(&self, labels: &Labels) -> Box<[u32]> {
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
            return out.into_boxed_slice();
        }
        out.clear();
        let mut t = self.inner.write();
        for l in labels.iter() {
            for s in [l.name.as_str(), l.value.as_str()] {
                out.push(t.intern(s));
            }
        }
        out.into_boxed_slice()
    }

    /// Rebuilds the label set of interned ids.
    pub(crate) fn resolve(&self, ids: &[u32]) -> Labels {
        let t = self.inner.read();
        let labels = ids
            .chunks_exact(2)
            .map(|p| Label {
                name: t.strings[p[0] as usize].to_string(),
                value: t.strings[p[1] as usize].to_string(),
            })
            .collect();
        // The ids were interned from a validated, sorted label set, so nothing can fail here.
        Labels::new(labels).expect("interned labels were validated when the series was created")
    }

    /// Whether the interned ids spell exactly `labels`.
    pub(crate) fn equals(&self, ids: &[u32], labels: &Labels) -> bool {
        if ids.len() != labels.len() * 2 {
            return false;
        }
        let t = self.inner.read();
        ids.chunks_exact(2).zip(labels.iter()).all(|(p, l)| {
            *t.strings[p[0] as usize] == *l.name && *t.strings[p[1] as usize] == *l.value
        })
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
        // "__name__", "up", "job", "node", "api": shared strings are stored once.
        assert_eq!(syms.inner.read().strings.len(), 5);
    }
}
