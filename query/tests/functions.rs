//! The PromQL function library against values worked out by hand from Prometheus' rules (the
//! arithmetic is in the comments), including the edge cases where Prometheus' behaviour is
//! surprising.

use ember_index::Labels;
use ember_query::functions::aggregate::{
    AggOp, Aggregator, Select, Selection, aggregate, k_from_param, limit_ratio_keeps,
};
use ember_query::functions::annotations::{Annotation, Annotations};
use ember_query::functions::histogram::{
    Bucket, bucket_fraction, bucket_quantile, histogram_quantile, parse_le,
};
use ember_query::functions::labels::{LabelReplace, label_join, label_replace};
use ember_query::functions::over_time::*;
use ember_query::functions::quantile::quantile;
use ember_query::functions::rate::{
    Extension, anchored_window, changes, extended_rate, extrapolated_rate, idelta, irate, resets,
};
use ember_query::functions::regression::{deriv, predict_linear};
use ember_query::functions::smoothing::{double_exponential_smoothing, holt_winters};
use ember_query::functions::{FunctionError, RangeCtx};

const S: i64 = 1000;

fn approx(actual: f64, expected: f64) {
    let ok = (actual - expected).abs() <= 1e-12 * expected.abs().max(1.0);
    assert!(ok, "expected {expected}, got {actual}");
}

/// Samples `(t_seconds, value)`.
fn at(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    points.iter().map(|&(t, v)| (t * S, v)).collect()
}

/// A window `(end - range, end]` in seconds, evaluated at `end`.
fn window(end_s: i64, range_s: i64) -> RangeCtx {
    RangeCtx::new(end_s * S, range_s * S, 0)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied()).unwrap()
}

// ---- rate, increase, delta -------------------------------------------------------------------

#[test]
fn rate_needs_two_samples() {
    let ctx = window(60, 60);
    assert_eq!(extrapolated_rate(&[], &ctx, true, true), None);
    assert_eq!(extrapolated_rate(&at(&[(30, 5.0)]), &ctx, true, true), None);
}

#[test]
fn increase_extrapolates_to_a_near_start_but_stops_at_the_counter_zero_point() {
    // 1,2,3,4 at 15..60 s in (0, 60]: increase 3 over 45 s, spacing 15 s (threshold 16.5 s).
    // To start: 15 s < 16.5 → all the way; zero point 45 × 1/3 = 15 s, not shorter. To end: 0.
    // Factor (45 + 15) / 45 → 3 × 4/3 = 4; rate 4 / 60.
    let s = at(&[(15, 1.0), (30, 2.0), (45, 3.0), (60, 4.0)]);
    let ctx = window(60, 60);
    approx(extrapolated_rate(&s, &ctx, true, false).unwrap(), 4.0);
    approx(extrapolated_rate(&s, &ctx, true, true).unwrap(), 4.0 / 60.0);
}

#[test]
fn counter_start_extrapolation_is_capped_where_the_counter_would_be_zero() {
    // 1, 11, 21 at 10, 20, 30 s in (0, 30]: to start 10 s (< 11 s threshold), but the line through
    // the samples hits zero 20 × 1/20 = 1 s before the first one. Factor (20 + 1 + 0)/20 = 1.05.
    let s = at(&[(10, 1.0), (20, 11.0), (30, 21.0)]);
    approx(
        extrapolated_rate(&s, &window(30, 30), true, false).unwrap(),
        21.0,
    );
    // delta (a gauge) has no such cap: factor (20 + 10)/20 → 30.
    approx(
        extrapolated_rate(&s, &window(30, 30), false, false).unwrap(),
        30.0,
    );
}

#[test]
fn samples_far_from_both_edges_extrapolate_half_a_spacing() {
    // 10, 20, 30 at 50, 60, 70 s in (0, 120]: 50 s to each edge ≥ 11 s, so 5 s each way; zero point
    // 20 × 10/20 = 10 s is further than 5 s. Factor (20 + 5 + 5)/20 = 1.5 → 30; rate 30/120.
    let s = at(&[(50, 10.0), (60, 20.0), (70, 30.0)]);
    let ctx = window(120, 120);
    approx(extrapolated_rate(&s, &ctx, true, false).unwrap(), 30.0);
    approx(extrapolated_rate(&s, &ctx, true, true).unwrap(), 0.25);
}

#[test]
fn end_extrapolation_goes_all_the_way_when_the_last_sample_is_near_the_edge() {
    // 0, 10, 20 at 30, 40, 50 s in (0, 52]: to start 30 s → 5 s (and the zero point is 0 s away:
    // the first value is 0), to end 2 s < 11 s → 2 s. Factor (20 + 0 + 2)/20 → 22.
    let s = at(&[(30, 0.0), (40, 10.0), (50, 20.0)]);
    approx(
        extrapolated_rate(&s, &window(52, 52), true, false).unwrap(),
        22.0,
    );
}

