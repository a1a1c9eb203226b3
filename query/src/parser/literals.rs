//! Go-compatible literal syntax, as Prometheus inherits it from Go's standard library: quoting
//! strings and runes for printing and error messages (`strconv.Quote`, `%q`, `%#U`), unquoting string
//! literals, number literals (`strconv.ParseInt` with base prefix, then `ParseFloat`), Prometheus
//! durations (`model.ParseDuration` and its `String`), and Go's float formatting (`%v`, `%f`).
//!
//! Owns only these conversions; the lexer decides which text is a literal in the first place.

use std::fmt::Write;

/// Whether Go's `strconv.IsPrint` holds. Go consults the Unicode tables (letters, marks, numbers,
/// punctuation, symbols and U+0020); without them this approximation treats controls, separators
/// other than the ASCII space, format characters, surrogates and private-use characters as
/// non-printable, which covers the characters a query realistically contains.
pub(crate) fn is_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF)
}

/// Appends `c` escaped as Go does inside a quoted literal delimited by `quote`.
fn push_escaped(out: &mut String, c: char, quote: char) {
    match c {
        _ if c == quote || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        _ if is_print(c) => out.push(c),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

/// Go's `strconv.Quote`: a double-quoted literal that Go (and PromQL) reads back as `s`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// Go's `%.Nq` on a string: at most `n` characters, then quoted.
pub(crate) fn quote_truncated(s: &str, n: usize) -> String {
    let cut: String = s.chars().take(n).collect();
    quote(&cut)
}

/// Go's `strconv.QuoteRune` (`%q` on a rune).
pub(crate) fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// Go's `%#U`: `U+0063 'c'` (the rune itself only when printable).
pub(crate) fn unicode_point(c: char) -> String {
    if is_print(c) {
        format!("U+{:04X} '{}'", c as u32, c)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Prometheus' `strutil.Unquote` on a lexed string literal (quotes included): Go escape sequences in
/// `"…"` and `'…'`, none in backticks. The lexer has already validated the escapes, so errors here
/// are limited to values that are not valid UTF-8 (Go allows `"\xff"`; Rust strings cannot hold it).
pub(crate) fn unquote(lit: &str) -> Result<String, String> {
    let bytes = lit.as_bytes();
    if bytes.len() < 2 || bytes[0] != bytes[bytes.len() - 1] {
        return Err("invalid syntax".into());
    }
    let quote = bytes[0];
    let body = &lit[1..lit.len() - 1];
    if quote == b'`' {
        return Ok(body.to_string());
    }
    if !body.contains('\\') {
        return Ok(body.to_string());
    }
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = chars.next().ok_or("invalid syntax")?;
        let simple = match e {
            'a' => Some(7u8),
            'b' => Some(8),
            'f' => Some(12),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(11),
            '\\' => Some(b'\\'),
            '\'' | '"' if e as u32 == quote as u32 => Some(e as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let (digits, radix, raw_byte) = match e {
            '0'..='7' => (2, 8, true),
            'x' => (2, 16, true),
            'u' => (4, 16, false),
            'U' => (8, 16, false),
            _ => return Err("invalid syntax".into()),
        };
        let mut v: u32 = if e.is_digit(8) {
            e as u32 - '0' as u32
        } else {
            0
        };
        for _ in 0..digits {
            let d = chars
                .next()
                .and_then(|d| d.to_digit(radix))
                .ok_or("invalid syntax")?;
            v = v * radix + d;
        }
        if raw_byte {
            if v > 255 {
                return Err("invalid syntax".into());
            }
            // Go appends the byte itself, which may leave the string invalid UTF-8.
            out.push(v as u8);
        } else {
            let ch = char::from_u32(v).ok_or("invalid syntax")?;
            let mut buf = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        }
    }
    String::from_utf8(out).map_err(|_| "invalid UTF-8 in string literal".to_string())
}

/// Prometheus' number literal conversion: `strconv.ParseInt(s, 0, 64)` (so `0x1f`, octal `017`,
/// `1_000`), falling back to `strconv.ParseFloat`. The error is Go's (`strconv.ParseFloat: parsing
/// "1e999": value out of range`).
pub(crate) fn parse_number(s: &str) -> Result<f64, String> {
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(v) = parse_go_int(&clean) {
        return Ok(v as f64);
    }
    let lower = clean.to_ascii_lowercase();
    let hex = lower.starts_with("0x");
    match clean.parse::<f64>() {
        Ok(v) if !hex => {
            let named = lower.contains("inf") || lower.contains("nan");
            if v.is_infinite() && !named {
                Err(format!(
                    "strconv.ParseFloat: parsing {}: value out of range",
                    quote(s)
                ))
            } else {
                Ok(v)
            }
        }
        // Go accepts hexadecimal floats only with a `p` exponent, which PromQL's lexer never lets through.
        _ => Err(format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            quote(s)
        )),
    }
}

/// `strconv.ParseInt(s, 0, 64)` for the unsigned forms the lexer produces; `None` on any failure.
fn parse_go_int(s: &str) -> Option<i64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(digits, radix).ok()
}

const NS_PER_MS: u64 = 1_000_000;

/// Prometheus' `model.ParseDuration`: `1h30m`, units `y w d h m s ms` in decreasing order, each at
/// most once. Returns nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    let invalid = || format!("not a valid duration string: {}", quote(s));
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = 0;
    while !rest.is_empty() {
        let n_digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n_digits == 0 {
            return Err(invalid());
        }
        let v: u64 = rest[..n_digits].parse().map_err(|_| invalid())?;
        rest = &rest[n_digits..];
        let n_unit = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if n_unit == 0 {
            return Err(invalid());
        }
        let unit = &rest[..n_unit];
        rest = &rest[n_unit..];
        let (pos, mult) = match unit {
            "y" => (1, 365 * 24 * 3600 * 1000 * NS_PER_MS),
            "w" => (2, 7 * 24 * 3600 * 1000 * NS_PER_MS),
            "d" => (3, 24 * 3600 * 1000 * NS_PER_MS),
            "h" => (4, 3600 * 1000 * NS_PER_MS),
            "m" => (5, 60 * 1000 * NS_PER_MS),
            "s" => (6, 1000 * NS_PER_MS),
            "ms" => (7, NS_PER_MS),
            _ => {
                return Err(format!(
                    "unknown unit {} in duration {}",
                    quote(unit),
                    quote(s)
                ));
            }
        };
        if pos <= last_unit {
            return Err(invalid());
        }
        last_unit = pos;
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

/// Prometheus' `model.Duration.String` for a non-negative number of milliseconds: `1h30m`, `0s`;
/// years and weeks only when they divide the value exactly.
pub(crate) fn format_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut ms = ms.unsigned_abs();
    let mut out = String::new();
    let units: [(&str, u64, bool); 7] = [
        ("y", 365 * 24 * 3600 * 1000, true),
        ("w", 7 * 24 * 3600 * 1000, true),
        ("d", 24 * 3600 * 1000, false),
        ("h", 3600 * 1000, false),
        ("m", 60 * 1000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ];
    for (name, mult, exact) in units {
        if exact && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            let _ = write!(out, "{v}{name}");
            ms -= v * mult;
        }
    }
    out
}

/// A signed millisecond duration as the printer writes it: `5m`, `-1h`.
pub(crate) fn format_signed_duration_ms(ms: i64) -> String {
    if ms < 0 {
        format!("-{}", format_duration_ms(ms))
    } else {
        format_duration_ms(ms)
    }
}

/// Go's conversion of a float to `int64` for the values Prometheus converts (saturating here, where
/// Go's result is unspecified for out-of-range values).
pub(crate) fn f64_to_i64(v: f64) -> i64 {
    v as i64
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent;
/// `+Inf`, `-Inf`, `NaN`.
pub(crate) fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)` with Go's exponent rule): `1e+06`,
/// `0.0001`, `1e-05`.
pub(crate) fn format_float_g(v: f64) -> String {
    if !v.is_finite() {
        return format_float(v);
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits with a decimal exponent.
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent digits");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Go's `%f` (six decimals; `+Inf`, `-Inf`, `NaN`).
pub(crate) fn format_float_f6(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        format_float(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_go() {
        assert_eq!(
            quote("a\"b\\c\n\t\u{1}\u{7f}é☺"),
            r#""a\"b\\c\n\t\x01\x7fé☺""#
        );
        assert_eq!(quote("\u{a0}\u{feff}"), r#""\u00a0\ufeff""#);
        assert_eq!(quote_rune('\''), r"'\''");
        assert_eq!(quote_rune('"'), "'\"'");
        assert_eq!(unicode_point('c'), "U+0063 'c'");
        assert_eq!(unicode_point('\n'), "U+000A");
        assert_eq!(quote_truncated("\"abcdefghijkl\"", 10), r#""\"abcdefghi""#);
    }

    #[test]
    fn unquote_handles_go_escapes() {
        assert_eq!(
            unquote(r#""a\tb\x41\101\u00e9\U0001F600""#).unwrap(),
            "a\tbAAé😀"
        );
        assert_eq!(unquote(r"'it\'s'").unwrap(), "it's");
        assert_eq!(unquote(r"`raw\n`").unwrap(), "raw\\n");
        assert!(unquote(r#""\xff""#).is_err());
    }

    #[test]
    fn numbers_follow_parseint_then_parsefloat() {
        assert_eq!(parse_number("0x1f"), Ok(31.0));
        assert_eq!(parse_number("017"), Ok(15.0));
        assert_eq!(parse_number("089"), Ok(89.0));
        assert_eq!(parse_number("1_000"), Ok(1000.0));
        assert_eq!(parse_number("1.5e3"), Ok(1500.0));
        assert_eq!(parse_number(".5"), Ok(0.5));
        assert!(parse_number("NaN").unwrap().is_nan());
        assert_eq!(parse_number("Inf"), Ok(f64::INFINITY));
        assert_eq!(
            parse_number("1e999"),
            Err("strconv.ParseFloat: parsing \"1e999\": value out of range".into())
        );
        assert_eq!(
            parse_number("0x1e+5"),
            Err("strconv.ParseFloat: parsing \"0x1e+5\": invalid syntax".into())
        );
    }

    #[test]
    fn durations_parse_and_print_like_prometheus() {
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("1m30ms"), Ok(60_030_000_000));
        assert_eq!(
            parse_duration("5m1h"),
            Err("not a valid duration string: \"5m1h\"".into())
        );
        assert_eq!(
            parse_duration("5y1hs"),
            Err("unknown unit \"hs\" in duration \"5y1hs\"".into())
        );
        assert_eq!(parse_duration("300y"), Err("duration out of range".into()));
        assert_eq!(format_duration_ms(5_400_000), "1h30m");
        assert_eq!(format_duration_ms(0), "0s");
        assert_eq!(format_duration_ms(90 * 86_400_000), "90d");
        assert_eq!(format_duration_ms(91 * 86_400_000), "13w");
        assert_eq!(format_duration_ms(365 * 86_400_000), "1y");
        assert_eq!(format_duration_ms(366 * 86_400_000), "366d");
        assert_eq!(format_signed_duration_ms(-1500), "-1s500ms");
    }

    #[test]
    fn floats_format_like_go() {
        assert_eq!(format_float(1.0), "1");
        assert_eq!(format_float(-0.0), "-0");
        assert_eq!(format_float(1e21), "1000000000000000000000");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_float_g(1e6), "1e+06");
        assert_eq!(format_float_g(123456.0), "123456");
        assert_eq!(format_float_g(1e-5), "1e-05");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(1.5), "1.5");
        assert_eq!(format_float_f6(1.5), "1.500000");
        assert_eq!(format_float_f6(f64::INFINITY), "+Inf");
    }
}
