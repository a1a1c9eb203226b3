//! Element-wise math on one float: `abs`, `ceil`, `floor`, `exp`, `sqrt`, `ln`, `log2`, `log10`,
//! the trigonometric and hyperbolic functions and their inverses, `deg`, `rad`, `sgn`, `round`,
//! `clamp`/`clamp_min`/`clamp_max`, and the scalar `pi`, `min_of`, `max_of`, `timestamp`.
//!
//! Owns Go's definitions where they are not plain IEEE/libm operations: `math.Max`/`math.Min`
//! (NaN wins, `+0 > -0`), `Log2` via `Frexp` (exact for powers of two), `Log10` as
//! `Log(x) × (1/Ln10)`, the operation order of `deg`/`rad`/`round`. Does not own labels or
//! dropping `__name__`. The transcendental functions use the platform's libm; Go's pure-Go
//! implementations can differ from it in the last bit.

/// Go's `math.Max`: +Inf if either is +Inf (even against NaN), else NaN if either is NaN, and
/// `+0` over `-0`.
pub fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        return f64::INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    if a > b { a } else { b }
}

/// Go's `math.Min`: -Inf if either is -Inf (even against NaN), else NaN if either is NaN, and
/// `-0` under `+0`.
pub fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    if a < b { a } else { b }
}

pub fn abs(v: f64) -> f64 {
    v.abs()
}

pub fn ceil(v: f64) -> f64 {
    v.ceil()
}

pub fn floor(v: f64) -> f64 {
    v.floor()
}

pub fn exp(v: f64) -> f64 {
    v.exp()
}

/// Negative input gives NaN.
pub fn sqrt(v: f64) -> f64 {
    v.sqrt()
}

/// Natural logarithm: `ln(0) = -Inf`, negative input gives NaN.
pub fn ln(v: f64) -> f64 {
    v.ln()
}

/// Go's `math.Log2`: split into mantissa in `[0.5, 1)` and exponent, so powers of two are exact.
pub fn log2(v: f64) -> f64 {
    let (frac, exp) = frexp(v);
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    frac.ln() * std::f64::consts::LOG2_E + f64::from(exp)
}

/// Go's `math.Log10`: `ln(x) × (1/ln 10)`, which is not always the correctly rounded `log10`:
/// e.g. `log10(0.1)` is `-0.9999999999999999`, not -1.
pub fn log10(v: f64) -> f64 {
    v.ln() * std::f64::consts::LOG10_E
}

/// Go's `math.Frexp`: `v = frac × 2^exp` with `|frac|` in `[0.5, 1)`; zero, infinities and NaN
/// are returned unchanged with exponent 0.
fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 || v.is_infinite() || v.is_nan() {
        return (v, 0);
    }
    // Scale subnormals into the normal range first.
    let (v, adjust) = if v.abs() < f64::MIN_POSITIVE {
        (v * (1u64 << 52) as f64, -52)
    } else {
        (v, 0)
    };
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022 + adjust;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp)
}

pub fn sin(v: f64) -> f64 {
    v.sin()
}

pub fn cos(v: f64) -> f64 {
    v.cos()
}

pub fn tan(v: f64) -> f64 {
    v.tan()
}

pub fn asin(v: f64) -> f64 {
    v.asin()
}

pub fn acos(v: f64) -> f64 {
    v.acos()
}

pub fn atan(v: f64) -> f64 {
    v.atan()
}

pub fn sinh(v: f64) -> f64 {
    v.sinh()
}

pub fn cosh(v: f64) -> f64 {
    v.cosh()
}

pub fn tanh(v: f64) -> f64 {
    v.tanh()
}

pub fn asinh(v: f64) -> f64 {
    v.asinh()
}

pub fn acosh(v: f64) -> f64 {
    v.acosh()
}

pub fn atanh(v: f64) -> f64 {
    v.atanh()
}

/// Radians to degrees, computed as `v × 180 / π` in that order.
pub fn deg(v: f64) -> f64 {
    v * 180.0 / std::f64::consts::PI
}

/// Degrees to radians, computed as `v × π / 180` in that order.
pub fn rad(v: f64) -> f64 {
    v * std::f64::consts::PI / 180.0
}

/// `pi()`.
pub fn pi() -> f64 {
    std::f64::consts::PI
}

/// `sgn`: -1 for negative, 1 for positive; zero (keeping its sign) and NaN are returned as is.
pub fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// `round(v, to_nearest)`: the nearest multiple of `to_nearest`, ties rounded up (towards +Inf,
/// so `round(-2.5) = -2`). Computed as `floor(v × (1/to_nearest) + 0.5) / (1/to_nearest)`: the
/// inverse is taken first because it rounds better for the usual `0.1`-style arguments.
pub fn round(v: f64, to_nearest: f64) -> f64 {
    let inverse = 1.0 / to_nearest;
    (v * inverse + 0.5).floor() / inverse
}

/// `clamp(v, min, max)`: `None` when `min > max` (Prometheus then returns an empty vector for the
/// whole call); otherwise `max(min, min(max, v))` with Go's NaN/Inf rules, so a NaN value stays
/// NaN.
pub fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// `clamp_min(v, min)`: `clamp(v, min, +Inf)`, always defined (`+Inf < min` never holds).
pub fn clamp_min(v: f64, min: f64) -> f64 {
    go_max(min, go_min(f64::INFINITY, v))
}

