//! Series notation: the value sequences of `load` blocks and expected results
//! (`1 2+3x2 _ _x3 stale Inf`), the start-timestamp sequences of `@st` lines, and the Prometheus
//! duration syntax (`1h30m`, `10s53ms`) scripts use for times and steps.
//!
//! Owns: expanding one line's notation into a flat list of values, with Prometheus' exact
//! arithmetic (an `a+bxn` ramp is built by repeated addition, like the Go parser does, so the
//! floats match bit for bit). Does not own: what a value list means in time — `load` spaces it by
//! its interval (the runner), an `eval range` by its step (the comparison).
//!
//! Native histograms (`{{schema:1 sum:3 …}}` and their `+`/`-`/`x` forms) are recognised and
//! counted as [`SeqValue::Histogram`] placeholders, never built: Ember does not store native
//! histograms, and the runner skips whatever touches them.

use ember_index::Labels;

use crate::value::STALE_NAN_BITS;

use super::labels::parse_metric_prefix;

/// One position in an expanded sequence.
#[derive(Debug, Clone, Copy)]
pub enum SeqValue {
    /// A float sample (possibly NaN, ±Inf, or the staleness marker).
    Value(f64),
    /// `_`: no sample at this position.
    Omitted,
    /// A native histogram sample, recognised but not decoded.
    Histogram,
}

impl PartialEq for SeqValue {
    /// Bitwise on floats, so tests can pin NaN payloads (the staleness marker) exactly.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SeqValue::Value(a), SeqValue::Value(b)) => a.to_bits() == b.to_bits(),
            (SeqValue::Omitted, SeqValue::Omitted) => true,
            (SeqValue::Histogram, SeqValue::Histogram) => true,
            _ => false,
        }
    }
}

/// Parses a full series line: `metric{labels} <values…>`.
pub fn parse_series_line(line: &str) -> Result<(Labels, Vec<SeqValue>), String> {
    let (labels, rest) = parse_metric_prefix(line.trim())?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err(format!(
            "expected whitespace between the label set and the values, found {rest:?}"
        ));
    }
    Ok((labels, expand_values(rest)?))
}

/// Expands a whitespace-separated value sequence.
pub fn expand_values(input: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    let mut rest = input.trim_start();
    while !rest.is_empty() {
        let len = if rest.starts_with("{{") {
            histogram_item_len(rest)?
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        let item = &rest[..len];
        if rest.starts_with("{{") {
            expand_histogram_item(item, &mut out)?;
        } else {
            expand_float_item(item, &mut out).map_err(|e| format!("in {item:?}: {e}"))?;
        }
        let after = &rest[len..];
        if !after.is_empty() && !after.starts_with(char::is_whitespace) {
            return Err(format!("unexpected {after:?} after {item:?}"));
        }
        rest = after.trim_start();
    }
    Ok(out)
}

/// `_`, `_xN`, `v`, `vxN`, `v+dxN`, `v-dxN`.
fn expand_float_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    if item == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        // `_xN` is N gaps, unlike `vxN` which is N+1 samples.
        let n = parse_repeat(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Omitted, n));
        return Ok(());
    }
    if item.starts_with('_') {
        return Err("`_` may only be followed by `x<count>`".to_string());
    }
    let (first, rest) = read_value(item)?;
    if rest.is_empty() {
        out.push(SeqValue::Value(first));
        return Ok(());
    }
    if first.to_bits() == STALE_NAN_BITS {
        return Err("`stale` cannot be repeated or incremented".to_string());
    }
    if let Some(n) = rest.strip_prefix('x') {
        let n = parse_repeat(n)?;
        out.extend(std::iter::repeat_n(SeqValue::Value(first), n + 1));
        return Ok(());
    }
    if !rest.starts_with(['+', '-']) {
        return Err(format!("unexpected {rest:?}"));
    }
    let (delta, rest) = read_value(rest)?;
    let Some(n) = rest.strip_prefix('x') else {
        return Err("an increment must be followed by `x<count>`".to_string());
    };
    let n = parse_repeat(n)?;
    // Repeated addition, not `first + i * delta`: the Go parser accumulates, and e.g. 0.1+0.1x9
    // differs in the last bits between the two.
    let mut v = first;
    for _ in 0..=n {
        out.push(SeqValue::Value(v));
        v += delta;
    }
    Ok(())
}

