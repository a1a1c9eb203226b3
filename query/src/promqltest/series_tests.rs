use super::*;
use SeqValue::{Histogram as H, Omitted as O};

fn v(x: f64) -> SeqValue {
    SeqValue::Value(x)
}

fn vals(xs: &[f64]) -> Vec<SeqValue> {
    xs.iter().map(|&x| v(x)).collect()
}

fn expand(s: &str) -> Vec<SeqValue> {
    expand_values(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn plain_values_one_per_item() {
    assert_eq!(expand("1 2 3"), vals(&[1.0, 2.0, 3.0]));
    assert_eq!(expand("  1\t-1   +1  "), vals(&[1.0, -1.0, 1.0]));
    assert_eq!(expand(""), vec![]);
}

#[test]
fn increment_ramp_has_count_plus_one_values() {
    assert_eq!(expand("1+2x3"), vals(&[1.0, 3.0, 5.0, 7.0]));
    assert_eq!(expand("0+50x2"), vals(&[0.0, 50.0, 100.0]));
}

#[test]
fn decrement_ramp_and_negative_start() {
    assert_eq!(expand("1-2x3"), vals(&[1.0, -1.0, -3.0, -5.0]));
    assert_eq!(expand("-3-10x4"), vals(&[-3.0, -13.0, -23.0, -33.0, -43.0]));
    assert_eq!(expand("3-0x4"), vals(&[3.0; 5]));
}

#[test]
fn ramp_accumulates_by_repeated_addition_like_go() {
    let got = expand("0.1+0.1x9");
    let mut acc = 0.1f64;
    let mut want = Vec::new();
    for _ in 0..10 {
        want.push(v(acc));
        acc += 0.1;
    }
    assert_eq!(got, want);
    // The multiplied form differs in the last bit somewhere; repeated addition is what Go does.
    assert_ne!(got[9], v(0.1 + 9.0 * 0.1));
}

#[test]
fn repeat_without_increment_has_count_plus_one_values() {
    assert_eq!(expand("1x3"), vals(&[1.0; 4]));
    assert_eq!(expand("1x0"), vals(&[1.0]));
    assert_eq!(expand("1+1x0"), vals(&[1.0]));
}

#[test]
fn blank_and_repeated_blank_is_exactly_count_gaps() {
    assert_eq!(expand("1 _ 2"), vec![v(1.0), O, v(2.0)]);
    assert_eq!(expand("_x3"), vec![O, O, O]);
    assert_eq!(expand("_x0"), vec![]);
    assert_eq!(
        expand("1 3 _ 5 _x4"),
        vec![v(1.0), v(3.0), O, v(5.0), O, O, O, O]
    );
}

#[test]
fn stale_is_the_staleness_nan() {
    let got = expand("0 stale 1");
    assert_eq!(got.len(), 3);
    let SeqValue::Value(s) = got[1] else {
        panic!("stale should be a value")
    };
    assert_eq!(s.to_bits(), STALE_NAN_BITS);
}

#[test]
fn inf_and_nan_in_any_case_and_signed() {
    let got = expand("Inf -Inf +inf NaN nan");
    assert_eq!(
        got[..3],
        vals(&[f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY])[..]
    );
    assert!(matches!(got[3], SeqValue::Value(x) if x.is_nan()));
    assert!(matches!(got[4], SeqValue::Value(x) if x.is_nan()));
    assert_eq!(expand("Inf+1x2"), vals(&[f64::INFINITY; 3]));
}

#[test]
fn number_forms_follow_go_parse_int_then_parse_float() {
    assert_eq!(
        expand("1e3 .5 5. 1_000 2.5e-1"),
        vals(&[1e3, 0.5, 5.0, 1000.0, 0.25])
    );
    // A leading zero is octal to Go's ParseInt; `09` is not octal and falls back to decimal.
    assert_eq!(expand("010 09"), vals(&[8.0, 9.0]));
    // Hex is not lexed in series values: `0x10` is `0` repeated ten more times.
    assert_eq!(expand("0x10"), vals(&[0.0; 11]));
}

#[test]
fn malformed_items_are_rejected() {
    for bad in [
        "1+1",     // increment without count
        "-3-3",    // same
        "_-2",     // blank with increment
        "_a4",     // blank with junk
        "3+3x4-4", // trailing junk after the count
        "1x",      // missing count
        "1x-2",    // negative count
        "1x2.5",   // fractional count
        "Infx3",   // one word, as the Go lexer sees it
        "stalex3", // same
        "stale+1x2",
        "+stale",
        "abc",
        "1a",
        "1 + 1x3", // a lone `+`
        "1e",
    ] {
        assert!(expand_values(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn histogram_items_count_as_placeholders() {
    assert_eq!(
        expand("{{schema:1 sum:3 count:22 buckets:[5 10 7]}}"),
        vec![H]
    );
    assert_eq!(expand("1 {{count:1}}x2 _"), vec![v(1.0), H, H, H, O]);
    assert_eq!(expand("{{count:0}}+{{count:1}}x4"), vec![H; 5]);
    assert_eq!(expand("{{count:5}}-{{count:1}}x1 2"), vec![H, H, v(2.0)]);
    assert!(expand_values("{{count:1}").is_err());
    assert!(expand_values("{{count:1}}+{{count:1}}").is_err());
    assert!(expand_values("{{count:1}}y").is_err());
}

#[test]
fn series_line_splits_labels_from_values() {
    let (l, vs) = parse_series_line(r#"m{a="b c"}	1 2"#).unwrap();
    assert_eq!(l.get("a"), Some("b c"));
    assert_eq!(l.metric_name(), Some("m"));
    assert_eq!(vs, vals(&[1.0, 2.0]));
    let (l, vs) = parse_series_line("{}").unwrap();
    assert!(l.is_empty() && vs.is_empty());
    assert!(
        parse_series_line(r#"m{a="b"}1"#).is_err(),
        "values need a separator"
    );
}

#[test]
fn durations_follow_model_parse_duration() {
    assert_eq!(parse_duration("0").unwrap(), 0);
    assert_eq!(parse_duration("0s").unwrap(), 0);
    assert_eq!(parse_duration("1m").unwrap(), 60_000);
    assert_eq!(parse_duration("10s53ms").unwrap(), 10_053);
    assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
    assert_eq!(
        parse_duration("1y1w1d").unwrap(),
        (365 + 7 + 1) * 86_400_000
    );
    for bad in ["", "1", "30s1m", "1m1m", "1.5m", "-1m", "1x", "m"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn go_numbers_for_scalar_lines() {
    assert_eq!(parse_go_number("0x1F").unwrap(), 31.0);
    assert_eq!(parse_go_number("-0b101").unwrap(), -5.0);
    assert_eq!(parse_go_number("0o17").unwrap(), 15.0);
    assert_eq!(parse_go_number("+Inf").unwrap(), f64::INFINITY);
    assert_eq!(parse_go_number("-infinity").unwrap(), f64::NEG_INFINITY);
    assert!(parse_go_number("NaN").unwrap().is_nan());
    for bad in [
        "1e400", "", "-", "1_", "_1", "1__0", "0x", "0x+1", "--1", "{} 1", "1 2",
    ] {
        assert!(parse_go_number(bad).is_err(), "{bad:?} should not parse");
    }
}

#[test]
fn start_timestamp_sequences() {
    assert_eq!(
        expand_start_timestamps("_ _x2 -30s -1mx2").unwrap(),
        vec![
            None,
            None,
            None,
            Some(-30_000),
            Some(-60_000),
            Some(-60_000),
            Some(-60_000)
        ]
    );
    assert_eq!(
        expand_start_timestamps("-30s-1mx2 0s+1sx1").unwrap(),
        vec![
            Some(-30_000),
            Some(-90_000),
            Some(-150_000),
            Some(0),
            Some(1_000)
        ]
    );
    assert_eq!(
        expand_start_timestamps("-59999ms").unwrap(),
        vec![Some(-59_999)]
    );
    for bad in ["_x0", "1m+1m", "1mq", "x3", "1m1s"] {
        assert!(
            expand_start_timestamps(bad).is_err(),
            "{bad:?} should not parse"
        );
    }
}
