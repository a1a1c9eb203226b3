//! The head's in-memory inverted index: `(label name, label value)` →
//! sorted postings list of series refs, plus the list of all series.
//!
//! Owns membership (add/delete), label name/value enumeration and the
//! evaluation of matcher selectors against the index with Prometheus'
//! `PostingsForMatchers` semantics. It does not own series labels or samples
//! (the head does), and it is not synchronized: the head wraps it in a lock.
//!
//! Layout and memory: one `Box<str>` per distinct name and per distinct
//! (name, value), never per series; per series, one `u64` in each of its
//! label pairs' lists and in the all-series list. Lists grow by ~25 % instead
//! of doubling, which keeps average slack near 12 % while still amortising
//! appends.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use crate::postings::{intersect, intersects, merge, subtract_all};
use crate::{Labels, MatchType, Matcher, SeriesRef};

/// Values of one label name, sorted so that enumeration is ordered and a
/// literal regex prefix becomes a range scan.
type Values = BTreeMap<Box<str>, Vec<SeriesRef>>;

/// Sorted postings for every label pair of the head. See the module docs.
#[derive(Default, Debug)]
pub struct MemPostings {
    all: Vec<SeriesRef>,
    names: BTreeMap<Box<str>, Values>,
}

/// Makes room for one more ref, growing geometrically (so appends stay
/// amortised O(1)) but by ~25 % rather than `Vec`'s doubling: the index holds
/// ~11 entries per series, and doubling would leave about a quarter of them
/// as slack on average.
fn reserve_one(list: &mut Vec<SeriesRef>) {
    if list.len() == list.capacity() {
        let cap = list.capacity();
        let extra = if cap < 8 { cap.max(1) } else { cap / 4 };
        list.reserve_exact(extra);
    }
}

/// Inserts keeping the list sorted and duplicate-free. Refs normally arrive
/// in increasing order, which is a plain append.
fn insert_sorted(list: &mut Vec<SeriesRef>, r: SeriesRef) {
    match list.last() {
        Some(&last) if last >= r => {
            if let Err(i) = list.binary_search(&r) {
                reserve_one(list);
                list.insert(i, r);
            }
        }
        _ => {
            reserve_one(list);
            list.push(r);
        }
    }
}

/// Gives back capacity after deletions once slack exceeds half the list.
fn maybe_shrink(list: &mut Vec<SeriesRef>) {
    if list.capacity() > 8 && list.len() < list.capacity() / 2 {
        list.shrink_to(list.len() + list.len() / 8);
    }
}

/// Approximate bytes glibc's malloc takes for an `n`-byte request: an 8-byte
/// header, 16-byte granularity, 32-byte minimum chunk.
fn chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).max(32).next_multiple_of(16)
    }
}

/// Approximate bytes per B-tree entry for a map with the given key and value
/// sizes: std's nodes hold up to 11 entries and run about 60–70 % full
/// (appends in key order split nodes near the middle). Internal nodes add
/// roughly one child pointer per entry of a node's fan-out, a few percent.
const fn btree_entry<K, V>() -> usize {
    let leaf = 11 * (size_of::<K>() + size_of::<V>()) + 16;
    (leaf + 8 + 15) / 7
}

