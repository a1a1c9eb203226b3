//! `MemPostings` queries against a naive model that scans every series'
//! labels and evaluates every matcher on the value, with `""` for an absent
//! label: the meaning Prometheus' `PostingsForMatchers` implements.

use std::collections::{BTreeMap, BTreeSet};

use ember_index::{Labels, MatchType, Matcher, MemPostings, SeriesRef};
use proptest::prelude::*;

const NAMES: &[&str] = &["a", "b", "c", "__name__"];
/// Includes "" (label absent) and values that share prefixes.
const VALUES: &[&str] = &["", "", "1", "2", "x", "xy", "yx"];
/// Literal values and patterns; several match the empty string.
const PATTERNS: &[&str] = &[
    "",
    "1",
    "x",
    "x.*",
    ".*x",
    ".*x.*",
    ".*",
    ".+",
    "1|2",
    "|1",
    "x?y?",
    "[12]",
    "x|xy|zz",
    "(?:y|x)x?",
    "[0-9]+",
];

fn labels() -> impl Strategy<Value = Labels> {
    proptest::collection::vec(proptest::sample::select(VALUES), NAMES.len())
        .prop_map(|vs| Labels::from_pairs(NAMES.iter().zip(vs).map(|(n, v)| (*n, v))).unwrap())
}

fn matcher() -> impl Strategy<Value = Matcher> {
    // "z" is a name no series has.
    let name = proptest::sample::select(&["a", "b", "c", "__name__", "z"][..]);
    let kind = proptest::sample::select(
        &[
            MatchType::Equal,
            MatchType::NotEqual,
            MatchType::Regex,
            MatchType::NotRegex,
        ][..],
    );
    (kind, name, proptest::sample::select(PATTERNS))
        .prop_map(|(k, n, v)| Matcher::new(k, n, v).unwrap())
}

/// Series keyed by ref; refs are sparse and inserted in shuffled order.
fn series() -> impl Strategy<Value = BTreeMap<SeriesRef, Labels>> {
    proptest::collection::btree_map(0u64..500, labels(), 0..40)
}

fn build(series: &BTreeMap<SeriesRef, Labels>, order_seed: u64) -> MemPostings {
    let mut refs: Vec<_> = series.keys().copied().collect();
    // Deterministic shuffle: out-of-order inserts must still give sorted lists.
    refs.sort_by_key(|r| (r.wrapping_mul(order_seed | 1)) % 1009);
    let mut p = MemPostings::new();
    for r in refs {
        p.add(r, &series[&r]);
    }
    p
}