/// Reads a (possibly signed) number, `Inf`/`NaN` (any case) or `stale` from the start of `s`.
/// Returns it with the unread rest, which must begin with `x`, `+`, `-` or be empty.
fn read_value(s: &str) -> Result<(f64, &str), String> {
    let (negative, signed, body) = match s.as_bytes().first() {
        Some(b'+') => (false, true, &s[1..]),
        Some(b'-') => (true, false, &s[1..]),
        _ => (false, false, s),
    };
    let signed = signed || negative;
    let first = body.chars().next().ok_or("missing number")?;
    let (v, rest) = if first.is_ascii_alphabetic() {
        // Like the Go lexer, a word runs over all alphanumerics: `Infx3` is one bad word.
        let end = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let word = &body[..end];
        let v = match word.to_ascii_lowercase().as_str() {
            "inf" => f64::INFINITY,
            "nan" => f64::NAN,
            _ if word == "stale" && !signed => f64::from_bits(STALE_NAN_BITS),
            _ => return Err(format!("unexpected {word:?}, expected a number or `stale`")),
        };
        (v, &body[end..])
    } else if first.is_ascii_digit() || first == '.' {
        let end = number_token_len(body);
        let tok = &body[..end];
        let v = parse_go_number(tok).map_err(|_| format!("bad number {tok:?}"))?;
        (v, &body[end..])
    } else {
        return Err(format!("unexpected {first:?}, expected a number"));
    };
    if !(rest.is_empty() || rest.starts_with(['x', '+', '-'])) {
        return Err(format!("bad number syntax near {rest:?}"));
    }
    Ok((if negative { -v } else { v }, rest))
}

/// Length of a number token as the series lexer scans it: digits, `.`, `_`, exponent (with an
/// optional sign directly after `e`/`E`). No hex: `0x10` is `0` repeated ten more times.
fn number_token_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' | b'.' | b'_' => i += 1,
            b'e' | b'E' => {
                i += 1;
                if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    i
}

/// A repetition count: a plain decimal unsigned integer.
fn parse_repeat(s: &str) -> Result<usize, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid repetition count {s:?}"));
    }
    s.parse::<usize>()
        .map_err(|e| format!("invalid repetition count {s:?}: {e}"))
}

/// Parses a number the way Prometheus' test tooling does (Go's `strconv.ParseInt(s, 0, 64)`,
/// falling back to `strconv.ParseFloat`): sign, `0x`/`0o`/`0b` prefixes, a leading `0` meaning
/// octal (`010` is 8), `_` between digits, exponents, and `Inf`/`Infinity`/`NaN` in any case.
pub fn parse_go_number(s: &str) -> Result<f64, String> {
    let bad = || format!("not a number: {s:?}");
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return Err(bad());
    }
    if !underscores_ok(body) {
        return Err(bad());
    }
    let lower: String = body
        .chars()
        .filter(|&c| c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    let prefixed = ["0x", "0o", "0b"].iter().find(|p| lower.starts_with(**p));
    let int = match prefixed {
        Some(p) => {
            let radix = match *p {
                "0x" => 16,
                "0o" => 8,
                _ => 2,
            };
            let digits = &lower[2..];
            // from_str_radix would accept a sign here; Go does not.
            (!digits.starts_with(['+', '-'])).then(|| i64::from_str_radix(digits, radix))
        }
        // A leading zero means octal to ParseInt(s, 0, 64).
        None if lower.len() > 1 && lower.starts_with('0') && all_digits(&lower) => {
            Some(i64::from_str_radix(&lower[1..], 8))
        }
        None if all_digits(&lower) => Some(lower.parse::<i64>()),
        None => None,
    };
    // When ParseInt fails (overflow, `09`), Go falls back to ParseFloat, which reads `09` as
    // decimal 9 and knows `Inf`/`NaN`; it does not know the integer prefixes.
    let v = match int {
        Some(Ok(i)) => i as f64,
        _ if prefixed.is_some() => return Err(bad()),
        _ => {
            let f = lower.parse::<f64>().map_err(|_| bad())?;
            // ParseFloat reports overflow (`1e400`) as an error rather than returning Inf.
            if f.is_infinite() && !matches!(lower.as_str(), "inf" | "infinity") {
                return Err(format!("number out of range: {s:?}"));
            }
            f
        }
    };
    Ok(if neg { -v } else { v })
}

fn all_digits(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_digit())
}

