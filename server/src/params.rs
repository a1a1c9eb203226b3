//! Request parameters of the HTTP API, read the way Prometheus reads them: form values from the URL
//! and from a form-encoded POST body (`r.FormValue`), timestamps (RFC 3339 or Unix seconds as a
//! float), durations (Prometheus durations such as `1h30m`, or float seconds), `limit`, and `match[]`
//! series selectors. Error texts are Prometheus' own, so clients that match on them keep working.
//!
//! Owns parsing and validating these values; it does not own what an endpoint does with them, nor
//! PromQL parsing (`ember_query::parser`, which parses the selectors).

use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use ember::Matcher;
use ember_query::functions::gofmt::{parse_float, quote};

/// Largest form body read, as Go's `ParseForm` (10 MiB).
const MAX_FORM_BYTES: usize = 10 << 20;

/// Default start of optional time ranges: Prometheus' `v1.MinTime` in milliseconds.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// Default end of optional time ranges: Prometheus' `v1.MaxTime` in milliseconds.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;
/// `MinTime` and `MaxTime` as Go formats them; clients send them back (years beyond 9999 do not parse
/// as RFC 3339, so Prometheus compares the text).
const MIN_TIME_TEXT: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_TEXT: &str = "292277025-08-18T07:12:54.999999999Z";

/// The form values of a request: those of a `application/x-www-form-urlencoded` POST (or PUT/PATCH)
/// body first, then those of the URL query, as Go's `r.Form`.
#[derive(Debug, Default, Clone)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `key`, or `""` (Go's `r.FormValue`).
    pub fn value(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `key`, body values first (Go's `r.Form[key]`).
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let mut pairs = Vec::new();
        let form_body = matches!(parts.method, Method::POST | Method::PUT | Method::PATCH)
            && parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| {
                    v.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                });
        if form_body {
            let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
                .await
                .map_err(|e| {
                    crate::api::ApiError::BadData(format!("error parsing form values: {e}"))
                        .into_response()
                })?;
            pairs.extend(form_urlencoded::parse(&bytes).into_owned());
        }
        if let Some(q) = parts.uri.query() {
            pairs.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Ok(Form(pairs))
    }
}

/// Prometheus' `parseTime`: Unix seconds as a float (rounded to milliseconds) or RFC 3339, to
/// milliseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Some(t) = parse_float(s) {
        return Ok(float_seconds_to_ms(t));
    }
    if let Some(ms) = parse_rfc3339(s) {
        return Ok(ms);
    }
    match s {
        MIN_TIME_TEXT => Ok(MIN_TIME_MS),
        MAX_TIME_TEXT => Ok(MAX_TIME_MS),
        _ => Err(format!("cannot parse {} to a valid timestamp", quote(s))),
    }
}

/// Prometheus' `parseTimeParam`: `default` when absent, else [`parse_time`] with the parameter named.
pub fn parse_time_param(form: &Form, name: &str, default: i64) -> Result<i64, String> {
    match form.value(name) {
        "" => Ok(default),
        v => parse_time(v).map_err(|e| format!("invalid time value for '{name}': {e}")),
    }
}

/// Go's `time.Unix(int64(sec), int64(round(frac*1000)/1000*1e9))` followed by
/// `timestamp.FromTime`, with the same floating-point steps so the same millisecond comes out.
/// Times beyond Prometheus' own `MinTime`/`MaxTime` (including ±Inf and NaN, which Go turns into
/// arbitrary instants) are clamped to them, which leaves the evaluator room for offsets and ranges
/// without overflow.
fn float_seconds_to_ms(t: f64) -> i64 {
    if t.is_nan() {
        return MIN_TIME_MS;
    }
    let (sec, frac) = (t.trunc(), t.fract());
    let nsec = if frac.is_finite() {
        ((frac * 1000.0).round() / 1000.0 * 1e9) as i64
    } else {
        0
    };
    let ms = (sec as i128)
        .saturating_mul(1000)
        .saturating_add(i128::from(nsec.div_euclid(1_000_000)));
    ms.clamp(i128::from(MIN_TIME_MS), i128::from(MAX_TIME_MS)) as i64
}

