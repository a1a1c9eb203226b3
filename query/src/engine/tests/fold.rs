//! Aggregations folded into a range function's series loop (`engine::fold`): the same series,
//! bits, statistics, annotations and errors as aggregating the range function's output, on data
//! large enough for the threads to share the groups.

use super::*;
use crate::engine::Engine;
use crate::engine::fold::FOLDED;

const S: i64 = 15_000;
const END: i64 = 400 * S;

/// 96 series of `req_total` (a counter name) and `req` (not one): 3 jobs × 8 instances × 2
/// `le` values, 400 samples each with jitter, gaps, counter resets and a NaN.
fn data() -> Fixture {
    let mut series = Vec::new();
    for name in ["req_total", "req"] {
        for job in ["a", "b", "c"] {
            for inst in 0..8 {
                for le in ["0.5", "+Inf"] {
                    let seed = (job.as_bytes()[0] as i64) * 31 + inst * 7 + le.len() as i64;
                    let mut v = 0.0;
                    let samples: Vec<(i64, f64)> = (0..400)
                        .filter(|i| (i + seed) % 37 != 0)
                        .map(|i| {
                            v = if (i * seed) % 97 == 5 {
                                1.0
                            } else {
                                v + ((i * seed) % 13) as f64 * 0.25
                            };
                            let value = if (i + seed) % 211 == 0 { f64::NAN } else { v };
                            (i * S + (i * seed) % 700, value)
                        })
                        .collect();
                    let inst = inst.to_string();
                    series.push((
                        ls(&[
                            ("__name__", name),
                            ("job", job),
                            ("instance", &inst),
                            ("le", le),
                        ]),
                        samples,
                    ));
                }
            }
        }
    }
    fixture(&series)
}

fn engine() -> Engine {
    Engine::new(QueryOpts {
        per_step_stats: true,
        ..QueryOpts::default()
    })
}

/// A range query's matrix with values as bits (NaNs as one), its annotations and read counts.
type Outcome = (
    Vec<(Labels, Vec<(i64, u64)>)>,
    Vec<String>,
    Vec<String>,
    (u64, u64),
    Option<Vec<(i64, u64, u64)>>,
);

fn outcome(f: &Fixture, q: &str) -> Outcome {
    let r = engine()
        .range(&f.db, q, 100 * S, END, 4 * S)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    let bits = |v: f64| if v.is_nan() { u64::MAX } else { v.to_bits() };
    let s = &r.stats.samples;
    let stats = (s.total_queryable, s.read);
    let per_step = s.per_step.clone();
    let (warnings, infos) = (r.warnings.clone(), r.infos.clone());
    let m = matrix(r)
        .into_iter()
        .map(|(l, pts)| (l, pts.into_iter().map(|(t, v)| (t, bits(v))).collect()))
        .collect();
    (m, warnings, infos, stats, per_step)
}

/// Runs `q` folded and `unfolded` (the same query with the range function's output multiplied by
/// one, which no aggregation folds into) and checks the fold happened and changed nothing.
fn same_as_unfolded(f: &Fixture, q: &str, unfolded: &str) {
    let before = FOLDED.with(|n| n.get());
    let folded = outcome(f, q);
    assert_eq!(FOLDED.with(|n| n.get()), before + 1, "{q} was not folded");
    let plain = outcome(f, unfolded);
    assert_eq!(
        FOLDED.with(|n| n.get()),
        before + 1,
        "{unfolded} was folded"
    );
    assert!(!folded.0.is_empty(), "{q}: empty result");
    assert_eq!(folded, plain, "{q}");
}

#[test]
fn folded_aggregations_give_the_series_bits_and_statistics_of_the_unfolded_path() {
    let f = data();
    // `rate(req[1m])`: a name that is not a counter's, which gives an info per series.
    let fns = [
        "rate(req_total[1m])",
        "increase(req_total[2m])",
        "rate(req[1m])",
        "delta(req[90s])",
        "max_over_time(req_total[5m])",
        "quantile_over_time(0.9, req[5m])",
        "predict_linear(req_total[5m], 60)",
    ];
    let aggs = [
        "sum by (job)",
        "sum by (job, le)",
        "sum without (instance)",
        "sum",
        "sum by (__name__)",
        "avg by (le)",
        "count by (job)",
        "min without (le)",
        "max by (instance)",
        "group by (job)",
        "stddev by (job)",
        "stdvar by (le)",
    ];
    for inner in fns {
        for agg in aggs {
            let q = format!("{agg} ({inner})");
            let unfolded = format!("{agg} ({inner} * 1)");
            same_as_unfolded(&f, &q, &unfolded);
        }
    }
}

#[test]
fn a_folded_aggregation_fails_at_the_sample_limit_as_the_unfolded_one() {
    let f = data();
    // The rate output alone (48 series × 76 steps) is over the limit; the input windows are not.
    let limited = Engine::new(QueryOpts {
        max_samples: 3_000,
        ..QueryOpts::default()
    });
    let run = |q: &str| {
        limited
            .range(&f.db, q, 100 * S, END, 4 * S)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let before = FOLDED.with(|n| n.get());
    let folded = run("sum by (job) (rate(req_total[1m]))");
    assert_eq!(FOLDED.with(|n| n.get()), before + 1);
    let plain = run("sum by (job) (rate(req_total[1m]) * 1)");
    assert!(folded.is_err(), "the limit must be hit");
    assert_eq!(folded, plain);
}

#[test]
fn aggregations_the_fold_cannot_give_exactly_are_left_to_the_aggregation() {
    let f = data();
    let before = FOLDED.with(|n| n.get());
    // A parameter, a name-keeping function, a subquery, delayed name removal.
    for q in [
        "topk by (job) (2, rate(req_total[1m]))",
        "quantile by (job) (0.5, rate(req_total[1m]))",
        "sum by (job) (last_over_time(req_total[1m]))",
        "sum by (job) (rate(req_total[1m:15s]))",
    ] {
        engine().range(&f.db, q, 100 * S, END, 4 * S).unwrap();
    }
    Engine::new(delayed())
        .range(
            &f.db,
            "sum by (job) (rate(req_total[1m]))",
            100 * S,
            END,
            4 * S,
        )
        .unwrap();
    assert_eq!(FOLDED.with(|n| n.get()), before);
}