/// Go's rule: every `_` sits between two digits (or after a base prefix and before a digit).
fn underscores_ok(s: &str) -> bool {
    if !s.contains('_') {
        return true;
    }
    let b = s.as_bytes();
    let prefixed = b.len() > 2 && b[0] == b'0' && b[1].is_ascii_alphabetic();
    let hex = prefixed && b[1].eq_ignore_ascii_case(&b'x');
    let digit = |c: u8| c.is_ascii_digit() || (hex && c.is_ascii_hexdigit());
    b.iter().enumerate().all(|(i, &c)| {
        if c != b'_' {
            return true;
        }
        let before_ok = i > 0 && (digit(b[i - 1]) || (prefixed && i == 2));
        let after_ok = i + 1 < b.len() && digit(b[i + 1]);
        before_ok && after_ok
    })
}

/// Byte length of a histogram item: `{{…}}`, optionally `xN` or `+{{…}}xN` / `-{{…}}xN`.
fn histogram_item_len(s: &str) -> Result<usize, String> {
    let close = |from: usize| -> Result<usize, String> {
        s[from..]
            .find("}}")
            .map(|i| from + i + 2)
            .ok_or_else(|| "unterminated native histogram `{{`".to_string())
    };
    let mut end = close(0)?;
    let rest = &s[end..];
    if rest.starts_with("+{{") || rest.starts_with("-{{") {
        end = close(end + 1)?;
    }
    let tail = &s[end..];
    let tail_len = tail.find(char::is_whitespace).unwrap_or(tail.len());
    Ok(end + tail_len)
}

/// Counts how many samples a histogram item stands for.
fn expand_histogram_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let after = &item[item.rfind("}}").map_or(item.len(), |i| i + 2)..];
    let has_increment = item[2..].contains("{{");
    let count = match after.strip_prefix('x') {
        Some(n) => parse_repeat(n)? + 1,
        None if after.is_empty() && !has_increment => 1,
        None if after.is_empty() => {
            return Err("a histogram increment must be followed by `x<count>`".to_string());
        }
        None => return Err(format!("unexpected {after:?} after native histogram")),
    };
    out.extend(std::iter::repeat_n(SeqValue::Histogram, count));
    Ok(())
}

/// Parses a Prometheus duration (`model.ParseDuration`): units y, w, d, h, m, s, ms in that order,
/// each at most once, integers only; a bare `0` is allowed. Returns milliseconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bad = || format!("not a valid duration: {s:?}");
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        let idx = UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(bad)?
            + next_unit;
        total = n
            .checked_mul(UNITS[idx].1)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        next_unit = idx + 1;
        rest = &rest[letters..];
    }
    Ok(total)
}

/// Parses an `@st` offset sequence: `_`, `_xN`, `<dur>`, `<dur>xN`, `<dur>+<dur>xN`,
/// `<dur>-<dur>xN`, where durations may carry a sign (`-30s`). `None` marks an omitted position.
pub fn expand_start_timestamps(input: &str) -> Result<Vec<Option<i64>>, String> {
    let mut out = Vec::new();
    for item in input.split_whitespace() {
        expand_st_item(item, &mut out).map_err(|e| format!("invalid @st item {item:?}: {e}"))?;
    }
    Ok(out)
}

fn expand_st_item(item: &str, out: &mut Vec<Option<i64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = parse_repeat(n)?;
        if n == 0 {
            return Err("repeat count must be positive".to_string());
        }
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    let (base, rest) = read_signed_duration(item)?;
    if rest.is_empty() {
        out.push(Some(base));
        return Ok(());
    }
    if let Some(n) = rest.strip_prefix('x') {
        out.extend(std::iter::repeat_n(Some(base), parse_repeat(n)? + 1));
        return Ok(());
    }
    if !rest.starts_with(['+', '-']) {
        return Err(format!("unexpected {rest:?} after duration"));
    }
    let (delta, rest) = read_signed_duration(rest)?;
    let n = rest
        .strip_prefix('x')
        .ok_or("expected `x<count>` after the step duration")?;
    let mut v = base;
    for _ in 0..=parse_repeat(n)? {
        out.push(Some(v));
        v += delta;
    }
    Ok(())
}

/// One signed duration chunk (`-59999ms`, `+1m`): digits then letters other than `x`.
fn read_signed_duration(s: &str) -> Result<(i64, &str), String> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let digits = body.bytes().take_while(u8::is_ascii_digit).count();
    let letters = body[digits..]
        .bytes()
        .take_while(|b| b.is_ascii_alphabetic() && *b != b'x')
        .count();
    if digits == 0 {
        return Err(format!("expected a duration in {s:?}"));
    }
    let ms = parse_duration(&body[..digits + letters])?;
    Ok((if neg { -ms } else { ms }, &body[digits + letters..]))
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
