//! The φ-quantile of a set of floats, as the `quantile` aggregation, `quantile_over_time` and
//! `mad_over_time` compute it (`quantile` in `promql/quantile.go`).
//!
//! Owns the sort order (NaN below everything, as Prometheus' value heap orders it) and the linear
//! interpolation between closest ranks. Does not own the classic-histogram quantile
//! ([`super::histogram`]) or the invalid-φ warning ([`super::annotations::invalid_quantile`]).

use std::cmp::Ordering;

/// Ascending order with NaN first, a total order matching Prometheus' `vectorByValueHeap` `Less`
/// for values (NaNs are indistinguishable, so their mutual order does not matter).
pub(crate) fn nan_first_ascending(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).expect("neither is NaN"),
    }
}

/// The `phi`-quantile of `values`, which it sorts in place.
///
/// NaN for no values or a NaN `phi`; -Inf for `phi < 0`; +Inf for `phi > 1`. Otherwise the rank
/// `phi × (n − 1)` is interpolated linearly between the two neighbouring sorted values, so
/// `phi = 0` is the minimum and `phi = 1` the maximum. NaN values sort first, so they are the
/// "smallest" and show up in low quantiles.
pub fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first_ascending);
    let n = values.len() as f64;
    let rank = phi * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}
