//! Calendar functions of a Unix time in seconds, in UTC: `year`, `month`, `day_of_month`,
//! `day_of_year`, `day_of_week`, `days_in_month`, `hour`, `minute`.
//!
//! Owns the proleptic-Gregorian civil-from-days arithmetic (no time-zone data, no dependency).
//! Does not own choosing the input (the evaluator passes the step time when the function gets no
//! argument) or the `time()` function.
//!
//! Prometheus truncates the float to whole seconds (`int64(v)`, towards zero) before converting.
//! For NaN, ±Inf and values outside the `i64` range Go's conversion is implementation-defined
//! (on amd64 it yields `math.MinInt64`, on arm64 it saturates), so Prometheus' answer depends on
//! the platform; these functions return NaN for such input.

const SECONDS_PER_DAY: i64 = 86_400;

/// Whole seconds as Go's `int64(v)` truncates them, or `None` where that is platform-defined.
fn whole_seconds(v: f64) -> Option<i64> {
    // 2^63 is exactly representable; the valid range is [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (v.is_finite() && (-LIMIT..LIMIT).contains(&v)).then(|| v.trunc() as i64)
}

/// Days since 1970-01-01 to (year, month 1–12, day 1–31), valid for every `i64` day count.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of the (March-based) year;
    // 719 468 days separate it from 1970-01-01, and an era is 400 years = 146 097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_march_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_march_year + 2) / 153;
    let day = (day_of_march_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn month_length(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Applies `f` to (whole seconds, days since epoch, civil date) of `v`.
fn with_date(v: f64, f: impl Fn(i64, i64, (i64, u32, u32)) -> i64) -> f64 {
    match whole_seconds(v) {
        Some(secs) => {
            let days = secs.div_euclid(SECONDS_PER_DAY);
            f(secs, days, civil_from_days(days)) as f64
        }
        None => f64::NAN,
    }
}

/// `year(v)`.
pub fn year(v: f64) -> f64 {
    with_date(v, |_, _, (y, _, _)| y)
}

/// `month(v)`: 1–12.
pub fn month(v: f64) -> f64 {
    with_date(v, |_, _, (_, m, _)| i64::from(m))
}

/// `day_of_month(v)`: 1–31.
pub fn day_of_month(v: f64) -> f64 {
    with_date(v, |_, _, (_, _, d)| i64::from(d))
}

/// `day_of_week(v)`: 0 (Sunday) – 6 (Saturday).
pub fn day_of_week(v: f64) -> f64 {
    // 1970-01-01 was a Thursday (4).
    with_date(v, |_, days, _| (days + 4).rem_euclid(7))
}

/// `day_of_year(v)`: 1–365, or 366 in leap years.
pub fn day_of_year(v: f64) -> f64 {
    with_date(v, |_, _, (y, m, d)| {
        let before: u32 = (1..m).map(|mm| month_length(y, mm)).sum();
        i64::from(before + d)
    })
}

/// `days_in_month(v)`: 28–31.
pub fn days_in_month(v: f64) -> f64 {
    with_date(v, |_, _, (y, m, _)| i64::from(month_length(y, m)))
}

/// `hour(v)`: 0–23.
pub fn hour(v: f64) -> f64 {
    with_date(v, |secs, _, _| secs.rem_euclid(SECONDS_PER_DAY) / 3600)
}

/// `minute(v)`: 0–59.
pub fn minute(v: f64) -> f64 {
    with_date(v, |secs, _, _| secs.rem_euclid(3600) / 60)
}

/// Looks up a calendar function by its PromQL name.
pub fn by_name(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "year" => year,
        "month" => month,
        "day_of_month" => day_of_month,
        "day_of_week" => day_of_week,
        "day_of_year" => day_of_year,
        "days_in_month" => days_in_month,
        "hour" => hour,
        "minute" => minute,
        _ => return None,
    })
}

