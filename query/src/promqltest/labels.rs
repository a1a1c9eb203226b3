//! Reading label sets as promqltest scripts write them: `name`, `name{a="b"}`, `{a="b"}`,
//! `{__name__="x", a="b"}` and Prometheus 3's quoted forms `{"my.metric", "a.b"="c"}`.
//!
//! Owns: the metric-description prefix of a series line and the Go-style string unquoting it needs.
//! Does not own: label matchers (`=~`, `!=`, …) — a script's series lines only ever state label
//! values, so this reader accepts `=` alone; the PromQL parser handles selectors.

use ember_index::{Label, Labels, METRIC_NAME};

/// Parses a whole string as a label set (a series line without values).
pub fn parse_labels(input: &str) -> Result<Labels, String> {
    let (labels, rest) = parse_metric_prefix(input.trim())?;
    if !rest.trim().is_empty() {
        return Err(format!("unexpected {:?} after label set", rest.trim()));
    }
    Ok(labels)
}

/// Reads the metric description at the start of `input` and returns it with the unread rest.
///
/// As in Prometheus' series-description lexer, a metric name must be followed directly by `{`
/// or by whitespace (or the end): `foo {a="b"}` is a metric `foo` followed by garbage values.
pub fn parse_metric_prefix(input: &str) -> Result<(Labels, &str), String> {
    let mut cur = Cursor { s: input, pos: 0 };
    let name = cur.take_while(is_metric_name_char);
    let mut pairs = Vec::new();
    if cur.peek() == Some('{') {
        cur.pos += 1;
        read_label_list(&mut cur, &mut pairs)?;
    } else if name.is_empty() {
        return Err(format!(
            "expected a metric name or `{{` at the start of {input:?}"
        ));
    }
    if !name.is_empty() {
        // `foo{__name__="bar"}` is metric `foo`: the identifier wins, as Prometheus'
        // `labels.Builder.Set` does when it builds the series description.
        pairs.retain(|l: &Label| l.name != METRIC_NAME);
        pairs.push(Label::new(METRIC_NAME, name));
    }
    let labels = Labels::new(pairs).map_err(|e| e.to_string())?;
    Ok((labels, &input[cur.pos..]))
}

/// Reads `a="b", "c.d"="e", "metric"}` — everything after the opening brace.
fn read_label_list(cur: &mut Cursor<'_>, out: &mut Vec<Label>) -> Result<(), String> {
    loop {
        cur.skip_ws();
        match cur.peek() {
            Some('}') => {
                cur.pos += 1;
                return Ok(());
            }
            None => return Err("unterminated label set: missing `}`".to_string()),
            _ => {}
        }
        let (name, quoted) = match cur.peek() {
            Some('"' | '\'' | '`') => (cur.read_string()?, true),
            Some(c) if is_label_name_char(c, true) => {
                (cur.take_while(is_label_name_char).to_string(), false)
            }
            Some(c) => return Err(format!("unexpected {c:?} in label set")),
            None => unreachable!("end of input handled above"),
        };
        cur.skip_ws();
        if cur.peek() == Some('=') {
            cur.pos += 1;
            cur.skip_ws();
            if !matches!(cur.peek(), Some('"' | '\'' | '`')) {
                return Err(format!("expected a quoted value for label {name:?}"));
            }
            let value = cur.read_string()?;
            out.push(Label::new(name, value));
        } else if quoted {
            // A lone quoted string names the metric: `{"my.metric", a="b"}`.
            out.push(Label::new(METRIC_NAME, name));
        } else {
            return Err(format!("expected `=` after label name {name:?}"));
        }
        cur.skip_ws();
        match cur.peek() {
            Some(',') => cur.pos += 1,
            Some('}') => {}
            Some(c) => {
                return Err(format!(
                    "unexpected {c:?} in label set, expected `,` or `}}`"
                ));
            }
            None => return Err("unterminated label set: missing `}`".to_string()),
        }
    }
}

fn is_metric_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn is_label_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!first && c.is_ascii_digit())
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn take_while(&mut self, keep: impl Fn(char, bool) -> bool) -> &'a str {
        let start = self.pos;
        for (i, c) in self.s[start..].char_indices() {
            if !keep(c, i == 0) {
                self.pos = start + i;
                return &self.s[start..self.pos];
            }
        }
        self.pos = self.s.len();
        &self.s[start..]
    }

    /// Reads one quoted string starting at the cursor and unquotes it.
    fn read_string(&mut self) -> Result<String, String> {
        let rest = &self.s[self.pos..];
        let len = quoted_len(rest)?;
        self.pos += len;
        unquote(&rest[..len])
    }
}

/// Length in bytes of the quoted string at the start of `s`, quotes included.
fn quoted_len(s: &str) -> Result<usize, String> {
    let quote = s.chars().next().ok_or("expected a quoted string")?;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if quote != '`' && escaped {
            escaped = false;
        } else if quote != '`' && c == '\\' {
            escaped = true;
        } else if c == quote {
            return Ok(i + c.len_utf8());
        }
    }
    Err(format!("unterminated quoted string {s:?}"))
}