#[test]
fn counter_resets_add_back_the_value_before_the_drop() {
    // 5, 10, 2, 6 at 10..40 s in (0, 40]: raw 6 − 5 = 1, plus 10 lost at the reset → 11.
    // To start 10 s < 11 s; zero point 30 × 5/11 ≈ 13.6 s is further. Factor 40/30 → 14.666…
    let s = at(&[(10, 5.0), (20, 10.0), (30, 2.0), (40, 6.0)]);
    approx(
        extrapolated_rate(&s, &window(40, 40), true, false).unwrap(),
        11.0 * 40.0 / 30.0,
    );
}

#[test]
fn reset_to_a_value_above_zero_counts_the_whole_new_value() {
    // 10, 20, 15 at 10, 20, 30 s: the counter restarted from 0 and reached 15, so the increase is
    // (20 − 10) + 15 = 25 = (15 − 10) + 20. Zero point 20 × 10/25 = 8 s < 10 s: factor 28/20 → 35.
    let s = at(&[(10, 10.0), (20, 20.0), (30, 15.0)]);
    approx(
        extrapolated_rate(&s, &window(30, 30), true, false).unwrap(),
        35.0,
    );
}

#[test]
fn delta_of_negative_gauge_values() {
    // −1, −3, −2, −5 at 15..60 s: −5 − (−1) = −4, factor (45 + 15)/45 → −16/3.
    let s = at(&[(15, -1.0), (30, -3.0), (45, -2.0), (60, -5.0)]);
    approx(
        extrapolated_rate(&s, &window(60, 60), false, false).unwrap(),
        -16.0 / 3.0,
    );
}

#[test]
fn negative_first_counter_value_skips_the_zero_point_cap() {
    // −10, 0, 10 at 10, 20, 30 s: increase 20 (no resets), to start 10 s kept since the first
    // value is negative. Factor 30/20 → 30.
    let s = at(&[(10, -10.0), (20, 0.0), (30, 10.0)]);
    approx(
        extrapolated_rate(&s, &window(30, 30), true, false).unwrap(),
        30.0,
    );
}

#[test]
fn nan_and_inf_samples_propagate_through_rate() {
    let s = at(&[(10, 1.0), (20, f64::NAN), (30, 3.0)]);
    // 3 − 1 = 2 with no detectable reset (NaN compares false), so NaN only enters via values:
    // the result is finite here, as in Prometheus.
    approx(
        extrapolated_rate(&s, &window(30, 30), true, false).unwrap(),
        3.0,
    );
    let s = at(&[(10, 1.0), (20, 2.0), (30, f64::NAN)]);
    assert!(
        extrapolated_rate(&s, &window(30, 30), true, true)
            .unwrap()
            .is_nan()
    );
    let s = at(&[(10, 1.0), (20, f64::INFINITY)]);
    assert_eq!(
        extrapolated_rate(&s, &window(20, 20), false, false),
        Some(f64::INFINITY)
    );
}

#[test]
fn rate_divides_by_the_range_not_the_offset_window() {
    // offset 1 m: window (60, 120] at eval time 180 s.
    let ctx = RangeCtx::new(180 * S, 60 * S, 60 * S);
    assert_eq!((ctx.range_start, ctx.range_end), (60 * S, 120 * S));
    let s = at(&[(75, 1.0), (90, 2.0), (105, 3.0), (120, 4.0)]);
    approx(extrapolated_rate(&s, &ctx, true, true).unwrap(), 4.0 / 60.0);
}

#[test]
fn anchored_and_smoothed_increase_use_edge_values_without_extrapolation() {
    // 1..5 then 9..13 every 15 s (a reset-free jump of +4 between 60 s and 75 s).
    let all: Vec<(i64, f64)> = [1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 10.0, 11.0, 12.0, 13.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 15 * S, v))
        .collect();
    let lookback = 300 * S;
    let run = |t: i64, ext: Extension| {
        let ctx = RangeCtx::new(t, 60 * S, 0);
        let hi = if ext == Extension::Smoothed {
            t + lookback
        } else {
            t
        };
        let w: Vec<_> = all
            .iter()
            .copied()
            .filter(|p| p.0 > ctx.range_start - lookback && p.0 <= hi)
            .collect();
        extended_rate(&w, &ctx, ext, true, false).unwrap()
    };
    // Anchored at 80 s: window (20, 80]; the value in force at 20 s is 2 (sampled at 15 s), the
    // last is 9 (75 s): 9 − 2 = 7.
    approx(run(80 * S, Extension::Anchored), 7.0);
    // Smoothed at 65 s: left edge 5 s interpolates 1→2 at 1/3; right edge 65 s interpolates 5→9
    // at 1/3 → 5 + 4/3. Increase (5 + 4/3) − (1 + 1/3) = 5.
    approx(run(65 * S, Extension::Smoothed), 5.0);
}