/// Go's `time.Unix(secs, 0).UTC().Format(time.RFC3339)`, e.g. `2016-02-29T23:59:59Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let s = secs.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversion_round_trips_known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2000-02-29: 30 years of days (7 leap years) + 31 + 28 = 10 957 + 59.
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn rfc3339_formats_utc_seconds() {
        assert_eq!(rfc3339(1_456_790_399), "2016-02-29T23:59:59Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn date_fields_of_go_reference_time() {
        // 1136239445 = 2006-01-02T22:04:05Z, a Monday, the 2nd day of the year.
        let t = 1_136_239_445.0;
        assert_eq!(year(t), 2006.0);
        assert_eq!(month(t), 1.0);
        assert_eq!(day_of_month(t), 2.0);
        assert_eq!(day_of_year(t), 2.0);
        assert_eq!(day_of_week(t), 1.0);
        assert_eq!(hour(t), 22.0);
        assert_eq!(minute(t), 4.0);
        assert_eq!(days_in_month(t), 31.0);
    }

    #[test]
    fn date_fields_across_year_and_month_ends() {
        assert_eq!(year(1_230_767_999.0), 2008.0); // 2008-12-31T23:59:59
        assert_eq!(day_of_year(1_230_767_999.0), 366.0);
        assert_eq!(year(1_230_768_000.0), 2009.0); // one second later
        // 2021-04-30T23:59:59, then May 1st.
        assert_eq!(day_of_month(1_619_827_199.0), 30.0);
        assert_eq!(days_in_month(1_619_827_199.0), 30.0);
        assert_eq!(month(1_619_827_200.0), 5.0);
        assert_eq!(day_of_month(1_619_827_200.0), 1.0);
    }

    #[test]
    fn leap_years() {
        // 2016-02-29T23:59:59 then 2016-03-01T00:00:00.
        assert_eq!(month(1_456_790_399.0), 2.0);
        assert_eq!(day_of_month(1_456_790_399.0), 29.0);
        assert_eq!(day_of_month(1_456_790_400.0), 1.0);
        assert_eq!(day_of_year(1_456_790_400.0), 61.0);
        assert_eq!(day_of_year(1_483_191_420.0), 366.0); // 2016-12-31
        assert_eq!(day_of_year(1_672_493_820.0), 365.0); // 2022-12-31
        assert_eq!(days_in_month(1_454_284_800.0), 29.0); // 2016-02
        assert_eq!(days_in_month(1_485_907_200.0), 28.0); // 2017-02
        assert_eq!(days_in_month(949_363_200.0), 29.0); // 2000-02: divisible by 400
        assert_eq!(days_in_month(-2_206_310_400.0), 28.0); // 1900-02: by 100, not 400
    }

    #[test]
    fn fractional_and_negative_times_truncate_towards_zero() {
        assert_eq!(year(-0.5), 1970.0, "−0.5 truncates to 0");
        // −1.5 → −1 s: 1969-12-31T23:59:59, a Wednesday.
        assert_eq!(year(-1.5), 1969.0);
        assert_eq!(hour(-1.5), 23.0);
        assert_eq!(minute(-1.5), 59.0);
        assert_eq!(day_of_week(-1.5), 3.0);
        assert_eq!(minute(59.9), 0.0);
        assert!(year(f64::NAN).is_nan());
        assert!(hour(f64::INFINITY).is_nan());
        assert!(
            month(1e19).is_nan(),
            "outside int64: platform-defined in Go"
        );
    }

    proptest::proptest! {
        #[test]
        fn civil_dates_agree_with_counting_days(days in -800_000i64..800_000) {
            // Walk from 1970-01-01 one month at a time, using only the month lengths.
            let (mut y, mut m, mut left) = (1970i64, 1u32, days);
            while left < 0 {
                m = if m == 1 { y -= 1; 12 } else { m - 1 };
                left += i64::from(month_length(y, m));
            }
            while left >= i64::from(month_length(y, m)) {
                left -= i64::from(month_length(y, m));
                m = if m == 12 { y += 1; 1 } else { m + 1 };
            }
            proptest::prop_assert_eq!(civil_from_days(days), (y, m, left as u32 + 1));
        }
    }
}
