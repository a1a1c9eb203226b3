//! The PromQL evaluator end to end: data written through `ember::Db` appenders, queries given as
//! text, results compared with values computed by hand from Prometheus' rules.

use std::time::Duration;

use ember::{Db, Labels, Options};
use ember_query::engine::{Cancel, Engine, QueryError, QueryOpts, QueryResult};
use ember_query::value::{STALE_NAN_BITS, Value};

const S: i64 = 1_000;
const M: i64 = 60_000;

struct TestDb {
    _dir: tempfile::TempDir,
    db: Db,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

/// `values[i]` at `i * step`.
fn every(step: i64, values: &[f64]) -> Vec<(i64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * step, v))
        .collect()
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

fn load(series: &[(Labels, Vec<(i64, f64)>)]) -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    // In time order across series: the head refuses samples far behind its newest one.
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
    TestDb { _dir: dir, db }
}

fn engine() -> Engine {
    Engine::new(QueryOpts::default())
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

/// An instant query's vector in result order.
fn ordered(r: QueryResult) -> Vec<(Labels, f64)> {
    match r.value {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

fn matrix(r: QueryResult) -> Vec<(Labels, Vec<(i64, f64)>)> {
    match r.value {
        Value::Matrix(m) => m.into_iter().map(|s| (s.labels, s.samples)).collect(),
        other => panic!("not a matrix: {other:?}"),
    }
}

fn instant(db: &TestDb, q: &str, t: i64) -> QueryResult {
    engine()
        .instant(&db.db, q, t)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn range(db: &TestDb, q: &str, start: i64, end: i64, step: i64) -> QueryResult {
    engine()
        .range(&db.db, q, start, end, step)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn lookback_delta_hides_samples_five_minutes_old() {
    let db = load(&[(labels(&[("__name__", "up")]), vec![(0, 1.0)])]);
    let got = matrix(range(&db, "up", 0, 6 * M, M));
    // Visible for 4m59.999s: at 5m the sample is exactly one lookback delta old and excluded.
    let steps: Vec<i64> = got[0].1.iter().map(|p| p.0).collect();
    assert_eq!(steps, vec![0, M, 2 * M, 3 * M, 4 * M]);
    assert_eq!(vector(instant(&db, "up", 5 * M - 1)).len(), 1);
    assert!(vector(instant(&db, "up", 5 * M)).is_empty());
}

#[test]
fn staleness_marker_ends_series_before_lookback_runs_out() {
    let db = load(&[(
        labels(&[("__name__", "up")]),
        vec![(0, 1.0), (M, 2.0), (2 * M, stale()), (5 * M, 3.0)],
    )]);
    let got = matrix(range(&db, "up", 0, 6 * M, M));
    assert_eq!(
        got[0].1,
        vec![(0, 1.0), (M, 2.0), (5 * M, 3.0), (6 * M, 3.0)]
    );
    // A range vector skips the marker itself.
    assert_eq!(
        vector(instant(&db, "count_over_time(up[10m])", 6 * M))[0].1,
        3.0
    );
}

#[test]
fn offset_and_negative_offset_shift_the_selection() {
    let db = load(&[(
        labels(&[("__name__", "x")]),
        every(M, &[0.0, 1.0, 2.0, 3.0, 4.0]),
    )]);
    assert_eq!(vector(instant(&db, "x offset 2m", 4 * M))[0].1, 2.0);
    assert_eq!(vector(instant(&db, "x offset -1m", 2 * M))[0].1, 3.0);
    assert_eq!(
        vector(instant(&db, "sum_over_time(x[2m] offset 1m)", 4 * M))[0].1,
        5.0
    );
}

#[test]
fn at_modifier_pins_every_step_including_start_and_end() {
    let db = load(&[(
        labels(&[("__name__", "x")]),
        every(M, &[0.0, 1.0, 2.0, 3.0, 4.0]),
    )]);
    let got = matrix(range(&db, "x @ 120", 0, 4 * M, M));
    assert_eq!(
        got[0].1.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![2.0; 5]
    );
    let got = matrix(range(&db, "x @ start()", M, 3 * M, M));
    assert_eq!(
        got[0].1.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![1.0; 3]
    );
    let got = matrix(range(&db, "x @ end() offset 1m", M, 3 * M, M));
    assert_eq!(
        got[0].1.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![2.0; 3]
    );
    // timestamp() reports when the pinned sample was taken, at every step.
    let got = matrix(range(&db, "timestamp(x @ 180)", 0, 2 * M, M));
    assert_eq!(got[0].1, vec![(0, 180.0), (M, 180.0), (2 * M, 180.0)]);
}

#[test]
fn rate_and_increase_extrapolate_across_a_counter_reset() {
    // Every 15 s: 0 10 20 30 5 15 (reset after 30).
    let db = load(&[(
        labels(&[("__name__", "req_total"), ("job", "a")]),
        every(15 * S, &[0.0, 10.0, 20.0, 30.0, 5.0, 15.0]),
    )]);
    // Window (0, 75s]: 10 20 30 5 15 at 15..75 s. Increase 5 plus 30 lost at the reset = 35 over the
    // 60 s sampled. The first sample is 15 s from the window start (within 1.1 × 15 s spacing) and the
    // counter's zero point lies 60 × 10/35 ≈ 17.1 s back, farther, so extrapolate the full 15 s; the
    // last sample is at the window end. 35 × 75/60 = 43.75.
    let got = vector(instant(&db, "increase(req_total[75s])", 75 * S));
    assert_eq!(got, vec![(labels(&[("job", "a")]), 43.75)]);
    let got = vector(instant(&db, "rate(req_total[75s])", 75 * S));
    assert!(close(got[0].1, 43.75 / 75.0));
    // Window (30s, 90s]: 30 5 15 at 45..75 s; 15 - 30 + 30 lost at the reset = 15 over the 30 s
    // sampled. Both edge gaps are 15 s (≤ 16.5 s) and the zero point 30 × 30/15 = 60 s back is
    // farther: extrapolate fully on both sides, 15 × 60/30 = 30.
    let got = vector(instant(&db, "increase(req_total[60s])", 90 * S));
    assert!(close(got[0].1, 30.0), "{got:?}");
    // irate: the last two samples 5 → 15 over 15 s.
    assert!(close(
        vector(instant(&db, "irate(req_total[1m])", 75 * S))[0].1,
        10.0 / 15.0
    ));
    // resets() counts one.
    assert_eq!(
        vector(instant(&db, "resets(req_total[5m])", 75 * S))[0].1,
        1.0
    );
}

#[test]
fn rate_of_a_name_without_counter_suffix_raises_info() {
    let db = load(&[(
        labels(&[("__name__", "temperature")]),
        every(15 * S, &[1.0, 2.0, 3.0]),
    )]);
    let r = instant(&db, "rate(temperature[1m])", 30 * S);
    assert_eq!(
        r.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in \
             _total/_sum/_count/_bucket: \"temperature\" (1:6)"
                .to_string()
        ]
    );
    assert!(r.warnings.is_empty());
}

fn matching_db() -> TestDb {
    load(&[
        (
            labels(&[("__name__", "errors"), ("job", "a"), ("code", "500")]),
            vec![(0, 3.0)],
        ),
        (
            labels(&[("__name__", "errors"), ("job", "a"), ("code", "404")]),
            vec![(0, 1.0)],
        ),
        (
            labels(&[("__name__", "errors"), ("job", "b"), ("code", "500")]),
            vec![(0, 5.0)],
        ),
        (
            labels(&[("__name__", "requests"), ("job", "a")]),
            vec![(0, 100.0)],
        ),
        (
            labels(&[("__name__", "requests"), ("job", "b")]),
            vec![(0, 50.0)],
        ),
        (
            labels(&[("__name__", "owner"), ("job", "a"), ("team", "x")]),
            vec![(0, 1.0)],
        ),
    ])
}

#[test]
fn one_to_one_matching_with_on_and_ignoring() {
    let db = matching_db();
    let got = vector(instant(
        &db,
        "errors{code=\"500\"} / ignoring(code) requests",
        0,
    ));
    assert_eq!(
        got,
        vec![
            (labels(&[("job", "a")]), 0.03),
            (labels(&[("job", "b")]), 0.1)
        ]
    );
    let got = vector(instant(&db, "sum by (job) (errors) / on(job) requests", 0));
    assert_eq!(
        got,
        vec![
            (labels(&[("job", "a")]), 0.04),
            (labels(&[("job", "b")]), 0.1)
        ]
    );
}

#[test]
fn many_to_one_without_group_modifier_is_refused() {
    let db = matching_db();
    let err = engine()
        .instant(&db.db, "errors / on(job) requests", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
    );
    // Two series with one signature on the "one" side.
    let err = engine()
        .instant(&db.db, "requests / on(job) group_left errors", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for the match group {job=\"a\"} on the right hand-side of the \
         operation: [{__name__=\"errors\", code=\"404\", job=\"a\"}, {__name__=\"errors\", \
         code=\"500\", job=\"a\"}];many-to-many matching not allowed: matching labels must be \
         unique on one side"
    );
    let err = engine()
        .instant(&db.db, "requests / on(job) group_right errors", 0)
        .map(vector)
        .unwrap();
    assert_eq!(err.len(), 3);
}

#[test]
fn group_left_copies_included_labels_from_the_one_side() {
    let db = matching_db();
    let got = vector(instant(&db, "errors * on(job) group_left(team) owner", 0));
    assert_eq!(
        got,
        vec![
            (labels(&[("code", "404"), ("job", "a"), ("team", "x")]), 1.0),
            (labels(&[("code", "500"), ("job", "a"), ("team", "x")]), 3.0),
        ]
    );
}

#[test]
fn metric_name_dropped_by_arithmetic_and_bool_kept_by_filters() {
    let db = matching_db();
    let got = vector(instant(&db, "requests > 60", 0));
    assert_eq!(
        got,
        vec![(labels(&[("__name__", "requests"), ("job", "a")]), 100.0)]
    );
    let got = vector(instant(&db, "requests > bool 60", 0));
    assert_eq!(
        got,
        vec![
            (labels(&[("job", "a")]), 1.0),
            (labels(&[("job", "b")]), 0.0)
        ]
    );
    let got = vector(instant(&db, "requests * 2", 0));
    assert_eq!(got[0].0, labels(&[("job", "a")]));
    // Scalar on the left of a filter: the vector's value is kept.
    let got = vector(instant(&db, "60 < requests", 0));
    assert_eq!(
        got,
        vec![(labels(&[("__name__", "requests"), ("job", "a")]), 100.0)]
    );
    // Set operators keep the left side's series whole.
    let got = vector(instant(&db, "requests and on(job) errors{code=\"404\"}", 0));
    assert_eq!(
        got,
        vec![(labels(&[("__name__", "requests"), ("job", "a")]), 100.0)]
    );
}

#[test]
fn aggregation_by_and_without() {
    let db = matching_db();
    let got = vector(instant(&db, "sum by (code) (errors)", 0));
    assert_eq!(
        got,
        vec![
            (labels(&[("code", "404")]), 1.0),
            (labels(&[("code", "500")]), 8.0)
        ]
    );
    let got = vector(instant(&db, "max without (code) (errors)", 0));
    assert_eq!(
        got,
        vec![
            (labels(&[("job", "a")]), 3.0),
            (labels(&[("job", "b")]), 5.0)
        ]
    );
    // Values 3, 1, 5: mean 3, population variance (0 + 4 + 4)/3.
    let got = vector(instant(&db, "stdvar(errors)", 0));
    assert!(close(got[0].1, 8.0 / 3.0));
    let got = vector(instant(&db, "quantile(0.5, errors)", 0));
    assert_eq!(got[0].1, 3.0);
    let got = vector(instant(&db, "count_values(\"v\", errors)", 0));
    assert_eq!(
        got,
        vec![
            (labels(&[("v", "1")]), 1.0),
            (labels(&[("v", "3")]), 1.0),
            (labels(&[("v", "5")]), 1.0)
        ]
    );
}

#[test]
fn topk_and_bottomk_return_instant_results_in_rank_order() {
    let db = matching_db();
    let got = ordered(instant(&db, "topk(2, errors)", 0));
    assert_eq!(got.iter().map(|s| s.1).collect::<Vec<_>>(), vec![5.0, 3.0]);
    assert_eq!(got[0].0.get("__name__"), Some("errors"));
    let got = ordered(instant(&db, "bottomk(2, errors)", 0));
    assert_eq!(got.iter().map(|s| s.1).collect::<Vec<_>>(), vec![1.0, 3.0]);
    let got = vector(instant(&db, "topk by (job) (1, errors)", 0));
    assert_eq!(got.iter().map(|s| s.1).collect::<Vec<_>>(), vec![3.0, 5.0]);
}

#[test]
fn subquery_steps_are_absolute_multiples_of_the_step() {
    // x = minutes since 0, every minute.
    let values: Vec<f64> = (0..30).map(f64::from).collect();
    let db = load(&[(labels(&[("__name__", "x")]), every(M, &values))]);
    // At 11m, [5m:2m] evaluates at 8m and 10m (multiples of 2m in (6m, 11m]).
    let got = matrix(instant(&db, "x[5m:2m]", 11 * M));
    assert_eq!(got[0].1, vec![(8 * M, 8.0), (10 * M, 10.0)]);
    assert_eq!(
        vector(instant(&db, "sum_over_time(x[5m:2m])", 11 * M))[0].1,
        18.0
    );
    // With an offset the grid moves with the window: (3m, 8m] → 4m, 6m, 8m.
    assert_eq!(
        vector(instant(&db, "sum_over_time(x[5m:2m] offset 3m)", 11 * M))[0].1,
        18.0
    );
    // Without a step the default 1m applies.
    assert_eq!(
        vector(instant(&db, "count_over_time(x[5m:])", 11 * M))[0].1,
        5.0
    );
}

#[test]
fn range_query_has_a_point_at_each_step_with_a_value() {
    let db = load(&[
        (
            labels(&[("__name__", "x"), ("i", "1")]),
            every(M, &[1.0, 2.0, 3.0]),
        ),
        (
            labels(&[("__name__", "x"), ("i", "2")]),
            vec![(10 * M, 7.0)],
        ),
    ]);
    let got = matrix(range(&db, "x * 10", 0, 10 * M, 5 * M));
    assert_eq!(
        got,
        vec![
            (labels(&[("i", "1")]), vec![(0, 10.0), (5 * M, 30.0)]),
            (labels(&[("i", "2")]), vec![(10 * M, 70.0)]),
        ]
    );
    let got = matrix(range(&db, "time()", 0, 2 * M, M));
    assert_eq!(
        got,
        vec![(Labels::empty(), vec![(0, 0.0), (M, 60.0), (2 * M, 120.0)])]
    );
}

#[test]
fn sort_orders_an_instant_result_and_warns_in_a_range_query() {
    let db = matching_db();
    let got = ordered(instant(&db, "sort_desc(errors)", 0));
    assert_eq!(
        got.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![5.0, 3.0, 1.0]
    );
    let got = ordered(instant(&db, "sort_by_label(errors, \"code\", \"job\")", 0));
    let codes: Vec<_> = got
        .iter()
        .map(|s| (s.0.get("code").unwrap(), s.0.get("job").unwrap()))
        .collect();
    assert_eq!(codes, vec![("404", "a"), ("500", "a"), ("500", "b")]);
    let r = range(&db, "sort(errors)", 0, M, M);
    assert_eq!(
        r.warnings,
        vec![
            "PromQL warning: sort is ineffective for range queries since results are always \
             ordered by labels (1:1)"
                .to_string()
        ]
    );
}

#[test]
fn absent_derives_labels_from_equality_matchers() {
    let db = matching_db();
    let got = vector(instant(
        &db,
        "absent(nonexistent{job=\"a\", code=~\"5..\", env=\"p\"})",
        0,
    ));
    assert_eq!(got, vec![(labels(&[("env", "p"), ("job", "a")]), 1.0)]);
    assert!(vector(instant(&db, "absent(errors)", 0)).is_empty());
    let got = vector(instant(
        &db,
        "absent_over_time(nonexistent{job=\"a\"}[5m])",
        0,
    ));
    assert_eq!(got, vec![(labels(&[("job", "a")]), 1.0)]);
}

#[test]
fn vector_scalar_and_timestamp_functions() {
    let db = load(&[(labels(&[("__name__", "x")]), vec![(30 * S, 4.0)])]);
    assert_eq!(
        instant(&db, "scalar(x) * 2", M).value,
        Value::Scalar { t: M, v: 8.0 }
    );
    assert_eq!(
        vector(instant(&db, "vector(3)", 0)),
        vec![(Labels::empty(), 3.0)]
    );
    // timestamp() of a selector is the sample's time, not the evaluation time.
    assert_eq!(
        vector(instant(&db, "timestamp(x)", M)),
        vec![(Labels::empty(), 30.0)]
    );
    // No series (or several): NaN.
    match instant(&db, "scalar(nonexistent)", M).value {
        Value::Scalar { t, v } => assert!(t == M && v.is_nan()),
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn too_many_samples_fails_with_prometheus_wording() {
    let db = load(&[(labels(&[("__name__", "x")]), every(M, &[1.0; 20]))]);
    let e = Engine::new(QueryOpts {
        max_samples: 10,
        ..QueryOpts::default()
    });
    let err = e.range(&db.db, "x", 0, 19 * M, M).unwrap_err();
    assert_eq!(err, QueryError::TooManySamples { limit: 10 });
    assert_eq!(
        err.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert!(e.range(&db.db, "x", 0, 9 * M, M).is_ok());
}

#[test]
fn too_many_points_per_series_is_refused_before_evaluation() {
    let db = load(&[(labels(&[("__name__", "x")]), vec![(0, 1.0)])]);
    let err = engine().range(&db.db, "x", 0, 11_001 * S, S).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query \
         resolution (?step=XX)"
    );
    assert!(engine().range(&db.db, "x", 0, 11_000 * S, S).is_ok());
}

#[test]
fn timeout_and_cancellation_stop_a_query() {
    let db = load(&[(labels(&[("__name__", "x")]), vec![(0, 1.0)])]);
    let e = Engine::new(QueryOpts {
        timeout: Duration::ZERO,
        ..QueryOpts::default()
    });
    assert_eq!(e.instant(&db.db, "x", 0).unwrap_err(), QueryError::Timeout);
    let cancel = Cancel::new();
    cancel.cancel();
    let err = engine().instant_with(&db.db, "x", 0, &cancel).unwrap_err();
    assert_eq!(err, QueryError::Canceled);
    assert_eq!(
        err.to_string(),
        "query was canceled in expression evaluation"
    );
}

#[test]
fn duplicate_labelset_after_name_drop_is_an_error() {
    let db = load(&[
        (labels(&[("__name__", "a"), ("i", "1")]), vec![(0, 1.0)]),
        (labels(&[("__name__", "b"), ("i", "1")]), vec![(0, 2.0)]),
    ]);
    let err = engine()
        .instant(&db.db, "abs({__name__=~\"a|b\"})", 0)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}