#[test]
fn anchored_window_starts_at_the_value_in_force() {
    let s = at(&[(0, 1.0), (10, 2.0), (30, 3.0)]);
    let ctx = window(30, 20); // (10, 30]
    assert_eq!(anchored_window(&s, &ctx), Some(&s[1..]));
    // Nothing after the window start: nothing to measure.
    assert_eq!(anchored_window(&s[..2], &ctx), None);
}

// ---- irate, idelta, resets, changes ------------------------------------------------------------

#[test]
fn irate_and_idelta_use_the_last_two_samples() {
    let s = at(&[(0, 10.0), (10, 20.0), (20, 40.0)]);
    assert_eq!(irate(&s), Some(2.0)); // (40 − 20) / 10 s
    assert_eq!(idelta(&s), Some(20.0));
    // After a reset the last value is the increase: 5 / 10 s. idelta just subtracts.
    let s = at(&[(0, 10.0), (10, 20.0), (20, 5.0)]);
    assert_eq!(irate(&s), Some(0.5));
    assert_eq!(idelta(&s), Some(-15.0));
    assert_eq!(irate(&at(&[(0, 1.0)])), None);
    assert_eq!(idelta(&[]), None);
    assert_eq!(irate(&[(5, 1.0), (5, 2.0)]), None, "same timestamp");
}

#[test]
fn resets_and_changes_count_transitions() {
    let s = at(&[(1, 1.0), (2, 2.0), (3, 1.0), (4, 1.0), (5, 0.0), (6, 5.0)]);
    assert_eq!(resets(&s), Some(2.0)); // 2→1, 1→0
    assert_eq!(changes(&s), Some(4.0)); // all but 1→1
    assert_eq!(resets(&s[..1]), Some(0.0));
    assert_eq!(changes(&[]), None);
    let nan = at(&[(1, f64::NAN), (2, f64::NAN), (3, 1.0), (4, f64::NAN)]);
    assert_eq!(changes(&nan), Some(2.0), "NaN→NaN is no change");
    assert_eq!(resets(&nan), Some(0.0));
}

// ---- *_over_time -------------------------------------------------------------------------------

#[test]
fn over_time_functions_of_an_empty_window_produce_nothing() {
    type WindowFn = fn(&[(i64, f64)]) -> Option<f64>;
    let fns: [WindowFn; 12] = [
        avg_over_time,
        sum_over_time,
        count_over_time,
        min_over_time,
        max_over_time,
        last_over_time,
        first_over_time,
        present_over_time,
        stddev_over_time,
        stdvar_over_time,
        mad_over_time,
        ts_of_max_over_time,
    ];
    for f in fns {
        assert_eq!(f(&[]), None);
    }
    assert_eq!(quantile_over_time(0.5, &[]), None);
}

#[test]
fn over_time_basics() {
    let s = at(&[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]);
    assert_eq!(avg_over_time(&s), Some(2.5));
    assert_eq!(sum_over_time(&s), Some(10.0));
    assert_eq!(count_over_time(&s), Some(4.0));
    assert_eq!(first_over_time(&s), Some(1.0));
    assert_eq!(last_over_time(&s), Some(4.0));
    assert_eq!(ts_of_first_over_time(&s), Some(1.0));
    assert_eq!(ts_of_last_over_time(&s), Some(4.0));
    assert_eq!(present_over_time(&s), Some(1.0));
    assert_eq!(absent_over_time(&s), Some(1.0));
    // Rank 0.5 × 3 = 1.5: halfway between 2 and 3.
    assert_eq!(quantile_over_time(0.5, &s), Some(2.5));
    assert_eq!(quantile_over_time(-0.1, &s), Some(f64::NEG_INFINITY));
    assert_eq!(quantile_over_time(1.1, &s), Some(f64::INFINITY));
    // A single sample is its own average, sum, quantile, and has no spread.
    let one = at(&[(7, -3.0)]);
    assert_eq!(avg_over_time(&one), Some(-3.0));
    assert_eq!(stddev_over_time(&one), Some(0.0));
    assert_eq!(quantile_over_time(0.9, &one), Some(-3.0));
}

#[test]
fn sum_over_time_is_kahan_compensated() {
    let s = at(&[(1, 1.0), (2, 1e100), (3, 1.0), (4, -1e100)]);
    assert_eq!(sum_over_time(&s), Some(2.0));
    // avg = sum/4 + c/4 = 0/4 + 2/4.
    assert_eq!(avg_over_time(&s), Some(0.5));
    assert_eq!(
        sum_over_time(&at(&[(1, 1.0), (2, f64::INFINITY)])),
        Some(f64::INFINITY)
    );
}

