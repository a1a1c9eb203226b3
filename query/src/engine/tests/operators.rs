//! Operators and functions: vector matching and its errors, `__name__` rules (eager and delayed),
//! aggregations, label functions, `histogram_quantile`, modifier checks.

use ember::Labels;

use super::*;
use crate::engine::plan::Node;

#[test]
fn one_to_one_matching_and_duplicate_errors() {
    let f = fixture(&[
        (ls(&[("__name__", "a"), ("i", "1")]), vec![(0, 10.0)]),
        (ls(&[("__name__", "a"), ("i", "2")]), vec![(0, 20.0)]),
        (ls(&[("__name__", "b"), ("i", "1")]), vec![(0, 2.0)]),
        (ls(&[("__name__", "b"), ("i", "2")]), vec![(0, 4.0)]),
        (
            ls(&[("__name__", "b"), ("i", "2"), ("x", "y")]),
            vec![(0, 8.0)],
        ),
    ]);
    let ok = bin(
        BinOp::Div,
        vs("a"),
        Node::Vector(sel("b", &[("x", "")])),
        matching(Card::OneToOne, false, &[], &[]),
    );
    assert_eq!(
        vector(run(&f, &ok, 0, 0, 0).unwrap()),
        vec![(ls(&[("i", "1")]), 5.0), (ls(&[("i", "2")]), 5.0)]
    );
    let dup = bin(
        BinOp::Div,
        vs("a"),
        vs("b"),
        matching(Card::OneToOne, true, &["i"], &[]),
    );
    let err = run(&f, &dup, 0, 0, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for the match group {i=\"2\"} on the right hand-side of the operation: \
         [{__name__=\"b\", i=\"2\", x=\"y\"}, {__name__=\"b\", i=\"2\"}];many-to-many matching not allowed: \
         matching labels must be unique on one side"
    );
}

#[test]
fn group_left_copies_labels_from_one_side() {
    let f = fixture(&[
        (
            ls(&[("__name__", "req"), ("i", "1"), ("p", "a")]),
            vec![(0, 10.0)],
        ),
        (
            ls(&[("__name__", "req"), ("i", "1"), ("p", "b")]),
            vec![(0, 20.0)],
        ),
        (
            ls(&[("__name__", "info"), ("i", "1"), ("v", "9")]),
            vec![(0, 1.0)],
        ),
    ]);
    let p = bin(
        BinOp::Mul,
        vs("req"),
        vs("info"),
        matching(Card::ManyToOne, true, &["i"], &["v"]),
    );
    assert_eq!(
        vector(run(&f, &p, 0, 0, 0).unwrap()),
        vec![
            (ls(&[("i", "1"), ("p", "a"), ("v", "9")]), 10.0),
            (ls(&[("i", "1"), ("p", "b"), ("v", "9")]), 20.0)
        ]
    );
    // Without group_left the same match is many-to-one and refused.
    let p = bin(
        BinOp::Mul,
        vs("req"),
        vs("info"),
        matching(Card::OneToOne, true, &["i"], &[]),
    );
    assert_eq!(
        run(&f, &p, 0, 0, 0).unwrap_err().to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
}

#[test]
fn filtering_comparison_keeps_name_bool_drops_it() {
    let f = fixture(&[(ls(&[("__name__", "x"), ("a", "1")]), vec![(0, 5.0)])]);
    let cmp = bin(
        BinOp::Gt,
        vs("x"),
        Node::num(1.0),
        matching(Card::OneToOne, false, &[], &[]),
    );
    assert_eq!(
        vector(run(&f, &cmp, 0, 0, 0).unwrap()),
        vec![(ls(&[("__name__", "x"), ("a", "1")]), 5.0)]
    );
    let Node::Binary(mut b) = cmp else {
        unreachable!()
    };
    b.return_bool = true;
    assert_eq!(
        vector(run(&f, &Node::Binary(b), 0, 0, 0).unwrap()),
        vec![(ls(&[("a", "1")]), 1.0)]
    );
}

#[test]
fn aggregation_by_and_without() {
    let f = fixture(&[
        (
            ls(&[("__name__", "x"), ("j", "a"), ("i", "1")]),
            vec![(0, 1.0)],
        ),
        (
            ls(&[("__name__", "x"), ("j", "a"), ("i", "2")]),
            vec![(0, 2.0)],
        ),
        (
            ls(&[("__name__", "x"), ("j", "b"), ("i", "1")]),
            vec![(0, 4.0)],
        ),
    ]);
    let by = agg(AggOp::Sum, vs("x"), None, &["j"], false);
    assert_eq!(
        vector(run(&f, &by, 0, 0, 0).unwrap()),
        vec![(ls(&[("j", "a")]), 3.0), (ls(&[("j", "b")]), 4.0)]
    );
    let without = agg(AggOp::Avg, vs("x"), None, &["j"], true);
    assert_eq!(
        vector(run(&f, &without, 0, 0, 0).unwrap()),
        vec![(ls(&[("i", "1")]), 2.5), (ls(&[("i", "2")]), 2.0)]
    );
    let stddev = agg(AggOp::Stddev, vs("x"), None, &[], false);
    // Values 1, 2, 4: mean 7/3, variance (16/9 + 1/9 + 25/9)/3 = 14/9.
    let got = vector(run(&f, &stddev, 0, 0, 0).unwrap());
    assert!((got[0].1 - (14.0f64 / 9.0).sqrt()).abs() < 1e-12);
}

#[test]
fn topk_instant_output_is_sorted_descending() {
    let f = fixture(&[
        (ls(&[("__name__", "x"), ("i", "1")]), vec![(0, 1.0)]),
        (ls(&[("__name__", "x"), ("i", "2")]), vec![(0, 3.0)]),
        (ls(&[("__name__", "x"), ("i", "3")]), vec![(0, 2.0)]),
    ]);
    let p = agg(AggOp::Topk, vs("x"), Some(Node::num(2.0)), &[], false);
    let Value::Vector(v) = run(&f, &p, 0, 0, 0).unwrap().value else {
        panic!()
    };
    let got: Vec<f64> = v.iter().map(|s| s.v).collect();
    assert_eq!(got, vec![3.0, 2.0]);
    assert_eq!(v[0].labels.get("__name__"), Some("x"));
}

#[test]
fn count_values_formats_like_go() {
    let f = fixture(&[
        (ls(&[("__name__", "x"), ("i", "1")]), vec![(0, 0.5)]),
        (ls(&[("__name__", "x"), ("i", "2")]), vec![(0, 0.5)]),
        (ls(&[("__name__", "x"), ("i", "3")]), vec![(0, 1e21)]),
    ]);
    let p = agg(
        AggOp::CountValues,
        vs("x"),
        Some(Node::string("v")),
        &[],
        false,
    );
    assert_eq!(
        vector(run(&f, &p, 0, 0, 0).unwrap()),
        vec![
            (ls(&[("v", "0.5")]), 2.0),
            (ls(&[("v", "1000000000000000000000")]), 1.0)
        ]
    );
}

#[test]
fn set_operators_and_fill() {
    let f = fixture(&[
        (ls(&[("__name__", "a"), ("i", "1")]), vec![(0, 1.0)]),
        (ls(&[("__name__", "a"), ("i", "2")]), vec![(0, 2.0)]),
        (ls(&[("__name__", "b"), ("i", "2")]), vec![(0, 20.0)]),
        (ls(&[("__name__", "b"), ("i", "3")]), vec![(0, 30.0)]),
    ]);
    let on_i = || matching(Card::ManyToMany, true, &["i"], &[]);
    let names = |r: QueryResult| -> Vec<(Labels, f64)> { vector(r) };
    let and = bin(BinOp::And, vs("a"), vs("b"), on_i());
    assert_eq!(
        names(run(&f, &and, 0, 0, 0).unwrap()),
        vec![(ls(&[("__name__", "a"), ("i", "2")]), 2.0)]
    );
    let unless = bin(BinOp::Unless, vs("a"), vs("b"), on_i());
    assert_eq!(
        names(run(&f, &unless, 0, 0, 0).unwrap()),
        vec![(ls(&[("__name__", "a"), ("i", "1")]), 1.0)]
    );
    let or = bin(BinOp::Or, vs("a"), vs("b"), on_i());
    assert_eq!(
        names(run(&f, &or, 0, 0, 0).unwrap()),
        vec![
            (ls(&[("__name__", "a"), ("i", "1")]), 1.0),
            (ls(&[("__name__", "a"), ("i", "2")]), 2.0),
            (ls(&[("__name__", "b"), ("i", "3")]), 30.0)
        ]
    );
    // a + b with fill(0): every i on either side.
    let mut m = matching(Card::OneToOne, true, &["i"], &[]);
    m.fill_lhs = Some(0.0);
    m.fill_rhs = Some(0.0);
    let add = bin(BinOp::Add, vs("a"), vs("b"), m);
    assert_eq!(
        names(run(&f, &add, 0, 0, 0).unwrap()),
        vec![
            (ls(&[("i", "1")]), 1.0),
            (ls(&[("i", "2")]), 22.0),
            (ls(&[("i", "3")]), 30.0)
        ]
    );
}

#[test]
fn delayed_name_removal_follows_name_label_dropping_test() {
    // load 5m: metric_total{env="1"} 0 60 120; another_metric_total{env="1"} 60 120 180.
    let f = fixture(&[
        (
            ls(&[("__name__", "metric_total"), ("env", "1")]),
            vec![(0, 0.0), (5 * M, 60.0), (10 * M, 120.0)],
        ),
        (
            ls(&[("__name__", "another_metric_total"), ("env", "1")]),
            vec![(0, 60.0), (5 * M, 120.0), (10 * M, 180.0)],
        ),
    ]);
    let opts = delayed();
    let q = |p: &Node| vector(run_opts(&f, p, 10 * M, 10 * M, 0, &opts).unwrap());
    let env = ls(&[("env", "1")]);
    // last_over_time keeps the name; rate drops it at the end.
    assert_eq!(
        q(&call("last_over_time", vec![msel("metric_total", 10 * M)])),
        vec![(ls(&[("__name__", "metric_total"), ("env", "1")]), 120.0)]
    );
    assert_eq!(
        q(&call("rate", vec![msel("metric_total", 10 * M)])),
        vec![(env.clone(), 0.2)]
    );
    // label_replace onto __name__ keeps a name that rate would have dropped.
    let mut any = sel("x", &[("env", "1")]);
    any.matchers.remove(0);
    let rate_all = call(
        "rate",
        vec![Node::Matrix {
            sel: any,
            range: 10 * M,
        }],
    );
    let relabelled = str_call(
        "label_replace",
        rate_all.clone(),
        &["__name__", "rate_$1", "__name__", "(.+)"],
    );
    assert_eq!(
        q(&relabelled),
        vec![
            (
                ls(&[("__name__", "rate_another_metric_total"), ("env", "1")]),
                0.2
            ),
            (ls(&[("__name__", "rate_metric_total"), ("env", "1")]), 0.2)
        ]
    );
    // Aggregating by (env) merges the to-be-nameless series: 0.2 + 0.2.
    assert_eq!(
        q(&agg(AggOp::Sum, rate_all.clone(), None, &["env"], false)),
        vec![(env, 0.4)]
    );
    // By __name__ they stay apart until the end, then collide.
    let err = run_opts(
        &f,
        &agg(AggOp::Sum, rate_all, None, &["__name__"], false),
        10 * M,
        10 * M,
        0,
        &opts,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn histogram_quantile_over_classic_buckets() {
    let b = |le: &str, v: f64| (ls(&[("__name__", "h_bucket"), ("le", le)]), vec![(0, v)]);
    let f = fixture(&[b("1", 10.0), b("5", 30.0), b("10", 40.0), b("+Inf", 40.0)]);
    let p = call("histogram_quantile", vec![Node::num(0.5), vs("h_bucket")]);
    // Rank 20 falls in (1, 5] holding 20 observations, 10 of them below the rank: 1 + 4 × 10/20.
    assert_eq!(
        vector(run(&f, &p, 0, 0, 0).unwrap()),
        vec![(Labels::empty(), 3.0)]
    );
    let p = call("histogram_quantile", vec![Node::num(1.5), vs("h_bucket")]);
    let r = run(&f, &p, 0, 0, 0).unwrap();
    assert_eq!(
        r.warnings,
        vec!["PromQL warning: quantile value should be between 0 and 1, got 1.5"]
    );
    assert_eq!(vector(r), vec![(Labels::empty(), f64::INFINITY)]);
}

#[test]
fn label_join_and_replace_edit_labels() {
    let f = fixture(&[(
        ls(&[("__name__", "x"), ("a", "1"), ("b", "2")]),
        vec![(0, 1.0)],
    )]);
    let j = str_call("label_join", vs("x"), &["c", "-", "a", "b"]);
    assert_eq!(
        vector(run(&f, &j, 0, 0, 0).unwrap()),
        vec![(
            ls(&[("__name__", "x"), ("a", "1"), ("b", "2"), ("c", "1-2")]),
            1.0
        )]
    );
    // No match: unchanged. A match to an empty value removes the label.
    let r = str_call("label_replace", vs("x"), &["a", "z", "b", "9"]);
    assert_eq!(
        vector(run(&f, &r, 0, 0, 0).unwrap())[0].0.get("a"),
        Some("1")
    );
    let r = str_call("label_replace", vs("x"), &["a", "", "b", "(.*)"]);
    assert_eq!(vector(run(&f, &r, 0, 0, 0).unwrap())[0].0.get("a"), None);
    let bad = str_call("label_replace", vs("x"), &["a", "", "b", "("]);
    assert_eq!(
        run(&f, &bad, 0, 0, 0).unwrap_err().to_string(),
        "invalid regular expression in label_replace(): ("
    );
}

#[test]
fn anchored_modifier_rejects_unsafe_functions() {
    let f = fixture(&[(ls(&[("__name__", "foo")]), vec![(0, 1.0)])]);
    let mut s = sel("foo", &[]);
    s.anchored = true;
    let p = call(
        "deriv",
        vec![Node::Matrix {
            sel: s,
            range: 3 * M,
        }],
    );
    assert_eq!(
        run(&f, &p, M, M, 0).unwrap_err().to_string(),
        "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with deriv"
    );
}
