//! Classic-histogram math: `histogram_quantile` and `histogram_fraction` over `le` buckets
//! (`BucketQuantile` and `BucketFraction` in `promql/quantile.go`).
//!
//! Owns: parsing the `le` label, sorting and coalescing buckets, the monotonicity fix-up with its
//! small-delta tolerance, and the interpolation. Does not own grouping series into histograms by
//! their labels minus `le` (the evaluator's), or native histograms.

use std::cmp::Ordering;

use super::annotations::{Annotation, MonotonicityFix, invalid_quantile};
use super::gofmt::parse_float;

/// Relative difference between neighbouring cumulative counts below which it is taken as
/// floating-point noise (e.g. from sharded query evaluation) and silently evened out.
pub const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// One classic-histogram bucket: its upper bound (`le`) and cumulative count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub count: f64,
}

/// The `le` label's value as a bucket bound, parsed like Go's `strconv.ParseFloat`. `None` (the
/// series is skipped with [`Annotation::BadBucketLabel`]) when missing or malformed.
pub fn parse_le(le: Option<&str>) -> Option<f64> {
    parse_float(le.unwrap_or(""))
}

/// The warning for a bucket series skipped by [`parse_le`]. `metric_name` is only passed when the
/// removal of `__name__` is delayed, as Prometheus then still knows it.
pub fn bad_bucket_label(le: Option<&str>, metric_name: Option<&str>) -> Annotation {
    Annotation::BadBucketLabel {
        metric_name: metric_name.map(str::to_string),
        le: le.unwrap_or("").to_string(),
    }
}

/// What [`bucket_quantile`] found besides the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketQuantile {
    pub value: f64,
    /// Some cumulative count decreased and was raised to its predecessor's.
    pub forced_monotonic: bool,
    /// Some count differed from its predecessor only by floating-point noise and was evened out.
    pub fixed_precision: bool,
    /// Smallest and largest upper bound whose count was raised, and the largest raise.
    pub min_bucket: f64,
    pub max_bucket: f64,
    pub max_diff: f64,
}

impl BucketQuantile {
    fn value_only(value: f64) -> BucketQuantile {
        BucketQuantile {
            value,
            forced_monotonic: false,
            fixed_precision: false,
            min_bucket: 0.0,
            max_bucket: 0.0,
            max_diff: 0.0,
        }
    }

    /// The monotonicity info for evaluation time `ts_ms`, if counts had to be raised.
    pub fn annotation(&self, metric_name: Option<&str>, ts_ms: i64) -> Option<Annotation> {
        self.forced_monotonic.then(|| {
            Annotation::HistogramQuantileForcedMonotonicity(MonotonicityFix {
                metric_name: metric_name.map(str::to_string),
                min_ts: ts_ms,
                max_ts: ts_ms,
                min_bucket: self.min_bucket,
                max_bucket: self.max_bucket,
                max_diff: self.max_diff,
                merged: 0,
            })
        })
    }
}

/// Ascending by upper bound. Prometheus "does not expect" NaN bounds and its sort leaves them
/// wherever it happens to; here they go first, which keeps `+Inf` last.
fn by_upper_bound(a: &Bucket, b: &Bucket) -> Ordering {
    match (a.upper_bound.is_nan(), b.upper_bound.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.upper_bound.partial_cmp(&b.upper_bound).expect("not NaN"),
    }
}

/// Sorts, checks for the `+Inf` bucket and merges buckets with equal bounds (adding counts).
/// `None` without a `+Inf` bucket.
fn prepare(buckets: &mut Vec<Bucket>) -> Option<()> {
    buckets.sort_by(by_upper_bound);
    if buckets.last()?.upper_bound != f64::INFINITY {
        return None;
    }
    buckets.dedup_by(|later, kept| {
        let same = later.upper_bound == kept.upper_bound;
        if same {
            kept.count += later.count;
        }
        same
    });
    Some(())
}

