//! The sample statistics of the API's `stats` parameter: what a selector counts per step, how
//! overlapping windows count in `total_queryable` but once in `read`, and that a subquery's inner
//! reads count in the totals only.

use super::*;
use crate::engine::{Engine, SampleStats};

/// `a` with a sample every minute from 0 to 10 m.
fn minutely() -> Fixture {
    fixture(&[(
        ls(&[("__name__", "a")]),
        (0..=10).map(|i| (i * M, i as f64)).collect(),
    )])
}

fn engine() -> Engine {
    Engine::new(QueryOpts {
        per_step_stats: true,
        ..QueryOpts::default()
    })
}

fn range_stats(f: &Fixture, q: &str, end: i64) -> SampleStats {
    engine().range(&f.db, q, 0, end, M).unwrap().stats.samples
}

#[test]
fn instant_selector_counts_one_sample_per_series_and_step() {
    let f = minutely();
    let s = range_stats(&f, "a", 4 * M);
    assert_eq!((s.total_queryable, s.read), (5, 5));
    let per_step = s.per_step.unwrap();
    assert_eq!(per_step.len(), 5);
    assert!(per_step.iter().all(|&(_, q, r)| q == 1 && r == 1));
    assert_eq!(per_step[4].0, 4 * M);
    assert!(
        s.peak >= 5,
        "all five points are held at the end, got {}",
        s.peak
    );
}

#[test]
fn overlapping_windows_count_whole_as_queryable_but_each_sample_once_as_read() {
    let f = minutely();
    let s = range_stats(&f, "rate(a[3m])", 4 * M);
    // Windows (ts - 3m, ts]: {0}, {0,1}, {0,1,2}, {1,2,3}, {2,3,4}.
    assert_eq!(s.total_queryable, 1 + 2 + 3 + 3 + 3);
    assert_eq!(s.read, 5);
    let per_step: Vec<(u64, u64)> = s.per_step.unwrap().iter().map(|p| (p.1, p.2)).collect();
    assert_eq!(per_step, vec![(1, 1), (2, 1), (3, 1), (3, 1), (3, 1)]);
}

#[test]
fn totals_are_kept_without_per_step_counts() {
    let f = minutely();
    let r = Engine::new(QueryOpts::default())
        .instant(&f.db, "a[2m]", 5 * M)
        .unwrap();
    assert_eq!(r.stats.samples.total_queryable, 2);
    assert_eq!(r.stats.samples.read, 2);
    assert_eq!(r.stats.samples.per_step, None);
}

#[test]
fn subquery_reads_count_in_totals_but_not_per_step() {
    let f = minutely();
    let r = engine()
        .instant(&f.db, "max_over_time(a[2m:1m])", 5 * M)
        .unwrap();
    let s = r.stats.samples;
    // The inner `a` at 4m and 5m (2 read), then the outer window over those 2 points.
    assert_eq!((s.total_queryable, s.read), (4, 2));
    assert_eq!(s.per_step, Some(vec![(5 * M, 2, 0)]));
}