/// RFC 3339 with optional fractional seconds (Go's `time.RFC3339Nano` layout), to milliseconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let year = num(0, 4)?;
    let month = num(5, 2)?;
    let day = num(8, 2)?;
    let (hour, min, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let mut digits = 0;
        while let Some(d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if digits < 9 {
                nanos = nanos * 10 + i64::from(d - b'0');
                digits += 1;
            }
            i += 1;
        }
        nanos *= 10i64.pow(9 - digits);
    }
    let offset_s = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_s;
    Some(secs * 1000 + nanos / 1_000_000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Prometheus' API `parseDuration`: float seconds or a Prometheus duration, to nanoseconds (Go's
/// `time.Duration`).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Some(d) = parse_float(s) {
        let ns = d * 1e9;
        if ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {} to a valid duration. It overflows int64",
                quote(s)
            ));
        }
        // Go converts NaN (and 2^63 exactly) to math.MinInt64 on the platforms Prometheus ships for.
        return Ok(if ns.is_nan() || ns >= i64::MAX as f64 {
            i64::MIN
        } else {
            ns as i64
        });
    }
    parse_model_duration(s).map_err(|_| format!("cannot parse {} to a valid duration", quote(s)))
}

/// Prometheus' `model.ParseDuration` (`1y2w3d4h5m6s7ms`, units in this order, `0` without a unit), to
/// nanoseconds. Also the syntax of duration flags such as `--query.timeout`.
pub fn parse_model_duration(s: &str) -> Result<i64, String> {
    const MS: u64 = 1_000_000;
    const UNITS: [(&str, u64); 8] = [
        ("y", 365 * 24 * 3600 * 1000 * MS),
        ("w", 7 * 24 * 3600 * 1000 * MS),
        ("d", 24 * 3600 * 1000 * MS),
        ("h", 3600 * 1000 * MS),
        ("m", 60 * 1000 * MS),
        ("s", 1000 * MS),
        ("ms", MS),
        // Not a unit: keeps the indices of the seven real ones 0..7.
        ("", 0),
    ];
    match s {
        "0" => return Ok(0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    let invalid = || format!("not a valid duration string: {}", quote(s));
    let mut rest = s;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(invalid());
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(pos) = UNITS[..7].iter().position(|(u, _)| *u == unit) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                quote(unit),
                quote(s)
            ));
        };
        if pos < next_unit {
            return Err(invalid());
        }
        next_unit = pos + 1;
        let mult = UNITS[pos].1;
        if v > (1u64 << 63) / mult {
            return Err("duration out of range".into());
        }
        total += v * mult;
        if total > i64::MAX as u64 {
            return Err("duration out of range".into());
        }
    }
    Ok(total as i64)
}

/// Prometheus' `parseLimitParam`: absent is 0 (no limit); Go's `strconv.Atoi` errors otherwise.
pub fn parse_limit(s: &str) -> Result<usize, String> {
    if s.is_empty() {
        return Ok(0);
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            quote(s)
        ));
    }
    let n: i64 = s
        .parse()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", quote(s)))?;
    if n < 0 {
        return Err("limit must be non-negative".into());
    }
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Prometheus' `parseMatchersParam`: every `match[]` parsed as a series selector, each set needing
/// one matcher that does not match the empty string.
pub fn parse_match_params(values: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let mut sets = Vec::with_capacity(values.len());
    for v in values {
        let set = parse_metric_selector(v)?;
        if set.iter().all(|m| m.matches_empty()) {
            return Err(NON_EMPTY.into());
        }
        sets.push(set);
    }
    Ok(sets)
}

const NON_EMPTY: &str = "match[] must contain at least one non-empty matcher";

