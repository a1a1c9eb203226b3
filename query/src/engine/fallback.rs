//! PRIVATE FALLBACKS, to be unified with `crate::functions` by the lead: small numeric helpers the
//! evaluator needs and the function library did not offer when the evaluator was written.
//!
//! Owns only: the Kahan–Neumaier increment (Prometheus' `kahansum.Inc`), the aggregation `quantile`
//! (linear interpolation between closest ranks, NaN sorted first), Go's `%g` float text used in
//! annotations, the classic-histogram `bucket_quantile`, UTC calendar fields for the date functions,
//! and the natural string order of `sort_by_label`. Nothing here knows about series, steps or the AST.

/// One Kahan–Neumaier summation step: adds `inc` to `sum` with compensation `c`; returns the new sum
/// and compensation. An infinite sum resets the compensation (it would otherwise turn into NaN).
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The `q`-quantile of `values` (sorted in place), as the `quantile` aggregation computes it.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts below everything, as Prometheus' value heap orders it.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).expect("not NaN"),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Go's `fmt` `%g` (and `%v`) for a float64: shortest round-trip digits, exponent form when the
/// decimal exponent is below -4 or at least 21.
pub(crate) fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // `{:e}` yields the shortest round-trip mantissa, e.g. "1.5e-7".
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    if (-4..21).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// A bucket of a classic histogram: upper bound (`le`) and cumulative count.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// What [`bucket_quantile`] computed, and whether the counts had to be made monotonic.
pub(crate) struct BucketQuantile {
    pub value: f64,
    pub forced_monotonic: bool,
}

/// Prometheus' `almost.Equal`: equal within a relative `epsilon`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if (a.is_nan() && b.is_nan()) || a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// The `q`-quantile of a classic histogram (`histogram_quantile` over `le` buckets): linear
/// interpolation inside the bucket holding the rank, the lower bound of the first bucket taken as 0
/// when positive, the second-highest bound when the rank falls into the `+Inf` bucket.
pub(crate) fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> BucketQuantile {
    let done = |value| BucketQuantile {
        value,
        forced_monotonic: false,
    };
    if q.is_nan() {
        return done(f64::NAN);
    }
    if q < 0.0 {
        return done(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return done(f64::INFINITY);
    }
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return done(f64::NAN);
    }
    // Coalesce buckets with the same bound (e.g. "1" and "1.0").
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match merged.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => merged.push(*b),
        }
    }
    *buckets = merged;
    let mut forced = false;
    let mut prev = buckets[0].count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, 1e-12) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    let result = |value| BucketQuantile {
        value,
        forced_monotonic: forced,
    };
    if buckets.len() < 2 {
        return result(f64::NAN);
    }
    let n = buckets.len();
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return result(f64::NAN);
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1].partition_point(|x| x.count < rank);
    let value = if b == n - 1 {
        buckets[n - 2].upper
    } else if b == 0 && buckets[0].upper <= 0.0 {
        buckets[0].upper
    } else {
        let end = buckets[b].upper;
        let mut count = buckets[b].count;
        let mut start = 0.0;
        if b > 0 {
            start = buckets[b - 1].upper;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        start + (end - start) * (rank / count)
    };
    result(value)
}

/// Calendar fields of a Unix time in UTC, for the date functions.
pub(crate) struct Civil {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    /// 0 = Sunday
    pub weekday: u32,
    /// 1..=366
    pub yday: u32,
    pub days_in_month: u32,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Splits Unix seconds into UTC calendar fields (proleptic Gregorian; Howard Hinnant's
/// days-to-civil).
pub(crate) fn civil(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = is_leap(year);
    let yday = CUM[month as usize - 1] + day + u32::from(leap && month > 2);
    const DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let days_in_month = DAYS[month as usize - 1] + u32::from(leap && month == 2);
    Civil {
        year,
        month,
        day,
        hour: (rem / 3600) as u32,
        minute: ((rem % 3600) / 60) as u32,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as u32,
        yday,
        days_in_month,
    }
}

/// Prometheus' natural order for `sort_by_label` (facette/natsort): digit runs compare as
/// integers, other runs as strings. True when `a` sorts before `b`.
pub(crate) fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (i, x) in ca.iter().enumerate() {
        let Some(y) = cb.get(i) else { return false };
        let equal = match (x.parse::<i64>(), y.parse::<i64>()) {
            (Ok(xi), Ok(yi)) if xi != yi => return xi < yi,
            (Ok(_), Ok(_)) => true,
            _ if x != y => return x < y,
            _ => true,
        };
        if equal {
            if i == ca.len() - 1 {
                return true;
            }
            if i == cb.len() - 1 {
                return false;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_fields() {
        // 2024-02-29T13:45:00Z, a Thursday.
        let c = civil(1_709_214_300);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute),
            (2024, 2, 29, 13, 45)
        );
        assert_eq!((c.weekday, c.yday, c.days_in_month), (4, 60, 29));
        let e = civil(0);
        assert_eq!(
            (e.year, e.month, e.day, e.weekday, e.yday),
            (1970, 1, 1, 4, 1)
        );
    }

    #[test]
    fn bucket_quantile_interpolates_within_bucket() {
        let mut b = vec![
            Bucket {
                upper: 1.0,
                count: 10.0,
            },
            Bucket {
                upper: 2.0,
                count: 20.0,
            },
            Bucket {
                upper: f64::INFINITY,
                count: 20.0,
            },
        ];
        // Rank 15 lies halfway through (1, 2].
        assert_eq!(bucket_quantile(0.75, &mut b).value, 1.5);
    }

    #[test]
    fn natural_order() {
        assert!(natural_less("a2", "a10"));
        assert!(!natural_less("a10", "a2"));
        assert!(natural_less("abc", "abd"));
    }

    #[test]
    fn go_float_text() {
        assert_eq!(format_go_float(1.1), "1.1");
        assert_eq!(format_go_float(-1.0), "-1");
        assert_eq!(format_go_float(1e21), "1e+21");
        assert_eq!(format_go_float(1e20), "100000000000000000000");
        assert_eq!(format_go_float(0.0001), "0.0001");
        assert_eq!(format_go_float(0.00001), "1e-05");
        assert_eq!(format_go_float(f64::NAN), "NaN");
    }

    #[test]
    fn quantile_interpolates() {
        let mut v = vec![4.0, 1.0, 2.0, 3.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(1.5, &mut v), f64::INFINITY);
    }

    #[test]
    fn kahan_recovers_small_terms() {
        let (mut s, mut c) = (0.0, 0.0);
        for x in [1e100, 1.0, -1e100] {
            (s, c) = kahan_inc(x, s, c);
        }
        assert_eq!(s + c, 1.0);
    }
}
