//! Every regex fast path must agree with the regex engine on the anchored,
//! dot-matches-newline pattern Prometheus evaluates: `^(?s:PATTERN)$`.

use ember_index::{MatchType, Matcher};
use proptest::prelude::*;
use regex::Regex;

fn reference(pattern: &str) -> Regex {
    Regex::new(&format!("^(?s:{pattern})$")).unwrap()
}

/// Values over a tiny alphabet so that matches are frequent, including a
/// newline (for `.`) and a multi-byte character (for char-wise skipping).
fn value() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just('a'), Just('b'), Just('c'), Just('\n'), Just('é')],
        0..7,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn atom() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("a"),
        Just("b"),
        Just("ab"),
        Just("é"),
        Just("."),
        Just(".*"),
        Just(".+"),
        Just(".*?"),
        Just(".{2,}"),
        Just("(a|b)"),
        Just("(a|bc|)"),
        Just("[ab]"),
        Just("a?"),
        Just("(ab)?"),
        Just("a{1,2}"),
        Just("b+"),
        Just("[^a]"),
        Just("(?i)a"),
    ]
}

/// Top-level alternation of concatenations of atoms, optionally with the
/// redundant `^`/`$` users often write.
fn pattern() -> impl Strategy<Value = String> {
    let concat = proptest::collection::vec(atom(), 0..5).prop_map(|a| a.concat());
    (proptest::collection::vec(concat, 1..4), any::<bool>()).prop_map(|(alts, anchors)| {
        let p = alts.join("|");
        if anchors { format!("^({p})$") } else { p }
    })
}

/// Literals around `.*`/`.+` runs: the glob fast path's whole domain.
fn glob_pattern() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a"),
        Just("b"),
        Just("ab"),
        Just("ba"),
        Just("é"),
        Just(".*"),
        Just(".+"),
        Just(".{2,}"),
    ];
    proptest::collection::vec(piece, 1..6)
        .prop_map(|p| p.concat())
        .prop_filter("needs a wildcard", |p| p.contains('.'))
}

/// Finite languages: the set fast path's domain.
fn set_pattern() -> impl Strategy<Value = String> {
    let lit = prop_oneof![
        Just("a"),
        Just("b"),
        Just("ab"),
        Just("é"),
        Just(""),
        Just("a\\.b")
    ];
    let alt = proptest::collection::vec(lit, 1..4).prop_map(|l| format!("({})", l.join("|")));
    proptest::collection::vec(
        prop_oneof![alt, Just("[abc]".to_string()), Just("c?".to_string())],
        1..4,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_pattern_agrees_with_anchored_regex(p in pattern(), vs in proptest::collection::vec(value(), 1..8)) {
        let re = reference(&p);
        let m = Matcher::new(MatchType::Regex, "l", p.as_str()).unwrap();
        let nm = Matcher::new(MatchType::NotRegex, "l", p.as_str()).unwrap();
        for v in vs.iter().map(String::as_str).chain([""]) {
            prop_assert_eq!(m.matches(v), re.is_match(v), "{:?} on {:?}", p, v);
            prop_assert_eq!(nm.matches(v), !re.is_match(v), "!~{:?} on {:?}", p, v);
        }
        prop_assert_eq!(m.matches_empty(), re.is_match(""));
    }

    #[test]
    fn glob_fast_path_agrees_with_anchored_regex(p in glob_pattern(), vs in proptest::collection::vec(value(), 1..8)) {
        let re = reference(&p);
        let m = Matcher::new(MatchType::Regex, "l", p.as_str()).unwrap();
        prop_assert!(!m.uses_regex_engine(), "{:?} should take the glob path", p);
        for v in vs.iter().map(String::as_str).chain(["", "abé", "bab", "aab\nba"]) {
            prop_assert_eq!(m.matches(v), re.is_match(v), "{:?} on {:?}", p, v);
        }
    }

    #[test]
    fn set_fast_path_agrees_with_anchored_regex(p in set_pattern(), vs in proptest::collection::vec(value(), 1..8)) {
        let re = reference(&p);
        let m = Matcher::new(MatchType::Regex, "l", p.as_str()).unwrap();
        prop_assert!(m.set_matches().is_some(), "{:?} should take the set path", p);
        for s in m.set_matches().unwrap() {
            prop_assert!(re.is_match(s), "{:?} claims {:?}", p, s);
        }
        for v in vs.iter().map(String::as_str).chain(["", "a.b", "aab"]) {
            prop_assert_eq!(m.matches(v), re.is_match(v), "{:?} on {:?}", p, v);
        }
    }
}

#[test]
fn named_fast_paths_skip_the_engine_and_agree() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("foo", &["foo"], &["", "fo", "foox", "xfoo"]),
        ("a|b|c", &["a", "b", "c"], &["", "ab", "d"]),
        ("foo.*", &["foo", "foobar", "foo\n"], &["", "fo", "xfoo"]),
        (".*foo", &["foo", "xfoo", "\nfoo"], &["", "foox"]),
        (
            ".*foo.*",
            &["foo", "xfooy", "\nfoo\n"],
            &["", "fo", "f\noo"],
        ),
        (".*", &["", "x", "\n"], &[]),
        (".+", &["x", "\n"], &[""]),
    ];
    for (p, yes, no) in cases {
        let m = Matcher::new(MatchType::Regex, "l", *p).unwrap();
        assert!(!m.uses_regex_engine(), "{p}");
        let re = reference(p);
        for v in *yes {
            assert!(m.matches(v) && re.is_match(v), "{p} should match {v:?}");
        }
        for v in *no {
            assert!(
                !m.matches(v) && !re.is_match(v),
                "{p} should not match {v:?}"
            );
        }
    }
}
