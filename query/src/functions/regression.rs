//! Least-squares linear regression over a window: `deriv` and `predict_linear`.
//!
//! Owns the regression (Kahan-compensated sums, x measured in seconds from a chosen origin to keep
//! precision, the exact-constant shortcut). Does not own the window (see the conventions in
//! [`super`](crate::functions)).

use super::RangeCtx;
use super::kahan::kahan_inc;

/// Slope (per second) and the intercept at `intercept_ms` of the least-squares line through
/// `samples`, which must not be empty.
///
/// If every value equals the first, the line is exactly flat: slope 0 and that value, sparing
/// the rounding noise of the general formula; unless the constant is ±Inf, which gives NaN for
/// both (Prometheus' choice: an infinite flat line has no meaningful slope).
pub fn linear_regression(samples: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let init_y = samples[0].1;
    let mut const_y = true;
    let mut n = 0.0;
    let (mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    for (i, &(t, y)) in samples.iter().enumerate() {
        if const_y && i > 0 && y != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_ms) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(y, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * y, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: the per-second slope of the regression line; `None` with fewer than two samples.
/// The origin is the first sample's time, close to the data (large x values lose precision).
pub fn deriv(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    Some(linear_regression(samples, samples[0].0).0)
}

/// `predict_linear(v, t)`: the regression line's value `t` seconds after the evaluation time
/// (not the window end, which differs under `offset`); `None` with fewer than two samples.
pub fn predict_linear(samples: &[(i64, f64)], ctx: &RangeCtx, t: f64) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (slope, intercept) = linear_regression(samples, ctx.eval_ts);
    Some(slope * t + intercept)
}