#[test]
fn avg_over_time_switches_to_an_incremental_mean_instead_of_overflowing() {
    // MAX + MAX overflows; from then on mean = mean·(n−1)/n + v/n: MAX, then MAX·2/3 − MAX/3.
    let s = at(&[(1, f64::MAX), (2, f64::MAX), (3, -f64::MAX)]);
    let v = avg_over_time(&s).unwrap();
    assert!((v / (f64::MAX / 3.0) - 1.0).abs() < 1e-15, "{v}");
}

#[test]
fn min_and_max_over_time_skip_nan_unless_all_nan() {
    let s = at(&[(1, f64::NAN), (2, 3.0), (3, -1.0), (4, f64::NAN)]);
    assert_eq!(min_over_time(&s), Some(-1.0));
    assert_eq!(max_over_time(&s), Some(3.0));
    assert!(max_over_time(&at(&[(1, f64::NAN)])).unwrap().is_nan());
    assert_eq!(
        max_over_time(&at(&[(1, 1.0), (2, f64::INFINITY)])),
        Some(f64::INFINITY)
    );
}

#[test]
fn ts_of_min_and_max_pick_the_last_of_equal_extremes() {
    let s = at(&[(1, 5.0), (2, 1.0), (3, 5.0), (4, 1.0), (5, 3.0)]);
    assert_eq!(ts_of_max_over_time(&s), Some(3.0));
    assert_eq!(ts_of_min_over_time(&s), Some(4.0));
}

#[test]
fn stddev_and_stdvar_over_time_are_population_statistics() {
    // 2,4,4,4,5,5,7,9: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32, /8 = 4.
    let s: Vec<_> = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    approx(stdvar_over_time(&s).unwrap(), 4.0);
    approx(stddev_over_time(&s).unwrap(), 2.0);
    assert!(
        stddev_over_time(&at(&[(1, 1.0), (2, f64::INFINITY)]))
            .unwrap()
            .is_nan()
    );
}

#[test]
fn mad_over_time_is_the_median_absolute_deviation() {
    // Median of 1,1,2,2,4,6,9 is 2; deviations 1,1,0,0,2,4,7 have median 1.
    let s: Vec<_> = [1.0, 1.0, 2.0, 2.0, 4.0, 6.0, 9.0]
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect();
    assert_eq!(mad_over_time(&s), Some(1.0));
    assert!(
        mad_over_time(&at(&[(1, 1.0), (2, f64::NAN)]))
            .unwrap()
            .is_nan()
    );
}

// ---- deriv, predict_linear, smoothing ----------------------------------------------------------

#[test]
fn deriv_is_the_least_squares_slope() {
    // 1, 3, 2 at 0, 10, 20 s: x̄ = 10, ȳ = 2; Σ(x−x̄)(y−ȳ) = (−10)(−1) + 0 + 10·0 = 10;
    // Σ(x−x̄)² = 200 → 0.05 per second.
    approx(deriv(&at(&[(0, 1.0), (10, 3.0), (20, 2.0)])).unwrap(), 0.05);
    assert_eq!(deriv(&at(&[(0, 1.0)])), None);
    assert_eq!(deriv(&at(&[(0, 4.0), (10, 4.0)])), Some(0.0));
    assert!(
        deriv(&at(&[(0, f64::INFINITY), (10, f64::INFINITY)]))
            .unwrap()
            .is_nan()
    );
}

#[test]
fn predict_linear_extends_the_line_from_the_evaluation_time() {
    // 0, 10, 20 at 0, 10, 20 s: slope 1, value 20 at t = 20 s → 30 ten seconds later.
    let s = at(&[(0, 0.0), (10, 10.0), (20, 20.0)]);
    approx(predict_linear(&s, &window(20, 30), 10.0).unwrap(), 30.0);
    // With offset 10 s the window ends at 10 s but the line is still evaluated from 20 s.
    let ctx = RangeCtx::new(20 * S, 30 * S, 10 * S);
    approx(predict_linear(&s[..2], &ctx, 0.0).unwrap(), 20.0);
    assert_eq!(predict_linear(&s[..1], &ctx, 0.0), None);
}

#[test]
fn double_exponential_smoothing_follows_the_recurrence() {
    // 1, 2, 4 with sf = tf = 0.5: level 1, trend 1; x = 2: level 0.5·2 + 0.5·(1 + 1) = 2;
    // x = 4: trend 0.5·(2 − 1) + 0.5·1 = 1, level 0.5·4 + 0.5·(2 + 1) = 3.5.
    let s = at(&[(1, 1.0), (2, 2.0), (3, 4.0)]);
    assert_eq!(double_exponential_smoothing(&s, 0.5, 0.5), Ok(Some(3.5)));
    assert_eq!(holt_winters(&s, 0.5, 0.5), Ok(Some(3.5)));
    assert_eq!(double_exponential_smoothing(&s[..1], 0.5, 0.5), Ok(None));
    let nan = double_exponential_smoothing(&s, f64::NAN, 0.5)
        .unwrap()
        .unwrap();
    assert!(nan.is_nan(), "a NaN factor passes validation");
}

