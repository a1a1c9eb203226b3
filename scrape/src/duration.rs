//! Prometheus' duration strings (`model.Duration`): `1h30m`, `15s`, `500ms`, `2w`.
//!
//! Owns parsing and the canonical form Prometheus prints (which also becomes
//! the `__scrape_interval__` target label). It does not own Go's
//! `time.ParseDuration` (`1.5h`), which `prometheus.yml` does not accept.

use std::fmt;
use std::time::Duration as StdDuration;

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A duration written in Prometheus' unit syntax, millisecond precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(StdDuration);

const MS: u64 = 1;
const SECOND: u64 = 1000 * MS;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
const YEAR: u64 = 365 * DAY;

/// Units from biggest to smallest; a string must use them in this order, each
/// at most once (as `model.ParseDuration`).
const UNITS: [(&str, u64); 7] = [
    ("y", YEAR),
    ("w", WEEK),
    ("d", DAY),
    ("h", HOUR),
    ("m", MINUTE),
    ("s", SECOND),
    ("ms", MS),
];

/// Go's `time.Duration` is int64 nanoseconds; Prometheus refuses anything
/// that would not fit, so Ember does too.
const MAX_MS: u64 = (i64::MAX as u64) / 1_000_000;

impl Duration {
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(StdDuration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Duration {
        Duration(StdDuration::from_secs(s))
    }

    pub fn as_millis(&self) -> u64 {
        // Always built from a u64 millisecond count no larger than MAX_MS.
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    pub fn as_std(&self) -> StdDuration {
        self.0
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Parses `0`, or one or more `<digits><unit>` groups with units in
    /// decreasing order (`1d12h`, not `12h1d`). The messages are Prometheus'.
    pub fn parse(s: &str) -> Result<Duration, String> {
        match s {
            "0" => return Ok(Duration::default()),
            "" => return Err("empty duration string".to_string()),
            _ => {}
        }
        let invalid = || format!("not a valid duration string: {s:?}");
        let mut rest = s;
        let mut total: u64 = 0;
        // Index into UNITS of the last unit seen; the next must come later.
        let mut last_unit: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(invalid());
            }
            let (num, after) = rest.split_at(digits);
            let value: u64 = num.parse().map_err(|_| invalid())?;
            let unit_len = after.bytes().take_while(|b| !b.is_ascii_digit()).count();
            if unit_len == 0 {
                return Err(invalid());
            }
            let (unit, after) = after.split_at(unit_len);
            let Some(pos) = UNITS.iter().position(|(u, _)| *u == unit) else {
                return Err(format!("unknown unit {unit:?} in duration {s:?}"));
            };
            if last_unit.is_some_and(|l| pos <= l) {
                return Err(invalid());
            }
            last_unit = Some(pos);
            let mult = UNITS.get(pos).map_or(1, |(_, m)| *m);
            total = value
                .checked_mul(mult)
                .and_then(|v| total.checked_add(v))
                .filter(|v| *v <= MAX_MS)
                .ok_or_else(|| "duration out of range".to_string())?;
            rest = after;
        }
        Ok(Duration::from_millis(total))
    }
}

impl From<StdDuration> for Duration {
    fn from(d: StdDuration) -> Duration {
        Duration(d)
    }
}

impl fmt::Display for Duration {
    /// Prometheus' canonical form: `0s`, `1m`, `1h30m`, `90d`; years and weeks
    /// only when they divide the whole duration (`90d`, not `12w6d`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, mult) in UNITS {
            let exact_only = mult >= WEEK;
            if exact_only && !ms.is_multiple_of(mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        // A visitor (not `String::deserialize` then parse) so the YAML
        // deserializer attaches the scalar's own line to the error.
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 15s or 1h30m")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                Duration::parse(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                // YAML `0` is an integer; Prometheus accepts the string "0".
                if v == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!("not a valid duration string: \"{v}\"")))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("not a valid duration string: \"{v}\""))),
                }
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_units_in_order() {
        assert_eq!(Duration::parse("1h30m").unwrap().as_millis(), 90 * 60_000);
        assert_eq!(Duration::parse("15s").unwrap().as_millis(), 15_000);
        assert_eq!(Duration::parse("500ms").unwrap().as_millis(), 500);
        assert_eq!(
            Duration::parse("1y2w3d").unwrap().as_millis(),
            YEAR + 2 * WEEK + 3 * DAY
        );
        assert_eq!(Duration::parse("0").unwrap().as_millis(), 0);
        assert_eq!(Duration::parse("0s").unwrap().as_millis(), 0);
    }

    #[test]
    fn rejects_what_prometheus_rejects() {
        assert_eq!(Duration::parse("").unwrap_err(), "empty duration string");
        assert_eq!(
            Duration::parse("1.5h").unwrap_err(),
            "unknown unit \".\" in duration \"1.5h\""
        );
        assert_eq!(
            Duration::parse("30m1h").unwrap_err(),
            "not a valid duration string: \"30m1h\""
        );
        assert_eq!(
            Duration::parse("1m1m").unwrap_err(),
            "not a valid duration string: \"1m1m\""
        );
        assert_eq!(
            Duration::parse("10").unwrap_err(),
            "not a valid duration string: \"10\""
        );
        assert_eq!(
            Duration::parse("5x").unwrap_err(),
            "unknown unit \"x\" in duration \"5x\""
        );
        assert_eq!(
            Duration::parse("-5s").unwrap_err(),
            "not a valid duration string: \"-5s\""
        );
        assert_eq!(
            Duration::parse("300y").unwrap_err(),
            "duration out of range"
        );
        assert!(Duration::parse("99999999999999999999999s").is_err());
    }

    #[test]
    fn prints_prometheus_canonical_form() {
        let p = |s: &str| Duration::parse(s).unwrap().to_string();
        assert_eq!(p("60s"), "1m");
        assert_eq!(p("90m"), "1h30m");
        assert_eq!(p("0"), "0s");
        assert_eq!(p("1500ms"), "1s500ms");
        assert_eq!(p("14d"), "2w");
        assert_eq!(p("90d"), "90d");
        assert_eq!(p("365d"), "1y");
    }
}
