//! Go's text forms of numbers and strings, where PromQL results or messages expose them.
//!
//! Owns: `%g`/`%v` and `%.Ng` (annotation texts), `%f` (error texts), `%q` (quoted names),
//! `strconv.FormatFloat(v, 'f', -1, 64)` (`count_values` labels), OpenMetrics float labels
//! (`histogram_quantiles`), and `strconv.ParseFloat` (the `le` label). Does not own JSON number
//! formatting of API responses.

use std::sync::LazyLock;

/// Decimal digits of `|v|` (no trailing zeros, at least one digit) and the position of the
/// decimal point relative to them: `v = 0.d1d2d3… × 10^dp`. `v` must be finite and non-zero.
fn decimal_digits(v: f64, significant: Option<usize>) -> (Vec<u8>, i32) {
    let Some(n) = significant else {
        let (d, len, dp) = shortest(v);
        return (d[..len].to_vec(), dp);
    };
    // `{:.Ne}` rounds the exact binary value half-to-even, as Go's fixed-precision conversion does.
    let text = format!("{:.*e}", n.saturating_sub(1), v.abs());
    let (mantissa, exp) = text.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("integer exponent");
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

/// The shortest digits that read back as finite, non-zero `|v|`, as `decimal_digits`: `(digits,
/// how many, dp)`. From Ryū, which, like Go's `strconv`, breaks a tie between two shortest texts
/// towards the even digit (Rust's own formatting rounds it up: `685759136058971.25` is
/// `…971.2` in Go and Ryū, `…971.3` in Rust). No allocation: this is on the path of every
/// non-integral sample value an API answer holds.
fn shortest(v: f64) -> ([u8; 24], usize, i32) {
    let mut buf = ryu::Buffer::new();
    // Ryū writes `d.ddd`, `0.000ddd` or `d.ddde±N`.
    let text = buf.format_finite(v.abs());
    let (mantissa, exp) = match text.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().expect("Ryū writes an integer exponent")),
        None => (text, 0),
    };
    let int_len = mantissa.find('.').unwrap_or(mantissa.len());
    let mut digits = [0u8; 24];
    let mut n = 0;
    let mut dp = int_len as i32 + exp;
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if n == 0 && b == b'0' {
            // A leading zero moves the point instead.
            dp -= 1;
            continue;
        }
        digits[n] = b;
        n += 1;
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    (digits, n, dp)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` of a finite `v`, appended to `out`: the shortest
/// digits that read back as `v`, in positional notation.
pub fn push_shortest_fixed(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push_str(sign(v));
        out.push('0');
        return;
    }
    let mut buf = ryu::Buffer::new();
    let text = buf.format_finite(v);
    if !text.contains('e') {
        // Ryū's positional form (most magnitudes) is already Go's, but for the `.0` it gives whole
        // numbers: taken as it is, as re-laying its digits cost a sixth of a range answer's encoding.
        out.push_str(text.strip_suffix(".0").unwrap_or(text));
        return;
    }
    let (d, n, dp) = shortest(v);
    out.push_str(sign(v));
    let digits = std::str::from_utf8(&d[..n]).expect("ASCII digits");
    let zeros = |out: &mut String, k: i32| out.extend(std::iter::repeat_n('0', k.max(0) as usize));
    if dp <= 0 {
        out.push_str("0.");
        zeros(out, -dp);
        out.push_str(digits);
    } else if dp as usize >= n {
        out.push_str(digits);
        zeros(out, dp - n as i32);
    } else {
        let (a, b) = digits.split_at(dp as usize);
        out.push_str(a);
        out.push('.');
        out.push_str(b);
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)` of a finite, non-zero `v`: shortest digits, an
/// exponent with its sign and at least two digits (`1e+21`, `-1.5e-07`).
pub fn format_shortest_exp(v: f64) -> String {
    let (d, n, dp) = shortest(v);
    format!("{}{}", sign(v), exp_form(&d[..n], dp, n - 1))
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

fn sign(v: f64) -> &'static str {
    if v.is_sign_negative() { "-" } else { "" }
}

