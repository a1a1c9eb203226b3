//! Functions that need the evaluator beyond value mapping: the classic-histogram functions
//! (grouping bucket series by labels minus `le`) and `info` (joining info series on `instance` and
//! `job`).

use ember::{Labels, Matcher};

use super::*;
use crate::engine::plan::At;

fn bucket(job: &str, le: &str, v: f64) -> (Labels, Vec<(i64, f64)>) {
    (
        ls(&[("__name__", "h_bucket"), ("job", job), ("le", le)]),
        vec![(0, v)],
    )
}

fn label_selector(matchers: Vec<Matcher>) -> Node {
    Node::Vector(Selector {
        matchers,
        ..sel("unused", &[])
    })
}

#[test]
fn histogram_fraction_is_computed_per_histogram_and_skips_bad_le() {
    let f = fixture(&[
        bucket("a", "1", 40.0),
        bucket("a", "2", 80.0),
        bucket("a", "+Inf", 100.0),
        bucket("b", "1", 10.0),
        bucket("b", "+Inf", 10.0),
        bucket("b", "one", 5.0),
    ]);
    let p = call(
        "histogram_fraction",
        vec![Node::num(0.0), Node::num(1.0), vs("h_bucket")],
    );
    let r = run(&f, &p, 0, 0, 0).unwrap();
    assert_eq!(
        r.warnings,
        vec!["PromQL warning: bucket label \"le\" is missing or has a malformed value of \"one\""]
    );
    assert_eq!(
        vector(r),
        vec![(ls(&[("job", "a")]), 0.4), (ls(&[("job", "b")]), 1.0)]
    );
}

