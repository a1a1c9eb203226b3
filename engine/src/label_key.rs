//! A label set spelled as one byte string, `name 0 value 0 name 0 value 0 …`, that orders as the
//! set does (Prometheus' `labels.Compare`: pair by pair, a set that is a prefix of another first) as
//! long as no name or value holds a 0 byte. Comparing two sets is then one `memcmp` instead of a
//! walk over string pairs, which was most of the cost of sorting a selection and of matching block
//! series against the head's.
//!
//! Owns the spelling, [`Keys`] (the spelled sets of one label-sorted selection) and [`EntryKey`]
//! (a block entry's, spelled incrementally), and sorting by keys. It does not own
//! label sets, nor decide what to do with a set that cannot be spelled (callers compare those the
//! ordinary way).

use ember_index::Labels;

/// Appends one label to a key; false, with nothing appended, when the name or value holds a 0 byte
/// (the spelling would then not order as the set does).
pub(crate) fn push_label(key: &mut Vec<u8>, name: &str, value: &str) -> bool {
    if name.as_bytes().contains(&0) || value.as_bytes().contains(&0) {
        return false;
    }
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    true
}

/// The keys of a list of label sets, by position in the list.
#[derive(Default)]
pub(crate) struct Keys {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl Keys {
    /// Spells `labels` after the sets already held; false, with nothing added, when it cannot be
    /// spelled.
    pub(crate) fn push(&mut self, labels: &Labels) -> bool {
        let start = self.bytes.len();
        for l in labels.iter() {
            if !push_label(&mut self.bytes, &l.name, &l.value) {
                self.bytes.truncate(start);
                return false;
            }
        }
        self.spans.push((start, self.bytes.len()));
        true
    }

    /// The key of set `i`.
    pub(crate) fn get(&self, i: usize) -> &[u8] {
        let (a, b) = self.spans[i];
        &self.bytes[a..b]
    }

    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Puts the keys in the order `order` gives (positions of the current keys), without moving
    /// their bytes.
    pub(crate) fn reorder(&mut self, order: &[usize]) {
        self.spans = order.iter().map(|&i| self.spans[i]).collect();
    }

    /// Appends `other`'s keys after these.
    pub(crate) fn append(&mut self, other: Keys) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.spans
            .extend(other.spans.into_iter().map(|(a, b)| (a + base, b + base)));
    }
}

/// The key of one stored entry after another (a block's series in index order), kept from entry
/// to entry: the labels an entry shares with the one before are not spelled again.
#[derive(Default)]
pub(crate) struct EntryKey {
    key: Vec<u8>,
    /// Where label `i`'s spelling ends; stops short at a label that cannot be spelled.
    ends: Vec<usize>,
}

impl EntryKey {
    /// Spells `pairs`, whose first `unchanged` pairs are the previous entry's; false when they
    /// cannot all be spelled (then [`EntryKey::get`] is not their key).
    pub(crate) fn spell(&mut self, pairs: &[(&str, &str)], unchanged: usize) -> bool {
        let keep = unchanged.min(self.ends.len());
        self.ends.truncate(keep);
        self.key
            .truncate(keep.checked_sub(1).map_or(0, |i| self.ends[i]));
        for &(name, value) in &pairs[keep..] {
            if !push_label(&mut self.key, name, value) {
                break;
            }
            self.ends.push(self.key.len());
        }
        self.ends.len() == pairs.len()
    }

    pub(crate) fn get(&self) -> &[u8] {
        &self.key
    }
}