/// Prometheus' `ParseMetricSelector`: a selector `name`, `name{…}` or `{…}` and nothing else (no
/// offset, `@`, range or operator), with the parser's errors (`1:3: parse error: unexpected <op:+>`).
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, String> {
    ember_query::parser::parse_metric_selector(input).map_err(|e| {
        // The parser insists on a non-empty matcher, which Prometheus' selector grammar leaves to
        // the API; the API's wording is the one Prometheus shows.
        if e.message.contains("at least one non-empty matcher") {
            NON_EMPTY.to_string()
        } else {
            e.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_like_prometheus() {
        assert_eq!(parse_time("1435781451.781"), Ok(1_435_781_451_781));
        assert_eq!(parse_time("1435781451"), Ok(1_435_781_451_000));
        assert_eq!(parse_time("-1.5"), Ok(-1500));
        assert_eq!(parse_time("0.0005"), Ok(1));
        assert_eq!(
            parse_time("2015-07-01T20:10:51.781Z"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(parse_time("2015-07-01T20:10:51Z"), Ok(1_435_781_451_000));
        assert_eq!(
            parse_time("2015-07-01T22:10:51.7819+02:00"),
            Ok(1_435_781_451_781)
        );
        assert_eq!(parse_time("1970-01-01T00:00:00-00:30"), Ok(1_800_000));
        assert_eq!(parse_time(MIN_TIME_TEXT), Ok(MIN_TIME_MS));
        // Out-of-range and non-finite float times are clamped, never overflow.
        for (text, want) in [
            ("Inf", MAX_TIME_MS),
            ("+Inf", MAX_TIME_MS),
            ("-Inf", MIN_TIME_MS),
            ("1e308", MAX_TIME_MS),
            ("-1e308", MIN_TIME_MS),
            ("1e20", MAX_TIME_MS),
            ("NaN", MIN_TIME_MS),
        ] {
            assert_eq!(parse_time(text), Ok(want), "{text}");
        }
        assert_eq!(parse_time(MAX_TIME_TEXT), Ok(MAX_TIME_MS));
        assert_eq!(
            parse_time("x"),
            Err(r#"cannot parse "x" to a valid timestamp"#.into())
        );
        for bad in [
            "2015-02-29T00:00:00Z",
            "2015-07-01 20:10:51Z",
            "2015-07-01T20:10:51",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn min_and_max_time_are_prometheus_values() {
        assert_eq!(MIN_TIME_MS, -9_223_309_901_257_974_000);
        assert_eq!(MAX_TIME_MS, 9_223_309_901_257_974_999);
        assert_eq!(
            days_from_civil(-292_273_086, 5, 16) * 86_400 + 16 * 3600 + 47 * 60 + 6,
            MIN_TIME_MS / 1000
        );
        assert_eq!(
            days_from_civil(292_277_025, 8, 18) * 86_400 + 7 * 3600 + 12 * 60 + 54,
            MAX_TIME_MS / 1000
        );
    }

    #[test]
    fn durations_parse_like_prometheus() {
        assert_eq!(parse_duration("15"), Ok(15_000_000_000));
        assert_eq!(parse_duration("0.5"), Ok(500_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000_000_000));
        assert_eq!(parse_duration("100ms"), Ok(100_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(
            parse_duration("x"),
            Err(r#"cannot parse "x" to a valid duration"#.into())
        );
        assert_eq!(
            parse_duration(""),
            Err(r#"cannot parse "" to a valid duration"#.into())
        );
        assert!(
            parse_duration("1e10")
                .unwrap_err()
                .contains("overflows int64")
        );
        assert!(parse_duration("30s1m").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_model_duration("2m"), Ok(120_000_000_000));
    }

    #[test]
    fn limits_parse_like_atoi() {
        assert_eq!(parse_limit(""), Ok(0));
        assert_eq!(parse_limit("5"), Ok(5));
        assert_eq!(parse_limit("+5"), Ok(5));
        assert_eq!(
            parse_limit("x"),
            Err(r#"strconv.Atoi: parsing "x": invalid syntax"#.into())
        );
        assert_eq!(
            parse_limit("99999999999999999999"),
            Err(r#"strconv.Atoi: parsing "99999999999999999999": value out of range"#.into())
        );
        assert_eq!(parse_limit("-1"), Err("limit must be non-negative".into()));
    }

    #[test]
    fn selector_errors_name_the_token_as_prometheus() {
        let cases = [
            ("up+1", "1:3: parse error: unexpected <op:+>"),
            ("up offset 5m", "1:4: parse error: unexpected <offset>"),
            ("rate(up[5m])", r#"1:5: parse error: unexpected "(""#),
            (r#"up{a="b"}[5m]"#, r#"1:10: parse error: unexpected "[""#),
            ("up and up", "1:4: parse error: unexpected <op:and>"),
            ("1", r#"1:1: parse error: unexpected number "1""#),
            ("up 5m", r#"1:4: parse error: unexpected duration "5m""#),
            ("up foo", r#"1:4: parse error: unexpected identifier "foo""#),
            (r#"{a="b"}{c="d"}"#, r#"1:8: parse error: unexpected "{""#),
            ("-up", "1:1: parse error: unexpected <op:->"),
            ("up by", "1:4: parse error: unexpected <by>"),
            ("up}", "1:3: parse error: unexpected character: '}'"),
            ("up\n+", "2:1: parse error: unexpected <op:+>"),
            ("", "unknown position: parse error: unexpected end of input"),
            (r#"{a=""}"#, NON_EMPTY),
            (
                r#"up "abcdefghijklmnopq""#,
                r#"1:4: parse error: unexpected string "\"abcdefghi"..."#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_metric_selector(input), Err(want.into()), "{input}");
        }
    }
}