#[test]
fn smoothing_factors_outside_the_open_unit_interval_fail() {
    let s = at(&[(1, 1.0), (2, 2.0)]);
    let err = double_exponential_smoothing(&s, 1.0, 0.5).unwrap_err();
    assert_eq!(err, FunctionError::InvalidSmoothingFactor(1.0));
    assert_eq!(
        err.to_string(),
        "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000"
    );
    let err = double_exponential_smoothing(&s, 0.5, 0.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000"
    );
}

// ---- quantile and aggregations -----------------------------------------------------------------

#[test]
fn quantile_interpolates_between_ranks_and_handles_phi_edges() {
    let q = |phi: f64, v: &[f64]| quantile(phi, &mut v.to_vec());
    assert_eq!(q(0.5, &[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(q(0.0, &[4.0, 1.0, 3.0]), 1.0);
    assert_eq!(q(1.0, &[4.0, 1.0, 3.0]), 4.0);
    // Rank 0.25 × 3 = 0.75: 1 + 0.75 × (2 − 1).
    assert_eq!(q(0.25, &[1.0, 2.0, 3.0, 4.0]), 1.75);
    assert_eq!(q(-0.01, &[1.0]), f64::NEG_INFINITY);
    assert_eq!(q(1.01, &[1.0]), f64::INFINITY);
    assert!(q(f64::NAN, &[1.0]).is_nan());
    assert!(q(0.5, &[]).is_nan());
    // NaN sorts first: it is the minimum.
    assert!(q(0.0, &[2.0, f64::NAN, 1.0]).is_nan());
    assert_eq!(q(1.0, &[2.0, f64::NAN, 1.0]), 2.0);
    // Rank exactly on 2 still multiplies the next value (+Inf) by weight 0: NaN, as Prometheus.
    assert!(q(0.5, &[1.0, 2.0, f64::INFINITY]).is_nan());
}

#[test]
fn sum_aggregation_is_kahan_compensated() {
    assert_eq!(
        aggregate(AggOp::Sum, &[1.0, 1e100, 1.0, -1e100], 0.0),
        Some(2.0)
    );
    assert_eq!(aggregate(AggOp::Sum, &[], 0.0), None);
}

#[test]
fn avg_aggregation_survives_overflowing_sums() {
    assert_eq!(aggregate(AggOp::Avg, &[1.0, 2.0, 3.0, 4.0], 0.0), Some(2.5));
    // Naively (MAX + MAX) / 2 = Inf; the incremental mean gives MAX·1/2 + MAX/2 = MAX.
    assert_eq!(
        aggregate(AggOp::Avg, &[f64::MAX, f64::MAX], 0.0),
        Some(f64::MAX)
    );
    assert!(
        aggregate(AggOp::Avg, &[f64::INFINITY, f64::NEG_INFINITY], 0.0)
            .unwrap()
            .is_nan()
    );
}

#[test]
fn stddev_stdvar_min_max_count_group_aggregations() {
    let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
    approx(aggregate(AggOp::Stdvar, &v, 0.0).unwrap(), 4.0);
    approx(aggregate(AggOp::Stddev, &v, 0.0).unwrap(), 2.0);
    assert_eq!(aggregate(AggOp::Stddev, &[3.0], 0.0), Some(0.0));
    // A non-finite first value poisons the running sum of squares from the start.
    assert!(
        aggregate(AggOp::Stddev, &[f64::INFINITY, 1.0], 0.0)
            .unwrap()
            .is_nan()
    );
    assert_eq!(aggregate(AggOp::Max, &[f64::NAN, 1.0, 3.0], 0.0), Some(3.0));
    assert_eq!(
        aggregate(AggOp::Min, &[1.0, f64::NAN, -2.0], 0.0),
        Some(-2.0)
    );
    assert!(aggregate(AggOp::Min, &[f64::NAN], 0.0).unwrap().is_nan());
    assert_eq!(aggregate(AggOp::Count, &[f64::NAN, 1.0], 0.0), Some(2.0));
    assert_eq!(aggregate(AggOp::Group, &[7.0, 8.0], 0.0), Some(1.0));
    assert_eq!(aggregate(AggOp::Quantile, &[1.0, 2.0, 3.0], 0.5), Some(2.0));
    assert_eq!(aggregate(AggOp::Quantile, &[1.0], 2.0), Some(f64::INFINITY));
}

#[test]
fn aggregator_resets_between_steps() {
    let mut a = Aggregator::new(AggOp::Quantile);
    a.add(10.0);
    a.reset();
    assert!(a.is_empty());
    assert_eq!(a.result(0.5), None);
    a.add(1.0);
    a.add(3.0);
    assert_eq!(a.result(0.5), Some(2.0));
}

fn select(sel: Select, values: &[(f64, &'static str)]) -> Vec<(f64, &'static str)> {
    let mut s = Selection::new(sel);
    for &(v, name) in values {
        s.offer(v, name);
    }
    s.into_sorted()
}

#[test]
fn topk_and_bottomk_order_and_tie_rules() {
    let input = [(1.0, "a"), (3.0, "b"), (2.0, "c"), (3.0, "d")];
    // Heap keeps the two largest: c replaces a, then d replaces c; b and d tie on 3, and the
    // replayed insertion sort keeps d before b.
    assert_eq!(select(Select::Topk(2), &input), [(3.0, "d"), (3.0, "b")]);
    assert_eq!(select(Select::Bottomk(2), &input), [(1.0, "a"), (2.0, "c")]);
    // Equal values: the first offered is kept, a later equal one does not replace it.
    assert_eq!(
        select(Select::Topk(1), &[(1.0, "x"), (1.0, "y")]),
        [(1.0, "x")]
    );
    assert_eq!(
        select(Select::Bottomk(1), &[(1.0, "x"), (1.0, "y")]),
        [(1.0, "x")]
    );
}

#[test]
fn topk_drops_nan_first_and_lists_it_last() {
    let got = select(Select::Topk(2), &[(f64::NAN, "n"), (1.0, "a"), (2.0, "b")]);
    assert_eq!(got, [(2.0, "b"), (1.0, "a")]);
    let got = select(Select::Topk(2), &[(1.0, "a"), (f64::NAN, "n")]);
    assert_eq!((got[0], got[1].1), ((1.0, "a"), "n"));
    let got = select(
        Select::Bottomk(2),
        &[(f64::NAN, "n"), (5.0, "a"), (4.0, "b")],
    );
    assert_eq!(got, [(4.0, "b"), (5.0, "a")]);
}

#[test]
fn limitk_keeps_the_first_k_in_heap_order() {
    // Prometheus pushes limitk's items on its value heap: 1 sifts above 5.
    let got = select(Select::Limitk(2), &[(5.0, "a"), (1.0, "b"), (3.0, "c")]);
    assert_eq!(got, [(1.0, "b"), (5.0, "a")]);
    assert_eq!(k_from_param(2.9, 10), 2);
    assert_eq!(k_from_param(20.0, 3), 3);
    assert_eq!(k_from_param(0.5, 3), 0);
}

#[test]
fn limit_ratio_splits_series_into_complementary_sets() {
    for offset in [0.0, 0.3, 0.5, 0.7, 0.999] {
        assert_ne!(
            limit_ratio_keeps(0.5, offset),
            limit_ratio_keeps(-0.5, offset)
        );
    }
    assert!(limit_ratio_keeps(0.5, 0.3) && !limit_ratio_keeps(0.5, 0.5));
    assert!(limit_ratio_keeps(-0.5, 0.5) && !limit_ratio_keeps(-0.5, 0.3));
    assert!(limit_ratio_keeps(1.0, 0.999) && limit_ratio_keeps(-1.0, 0.0));
}

// ---- histogram_quantile ------------------------------------------------------------------------

fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
    pairs
        .iter()
        .map(|&(upper_bound, count)| Bucket { upper_bound, count })
        .collect()
}

fn hq(q: f64, pairs: &[(f64, f64)]) -> f64 {
    bucket_quantile(q, &mut buckets(pairs)).value
}

const INF: f64 = f64::INFINITY;
const STD: [(f64, f64); 4] = [(1.0, 10.0), (2.0, 20.0), (4.0, 30.0), (INF, 40.0)];

#[test]
fn histogram_quantile_interpolates_inside_the_bucket() {
    // q = 0.5: rank 20 reaches the le=2 bucket: 1 + (2 − 1) × (20 − 10)/(20 − 10) = 2.
    assert_eq!(hq(0.5, &STD), 2.0);
    // q = 0.3: rank 12 → 1 + 1 × 2/10 = 1.2.
    approx(hq(0.3, &STD), 1.2);
    // q = 0.25: rank 10 in the first bucket, whose lower bound is 0: 0 + 1 × 10/10.
    assert_eq!(hq(0.25, &STD), 1.0);
    // Rank in the +Inf bucket: the largest finite bound.
    assert_eq!(hq(0.9, &STD), 4.0);
    assert_eq!(hq(1.0, &STD), 4.0);
    assert_eq!(hq(0.0, &STD), 0.0);
    // Order of input does not matter.
    let mut reversed = STD;
    reversed.reverse();
    assert_eq!(hq(0.5, &reversed), 2.0);
}

#[test]
fn histogram_quantile_out_of_range_and_nan_q() {
    assert_eq!(hq(-0.1, &STD), f64::NEG_INFINITY);
    assert_eq!(hq(1.1, &STD), f64::INFINITY);
    assert!(hq(f64::NAN, &STD).is_nan());
    // The q checks come first, even without a +Inf bucket.
    assert_eq!(hq(2.0, &[(1.0, 1.0)]), f64::INFINITY);
    let (v, annos) = histogram_quantile(1.5, &mut buckets(&STD), None, 0);
    assert_eq!(v, INF);
    assert_eq!(annos, [Annotation::InvalidQuantile { q: 1.5 }]);
}

#[test]
fn histogram_quantile_without_inf_bucket_or_observations_is_nan() {
    assert!(hq(0.5, &[(1.0, 10.0), (2.0, 20.0)]).is_nan());
    assert!(hq(0.5, &[(1.0, 0.0), (INF, 0.0)]).is_nan());
    assert!(hq(0.5, &[(INF, 10.0)]).is_nan(), "one bucket is not enough");
    assert!(histogram_quantile(0.5, &mut Vec::new(), None, 0).0.is_nan());
}

#[test]
fn histogram_quantile_with_non_positive_bounds() {
    let b = [(-1.0, 5.0), (0.0, 10.0), (INF, 10.0)];
    // Rank 2.5 falls in a first bucket with bound ≤ 0: that bound.
    assert_eq!(hq(0.25, &b), -1.0);
    // Rank 7.5: −1 + 1 × (7.5 − 5)/5 = −0.5.
    assert_eq!(hq(0.75, &b), -0.5);
}

#[test]
fn histogram_quantile_merges_equal_bounds() {
    // Two le="1" series (e.g. from differently-labelled sources) add up: (1, 10), (+Inf, 10).
    assert_eq!(hq(0.5, &[(1.0, 5.0), (INF, 10.0), (1.0, 5.0)]), 0.5);
}

#[test]
fn histogram_quantile_forces_monotonic_counts_and_reports_it() {
    // le=2 count 8 < 10 is raised to 10: counts 10, 10, 30, 40. Rank 20 lands in le=4:
    // 2 + 2 × (20 − 10)/(30 − 10) = 3.
    let mut b = buckets(&[(1.0, 10.0), (2.0, 8.0), (4.0, 30.0), (INF, 40.0)]);
    let r = bucket_quantile(0.5, &mut b);
    assert_eq!(r.value, 3.0);
    assert!(r.forced_monotonic && !r.fixed_precision);
    assert_eq!((r.min_bucket, r.max_bucket, r.max_diff), (2.0, 2.0, 2.0));

    let mut annos = Annotations::new();
    let (_, raised) = histogram_quantile(
        0.5,
        &mut buckets(&[(1.0, 10.0), (2.0, 8.0), (INF, 40.0)]),
        Some("req_bucket"),
        1_000,
    );
    for a in raised {
        annos.add(a, Some("1:20"));
    }
    let (_, raised) = histogram_quantile(
        0.5,
        &mut buckets(&[(1.0, 10.0), (4.0, 5.0), (INF, 40.0)]),
        Some("req_bucket"),
        5_000,
    );
    for a in raised {
        annos.add(a, Some("1:20"));
    }
    assert_eq!(annos.len(), 1, "same message, merged");
    assert_eq!(
        annos.infos(),
        [
            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see \
             https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) \
             for metric name \"req_bucket\", from buckets 2 to 4, with a max diff of 5, over 2 \
             samples from 1970-01-01T00:00:01Z to 1970-01-01T00:00:05Z (1:20)"
        ]
    );
}

#[test]
fn histogram_quantile_ignores_floating_point_noise_between_buckets() {
    // 10 then 10 − 1e-12 (relative difference ~5e-14 < 1e-12): evened out silently.
    let mut b = buckets(&[(1.0, 10.0), (2.0, 10.0 - 1e-12), (INF, 20.0)]);
    let r = bucket_quantile(0.5, &mut b);
    assert!(r.fixed_precision && !r.forced_monotonic);
    assert_eq!(r.value, 1.0);
    assert_eq!(r.annotation(None, 0), None);
}

#[test]
fn le_labels_parse_like_go() {
    assert_eq!(parse_le(Some("+Inf")), Some(INF));
    assert_eq!(parse_le(Some("0.25")), Some(0.25));
    assert_eq!(parse_le(Some("1e3")), Some(1000.0));
    assert_eq!(parse_le(Some("abc")), None);
    assert_eq!(parse_le(None), None);
    let warning = ember_query::functions::histogram::bad_bucket_label(Some("abc"), None);
    assert_eq!(
        warning.message(),
        "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"abc\""
    );
}

#[test]
fn histogram_fraction_over_classic_buckets() {
    // [0, 2]: from rank 0 at the lower edge 0 to rank 20 at the le=2 boundary: 20/40.
    assert_eq!(bucket_fraction(0.0, 2.0, &mut buckets(&STD)), 0.5);
    // [1.5, 3]: rank 10 + 10 × 0.5 = 15 to 20 + 10 × (3 − 2)/(4 − 2) = 25 → 10/40.
    assert_eq!(bucket_fraction(1.5, 3.0, &mut buckets(&STD)), 0.25);
    assert_eq!(bucket_fraction(3.0, 1.0, &mut buckets(&STD)), 0.0);
    assert!(bucket_fraction(f64::NAN, 1.0, &mut buckets(&STD)).is_nan());
    assert!(bucket_fraction(0.0, 1.0, &mut buckets(&[(1.0, 1.0)])).is_nan());
}

// ---- label_replace / label_join ----------------------------------------------------------------

#[test]
fn label_replace_sets_the_destination_from_captures() {
    let l = labels(&[("__name__", "up"), ("src", "foo-bar")]);
    let got = label_replace(&l, "dst", "$1", "src", "(.*)-.*").unwrap();
    assert_eq!(got.get("dst"), Some("foo"));
    assert_eq!(got.get("src"), Some("foo-bar"));
    let got = label_replace(&l, "dst", "${2}:${1}", "src", "(.*)-(.*)").unwrap();
    assert_eq!(got.get("dst"), Some("bar:foo"));
    let got = label_replace(&l, "dst", "[$name]", "src", "(?P<name>f.o).*").unwrap();
    assert_eq!(got.get("dst"), Some("[foo]"));
}

#[test]
fn label_replace_dollar_one_x_is_a_group_named_1x() {
    let l = labels(&[("src", "foo"), ("dst", "old")]);
    // "$1x" refers to a group named "1x" (none): empty, which removes dst.
    let got = label_replace(&l, "dst", "$1x", "src", "(.*)").unwrap();
    assert_eq!(got.get("dst"), None);
    let got = label_replace(&l, "dst", "${1}x", "src", "(.*)").unwrap();
    assert_eq!(got.get("dst"), Some("foox"));
}

#[test]
fn label_replace_without_a_full_match_leaves_labels_alone() {
    let l = labels(&[("src", "foo-bar")]);
    // Anchored: "foo" does not match "foo-bar".
    assert_eq!(label_replace(&l, "dst", "x", "src", "foo").unwrap(), l);
    assert_eq!(
        label_replace(&l, "dst", "x", "src", "nomatch(.*)").unwrap(),
        l
    );
    let call = LabelReplace::new("dst", "x", "src", "foo").unwrap();
    assert_eq!(call.apply(&l), None);
    // A missing source label is the empty string, which ".*" matches.
    let got = label_replace(&l, "dst", "set", "missing", ".*").unwrap();
    assert_eq!(got.get("dst"), Some("set"));
    // (?s): "." also matches a newline.
    let nl = labels(&[("src", "a\nb")]);
    assert_eq!(
        label_replace(&nl, "dst", "$1", "src", "a.(b)")
            .unwrap()
            .get("dst"),
        Some("b")
    );
}

#[test]
fn label_replace_rejects_bad_regex_and_target_names() {
    let l = labels(&[("src", "x")]);
    let err = label_replace(&l, "dst", "$1", "src", "(").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid regular expression in label_replace(): ("
    );
    let err = label_replace(&l, "", "$1", "src", "(.*)").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid destination label name in label_replace(): "
    );
    // UTF-8 names are valid in Prometheus 3.
    assert!(label_replace(&l, "ünïcødé.name", "v", "src", ".*").is_ok());
}

#[test]
fn label_join_concatenates_sources_in_order() {
    let l = labels(&[("a", "x"), ("b", "y")]);
    let got = label_join(&l, "dst", "-", &["b", "a", "missing"]).unwrap();
    assert_eq!(got.get("dst"), Some("y-x-"));
    let got = label_join(&l, "a", "", &["missing"]).unwrap();
    assert_eq!(got.get("a"), None, "empty result removes the label");
    assert_eq!(
        label_join(&l, "dst", "-", &["a", ""])
            .unwrap_err()
            .to_string(),
        "invalid source label name in label_join(): "
    );
    assert_eq!(
        label_join(&l, "", "-", &["a"]).unwrap_err().to_string(),
        "invalid destination label name in label_join(): "
    );
}