#[test]
fn histogram_quantiles_labels_each_quantile_in_openmetrics_format() {
    let f = fixture(&[
        bucket("a", "1", 40.0),
        bucket("a", "2", 80.0),
        bucket("a", "+Inf", 100.0),
    ]);
    let quantiles = |qs: &[f64]| {
        let mut args = vec![vs("h_bucket"), Node::string("q")];
        args.extend(qs.iter().map(|&q| Node::num(q)));
        call("histogram_quantiles", args)
    };
    let r = run(&f, &quantiles(&[0.5, 1.0, 2.0]), 0, 0, 0).unwrap();
    assert_eq!(
        r.warnings,
        vec!["PromQL warning: quantile value should be between 0 and 1, got 2"]
    );
    assert_eq!(
        vector(r),
        vec![
            (ls(&[("job", "a"), ("q", "0.5")]), 1.25),
            (ls(&[("job", "a"), ("q", "1.0")]), 2.0),
            (ls(&[("job", "a"), ("q", "2.0")]), f64::INFINITY),
        ]
    );
    // The same quantile twice gives one label set twice.
    let err = run(&f, &quantiles(&[0.5, 0.5]), 0, 0, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}

#[test]
fn info_adds_data_labels_of_the_info_series_with_the_same_instance_and_job() {
    let f = fixture(&[
        (
            ls(&[("__name__", "http"), ("instance", "a"), ("job", "j")]),
            vec![(0, 1.0)],
        ),
        (
            ls(&[("__name__", "http"), ("instance", "b"), ("job", "j")]),
            vec![(0, 2.0)],
        ),
        (
            ls(&[
                ("__name__", "target_info"),
                ("instance", "a"),
                ("job", "j"),
                ("v", "1.2"),
            ]),
            vec![(0, 1.0)],
        ),
    ]);
    let r = run(&f, &call("info", vec![vs("http")]), 0, 0, 0).unwrap();
    assert_eq!(
        vector(r),
        vec![
            (
                ls(&[
                    ("__name__", "http"),
                    ("instance", "a"),
                    ("job", "j"),
                    ("v", "1.2")
                ]),
                1.0
            ),
            (
                ls(&[("__name__", "http"), ("instance", "b"), ("job", "j")]),
                2.0
            ),
        ]
    );
    // A data matcher rejecting the empty value drops series no info series matched.
    let p = call(
        "info",
        vec![
            vs("http"),
            label_selector(vec![Matcher::regex("v", ".+").unwrap()]),
        ],
    );
    let r = run(&f, &p, 0, 0, 0).unwrap();
    assert_eq!(
        vector(r),
        vec![(
            ls(&[
                ("__name__", "http"),
                ("instance", "a"),
                ("job", "j"),
                ("v", "1.2")
            ]),
            1.0
        )]
    );
}

#[test]
fn info_takes_the_newest_info_sample_and_refuses_a_tie() {
    let info = |v: &str, samples: Vec<(i64, f64)>| {
        (
            ls(&[("__name__", "target_info"), ("instance", "a"), ("v", v)]),
            samples,
        )
    };
    let f = fixture(&[
        (
            ls(&[("__name__", "m"), ("instance", "a")]),
            vec![(0, 1.0), (M, 2.0)],
        ),
        info("old", vec![(0, 1.0)]),
        info("new", vec![(M, 1.0)]),
    ]);
    let r = run(&f, &call("info", vec![vs("m")]), 0, M, M).unwrap();
    assert_eq!(
        matrix(r),
        vec![
            (
                ls(&[("__name__", "m"), ("instance", "a"), ("v", "new")]),
                vec![(M, 2.0)]
            ),
            (
                ls(&[("__name__", "m"), ("instance", "a"), ("v", "old")]),
                vec![(0, 1.0)]
            ),
        ]
    );
    let f = fixture(&[
        (ls(&[("__name__", "m"), ("instance", "a")]), vec![(0, 1.0)]),
        info("x", vec![(0, 1.0)]),
        info("y", vec![(0, 1.0)]),
    ]);
    let err = run(&f, &call("info", vec![vs("m")]), 0, 0, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "found duplicate series for info metric: existing {__name__=\"target_info\", \
         instance=\"a\", v=\"x\"} @ 0, new {__name__=\"target_info\", instance=\"a\", v=\"y\"} @ 0"
    );
}

#[test]
fn info_refuses_different_values_for_one_label_from_two_info_metrics() {
    let f = fixture(&[
        (ls(&[("__name__", "m"), ("job", "j")]), vec![(0, 1.0)]),
        (
            ls(&[("__name__", "a_info"), ("job", "j"), ("x", "1")]),
            vec![(0, 1.0)],
        ),
        (
            ls(&[("__name__", "b_info"), ("job", "j"), ("x", "2")]),
            vec![(0, 1.0)],
        ),
    ]);
    let p = call(
        "info",
        vec![
            vs("m"),
            label_selector(vec![Matcher::regex("__name__", ".+_info").unwrap()]),
        ],
    );
    let err = run(&f, &p, 0, 0, 0).unwrap_err();
    assert_eq!(err.to_string(), "conflicting label: x");
}

#[test]
fn info_looks_at_info_series_as_of_the_selectors_at_time() {
    let f = fixture(&[
        (
            ls(&[("__name__", "m"), ("job", "j")]),
            vec![(0, 1.0), (10 * M, 2.0)],
        ),
        (
            ls(&[("__name__", "target_info"), ("job", "j"), ("v", "1")]),
            vec![(0, 1.0)],
        ),
    ]);
    let mut pinned = sel("m", &[]);
    pinned.at = Some(At::Time(0));
    let p = call("info", vec![Node::Vector(pinned)]);
    // At 10m the info sample is beyond the lookback, but the data is read as of 0, and so is it.
    let r = run(&f, &p, 10 * M, 10 * M, 0).unwrap();
    assert_eq!(
        vector(r),
        vec![(ls(&[("__name__", "m"), ("job", "j"), ("v", "1")]), 1.0)]
    );
}

/// Enough series for range functions to run on several threads, each a counter with its own
/// resets, gaps and stale markers.
fn many_counters() -> Vec<(Labels, Vec<(i64, f64)>)> {
    (0..100)
        .map(|i| {
            let id = format!("{i:03}");
            let samples = (0..200i64)
                .filter(|t| (t + i) % 37 != 0)
                .map(|t| {
                    let v = if t == 150 && i % 9 == 0 {
                        stale()
                    } else {
                        ((t * (i + 1)) % (50 + i * 7)) as f64 + 0.25
                    };
                    (t * 15_000 + i, v)
                })
                .collect();
            (ls(&[("__name__", "c"), ("id", &id)]), samples)
        })
        .collect()
}

#[test]
fn range_functions_over_many_series_equal_each_series_alone() {
    let f = fixture(&many_counters());
    for name in ["rate", "increase", "resets", "max_over_time"] {
        let all = matrix(run(&f, &call(name, vec![msel("c", 5 * M)]), 0, 50 * M, M).unwrap());
        assert_eq!(all.len(), 100, "{name}");
        for (labels, points) in all {
            let id = labels.get("id").unwrap().to_string();
            let one = Node::Matrix {
                sel: sel("c", &[("id", &id)]),
                range: 5 * M,
            };
            let alone = matrix(run(&f, &call(name, vec![one]), 0, 50 * M, M).unwrap());
            let bits =
                |p: &[(i64, f64)]| p.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
            assert_eq!(alone.len(), 1);
            assert_eq!(bits(&alone[0].1), bits(&points), "{name} {id}");
        }
    }
}

#[test]
fn range_functions_over_many_series_keep_the_sample_limit() {
    let f = fixture(&many_counters());
    let p = call("rate", vec![msel("c", 5 * M)]);
    let total: usize = matrix(run(&f, &p, 0, 50 * M, M).unwrap())
        .iter()
        .map(|s| s.1.len())
        .sum();
    let with_limit = |max_samples| {
        let opts = QueryOpts {
            max_samples,
            ..QueryOpts::default()
        };
        run_opts(&f, &p, 0, 50 * M, M, &opts)
    };
    assert!(with_limit(total).is_ok());
    assert!(matches!(
        with_limit(total - 1),
        Err(QueryError::TooManySamples { .. })
    ));
    assert!(matches!(
        with_limit(total / 2),
        Err(QueryError::TooManySamples { .. })
    ));
}

#[test]
fn rate_of_series_differing_only_in_metadata_labels_is_a_duplicate_labelset() {
    let s = |ty: &str| {
        (
            ls(&[("__name__", "x"), ("__type__", ty), ("a", "1")]),
            (0..10).map(|i| (i * 15_000, i as f64)).collect(),
        )
    };
    let f = fixture(&[s("counter"), s("gauge")]);
    let err = run(
        &f,
        &call("rate", vec![msel("x", 5 * M)]),
        150_000,
        150_000,
        0,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vector cannot contain metrics with the same labelset"
    );
}