/// Prometheus' `almost.Equal`: equal, both NaN, or within relative `epsilon` (absolute near zero).
/// Its special case for staleness markers cannot arise: instant vectors carry none.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if (a.is_nan() && b.is_nan()) || a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Evens out noise-sized differences (either direction) and raises any decreasing count to the
/// running maximum, recording where that was needed.
fn ensure_monotonic(buckets: &mut [Bucket], result: &mut BucketQuantile) {
    result.min_bucket = f64::INFINITY;
    result.max_bucket = f64::NEG_INFINITY;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            // `prev` stays: the difference is ignored, not adopted.
            b.count = prev;
            result.fixed_precision = true;
            continue;
        }
        if curr < prev {
            b.count = prev;
            result.forced_monotonic = true;
            result.min_bucket = result.min_bucket.min(b.upper_bound);
            result.max_bucket = result.max_bucket.max(b.upper_bound);
            if prev - curr > result.max_diff {
                result.max_diff = prev - curr;
            }
            continue;
        }
        prev = curr;
    }
}

/// `histogram_quantile(q, …)` over one classic histogram's buckets (reordered in place).
///
/// * `q` NaN → NaN; `q < 0` → -Inf; `q > 1` → +Inf (checked first, whatever the buckets).
/// * No `+Inf` bucket, fewer than two distinct bounds, or zero observations → NaN.
/// * The rank `q × count(+Inf)` is located by binary search over the (made monotonic) counts;
///   inside a bucket the value is interpolated linearly from its lower bound (the previous
///   bucket's bound, or 0 for the first bucket when its bound is positive).
/// * A rank in the `+Inf` bucket returns the largest finite bound; a rank in a first bucket whose
///   bound is ≤ 0 returns that bound.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> BucketQuantile {
    if q.is_nan() {
        return BucketQuantile::value_only(f64::NAN);
    }
    if q < 0.0 {
        return BucketQuantile::value_only(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return BucketQuantile::value_only(f64::INFINITY);
    }
    if prepare(buckets).is_none() {
        return BucketQuantile::value_only(f64::NAN);
    }
    let mut result = BucketQuantile::value_only(f64::NAN);
    ensure_monotonic(buckets, &mut result);
    let n = buckets.len();
    if n < 2 {
        return result;
    }
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return result;
    }
    let mut rank = q * observations;
    // First bucket (excluding +Inf) whose cumulative count reaches the rank.
    let b = buckets[..n - 1].partition_point(|bk| bk.count < rank);
    result.value = if b == n - 1 {
        buckets[n - 2].upper_bound
    } else if b == 0 && buckets[0].upper_bound <= 0.0 {
        buckets[0].upper_bound
    } else {
        let mut bucket_start = 0.0;
        let bucket_end = buckets[b].upper_bound;
        let mut count = buckets[b].count;
        if b > 0 {
            bucket_start = buckets[b - 1].upper_bound;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        bucket_start + (bucket_end - bucket_start) * (rank / count)
    };
    result
}

/// `histogram_quantile` with its annotations: the invalid-`q` warning and, when counts had to be
/// made monotonic, the info for evaluation time `ts_ms` (`metric_name` only with delayed name
/// removal). Empty `buckets` give NaN (Prometheus produces no histogram then).
pub fn histogram_quantile(
    q: f64,
    buckets: &mut Vec<Bucket>,
    metric_name: Option<&str>,
    ts_ms: i64,
) -> (f64, Vec<Annotation>) {
    let mut annotations: Vec<Annotation> = invalid_quantile(q).into_iter().collect();
    if buckets.is_empty() {
        return (f64::NAN, annotations);
    }
    let r = bucket_quantile(q, buckets);
    annotations.extend(r.annotation(metric_name, ts_ms));
    (r.value, annotations)
}

/// `histogram_fraction(lower, upper, …)` over one classic histogram: the estimated fraction of
/// observations in `[lower, upper]`, interpolating linearly inside buckets. NaN without a `+Inf`
/// bucket, with zero observations or a NaN bound; 0 when `lower >= upper`. The first bucket's
/// lower edge is 0 if its bound is positive, else -Inf; buckets with an infinite edge contribute
/// nothing partial (no interpolation across an infinite width).
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if prepare(buckets).is_none() {
        return f64::NAN;
    }
    let count = buckets[buckets.len() - 1].count;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if buckets[0].upper_bound <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper_bound;
        }
        let upper_bound = b.upper_bound;
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}
