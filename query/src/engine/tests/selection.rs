//! Selection over time: lookback, staleness, offset and `@`, range functions, subquery grids, range
//! query output, limits.

use std::time::{Duration, Instant};

use ember::{Labels, Matcher};

use super::*;
use crate::engine::eval;
use crate::engine::limits::Cancel;
use crate::engine::plan::{At, Subquery};

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
    let got = matrix(run(&f, &Node::num(7.0), 0, 2 * M, M).unwrap());
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
        Node::num(1.0),
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

#[test]
fn points_limit_is_written_with_thousands_separators() {
    assert_eq!(crate::engine::thousands(11_000), "11,000");
    assert_eq!(crate::engine::thousands(999), "999");
    assert_eq!(crate::engine::thousands(1_000_000), "1,000,000");
}