/// Go-style unquoting as Prometheus' `strutil.Unquote` does it: `"…"` and `'…'` with Go escapes
/// (`\n`, `\x41`, `\101`, `\u00e9`, `\U0001F600`, …), and raw `` `…` `` without escapes.
pub fn unquote(s: &str) -> Result<String, String> {
    let mut chars = s.chars();
    let (Some(q), Some(last)) = (chars.next(), s.chars().last()) else {
        return Err(format!("invalid quoted string {s:?}"));
    };
    if s.len() < 2 || q != last || !matches!(q, '"' | '\'' | '`') {
        return Err(format!("invalid quoted string {s:?}"));
    }
    let body = &s[1..s.len() - 1];
    if q == '`' {
        if body.contains('`') {
            return Err(format!("invalid raw string {s:?}"));
        }
        return Ok(body.to_string());
    }
    // Bytes, not chars: `\xc5` and octal escapes produce single bytes that only together may
    // form UTF-8, exactly as in Go.
    let mut out: Vec<u8> = Vec::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c == q {
            return Err(format!("unescaped quote in {s:?}"));
        }
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let e = it
            .next()
            .ok_or_else(|| format!("trailing backslash in {s:?}"))?;
        let simple = match e {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' | '\'' if e == q => Some(e as u8),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        match e {
            'x' => out.push(read_digits(&mut it, 2, 16, s)? as u8),
            '0'..='7' => {
                let rest = read_digits(&mut it, 2, 8, s)?;
                let v = (e as u32 - '0' as u32) * 64 + rest;
                if v > 255 {
                    return Err(format!("octal escape out of range in {s:?}"));
                }
                out.push(v as u8);
            }
            'u' | 'U' => {
                let n = if e == 'u' { 4 } else { 8 };
                let v = read_digits(&mut it, n, 16, s)?;
                let c = char::from_u32(v).ok_or_else(|| format!("invalid code point in {s:?}"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return Err(format!("unknown escape sequence \\{e} in {s:?}")),
        }
    }
    String::from_utf8(out).map_err(|_| format!("string {s:?} is not valid UTF-8 once unescaped"))
}

fn read_digits(
    it: &mut std::iter::Peekable<std::str::Chars<'_>>,
    n: usize,
    radix: u32,
    whole: &str,
) -> Result<u32, String> {
    let mut v = 0u32;
    for _ in 0..n {
        let d = it
            .next()
            .and_then(|c| c.to_digit(radix))
            .ok_or_else(|| format!("invalid escape sequence in {whole:?}"))?;
        v = v * radix + d;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn bare_metric_name_becomes_the_name_label() {
        assert_eq!(parse_labels("up").unwrap(), ls(&[("__name__", "up")]));
        assert_eq!(parse_labels("a:b_c").unwrap(), ls(&[("__name__", "a:b_c")]));
    }

    #[test]
    fn name_with_braces_and_name_inside_braces_are_the_same_series() {
        let a = parse_labels(r#"x{a="b", c="d"}"#).unwrap();
        let b = parse_labels(r#"{__name__="x", c="d", a="b"}"#).unwrap();
        let c = parse_labels(r#"{"x", a="b", c="d",}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn empty_braces_mean_no_labels() {
        assert_eq!(parse_labels("{}").unwrap(), Labels::empty());
        assert_eq!(parse_labels("m{}").unwrap(), ls(&[("__name__", "m")]));
    }

    #[test]
    fn quoted_label_names_and_all_quote_styles() {
        let got = parse_labels(r#"{"service.name"='a\'b', raw=`c\d`}"#).unwrap();
        assert_eq!(got, ls(&[("service.name", "a'b"), ("raw", r"c\d")]));
    }

    #[test]
    fn go_escapes_are_decoded() {
        assert_eq!(unquote(r#""\u70ac = torch""#).unwrap(), "炬 = torch");
        assert_eq!(unquote(r#""\x41\101\t""#).unwrap(), "AA\t");
        assert_eq!(unquote(r#""\xc3\xa9""#).unwrap(), "é");
        assert!(unquote(r#""\xc5""#).is_err(), "lone byte is not UTF-8");
        assert!(unquote(r#""\q""#).is_err());
    }

    #[test]
    fn identifier_name_overrides_name_label_in_braces() {
        let got = parse_labels(r#"foo{__name__="bar", a="b"}"#).unwrap();
        assert_eq!(got, ls(&[("__name__", "foo"), ("a", "b")]));
    }

    #[test]
    fn prefix_returns_the_unread_rest() {
        let (l, rest) = parse_metric_prefix(r#"m{a="x y"} 1 2"#).unwrap();
        assert_eq!(l, ls(&[("__name__", "m"), ("a", "x y")]));
        assert_eq!(rest, " 1 2");
    }

    #[test]
    fn malformed_label_sets_are_rejected() {
        for bad in [
            r#"{a="b""#,
            r#"{a=b}"#,
            r#"{a}"#,
            r#"{a!="b"}"#,
            r#"{a="b" c="d"}"#,
            r#"{a="b", a="c"}"#,
            r#"{"unterminated}"#,
            "",
            "1abc",
        ] {
            assert!(parse_labels(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