/// `%e` body from digits: `d.ddde±XX` with `decimals` digits after the point.
fn exp_form(digits: &[u8], dp: i32, decimals: usize) -> String {
    let mut s = String::new();
    s.push(digits[0] as char);
    if decimals > 0 {
        s.push('.');
        for i in 1..=decimals {
            s.push(*digits.get(i).unwrap_or(&b'0') as char);
        }
    }
    let e = dp - 1;
    s.push('e');
    s.push(if e < 0 { '-' } else { '+' });
    // Go prints at least two exponent digits.
    s.push_str(&format!("{:02}", e.abs()));
    s
}

/// `%f` body from digits with `decimals` digits after the point.
fn fixed_form(digits: &[u8], dp: i32, decimals: usize) -> String {
    let digit = |i: i32| -> char {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize] as char
        } else {
            '0'
        }
    };
    let mut s = String::new();
    if dp > 0 {
        for i in 0..dp {
            s.push(digit(i));
        }
    } else {
        s.push('0');
    }
    if decimals > 0 {
        s.push('.');
        for i in 0..decimals as i32 {
            s.push(digit(dp + i));
        }
    }
    s
}

/// Go's `%g` with precision `prec` (`None`: shortest, which is also `%v` for a float64).
fn format_g_impl(v: f64, prec: Option<usize>) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    if v == 0.0 {
        return format!("{}0", sign(v));
    }
    let prec = prec.map(|p| p.max(1));
    let (digits, dp) = decimal_digits(v, prec);
    let nd = digits.len() as i32;
    // Shortest: the %e/%f decision uses precision 6 (strconv's rule); explicit: the precision,
    // lowered to the digit count when all digits are integral.
    let (mut p, eprec) = match prec {
        None => (nd, 6),
        Some(p) => {
            let p = p as i32;
            (p, if p > nd && nd >= dp { nd } else { p })
        }
    };
    let exp = dp - 1;
    let body = if exp < -4 || exp >= eprec {
        p = p.min(nd);
        exp_form(&digits, dp, (p - 1).max(0) as usize)
    } else {
        if p > dp {
            p = nd;
        }
        fixed_form(&digits, dp, (p - dp).max(0) as usize)
    };
    format!("{}{}", sign(v), body)
}

/// Go's `%g` / `%v` for a float64: shortest round-trip digits, exponent form when the decimal
/// exponent is below -4 or at least 6 (`1e+06`, `1.5e-07`, `123456`).
pub fn format_g(v: f64) -> String {
    format_g_impl(v, None)
}

/// Go's `%.Ng`: `prec` significant digits, trailing zeros removed.
pub fn format_g_prec(v: f64, prec: usize) -> String {
    format_g_impl(v, Some(prec))
}

/// Go's `%.Nf` (`NaN`, `+Inf`, `-Inf` for the specials).
pub fn format_f(v: f64, decimals: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    format!("{v:.decimals$}")
}

/// `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent. This is the value
/// label `count_values` writes.
pub fn format_value_label(v: f64) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let mut s = String::new();
    push_shortest_fixed(&mut s, v);
    s
}

/// Prometheus' `labels.FormatOpenMetricsFloat`: `%g` shortest, with `.0` appended when the text
/// has neither a point nor an exponent (`1.0`, `0.0`, `1e+06`, `0.5`).
pub fn format_openmetrics_float(v: f64) -> String {
    if v == 0.0 {
        return "0.0".into();
    }
    let s = format_g(v);
    if s.contains(['e', '.']) || v.is_nan() || v.is_infinite() {
        s
    } else {
        s + ".0"
    }
}

/// Unicode categories L, M, N, P, S: Go's `unicode.IsPrint` for non-ASCII runes (the only
/// printable space is ASCII's).
static PRINTABLE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{M}\p{N}\p{P}\p{S}]$").expect("valid class"));

fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    let mut buf = [0u8; 4];
    PRINTABLE.is_match(c.encode_utf8(&mut buf))
}