/// `clamp_max(v, max)`: `clamp(v, -Inf, max)`, always defined.
pub fn clamp_max(v: f64, max: f64) -> f64 {
    go_max(f64::NEG_INFINITY, go_min(max, v))
}

/// `max_of(a, b)` (scalars), Go's `math.Max`.
pub fn max_of(a: f64, b: f64) -> f64 {
    go_max(a, b)
}

/// `min_of(a, b)` (scalars), Go's `math.Min`.
pub fn min_of(a: f64, b: f64) -> f64 {
    go_min(a, b)
}

/// `timestamp(v)`: a sample's time in seconds.
pub fn timestamp(t_ms: i64) -> f64 {
    t_ms as f64 / 1000.0
}

/// Looks up a one-argument element-wise function by its PromQL name.
pub fn by_name(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => abs,
        "ceil" => ceil,
        "floor" => floor,
        "exp" => exp,
        "sqrt" => sqrt,
        "ln" => ln,
        "log2" => log2,
        "log10" => log10,
        "sin" => sin,
        "cos" => cos,
        "tan" => tan,
        "asin" => asin,
        "acos" => acos,
        "atan" => atan,
        "sinh" => sinh,
        "cosh" => cosh,
        "tanh" => tanh,
        "asinh" => asinh,
        "acosh" => acosh,
        "atanh" => atanh,
        "deg" => deg,
        "rad" => rad,
        "sgn" => sgn,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use crate::functions::math;

    #[test]
    fn round_rounds_half_up_to_the_nearest_multiple() {
        assert_eq!(math::round(2.5, 1.0), 3.0);
        assert_eq!(math::round(-2.5, 1.0), -2.0, "ties go towards +Inf");
        // 1234.5678 × 100 + 0.5 = 123457.28 → floor 123457 → 1234.57.
        assert_eq!(math::round(1234.5678, 0.01), 1234.57);
        // 7 × (1/5) + 0.5 = 1.9 → 1 → 1 / 0.2 = 5.
        assert_eq!(math::round(7.0, 5.0), 5.0);
        assert!(math::round(f64::NAN, 1.0).is_nan());
        assert_eq!(math::round(f64::INFINITY, 1.0), f64::INFINITY);
    }

    #[test]
    fn sgn_keeps_zero_and_nan() {
        assert_eq!(math::sgn(-3.0), -1.0);
        assert_eq!(math::sgn(f64::INFINITY), 1.0);
        assert!(math::sgn(-0.0).is_sign_negative() && math::sgn(-0.0) == 0.0);
        assert!(math::sgn(f64::NAN).is_nan());
    }

    #[test]
    fn clamp_follows_go_max_min() {
        assert_eq!(math::clamp(5.0, 0.0, 3.0), Some(3.0));
        assert_eq!(math::clamp(-1.0, 0.0, 3.0), Some(0.0));
        assert_eq!(math::clamp(2.0, 2.0, 2.0), Some(2.0));
        assert_eq!(math::clamp(1.0, 3.0, 0.0), None, "min > max: empty result");
        assert!(math::clamp(f64::NAN, 0.0, 3.0).unwrap().is_nan());
        assert_eq!(math::clamp_min(-5.0, 0.0), 0.0);
        assert_eq!(math::clamp_max(5.0, 0.0), 0.0);
        assert!(math::clamp_max(f64::NAN, 0.0).is_nan());
        // Go's Max: +Inf beats even NaN; +0 beats −0.
        assert_eq!(math::max_of(f64::INFINITY, f64::NAN), f64::INFINITY);
        assert!(math::max_of(1.0, f64::NAN).is_nan());
        assert!(math::max_of(-0.0, 0.0).is_sign_positive());
        assert!(math::min_of(0.0, -0.0).is_sign_negative());
    }

    #[test]
    fn logarithms_use_go_formulas() {
        assert_eq!(math::log2(8.0), 3.0);
        assert_eq!(
            math::log2(f64::from_bits(1)),
            -1074.0,
            "exact for subnormal powers of two"
        );
        assert_eq!(math::log2(0.0), f64::NEG_INFINITY);
        assert!(math::log2(-1.0).is_nan());
        // ln(0.1) × (1/ln 10) rounds to just above −1.
        assert_eq!(math::log10(0.1), -0.9999999999999999);
        assert_eq!(math::ln(1.0), 0.0);
        assert!(math::ln(-1.0).is_nan() && math::sqrt(-1.0).is_nan());
    }

    #[test]
    fn trigonometry_and_angle_conversion() {
        assert_eq!(math::deg(std::f64::consts::PI), 180.0);
        assert_eq!(math::rad(180.0), std::f64::consts::PI);
        assert_eq!(math::atanh(1.0), f64::INFINITY);
        assert!(math::acosh(0.5).is_nan());
        assert_eq!(math::by_name("cosh").unwrap()(0.0), 1.0);
        assert!(math::by_name("round").is_none(), "round takes a parameter");
        assert_eq!(math::timestamp(1500), 1.5);
    }
}
