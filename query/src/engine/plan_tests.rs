//! Evaluator tests on hand-built plans, independent of the parser: they pin the evaluator's
//! semantics (lookback, staleness, windows, matching, aggregation, subquery grids) directly.

use std::time::{Duration, Instant};

use ember::{Db, Labels, Matcher, Options};

use super::aggregate::AggOp;
use super::binary::BinOp;
use super::eval;
use super::limits::Cancel;
use super::matching::{Card, Matching};
use super::plan::{Aggregate, At, Binary, Call, Node, Selector, Subquery, Ty};
use super::{QueryError, QueryOpts, QueryResult};
use crate::value::{STALE_NAN_BITS, Value};

const M: i64 = 60_000;

struct Fixture {
    _dir: tempfile::TempDir,
    db: Db,
}

fn ls(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

fn fixture(series: &[(Labels, Vec<(i64, f64)>)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    // Append in time order across series: the head refuses samples far behind its newest one.
    let mut all: Vec<(i64, &Labels, f64)> = series
        .iter()
        .flat_map(|(l, s)| s.iter().map(move |&(t, v)| (t, l, v)))
        .collect();
    all.sort_by_key(|x| x.0);
    let mut app = db.appender();
    for (t, l, v) in all {
        app.append(l, t, v).unwrap();
    }
    app.commit().unwrap();
    Fixture { _dir: dir, db }
}

fn sel(name: &str, extra: &[(&str, &str)]) -> Selector {
    let mut matchers = vec![Matcher::equal("__name__", name)];
    matchers.extend(extra.iter().map(|(n, v)| Matcher::equal(*n, *v)));
    Selector {
        matchers,
        offset: 0,
        at: None,
        anchored: false,
        smoothed: false,
        pos: 0,
    }
}

fn vs(name: &str) -> Node {
    Node::Vector(sel(name, &[]))
}

fn call(name: &str, args: Vec<Node>) -> Node {
    Node::Call(Box::new(Call {
        name: name.into(),
        args,
        ret: Ty::Vector,
        pos: 0,
    }))
}

fn matching(card: Card, on: bool, names: &[&str], include: &[&str]) -> Matching {
    Matching {
        card,
        on,
        names: names.iter().map(|s| s.to_string()).collect(),
        include: include.iter().map(|s| s.to_string()).collect(),
        fill_lhs: None,
        fill_rhs: None,
    }
}

fn bin(op: BinOp, lhs: Node, rhs: Node, m: Matching) -> Node {
    Node::Binary(Box::new(Binary {
        op,
        lhs,
        rhs,
        matching: m,
        return_bool: false,
        pos: 0,
    }))
}

fn agg(op: AggOp, expr: Node, param: Option<Node>, by: &[&str], without: bool) -> Node {
    Node::Aggregate(Box::new(Aggregate {
        op,
        expr,
        param,
        grouping: by.iter().map(|s| s.to_string()).collect(),
        without,
        pos: 0,
    }))
}

fn run(
    f: &Fixture,
    plan: &Node,
    start: i64,
    end: i64,
    step: i64,
) -> Result<QueryResult, QueryError> {
    run_opts(f, plan, start, end, step, &QueryOpts::default())
}

fn run_opts(
    f: &Fixture,
    plan: &Node,
    start: i64,
    end: i64,
    step: i64,
    opts: &QueryOpts,
) -> Result<QueryResult, QueryError> {
    eval::run(
        &f.db,
        opts,
        plan,
        None,
        start,
        end,
        step,
        Instant::now() + Duration::from_secs(30),
        &Cancel::new(),
    )
}

/// An instant query's vector as (labels, value), sorted by labels.
fn vector(r: QueryResult) -> Vec<(Labels, f64)> {
    match r.value {
        Value::Vector(v) => {
            let mut out: Vec<_> = v.into_iter().map(|s| (s.labels, s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("not a vector: {other:?}"),
    }
}

fn matrix(r: QueryResult) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match r.value {
        Value::Matrix(m) => m.into_iter().map(|s| (s.labels, s.samples)).collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

#[test]
fn lookback_is_five_minutes_and_left_open() {
    let f = fixture(&[(ls(&[("__name__", "x")]), vec![(0, 1.0)])]);
    let got = matrix(run(&f, &vs("x"), 0, 5 * M, M).unwrap());
    // The sample at 0 is visible at 0..4m; at exactly 5m it is one lookback old and gone.
    assert_eq!(
        got,
        vec![(
            ls(&[("__name__", "x")]),
            vec![(0, 1.0), (M, 1.0), (2 * M, 1.0), (3 * M, 1.0), (4 * M, 1.0)]
        )]
    );
}

#[test]
fn stale_marker_ends_series_immediately() {
    let f = fixture(&[(
        ls(&[("__name__", "x")]),
        vec![(0, 1.0), (2 * M, stale()), (4 * M, 3.0)],
    )]);
    let got = matrix(run(&f, &vs("x"), 0, 5 * M, M).unwrap());
    assert_eq!(
        got[0].1,
        vec![(0, 1.0), (M, 1.0), (4 * M, 3.0), (5 * M, 3.0)]
    );
}

#[test]
fn offset_and_at_shift_the_reference_time() {
    let f = fixture(&[(
        ls(&[("__name__", "x")]),
        vec![(0, 0.0), (M, 1.0), (2 * M, 2.0), (3 * M, 3.0)],
    )]);
    let mut s = sel("x", &[]);
    s.offset = M;
    assert_eq!(
        vector(run(&f, &Node::Vector(s.clone()), 3 * M, 3 * M, 0).unwrap())[0].1,
        2.0
    );
    s.offset = -M;
    assert_eq!(
        vector(run(&f, &Node::Vector(s.clone()), M, M, 0).unwrap())[0].1,
        2.0
    );
    // `@` pins every step of a range query to one time.
    s.offset = 0;
    s.at = Some(At::Time(M));
    let got = matrix(run(&f, &Node::Vector(s.clone()), 0, 3 * M, M).unwrap());
    assert_eq!(
        got[0].1,
        vec![(0, 1.0), (M, 1.0), (2 * M, 1.0), (3 * M, 1.0)]
    );
    s.at = Some(At::End);
    let got = matrix(run(&f, &Node::Vector(s), 0, 2 * M, M).unwrap());
    assert_eq!(got[0].1, vec![(0, 2.0), (M, 2.0), (2 * M, 2.0)]);
}

#[test]
fn increase_extrapolates_across_a_counter_reset() {
    // 0,10,20,30,5,15 every 15 s; the reset at 60 s adds the 30 lost.
    let samples: Vec<(i64, f64)> = [0.0, 10.0, 20.0, 30.0, 5.0, 15.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 15_000, v))
        .collect();
    let f = fixture(&[(ls(&[("__name__", "c_total")]), samples)]);
    let m = Node::Matrix {
        sel: sel("c_total", &[]),
        range: 75_000,
    };
    // Window (0, 75s]: samples at 15..75 s = 10,20,30,5,15. Raw increase 5 + 30 = 35 over 60 s;
    // 15 s to the start is within 1.1 × the 15 s spacing, and the zero point (60 × 10/35 s) is
    // further, so extrapolate the full 15 s: 35 × 75/60 = 43.75.
    let got = vector(run(&f, &call("increase", vec![m.clone()]), 75_000, 75_000, 0).unwrap());
    assert_eq!(got, vec![(Labels::empty(), 43.75)]);
    let got = vector(run(&f, &call("rate", vec![m]), 75_000, 75_000, 0).unwrap());
    assert!((got[0].1 - 43.75 / 75.0).abs() < 1e-12);
}

#[test]
fn rate_on_non_counter_name_raises_info() {
    let f = fixture(&[(ls(&[("__name__", "gauge")]), vec![(0, 1.0), (M, 2.0)])]);
    let m = Node::Matrix {
        sel: sel("gauge", &[]),
        range: 2 * M,
    };
    let r = run(&f, &call("rate", vec![m]), M, M, 0).unwrap();
    assert_eq!(
        r.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"gauge\""
        ]
    );
}

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
        Node::Number(1.0),
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
    let p = agg(AggOp::Topk, vs("x"), Some(Node::Number(2.0)), &[], false);
    let Value::Vector(v) = run(&f, &p, 0, 0, 0).unwrap().value else {
        panic!()
    };
    let got: Vec<f64> = v.iter().map(|s| s.v).collect();
    assert_eq!(got, vec![3.0, 2.0]);
    assert_eq!(v[0].labels.get("__name__"), Some("x"));
}

#[test]
fn subquery_steps_are_absolute_multiples() {
    // x = t/1 min at every minute.
    let f = fixture(&[(
        ls(&[("__name__", "x")]),
        (0..20).map(|i| (i * M, i as f64)).collect(),
    )]);
    let sq = Node::Subquery(Box::new(Subquery {
        expr: vs("x"),
        range: 5 * M,
        step: Some(2 * M),
        offset: 0,
        at: None,
        pos: 0,
    }));
    // At 11m the window is (6m, 11m]: steps 8m and 10m, not 7m/9m/11m.
    let got = matrix(run(&f, &sq, 11 * M, 11 * M, 0).unwrap());
    assert_eq!(got[0].1, vec![(8 * M, 8.0), (10 * M, 10.0)]);
    let sum = call("sum_over_time", vec![sq]);
    assert_eq!(vector(run(&f, &sum, 11 * M, 11 * M, 0).unwrap())[0].1, 18.0);
}

#[test]
fn max_samples_limit_fails_with_prometheus_wording() {
    let f = fixture(&[(
        ls(&[("__name__", "x")]),
        (0..10).map(|i| (i * M, 1.0)).collect(),
    )]);
    let opts = QueryOpts {
        max_samples: 5,
        ..QueryOpts::default()
    };
    let err = run_opts(&f, &vs("x"), 0, 9 * M, M, &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert!(run_opts(&f, &vs("x"), 0, 4 * M, M, &opts).is_ok());
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
        Some(Node::Str("v".into())),
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
fn absent_takes_labels_from_equality_matchers() {
    let f = fixture(&[(ls(&[("__name__", "x")]), vec![(0, 1.0)])]);
    let mut s = sel("nope", &[("job", "a"), ("env", "p")]);
    s.matchers.push(Matcher::regex("env", "p.*").unwrap());
    let got = vector(run(&f, &call("absent", vec![Node::Vector(s)]), 0, 0, 0).unwrap());
    assert_eq!(got, vec![(ls(&[("job", "a")]), 1.0)]);
}

#[test]
fn range_query_reports_each_step_with_a_value() {
    // Gap from 2m: the series is gone after 2m + 5m lookback, so 8m and 9m have no point.
    let f = fixture(&[(ls(&[("__name__", "x")]), vec![(0, 1.0), (2 * M, 2.0)])]);
    let got = matrix(run(&f, &vs("x"), 0, 9 * M, M).unwrap());
    let ts: Vec<i64> = got[0].1.iter().map(|p| p.0 / M).collect();
    assert_eq!(ts, vec![0, 1, 2, 3, 4, 5, 6]);
    // A scalar range query is one series without labels.
    let got = matrix(run(&f, &Node::Number(7.0), 0, 2 * M, M).unwrap());
    assert_eq!(
        got,
        vec![(Labels::empty(), vec![(0, 7.0), (M, 7.0), (2 * M, 7.0)])]
    );
}

#[test]
fn timeout_and_cancel_stop_the_query() {
    let f = fixture(&[(ls(&[("__name__", "x")]), vec![(0, 1.0)])]);
    let err = eval::run(
        &f.db,
        &QueryOpts::default(),
        &vs("x"),
        None,
        0,
        0,
        0,
        Instant::now(),
        &Cancel::new(),
    )
    .unwrap_err();
    assert_eq!(err, QueryError::Timeout);
    assert_eq!(err.to_string(), "query timed out in expression evaluation");
    let cancel = Cancel::new();
    cancel.cancel();
    let err = eval::run(
        &f.db,
        &QueryOpts::default(),
        &vs("x"),
        None,
        0,
        0,
        0,
        Instant::now() + Duration::from_secs(10),
        &cancel,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "query was canceled in expression evaluation"
    );
}

#[test]
fn name_dropping_collision_is_an_error_only_at_a_shared_step() {
    let f = fixture(&[
        (ls(&[("__name__", "a"), ("i", "1")]), vec![(0, 1.0)]),
        (ls(&[("__name__", "b"), ("i", "1")]), vec![(10 * M, 2.0)]),
    ]);
    let mut s = sel("a", &[]);
    s.matchers = vec![Matcher::regex("__name__", "a|b").unwrap()];
    let neg = Node::Neg(Box::new(Node::Vector(s)));
    // At 0 only `a` is present: fine. Over 0..10m both map to {i="1"} at 10m? `a` is gone after 5m,
    // so the two never share a step and merge into one series.
    let got = matrix(run(&f, &neg, 0, 10 * M, 5 * M).unwrap());
    assert_eq!(
        got,
        vec![(ls(&[("i", "1")]), vec![(0, -1.0), (10 * M, -2.0)])]
    );
    let f = fixture(&[
        (ls(&[("__name__", "a"), ("i", "1")]), vec![(0, 1.0)]),
        (ls(&[("__name__", "b"), ("i", "1")]), vec![(0, 2.0)]),
    ]);
    let mut s = sel("a", &[]);
    s.matchers = vec![Matcher::regex("__name__", "a|b").unwrap()];
    let err = run(&f, &Node::Neg(Box::new(Node::Vector(s))), 0, 0, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
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

/// Rough throughput check on a bench-shaped workload; run with
/// `cargo test --release -p ember-query perf_ -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf_sum_rate_range_query() {
    let n_series = 2000;
    let step = 15_000;
    let n_samples = 6 * 3600 * 1000 / step;
    let series: Vec<(Labels, Vec<(i64, f64)>)> = (0..n_series)
        .map(|i| {
            let l = ls(&[
                ("__name__", "cpu_total"),
                ("instance", &format!("h{}", i / 8)),
                ("mode", &format!("m{}", i % 8)),
            ]);
            (
                l,
                (0..n_samples)
                    .map(|k| (k * step, (k * (i + 1)) as f64))
                    .collect(),
            )
        })
        .collect();
    let t0 = Instant::now();
    let f = fixture(&series);
    eprintln!("load: {:?}", t0.elapsed());
    let rate = call(
        "rate",
        vec![Node::Matrix {
            sel: sel("cpu_total", &[]),
            range: 5 * M,
        }],
    );
    let p = agg(AggOp::Sum, rate.clone(), None, &["mode"], false);
    let end = n_samples * step;
    for (name, plan) in [("sum by mode (rate)", &p), ("rate", &rate)] {
        let t0 = Instant::now();
        let r = run(&f, plan, end - 6 * 3600 * 1000, end, M).unwrap();
        eprintln!("{name}: {:?} ({} series)", t0.elapsed(), matrix(r).len());
    }
    let div = bin(
        BinOp::Sub,
        Node::Number(1.0),
        bin(
            BinOp::Div,
            vs("cpu_total"),
            vs("cpu_total"),
            matching(Card::OneToOne, false, &[], &[]),
        ),
        matching(Card::OneToOne, false, &[], &[]),
    );
    let t0 = Instant::now();
    let r = run(&f, &div, end - 6 * 3600 * 1000, end, M).unwrap();
    eprintln!("1 - x / x: {:?} ({} series)", t0.elapsed(), matrix(r).len());
    let t0 = Instant::now();
    let r = run(&f, &vs("cpu_total"), end - 6 * 3600 * 1000, end, M).unwrap();
    eprintln!("x: {:?} ({} series)", t0.elapsed(), matrix(r).len());
}

fn delayed() -> QueryOpts {
    QueryOpts {
        delayed_name_removal: true,
        ..QueryOpts::default()
    }
}

fn msel(name: &str, range: i64) -> Node {
    Node::Matrix {
        sel: sel(name, &[]),
        range,
    }
}

fn str_call(name: &str, arg: Node, strs: &[&str]) -> Node {
    let mut args = vec![arg];
    args.extend(strs.iter().map(|s| Node::Str(s.to_string())));
    call(name, args)
}

#[test]
fn delayed_name_removal_follows_name_label_dropping_test() {
    // load 5m: metric_total{env="1"} 0 60 120; another_metric_total{env="1"} 60 120 180.
    let f = fixture(&[
        (ls(&[("__name__", "metric_total"), ("env", "1")]), vec![(0, 0.0), (5 * M, 60.0), (10 * M, 120.0)]),
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
    assert_eq!(q(&call("rate", vec![msel("metric_total", 10 * M)])), vec![(env.clone(), 0.2)]);
    // label_replace onto __name__ keeps a name that rate would have dropped.
    let mut any = sel("x", &[("env", "1")]);
    any.matchers.remove(0);
    let rate_all = call("rate", vec![Node::Matrix { sel: any, range: 10 * M }]);
    let relabelled = str_call("label_replace", rate_all.clone(), &["__name__", "rate_$1", "__name__", "(.+)"]);
    assert_eq!(
        q(&relabelled),
        vec![
            (ls(&[("__name__", "rate_another_metric_total"), ("env", "1")]), 0.2),
            (ls(&[("__name__", "rate_metric_total"), ("env", "1")]), 0.2)
        ]
    );
    // Aggregating by (env) merges the to-be-nameless series: 0.2 + 0.2.
    assert_eq!(q(&agg(AggOp::Sum, rate_all.clone(), None, &["env"], false)), vec![(env, 0.4)]);
    // By __name__ they stay apart until the end, then collide.
    let err = run_opts(&f, &agg(AggOp::Sum, rate_all, None, &["__name__"], false), 10 * M, 10 * M, 0, &opts)
        .unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
}

#[test]
fn histogram_quantile_over_classic_buckets() {
    let b = |le: &str, v: f64| (ls(&[("__name__", "h_bucket"), ("le", le)]), vec![(0, v)]);
    let f = fixture(&[b("1", 10.0), b("5", 30.0), b("10", 40.0), b("+Inf", 40.0)]);
    let p = call("histogram_quantile", vec![Node::Number(0.5), vs("h_bucket")]);
    // Rank 20 falls in (1, 5] holding 20 observations, 10 of them below the rank: 1 + 4 × 10/20.
    assert_eq!(vector(run(&f, &p, 0, 0, 0).unwrap()), vec![(Labels::empty(), 3.0)]);
    let p = call("histogram_quantile", vec![Node::Number(1.5), vs("h_bucket")]);
    let r = run(&f, &p, 0, 0, 0).unwrap();
    assert_eq!(r.warnings, vec!["PromQL warning: quantile value should be between 0 and 1, got 1.5"]);
    assert_eq!(vector(r), vec![(Labels::empty(), f64::INFINITY)]);
}

#[test]
fn label_join_and_replace_edit_labels() {
    let f = fixture(&[(ls(&[("__name__", "x"), ("a", "1"), ("b", "2")]), vec![(0, 1.0)])]);
    let j = str_call("label_join", vs("x"), &["c", "-", "a", "b"]);
    assert_eq!(
        vector(run(&f, &j, 0, 0, 0).unwrap()),
        vec![(ls(&[("__name__", "x"), ("a", "1"), ("b", "2"), ("c", "1-2")]), 1.0)]
    );
    // No match: unchanged. A match to an empty value removes the label.
    let r = str_call("label_replace", vs("x"), &["a", "z", "b", "9"]);
    assert_eq!(vector(run(&f, &r, 0, 0, 0).unwrap())[0].0.get("a"), Some("1"));
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
    let p = call("deriv", vec![Node::Matrix { sel: s, range: 3 * M }]);
    assert_eq!(
        run(&f, &p, M, M, 0).unwrap_err().to_string(),
        "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with deriv"
    );
}