/// Go's `%q` (`strconv.Quote`) of a string: double quotes, backslash escapes for quotes,
/// backslashes and non-printable runes.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.ParseFloat(s, 64)`, with its error cases as `None`: Go's literal syntax
/// (decimal, `0x` hexadecimal with a mandatory `p` exponent, `_` between digits), `Inf`,
/// `+Inf`, `-Infinity`, `NaN` in any case (no sign on NaN), and overflow to ±Inf from finite
/// text is an error (`ErrRange`) while underflow to zero is not.
pub fn parse_float(s: &str) -> Option<f64> {
    if let Some(v) = parse_special(s) {
        return Some(v);
    }
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let magnitude = if body.len() > 2 && body.as_bytes()[..2].eq_ignore_ascii_case(b"0x") {
        parse_hex(&body[2..])?
    } else {
        parse_decimal(body)?
    };
    if magnitude.is_infinite() {
        return None;
    }
    Some(if negative { -magnitude } else { magnitude })
}

fn parse_special(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Underscores may only separate digits (or follow a base prefix, signalled by `after_prefix`).
fn underscores_ok(digits_and_marks: &str, after_prefix: bool, hex: bool) -> bool {
    // 'd': last was a digit (or the base prefix), '_': an underscore, 'x': anything else.
    let mut last = if after_prefix { 'd' } else { '^' };
    for c in digits_and_marks.chars() {
        let is_digit = c.is_ascii_digit() || (hex && c.is_ascii_hexdigit());
        if is_digit {
            last = 'd';
        } else if c == '_' {
            if last != 'd' {
                return false;
            }
            last = '_';
        } else {
            if last == '_' {
                return false;
            }
            last = 'x';
        }
    }
    last != '_'
}

fn parse_decimal(body: &str) -> Option<f64> {
    // Validate Go's grammar: digits [. digits] [e [sign] digits], at least one mantissa digit.
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut mantissa_digits = 0;
    let mut seen_point = false;
    while i < bytes.len() {
        match bytes[i] {
            b'0'..=b'9' => mantissa_digits += 1,
            b'_' => {}
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < bytes.len() && (bytes[i] | 0x20) == b'e' {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let mut exp_digits = 0;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
            exp_digits += usize::from(bytes[i] != b'_');
            i += 1;
        }
        if exp_digits == 0 {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    if body.contains('_') && !underscores_ok(body, false, false) {
        return None;
    }
    // The grammar is now a subset of what Rust accepts; both round correctly.
    body.replace('_', "").parse::<f64>().ok()
}

fn parse_hex(body: &str) -> Option<f64> {
    if body.contains('_') && !underscores_ok(body, true, true) {
        return None;
    }
    let clean = body.replace('_', "");
    let (mantissa_text, exp_text) = clean.split_once(['p', 'P'])?;
    let exp: i64 = {
        let t = exp_text.strip_prefix('+').unwrap_or(exp_text);
        let digits = t.strip_prefix('-').unwrap_or(t);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Huge exponents only need to be "huge": clamp before parsing overflows.
        let v: i64 = digits.get(..digits.len().min(6))?.parse().ok()?;
        if t.starts_with('-') { -v } else { v }
    };
    let (int_part, frac_part) = mantissa_text.split_once('.').unwrap_or((mantissa_text, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // Keep the first 16 significant hex digits (64 bits); later non-zero digits become a sticky
    // bit so rounding still sees them.
    let mut mantissa: u64 = 0;
    let mut kept = 0;
    let mut sticky = false;
    let mut scale: i64 = 0; // power-of-two adjustment from digit positions
    for (i, c) in int_part.chars().chain(frac_part.chars()).enumerate() {
        let d = u64::from(c.to_digit(16)?);
        let fractional = i >= int_part.len();
        if kept < 16 {
            if mantissa != 0 || d != 0 {
                kept += 1;
            }
            mantissa = (mantissa << 4) | d;
            if fractional {
                scale -= 4;
            }
        } else {
            sticky |= d != 0;
            if !fractional {
                scale += 4;
            }
        }
    }
    Some(scale_binary(mantissa, sticky, exp + scale))
}

/// `m × 2^e` correctly rounded (half to even) to f64; `sticky` marks non-zero bits below `m`.
fn scale_binary(m: u64, sticky: bool, e: i64) -> f64 {
    if m == 0 {
        return 0.0;
    }
    let bits = 64 - i64::from(m.leading_zeros());
    let top = e + bits - 1; // binary exponent of the leading bit
    if top > 1023 {
        return f64::INFINITY;
    }
    // Significant bits representable at this magnitude: 53 for normals, fewer for subnormals.
    let keep = if top >= -1022 {
        53
    } else {
        (top + 1075).max(0)
    };
    let drop = bits - keep;
    let (mut m, mut e) = (u128::from(m), e);
    if drop > 0 {
        let drop = drop as u32;
        let half = 1u128 << (drop - 1);
        let rem = m & ((1u128 << drop) - 1);
        m >>= drop;
        e += i64::from(drop);
        let round_up = rem > half || (rem == half && (sticky || m & 1 == 1));
        if round_up {
            m += 1;
        }
        if m == 0 {
            return 0.0;
        }
        if e + (128 - i64::from(m.leading_zeros())) - 1 > 1023 {
            return f64::INFINITY;
        }
    }
    // The product is exactly representable now; split the power so no factor over/underflows.
    let half = e / 2;
    (m as f64) * pow2(half) * pow2(e - half)
}

fn pow2(e: i64) -> f64 {
    if e > 1023 {
        f64::INFINITY
    } else if e >= -1022 {
        f64::from_bits(((e + 1023) as u64) << 52)
    } else if e >= -1074 {
        f64::from_bits(1u64 << (e + 1074))
    } else {
        // Below the smallest subnormal: the value rounds to zero.
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_values_labels_and_exponent_texts_break_ties_to_even_as_go() {
        let tie = 685_759_136_058_971.0 + 0.25;
        assert_eq!(format_value_label(tie), "685759136058971.2");
        assert_eq!(format_value_label(-tie), "-685759136058971.2");
        assert_eq!(format_g(tie), "6.857591360589712e+14");
        assert_eq!(format_shortest_exp(tie), "6.857591360589712e+14");
        assert_eq!(format_shortest_exp(1e21), "1e+21");
        assert_eq!(format_shortest_exp(-1.5e-7), "-1.5e-07");
        assert_eq!(format_shortest_exp(1.234e300), "1.234e+300");
        assert_eq!(format_value_label(-0.0), "-0");
        assert_eq!(format_value_label(0.0), "0");
        assert_eq!(format_value_label(1e21), "1000000000000000000000");
        assert_eq!(format_value_label(1.5e-7), "0.00000015");
    }

    #[test]
    fn fixed_digits_match_rusts_display_where_there_is_no_tie() {
        for v in [
            0.1,
            0.5,
            1.5,
            -2.25,
            1e-6,
            1.5e-6,
            1.0000001e-6,
            0.000123,
            123456.789,
            1e20,
            1.2345e17,
            9.5e15,
            3.0e-5,
            1e-5,
            0.3,
            2.0 / 3.0,
            1e16,
            123e18,
        ] {
            let mut s = String::new();
            push_shortest_fixed(&mut s, v);
            assert_eq!(s, format!("{v}"), "{v:e}");
        }
    }

    #[test]
    fn a_value_halfway_between_two_shortest_texts_takes_the_even_digit_as_go() {
        // 685759136058971.25 exactly; Prometheus 2.42 answers `vector(685759136058971.25)` with
        // "685759136058971.2" (Go rounds the tie to even), where Rust's `Display` gives ".3".
        let mut s = String::new();
        push_shortest_fixed(&mut s, 685_759_136_058_971.0 + 0.25);
        assert_eq!(s, "685759136058971.2");
    }

    /// The significant digits of a positional number's text.
    fn significant(s: &str) -> usize {
        let d: String = s.chars().filter(char::is_ascii_digit).collect();
        let d = d.trim_start_matches('0');
        if s.contains('.') {
            d.len()
        } else {
            d.trim_end_matches('0').len()
        }
    }

    proptest::proptest! {
        /// Positional text that reads back as the same float with as few digits as Rust's
        /// `Display` (the shortest round-trip digits; the two differ only in which of two equally
        /// near texts a halfway value gets).
        #[test]
        fn positional_layout_of_any_float_is_shortest_and_exact(
            bits in proptest::prelude::any::<u64>(),
            ordinary in -1e7f64..1e7,
            scale in -12i32..22,
        ) {
            // Any bit pattern (mostly extreme magnitudes), and ordinary values at every scale a
            // sample value has.
            for v in [f64::from_bits(bits), ordinary * 10f64.powi(scale)] {
                if v.is_finite() {
                    let mut s = String::new();
                    push_shortest_fixed(&mut s, v);
                    let display = format!("{v}");
                    proptest::prop_assert!(!s.contains('e'), "{}", s);
                    proptest::prop_assert_eq!(s.parse::<f64>().map(f64::to_bits), Ok(v.to_bits()));
                    proptest::prop_assert_eq!(significant(&s), significant(&display), "{} vs {}", s, display);
                }
            }
        }
    }

    #[test]
    fn g_switches_to_exponent_at_six_digits() {
        assert_eq!(format_g(123456.0), "123456");
        assert_eq!(format_g(1e6), "1e+06");
        assert_eq!(format_g(1234567.0), "1.234567e+06");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(-1.5), "-1.5");
        assert_eq!(format_g(-0.0), "-0");
        assert_eq!(format_g(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn g_with_precision_rounds_and_trims() {
        assert_eq!(format_g_prec(5.0, 2), "5");
        assert_eq!(format_g_prec(150.0, 2), "1.5e+02");
        assert_eq!(format_g_prec(0.25, 2), "0.25");
        assert_eq!(format_g_prec(0.123, 2), "0.12");
        assert_eq!(format_g_prec(99.0, 2), "99");
        assert_eq!(format_g_prec(999.0, 2), "1e+03");
    }

    #[test]
    fn value_labels_and_openmetrics_floats() {
        assert_eq!(format_value_label(1e100).len(), 101);
        assert_eq!(format_value_label(0.0000001), "0.0000001");
        assert_eq!(format_value_label(f64::INFINITY), "+Inf");
        assert_eq!(format_openmetrics_float(1.0), "1.0");
        assert_eq!(format_openmetrics_float(-0.0), "0.0");
        assert_eq!(format_openmetrics_float(0.5), "0.5");
        assert_eq!(format_openmetrics_float(1e6), "1e+06");
        assert_eq!(format_openmetrics_float(100.0), "100.0");
    }

    #[test]
    fn quote_escapes_like_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("x\ny\u{1}"), r#""x\ny\x01""#);
        assert_eq!(quote("ü€"), "\"ü€\"");
        assert_eq!(quote("\u{a0}"), r#""\u00a0""#);
    }

    #[test]
    fn parse_float_follows_go_syntax() {
        // Multi-byte text where a hex prefix would be is not a float, and no panic.
        assert_eq!(parse_float("1°9"), None);
        // Hexadecimal floats far below the smallest subnormal round to zero, without overflow.
        assert_eq!(parse_float("0x1p-99999"), Some(0.0));
        assert_eq!(parse_float("0x.0000000000000000001p-3000"), Some(0.0));
        assert_eq!(parse_float("-é0x"), None);
        assert_eq!(parse_float("0.5"), Some(0.5));
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("-nan"), None);
        assert_eq!(parse_float("infin"), None);
        assert_eq!(parse_float("1_000"), Some(1000.0));
        assert_eq!(parse_float("1__0"), None);
        assert_eq!(parse_float("_1"), None);
        assert_eq!(parse_float("1e400"), None, "overflow is ErrRange");
        assert_eq!(
            parse_float("1e-400"),
            Some(0.0),
            "underflow is not an error"
        );
        assert_eq!(parse_float("0x1p-2"), Some(0.25));
        assert_eq!(parse_float("0x1.8p1"), Some(3.0));
        assert_eq!(parse_float("0x1.8"), None, "hex needs a p exponent");
        assert_eq!(parse_float("0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(parse_float("0x1p1024"), None);
        assert_eq!(parse_float(""), None);
        assert_eq!(parse_float("."), None);
        assert_eq!(parse_float("1e"), None);
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("5."), Some(5.0));
        assert_eq!(parse_float(" 1"), None);
    }
}
