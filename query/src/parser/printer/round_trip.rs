//! Parser and printer together: real queries print in Prometheus' canonical form, and the printed
//! text parses back to the same tree.
//!
//! Each table row is `(query, canonical)`; an empty canonical means the query is already canonical.

use crate::ast::Expr;
use crate::parser::parse;

const LITERALS: &[(&str, &str)] = &[
    ("1", ""),
    ("1.5e3", "1500"),
    ("0x1f", "31"),
    ("1e6", "1000000"),
    (".5", "0.5"),
    ("1_000", "1000"),
    ("-1", ""),
    ("+5", "5"),
    ("- -2", "2"),
    ("Inf", "+Inf"),
    ("-inf", "-Inf"),
    ("NaN", ""),
    ("nan", "NaN"),
    ("5m", ""),
    ("-90s", "-1m30s"),
    ("1h30m + 1", ""),
    (r#""a""#, ""),
    (r"'it\'s'", r#""it's""#),
    (r"`raw\n`", r#""raw\\n""#),
    (r#""tab\there""#, ""),
    (r#""é☺""#, ""),
    (r#""\u00e9\x41""#, r#""éA""#),
    ("0.1 + 0.2", ""),
    ("1e-7", "0.0000001"),
    ("3.14159265358979", ""),
    ("1 - -1", ""),
    ("-1 ^ 2", ""),
    ("-0", ""),
    (
        "123456789012345678901234567890",
        "123456789012345680000000000000",
    ),
];

const SELECTORS: &[(&str, &str)] = &[
    ("up", ""),
    ("up # a comment", "up"),
    (r#"up{job="a"}"#, ""),
    (r#"up{job='a'}"#, r#"up{job="a"}"#),
    (r#"up{job="a",instance="b"}"#, r#"up{instance="b",job="a"}"#),
    (r#"up{ job = "a" , }"#, r#"up{job="a"}"#),
    (r#"up{a=~"x.*",b!~"y",c!="z"}"#, ""),
    (r#"{a=~"\\d+"}"#, ""),
    (r#"{__name__="up"}"#, ""),
    (r#"{__name__="up", job="a"}"#, r#"{__name__="up",job="a"}"#),
    (r#"{__name__=~"up|down"}"#, ""),
    (r#"{"my.metric"}"#, r#"{__name__="my.metric"}"#),
    (
        r#"{"my.metric", "a.b"="c"}"#,
        r#"{"a.b"="c",__name__="my.metric"}"#,
    ),
    (r#"up{"job"="a"}"#, r#"up{job="a"}"#),
    (r#"up{"0"="1"}"#, ""),
    (r#"up{"_0"="1"}"#, r#"up{_0="1"}"#),
    ("task:errors:rate10s", ""),
    ("up offset 5m", ""),
    ("up offset -5m", ""),
    ("up offset 90m", "up offset 1h30m"),
    ("up offset 0s", "up"),
    ("up @ 1609746000", "up @ 1609746000.000"),
    ("up @ 1.5", "up @ 1.500"),
    ("up @ start()", ""),
    ("up @ end()", ""),
    ("up offset 5m @ 10", "up @ 10.000 offset 5m"),
    ("up anchored", ""),
    ("up smoothed", ""),
    ("up offset 1m anchored", "up anchored offset 1m"),
    ("up offset 9d", ""),
    ("up offset 14d", "up offset 2w"),
    ("up offset 365d", "up offset 1y"),
    ("up @ 1e3", "up @ 1000.000"),
    ("up @ -1", "up @ -1.000"),
    (r#"{a="x", __name__=""}"#, r#"{__name__="",a="x"}"#),
    ("-up offset 5m", ""),
    // Keywords are metric names where a selector is expected.
    ("offset", ""),
    (r#"avg{a="b"}"#, ""),
    (r#"start{a="b"} @ start()"#, ""),
];

const RANGES: &[(&str, &str)] = &[
    ("up[5m]", ""),
    ("up[300]", "up[5m]"),
    ("up[90m]", "up[1h30m]"),
    ("up[1.5]", "up[1s500ms]"),
    ("up[7d]", "up[1w]"),
    (r#"up{job="a"}[5m] offset 1m"#, ""),
    ("up[5m] @ 10 offset -1m", "up[5m] @ 10.000 offset -1m"),
    ("up[5m] offset 1m @ end()", "up[5m] @ end() offset 1m"),
    ("up[5m] anchored", ""),
    ("up[5m] smoothed offset 1m", ""),
    ("up[5m:1m]", ""),
    ("up[5m:]", ""),
    ("rate(up[5m])[30m:1m]", ""),
    ("up[1h:5m] offset 1m", ""),
    ("up[1h:5m] @ end()", ""),
    ("(a + b)[5m:]", ""),
    ("sum(up)[1h:] offset -1h", ""),
    ("max_over_time(rate(x[1m])[5m:30s])", ""),
    ("up[1d1h]", ""),
    ("(up)[5m:]", ""),
    ("(x offset 1m)[5m:]", ""),
    // Modifiers of the inner selector stay before the brackets.
    ("x @ 100 offset 1m [5m:]", "x @ 100.000 offset 1m[5m:]"),
    ("rate(x[5m] @ start())", ""),
    (
        "rate(x[5m])[1h:] offset 5m @ 100",
        "rate(x[5m])[1h:] @ 100.000 offset 5m",
    ),
];

const DURATION_EXPRESSIONS: &[(&str, &str)] = &[
    ("foo[5m+1m]", "foo[5m + 1m]"),
    ("foo[step()]", ""),
    ("foo[step()*2]", "foo[step() * 2]"),
    ("foo[-step()]", ""),
    ("foo[(step())]", ""),
    ("foo[-(step())]", ""),
    ("foo[range()]", ""),
    ("foo[max_of(range(), 5s)]", ""),
    ("foo offset step()", ""),
    ("foo offset -step()", ""),
    ("foo offset (5m)", ""),
    ("foo offset +(5)", "foo offset (5)"),
    ("foo offset -(5)", ""),
    ("foo offset (1m * 2)", ""),
    ("foo[(5m):(1m)]", ""),
    ("foo[1h:step()]", ""),
    ("foo offset -min_of(10s, 20s)", ""),
    (
        "foo offset +min_of(10s, 20s)",
        "foo offset min_of(10s, 20s)",
    ),
    (
        "foo[200-min_of(-step()^+step(),1)]",
        "foo[200 - min_of(-step() ^ step(), 1)]",
    ),
    ("rate(foo[5m] offset (1h - 5m))", ""),
];

const OPERATORS: &[(&str, &str)] = &[
    ("a+b", "a + b"),
    ("a - b * c", ""),
    ("(a - b) * c", ""),
    ("a ^ b ^ c", ""),
    ("1 + 2 * 3", ""),
    ("-a", ""),
    ("-(a + b)", ""),
    ("-(1)", ""),
    ("a % 2", ""),
    ("a atan2 b", ""),
    ("a > bool 1", ""),
    ("1 == bool 1", ""),
    ("a and b", ""),
    ("a or on(x) b", "a or on (x) b"),
    ("a unless ignoring(x) b", "a unless ignoring (x) b"),
    ("a * on(x) group_left(y) b", "a * on (x) group_left (y) b"),
    ("a * on(x) group_left b", "a * on (x) group_left () b"),
    (
        "a / ignoring(x) group_right(y,z) b",
        "a / ignoring (x) group_right (y, z) b",
    ),
    ("a - ignoring() b", "a - b"),
    (
        "a - ignoring() group_left c",
        "a - ignoring () group_left () c",
    ),
    ("a - on() b", "a - on () b"),
    (r#"a == on("x.y") b"#, r#"a == on ("x.y") b"#),
    ("a > bool on(x) b", "a > bool on (x) b"),
    ("a + fill(0) b", "a + fill (0) b"),
    (
        "a + fill_left(1) fill_right(2) b",
        "a + fill_left (1) fill_right (2) b",
    ),
    ("a + fill_left(5) fill_right(5) b", "a + fill (5) b"),
    (
        "a + on(b) group_left fill(-1) c",
        "a + on (b) group_left () fill (-1) c",
    ),
    ("a </ 5", ""),
    ("a - -b", ""),
    ("- - a", "--a"),
    ("-x ^ 2", ""),
    ("(-x) ^ 2", ""),
    ("1 < bool 2", ""),
    ("a + on (b) group_left (c) d", ""),
    ("a >/ 5", ""),
];

const AGGREGATIONS_AND_CALLS: &[(&str, &str)] = &[
    ("sum(up)", ""),
    ("sum by(job)(up)", "sum by (job) (up)"),
    ("sum(up) by (job)", "sum by (job) (up)"),
    ("sum without(instance)(up)", "sum without (instance) (up)"),
    ("sum by()(up)", "sum(up)"),
    ("sum without()(up)", "sum without () (up)"),
    ("sum by (job,) (up)", "sum by (job) (up)"),
    (r#"sum by ("a.b", job) (up)"#, ""),
    ("topk(3, up)", ""),
    ("topk by (job) (3, up)", ""),
    ("quantile(0.9, up)", ""),
    (r#"count_values("v", up)"#, ""),
    ("limitk(2, up)", ""),
    ("limit_ratio(0.5, up)", ""),
    ("group(up)", ""),
    (r#"count_values without (x) ("v", up)"#, ""),
    ("info(up)", ""),
    ("rate(x[5m])", ""),
    ("sum by (job) (rate(x[5m]))", ""),
    (
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))",
        "",
    ),
    (r#"label_replace(up, "a", "$1", "b", "(.*)")"#, ""),
    ("time()", ""),
    ("vector(1)", ""),
    ("clamp(up, 0, 1)", ""),
    (r#"absent(nonexistent{job="a"})"#, ""),
    (r#"sort_by_label(up, "job")"#, ""),
    ("(up)", ""),
    ("((up))", ""),
    ("sum(\n  rate(x[5m])\n)", "sum(rate(x[5m]))"),
    ("1 - avg by (instance) (irate(cpu[5m]))", ""),
];

/// The tree without positions and with matchers in a fixed order: the printer sorts matchers, so
/// their order is not part of what a round trip preserves.
fn normalized(e: &Expr) -> Expr {
    let mut e = e.without_spans();
    e.walk_mut(&mut |n| match n {
        Expr::VectorSelector(v) => v.matchers.sort_by_key(|m| m.to_string()),
        Expr::MatrixSelector(m) => m.selector.matchers.sort_by_key(|m| m.to_string()),
        _ => {}
    });
    e
}

/// Parses every query and checks its canonical text, then that the text parses to the same tree.
/// Collects every mismatch before failing so a table shows all its problems at once.
fn check(table: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for &(query, canonical) in table {
        let want = if canonical.is_empty() {
            query
        } else {
            canonical
        };
        let parsed = match parse(query) {
            Ok(e) => e,
            Err(e) => {
                failures.push(format!("{query:?}: does not parse: {e}"));
                continue;
            }
        };
        let printed = parsed.to_string();
        if printed != want {
            failures.push(format!("{query:?}: printed {printed:?}, want {want:?}"));
        }
        match parse(&printed) {
            Ok(again) if normalized(&again) == normalized(&parsed) => {}
            Ok(again) => failures.push(format!(
                "{query:?}: {printed:?} parses to a different tree:\n  first  {:?}\n  second {:?}",
                normalized(&parsed),
                normalized(&again)
            )),
            Err(e) => failures.push(format!(
                "{query:?}: printed {printed:?} does not parse: {e}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn literals_round_trip() {
    check(LITERALS);
}

#[test]
fn selectors_and_modifiers_round_trip() {
    check(SELECTORS);
}

#[test]
fn ranges_and_subqueries_round_trip() {
    check(RANGES);
}

#[test]
fn duration_expressions_round_trip() {
    check(DURATION_EXPRESSIONS);
}

#[test]
fn operators_and_vector_matching_round_trip() {
    check(OPERATORS);
}

#[test]
fn aggregations_and_calls_round_trip() {
    check(AGGREGATIONS_AND_CALLS);
}