fn naive_select<'a>(
    series: &'a BTreeMap<SeriesRef, Labels>,
    ms: &[Matcher],
) -> Vec<(&'a SeriesRef, &'a Labels)> {
    series
        .iter()
        .filter(|(_, l)| ms.iter().all(|m| m.matches(l.get(m.name()).unwrap_or(""))))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn postings_for_matchers_matches_naive_scan(
        s in series(),
        ms in proptest::collection::vec(matcher(), 1..4),
        seed in any::<u64>(),
    ) {
        let p = build(&s, seed);
        let want: Vec<SeriesRef> = naive_select(&s, &ms).into_iter().map(|(r, _)| *r).collect();
        prop_assert_eq!(p.postings_for_matchers(&ms), want, "{:?}", ms);
    }

    #[test]
    fn postings_for_matchers_after_deletes_matches_naive_scan(
        mut s in series(),
        ms in proptest::collection::vec(matcher(), 1..4),
        del in proptest::collection::vec(0u64..500, 0..30),
        batch in any::<bool>(),
    ) {
        let mut p = build(&s, 7);
        let gone: Vec<(SeriesRef, Labels)> = del.iter().filter_map(|r| s.remove(r).map(|l| (*r, l))).collect();
        if batch {
            p.delete_many(gone.iter().map(|(r, l)| (*r, l)));
        } else {
            for (r, l) in &gone {
                p.delete(*r, l);
            }
        }
        let want: Vec<SeriesRef> = naive_select(&s, &ms).into_iter().map(|(r, _)| *r).collect();
        prop_assert_eq!(p.postings_for_matchers(&ms), want);
        // Deleted series leave no names or values behind.
        let names: BTreeSet<String> = s.values().flat_map(|l| l.iter().map(|l| l.name.clone())).collect();
        prop_assert_eq!(p.label_names(), names.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(p.all(), s.keys().copied().collect::<Vec<_>>());
    }

    #[test]
    fn label_values_for_matches_naive_scan(
        s in series(),
        name in proptest::sample::select(&["a", "b", "__name__", "z"][..]),
        ms in proptest::collection::vec(matcher(), 0..3),
    ) {
        let p = build(&s, 3);
        let want: BTreeSet<String> = naive_select(&s, &ms)
            .into_iter()
            .filter_map(|(_, l)| l.get(name).map(str::to_string))
            .collect();
        prop_assert_eq!(p.label_values_for(name, &ms), want.into_iter().collect::<Vec<_>>(), "{} {:?}", name, ms);
    }

    #[test]
    fn label_names_for_matches_naive_scan(s in series(), ms in proptest::collection::vec(matcher(), 0..3)) {
        let p = build(&s, 5);
        let want: BTreeSet<String> = naive_select(&s, &ms)
            .into_iter()
            .flat_map(|(_, l)| l.iter().map(|l| l.name.clone()))
            .collect();
        prop_assert_eq!(p.label_names_for(&ms), want.into_iter().collect::<Vec<_>>(), "{:?}", ms);
    }
}

fn fixture() -> MemPostings {
    let mut p = MemPostings::new();
    let series: &[&[(&str, &str)]] = &[
        &[("__name__", "up"), ("job", "node"), ("env", "prod")], // 1
        &[("__name__", "up"), ("job", "node")],                  // 2
        &[("__name__", "up"), ("job", "api"), ("env", "dev")],   // 3
        &[("__name__", "rate"), ("job", "node"), ("env", "")],   // 4 (env absent)
    ];
    for (i, l) in series.iter().enumerate() {
        p.add(
            i as SeriesRef + 1,
            &Labels::from_pairs(l.iter().copied()).unwrap(),
        );
    }
    p
}

fn sel(p: &MemPostings, ms: &[Matcher]) -> Vec<SeriesRef> {
    p.postings_for_matchers(ms)
}

fn re(n: &str, v: &str) -> Matcher {
    Matcher::regex(n, v).unwrap()
}

fn nre(n: &str, v: &str) -> Matcher {
    Matcher::not_regex(n, v).unwrap()
}

#[test]
fn equal_empty_selects_series_without_the_label() {
    let p = fixture();
    assert_eq!(sel(&p, &[Matcher::equal("env", "")]), [2, 4]);
    assert_eq!(
        sel(
            &p,
            &[Matcher::equal("__name__", "up"), Matcher::equal("env", "")]
        ),
        [2]
    );
}

#[test]
fn not_equal_includes_series_without_the_label() {
    let p = fixture();
    assert_eq!(sel(&p, &[Matcher::not_equal("env", "prod")]), [2, 3, 4]);
    assert_eq!(
        sel(
            &p,
            &[
                Matcher::equal("job", "node"),
                Matcher::not_equal("env", "prod")
            ]
        ),
        [2, 4]
    );
}

#[test]
fn not_equal_empty_requires_the_label() {
    let p = fixture();
    assert_eq!(sel(&p, &[Matcher::not_equal("env", "")]), [1, 3]);
}

#[test]
fn regex_match_all_includes_absent_and_match_non_empty_does_not() {
    let p = fixture();
    assert_eq!(sel(&p, &[re("env", ".*")]), [1, 2, 3, 4]);
    assert_eq!(sel(&p, &[re("env", ".+")]), [1, 3]);
    assert_eq!(sel(&p, &[nre("env", ".+")]), [2, 4]);
    assert_eq!(sel(&p, &[nre("env", ".*")]), Vec::<SeriesRef>::new());
    assert_eq!(sel(&p, &[re("nope", ".*")]), [1, 2, 3, 4]);
}

#[test]
fn regex_that_matches_empty_includes_absent() {
    let p = fixture();
    assert_eq!(sel(&p, &[re("env", "prod|")]), [1, 2, 4]);
    assert_eq!(sel(&p, &[nre("env", "prod")]), [2, 3, 4]);
}

#[test]
fn required_label_turns_empty_matching_regex_into_an_intersection() {
    // `env=~"prod|"` alone admits absent env, but `env!=""` requires it.
    let p = fixture();
    assert_eq!(
        sel(&p, &[re("env", "prod|"), Matcher::not_equal("env", "")]),
        [1]
    );
}

#[test]
fn regex_is_anchored_in_selection() {
    let p = fixture();
    assert_eq!(sel(&p, &[re("job", "nod")]), Vec::<SeriesRef>::new());
    assert_eq!(sel(&p, &[re("job", "no.*")]), [1, 2, 4]);
    assert_eq!(sel(&p, &[re("job", "node|api")]), [1, 2, 3, 4]);
}

#[test]
fn only_empty_matching_matchers_subtract_from_all_series() {
    let p = fixture();
    assert_eq!(
        sel(
            &p,
            &[
                Matcher::not_equal("job", "node"),
                Matcher::not_equal("__name__", "rate")
            ]
        ),
        [3]
    );
}

#[test]
fn empty_matcher_list_selects_nothing() {
    assert!(fixture().postings_for_matchers(&[]).is_empty());
}

#[test]
fn label_values_and_names_for_selection() {
    let p = fixture();
    assert_eq!(
        p.label_values_for("env", &[Matcher::equal("job", "node")]),
        ["prod"]
    );
    assert_eq!(p.label_values_for("job", &[re("job", "n.*")]), ["node"]);
    assert_eq!(p.label_values_for("job", &[]), ["api", "node"]);
    assert_eq!(
        p.label_names_for(&[Matcher::equal("__name__", "rate")]),
        ["__name__", "job"]
    );
    assert_eq!(p.label_names(), ["__name__", "env", "job"]);
    assert_eq!(p.label_values("__name__"), ["rate", "up"]);
}
