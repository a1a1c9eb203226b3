//! `intersect`, `merge`, `subtract` (and the helpers built on them) against a
//! `BTreeSet` model, with sizes skewed enough to exercise the galloping paths.

use std::collections::BTreeSet;

use ember_index::{SeriesRef, intersect, intersects, merge, subtract, subtract_all};
use proptest::prelude::*;

/// A sorted, unique list: small dense ones and occasional large sparse ones.
fn list() -> impl Strategy<Value = Vec<SeriesRef>> {
    prop_oneof![
        3 => proptest::collection::btree_set(0u64..64, 0..20),
        1 => proptest::collection::btree_set(0u64..4096, 0..1500),
    ]
    .prop_map(|s| s.into_iter().collect())
}

fn set(l: &[SeriesRef]) -> BTreeSet<SeriesRef> {
    l.iter().copied().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn intersect_matches_set_model(lists in proptest::collection::vec(list(), 0..6)) {
        let refs: Vec<&[SeriesRef]> = lists.iter().map(|l| l.as_slice()).collect();
        let want: Vec<SeriesRef> = match lists.split_first() {
            None => Vec::new(),
            Some((first, rest)) => set(first).into_iter().filter(|x| rest.iter().all(|l| l.contains(x))).collect(),
        };
        prop_assert_eq!(intersect(&refs), want);
    }

    #[test]
    fn merge_matches_set_model(lists in proptest::collection::vec(list(), 0..12)) {
        let refs: Vec<&[SeriesRef]> = lists.iter().map(|l| l.as_slice()).collect();
        let want: BTreeSet<SeriesRef> = lists.iter().flatten().copied().collect();
        prop_assert_eq!(merge(&refs), want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn merge_of_sparse_lists_matches_set_model(lists in proptest::collection::vec(list(), 5..12), spread in 1u64..100_000) {
        // Stretching refs apart pushes many-list merges off the bitmap path.
        let lists: Vec<Vec<SeriesRef>> = lists.iter().map(|l| l.iter().map(|x| x * spread).collect()).collect();
        let refs: Vec<&[SeriesRef]> = lists.iter().map(|l| l.as_slice()).collect();
        let want: BTreeSet<SeriesRef> = lists.iter().flatten().copied().collect();
        prop_assert_eq!(merge(&refs), want.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn subtract_matches_set_model(a in list(), b in list()) {
        let want: Vec<SeriesRef> = set(&a).difference(&set(&b)).copied().collect();
        prop_assert_eq!(subtract(&a, &b), want);
    }

    #[test]
    fn subtract_all_matches_set_model(a in list(), bs in proptest::collection::vec(list(), 0..6)) {
        let refs: Vec<&[SeriesRef]> = bs.iter().map(|l| l.as_slice()).collect();
        let union: BTreeSet<SeriesRef> = bs.iter().flatten().copied().collect();
        let want: Vec<SeriesRef> = set(&a).difference(&union).copied().collect();
        prop_assert_eq!(subtract_all(&a, &refs), want);
    }

    #[test]
    fn intersects_matches_set_model(a in list(), b in list()) {
        prop_assert_eq!(intersects(&a, &b), !set(&a).is_disjoint(&set(&b)));
    }
}