/// Sorts `v` by the label sets `labels` gives, through their keys when every set can be spelled
/// (then also returned, in the sorted order).
pub(crate) fn sort_by_labels<T>(
    mut v: Vec<T>,
    labels: impl Fn(&T) -> &Labels,
) -> (Vec<T>, Option<Keys>) {
    let mut keys = Keys::default();
    if !v.iter().all(|x| keys.push(labels(x))) {
        v.sort_unstable_by(|a, b| labels(a).cmp(labels(b)));
        return (v, None);
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_unstable_by(|&a, &b| keys.get(a).cmp(keys.get(b)));
    keys.reorder(&order);
    (pick(v, &order), Some(keys))
}

/// The elements of `v` at the positions `order` names, in that order.
pub(crate) fn pick<T>(v: Vec<T>, order: &[usize]) -> Vec<T> {
    let mut taken: Vec<Option<T>> = v.into_iter().map(Some).collect();
    order.iter().filter_map(|&i| taken[i].take()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Option<Vec<u8>> {
        let mut k = Keys::default();
        k.push(&Labels::from_pairs(pairs.iter().copied()).unwrap())
            .then(|| k.get(0).to_vec())
    }

    #[test]
    fn keys_order_as_the_label_sets_do() {
        let sets: &[&[(&str, &str)]] = &[
            &[("a", "x")],
            &[("a", "x"), ("b", "1")],
            &[("a", "x"), ("bb", "1")],
            &[("a", "xy")],
            &[("a", "xy"), ("b", "")],
            &[("aa", "")],
            &[("aa", "x")],
            &[("a", "é")],
            &[("b", "x")],
            &[],
        ];
        for a in sets {
            for b in sets {
                let (la, lb) = (
                    Labels::from_pairs(a.iter().copied()).unwrap(),
                    Labels::from_pairs(b.iter().copied()).unwrap(),
                );
                assert_eq!(key(a).cmp(&key(b)), la.cmp(&lb), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn an_entry_key_respells_only_what_changed_and_recovers_after_a_zero_byte() {
        let mut e = EntryKey::default();
        let whole = |pairs: &[(&str, &str)]| {
            let mut k = Vec::new();
            pairs
                .iter()
                .all(|&(n, v)| push_label(&mut k, n, v))
                .then_some(k)
        };
        let entries: &[(&[(&str, &str)], usize)] = &[
            (&[("a", "1"), ("b", "2")], 0),
            (&[("a", "1"), ("b", "3")], 1),
            (&[("a", "1"), ("b", "\0")], 1),
            (&[("a", "1"), ("b", "\0"), ("c", "4")], 2),
            (&[("a", "1"), ("b", "\0"), ("c", "5")], 2),
            (&[("a", "1"), ("b", "6")], 1),
            (&[("a", "1")], 1),
            (&[("z", "1")], 0),
        ];
        for &(pairs, unchanged) in entries {
            let want = whole(pairs);
            assert_eq!(e.spell(pairs, unchanged), want.is_some(), "{pairs:?}");
            if let Some(k) = want {
                assert_eq!(e.get(), &k[..], "{pairs:?}");
            }
        }
    }

    #[test]
    fn sorting_by_keys_agrees_with_sorting_label_sets() {
        for extra in ["x", "x\0"] {
            let sets: Vec<Labels> = ["b", "a", "ab", "a", "", "aa"]
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let last = if i == 4 { extra } else { "y" };
                    Labels::from_pairs([("n", *v), ("o", last)]).unwrap()
                })
                .collect();
            let mut want = sets.clone();
            want.sort();
            let (got, keys) = sort_by_labels(sets, |l| l);
            assert_eq!(got, want);
            assert_eq!(keys.is_some(), extra == "x");
            if let Some(k) = keys {
                assert!((1..k.len()).all(|i| k.get(i - 1) <= k.get(i)));
            }
        }
    }

    #[test]
    fn a_zero_byte_cannot_be_spelled_and_leaves_the_keys_as_they_were() {
        let mut k = Keys::default();
        assert!(k.push(&Labels::from_pairs([("a", "x")]).unwrap()));
        assert!(!k.push(&Labels::from_pairs([("a", "x"), ("b", "y\0")]).unwrap()));
        assert_eq!(k.len(), 1);
        assert_eq!(k.get(0), b"a\0x\0");
        let mut other = Keys::default();
        assert!(other.push(&Labels::from_pairs([("b", "z")]).unwrap()));
        k.append(other);
        k.reorder(&[1, 0]);
        assert_eq!((k.get(0), k.get(1)), (&b"b\0z\0"[..], &b"a\0x\0"[..]));
    }
}