impl MemPostings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds series `r` to the list of every label pair it has and to the
    /// all-series list. Adding the same pair twice is a no-op.
    pub fn add(&mut self, r: SeriesRef, labels: &Labels) {
        insert_sorted(&mut self.all, r);
        for l in labels.iter() {
            let values = match self.names.get_mut(l.name.as_str()) {
                Some(v) => v,
                None => self.names.entry(l.name.as_str().into()).or_default(),
            };
            let list = match values.get_mut(l.value.as_str()) {
                Some(list) => list,
                None => values.entry(l.value.as_str().into()).or_default(),
            };
            insert_sorted(list, r);
        }
    }

    /// Removes series `r` (with the labels it was added with). Lists that
    /// become empty are dropped, so names and values disappear with their
    /// last series. For many series at once use [`MemPostings::delete_many`]:
    /// each single removal shifts the tails of long lists.
    pub fn delete(&mut self, r: SeriesRef, labels: &Labels) {
        if let Ok(i) = self.all.binary_search(&r) {
            self.all.remove(i);
            maybe_shrink(&mut self.all);
        }
        for l in labels.iter() {
            let Some(values) = self.names.get_mut(l.name.as_str()) else {
                continue;
            };
            let Some(list) = values.get_mut(l.value.as_str()) else {
                continue;
            };
            if let Ok(i) = list.binary_search(&r) {
                list.remove(i);
                maybe_shrink(list);
            }
            if list.is_empty() {
                values.remove(l.value.as_str());
                if values.is_empty() {
                    self.names.remove(l.name.as_str());
                }
            }
        }
    }

    /// Removes many series in one pass per affected list (head GC).
    pub fn delete_many<'a>(&mut self, series: impl IntoIterator<Item = (SeriesRef, &'a Labels)>) {
        let mut refs = Vec::new();
        let mut affected: HashMap<(&'a str, &'a str), Vec<SeriesRef>> = HashMap::new();
        for (r, labels) in series {
            refs.push(r);
            for l in labels.iter() {
                affected
                    .entry((l.name.as_str(), l.value.as_str()))
                    .or_default()
                    .push(r);
            }
        }
        fn remove_all(list: &mut Vec<SeriesRef>, mut dels: Vec<SeriesRef>) {
            dels.sort_unstable();
            dels.dedup();
            list.retain(|x| dels.binary_search(x).is_err());
            maybe_shrink(list);
        }
        remove_all(&mut self.all, refs);
        for ((name, value), dels) in affected {
            let Some(values) = self.names.get_mut(name) else {
                continue;
            };
            let Some(list) = values.get_mut(value) else {
                continue;
            };
            remove_all(list, dels);
            if list.is_empty() {
                values.remove(value);
                if values.is_empty() {
                    self.names.remove(name);
                }
            }
        }
    }

    /// Releases spare list capacity (e.g. after head compaction).
    pub fn shrink_to_fit(&mut self) {
        self.all.shrink_to_fit();
        for values in self.names.values_mut() {
            for list in values.values_mut() {
                list.shrink_to_fit();
            }
        }
    }

    /// Postings of `name="value"`; empty if none.
    pub fn get(&self, name: &str, value: &str) -> &[SeriesRef] {
        self.names
            .get(name)
            .and_then(|v| v.get(value))
            .map_or(&[], |l| l.as_slice())
    }

    /// Every series in the index, sorted.
    pub fn all(&self) -> &[SeriesRef] {
        &self.all
    }

    pub fn num_series(&self) -> usize {
        self.all.len()
    }

    /// All label names, sorted.
    pub fn label_names(&self) -> Vec<String> {
        self.names.keys().map(|k| k.to_string()).collect()
    }

    /// All values of `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        self.names
            .get(name)
            .map(|v| v.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default()
    }

    /// Number of distinct values of `name` (cardinality stats).
    pub fn label_value_count(&self, name: &str) -> usize {
        self.names.get(name).map_or(0, |v| v.len())
    }

    /// Appends to `out` the lists of the values `v` of `m.name()` present in
    /// the index for which `m.matches(v) == want`. Present values are never
    /// empty, so this never covers series that lack the label.
    fn collect_lists<'a>(&'a self, m: &Matcher, want: bool, out: &mut Vec<&'a [SeriesRef]>) {
        let Some(values) = self.names.get(m.name()) else {
            return;
        };
        let lookup = |v: &str, out: &mut Vec<&'a [SeriesRef]>| {
            if let Some(l) = values.get(v) {
                out.push(l.as_slice());
            }
        };
        let scan = |out: &mut Vec<&'a [SeriesRef]>| {
            out.extend(
                values
                    .iter()
                    .filter(|(v, _)| m.matches(v) == want)
                    .map(|(_, l)| l.as_slice()),
            );
        };
        // `positive`: we want the values the operator's positive form (`=`,
        // `=~`) accepts; otherwise the ones it rejects.
        let positive = matches!(m.kind(), MatchType::Equal | MatchType::Regex) == want;
        match m.kind() {
            MatchType::Equal | MatchType::NotEqual if positive => lookup(m.value(), out),
            MatchType::Equal | MatchType::NotEqual => out.extend(
                values
                    .iter()
                    .filter(|(v, _)| v.as_ref() != m.value())
                    .map(|(_, l)| l.as_slice()),
            ),
            MatchType::Regex | MatchType::NotRegex => {
                if let Some(set) = m.set_matches() {
                    if positive {
                        // `a|b|c`: look each alternative up instead of scanning.
                        set.iter().for_each(|v| lookup(v, out));
                    } else {
                        scan(out);
                    }
                } else if let Some(g) = m.glob() {
                    let all_present = g.is_match_all() || g.is_match_non_empty();
                    match (all_present, positive) {
                        // `.*`/`.+` accept every present (non-empty) value.
                        (true, true) => out.extend(values.values().map(|l| l.as_slice())),
                        (true, false) => {}
                        (false, true) if !g.head().is_empty() => {
                            let head = g.head();
                            out.extend(
                                values
                                    .range::<str, _>((Bound::Included(head), Bound::Unbounded))
                                    .take_while(|(v, _)| v.starts_with(head))
                                    .filter(|(v, _)| m.matches(v) == want)
                                    .map(|(_, l)| l.as_slice()),
                            );
                        }
                        _ => scan(out),
                    }
                } else {
                    scan(out);
                }
            }
        }
    }

    /// Series matching all `matchers`, with Prometheus' `PostingsForMatchers`
    /// semantics: a matcher on a label the series lacks is evaluated against
    /// `""`, so `l=""`, `l!="x"`, `l=~".*"`, `l!~".+"` accept series without
    /// `l`. Matchers whose label must be present intersect; the others are
    /// subtracted afterwards from that intersection, or from all series when
    /// no matcher intersects. An empty matcher list selects nothing.
    pub fn postings_for_matchers(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        if matchers.is_empty() {
            return Vec::new();
        }
        // A label "must be set" if some matcher on it rejects the empty value.
        let must_be_set = |name: &str| {
            matchers
                .iter()
                .any(|m| m.name() == name && !m.matches_empty())
        };

        let mut its: Vec<Cow<'_, [SeriesRef]>> = Vec::new();
        let mut subtract_lists: Vec<&[SeriesRef]> = Vec::new();
        for m in matchers {
            // `l!="x"` with `l` required elsewhere is still cheapest as a
            // subtraction of `l="x"`; `l=~"a|"` with `l` required intersects
            // with the present values it accepts.
            let subtracting =
                !must_be_set(m.name()) || (m.kind().is_negative() && m.matches_empty());
            if subtracting {
                // Accepts absent labels: remove the series whose present value
                // it rejects.
                self.collect_lists(m, false, &mut subtract_lists);
            } else {
                let mut lists = Vec::new();
                self.collect_lists(m, true, &mut lists);
                match lists.len() {
                    0 => return Vec::new(),
                    1 => its.push(Cow::Borrowed(lists[0])),
                    _ => its.push(Cow::Owned(merge(&lists))),
                }
            }
        }
        // Every list is a subset of `all`, so one as long as `all` *is* `all`
        // (say `job="node"` on a single-job head) and intersecting with it
        // changes nothing.
        let its: Vec<&[SeriesRef]> = its
            .iter()
            .map(|c| c.as_ref())
            .filter(|l| l.len() < self.all.len())
            .collect();
        if its.is_empty() {
            return subtract_all(&self.all, &subtract_lists);
        }
        let base = intersect(&its);
        subtract_all(&base, &subtract_lists)
    }

    /// Values of `name` carried by series matching all `matchers`, sorted.
    /// Matchers on `name` itself filter the values directly; if there are no
    /// matchers on other labels that is the answer (no postings work), as in
    /// Prometheus. No matchers at all means every value of `name`.
    pub fn label_values_for(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Some(values) = self.names.get(name) else {
            return Vec::new();
        };
        let candidates = values.iter().filter(|(v, _)| {
            matchers
                .iter()
                .filter(|m| m.name() == name)
                .all(|m| m.matches(v))
        });
        if matchers.iter().all(|m| m.name() == name) {
            return candidates.map(|(v, _)| v.to_string()).collect();
        }
        let p = self.postings_for_matchers(matchers);
        if p.is_empty() {
            return Vec::new();
        }
        candidates
            .filter(|(_, l)| intersects(&p, l))
            .map(|(v, _)| v.to_string())
            .collect()
    }

    /// Label names carried by at least one series matching all `matchers`,
    /// sorted. No matchers means every name.
    ///
    /// The index has no per-series labels, so this probes each value list of
    /// each name against the selected postings (stopping at the first hit per
    /// name). A caller holding series labels may prefer reading them when the
    /// selection is small.
    pub fn label_names_for(&self, matchers: &[Matcher]) -> Vec<String> {
        if matchers.is_empty() {
            return self.label_names();
        }
        let p = self.postings_for_matchers(matchers);
        if p.is_empty() {
            return Vec::new();
        }
        let everything = p.len() == self.all.len();
        self.names
            .iter()
            .filter(|(_, values)| everything || values.values().any(|l| intersects(&p, l)))
            .map(|(n, _)| n.to_string())
            .collect()
    }

    /// Approximate heap bytes held, including allocator rounding and B-tree
    /// node overhead (see `chunk` and `btree_entry`); for memory stats, not
    /// accounting.
    pub fn memory_bytes(&self) -> usize {
        let mut total = chunk(self.all.capacity() * size_of::<SeriesRef>());
        for (name, values) in &self.names {
            total += chunk(name.len()) + btree_entry::<Box<str>, Values>();
            for (value, list) in values {
                total += chunk(value.len())
                    + btree_entry::<Box<str>, Vec<SeriesRef>>()
                    + chunk(list.capacity() * size_of::<SeriesRef>());
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn out_of_order_adds_keep_lists_sorted_and_unique() {
        let mut p = MemPostings::new();
        let l = ls(&[("a", "1")]);
        for r in [5, 1, 9, 3, 5, 7, 1] {
            p.add(r, &l);
        }
        assert_eq!(p.get("a", "1"), &[1, 3, 5, 7, 9]);
        assert_eq!(p.all(), &[1, 3, 5, 7, 9]);
    }

    #[test]
    fn delete_drops_empty_values_and_names() {
        let mut p = MemPostings::new();
        let a = ls(&[("job", "x"), ("only", "a")]);
        let b = ls(&[("job", "x")]);
        p.add(1, &a);
        p.add(2, &b);
        p.delete(1, &a);
        assert_eq!(p.label_names(), ["job"]);
        assert_eq!(p.get("job", "x"), &[2]);
        assert_eq!(p.all(), &[2]);
        p.delete_many([(2, &b)]);
        assert!(p.label_names().is_empty());
        assert_eq!(p.num_series(), 0);
    }

    #[test]
    fn growth_policy_bounds_slack() {
        let mut v = Vec::new();
        for r in 0..100_000 {
            insert_sorted(&mut v, r);
            assert!(v.capacity() <= 8 || v.capacity() * 4 <= v.len() * 5 + 4);
        }
    }
}
