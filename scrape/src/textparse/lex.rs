//! The byte cursor both text formats read with: position and line
//! tracking, names, quoted strings and label sets.

use std::borrow::Cow;

use super::{LabelPairs, MetricType, normalize_label_value};
use crate::Error;

pub(super) struct Cursor<'a> {
    src: &'a str,
    pos: usize,
    /// 1-based line of `pos`.
    line: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(src: &'a str) -> Cursor<'a> {
        Cursor {
            src,
            pos: 0,
            line: 1,
        }
    }

    pub(super) fn line(&self) -> usize {
        self.line
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// Advances one byte. Only called on ASCII bytes, or on bytes inside a
    /// string scanned to its end, so slices stay on char boundaries.
    pub(super) fn bump(&mut self) {
        if self.peek() == Some(b'\n') {
            self.line += 1;
        }
        self.pos += 1;
    }

    pub(super) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }

    /// Consumes `s` (which holds no line break) if the input continues with it.
    pub(super) fn eat_str(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn slice(&self, from: usize) -> &'a str {
        self.src.get(from..self.pos).unwrap_or_default()
    }

    /// Skips spaces and tabs; returns how many.
    pub(super) fn skip_blanks(&mut self) -> usize {
        self.take_while(|b| b == b' ' || b == b'\t').len()
    }

    /// Consumes bytes while `f` holds. `f` must fail only on ASCII bytes or
    /// hold for every non-ASCII byte, so the cut is a char boundary.
    pub(super) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let from = self.pos;
        while let Some(b) = self.peek() {
            if b == b'\n' || !f(b) {
                break;
            }
            self.pos += 1;
        }
        self.slice(from)
    }

    /// The rest of the line, without its line break (not consumed).
    pub(super) fn rest_of_line(&mut self) -> &'a str {
        self.take_while(|_| true)
    }

    /// Skips to after the next line break.
    pub(super) fn skip_line(&mut self) {
        self.rest_of_line();
        self.eat(b'\n');
    }

    pub(super) fn err(&self, message: impl Into<String>) -> Error {
        Error::Exposition {
            line: self.line,
            message: message.into(),
        }
    }

    /// What is at the cursor, for messages.
    pub(super) fn found(&self) -> String {
        match self.rest().chars().next() {
            None => "end of input".to_string(),
            Some('\n') => "end of line".to_string(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`, or "" if none starts here.
    pub(super) fn metric_name(&mut self) -> &'a str {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {
                self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            }
            _ => "",
        }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, or "" if none starts here.
    pub(super) fn label_name(&mut self) -> &'a str {
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            _ => "",
        }
    }

    /// A double-quoted string at the cursor, unescaped (`\\`, `\"`, `\n`;
    /// any other escape is kept as written, as Prometheus does).
    pub(super) fn quoted(&mut self, allow_newline: bool) -> Result<Cow<'a, str>, Error> {
        let start_line = self.line;
        if !self.eat(b'"') {
            return Err(self.err(format!("expected '\"', got {}", self.found())));
        }
        let from = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(Error::Exposition {
                        line: start_line,
                        message: "unterminated quoted string".to_string(),
                    });
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        None => continue,
                        Some(b'\n') if !allow_newline => {
                            return Err(self.err("line break in quoted string"));
                        }
                        Some(_) => self.bump(),
                    }
                }
                Some(b'\n') if !allow_newline => {
                    return Err(self.err("line break in quoted string"));
                }
                Some(_) => self.bump(),
            }
        }
        let raw = self.slice(from);
        self.bump(); // the closing quote
        Ok(unescape(raw, true))
    }

    /// A label set at `{`. `blanks` allows spaces and tabs between tokens
    /// (Prometheus text) or not (OpenMetrics). With `name` given, a quoted
    /// string not followed by `=` is the metric name (UTF-8 names).
    pub(super) fn label_set(
        &mut self,
        blanks: bool,
        allow_newline: bool,
        mut name: Option<&mut Option<Cow<'a, str>>>,
        mtype: MetricType,
    ) -> Result<LabelPairs<'a>, Error> {
        let ws = |c: &mut Cursor<'a>| {
            if blanks {
                c.skip_blanks();
            }
        };
        if !self.eat(b'{') {
            return Err(self.err(format!("expected '{{', got {}", self.found())));
        }
        let mut labels: LabelPairs<'a> = Vec::new();
        loop {
            ws(self);
            if self.eat(b'}') {
                break;
            }
            let label = if self.peek() == Some(b'"') {
                let q = self.quoted(false)?;
                if q.is_empty() {
                    return Err(self.err("empty quoted name"));
                }
                ws(self);
                if self.peek() == Some(b'=') {
                    q
                } else {
                    match name.as_deref_mut() {
                        Some(slot) if slot.is_none() && labels.is_empty() => {
                            *slot = Some(q);
                        }
                        Some(_) => return Err(self.err("metric name already set")),
                        None => return Err(self.err("metric name not allowed here")),
                    }
                    if !self.eat(b',') {
                        ws(self);
                        if self.eat(b'}') {
                            break;
                        }
                        return Err(self.err(format!("expected ',' or '}}', got {}", self.found())));
                    }
                    continue;
                }
            } else {
                let n = self.label_name();
                if n.is_empty() {
                    return Err(self.err(format!("expected label name, got {}", self.found())));
                }
                Cow::Borrowed(n)
            };
            ws(self);
            if !self.eat(b'=') {
                return Err(self.err(format!(
                    "expected '=' after label name {label:?}, got {}",
                    self.found()
                )));
            }
            ws(self);
            if self.peek() != Some(b'"') {
                return Err(self.err(format!(
                    "expected quoted value for label {label:?}, got {}",
                    self.found()
                )));
            }
            let value = self.quoted(allow_newline)?;
            if labels.iter().any(|(n, _)| *n == label) {
                return Err(self.err(format!("duplicate label name {label:?}")));
            }
            let value = normalize_label_value(mtype, &label, value);
            labels.push((label, value));
            ws(self);
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                break;
            }
            return Err(self.err(format!("expected ',' or '}}', got {}", self.found())));
        }
        Ok(labels)
    }
}

/// Undoes `\\`, `\n` and (with `quote`) `\"`; other backslashes stay.
pub(super) fn unescape(s: &str, quote: bool) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}
